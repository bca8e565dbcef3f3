import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { shutdown } from './shutdown.js';

const capture = () => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { lines, logger };
};

describe('shutdown on a signal', () => {
  it('exits 0 once the gateway closed', async () => {
    const { lines, logger } = capture();
    const codes: number[] = [];
    await shutdown('SIGTERM', async () => undefined, logger, { exit: (c) => void codes.push(c) });
    expect(codes).toEqual([0]);
    expect(lines.map((l) => l.msg)).toEqual(['shutting down']);
  });

  it('exits 1 when closing fails, saying why (it exited 1 without a word)', async () => {
    const { lines, logger } = capture();
    const codes: number[] = [];
    await shutdown('SIGTERM', () => Promise.reject(new Error('pool end failed')), logger, { exit: (c) => void codes.push(c) });
    expect(codes).toEqual([1]);
    expect(lines[1]).toMatchObject({ level: 50, msg: 'shutdown failed', err: { message: 'pool end failed' } });
  });

  it('exits 1 after the deadline when closing hangs (a pass waiting on a database that went silent held SIGTERM for ever)', async () => {
    const { lines, logger } = capture();
    const codes: number[] = [];
    // Without the deadline this never resolves (the test's own timeout fails it).
    await shutdown('SIGTERM', () => new Promise<void>(() => undefined), logger, { deadlineMs: 100, exit: (c) => void codes.push(c) });
    expect(codes).toEqual([1]);
    expect(lines[1]).toMatchObject({ level: 50, deadlineMs: 100 });
    expect(String(lines[1]!.msg)).toMatch(/^shutdown did not finish within 0\.1 s/);
  });
});
