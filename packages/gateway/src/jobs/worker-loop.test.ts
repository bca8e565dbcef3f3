import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { failureLog, startLoop } from './worker-loop.js';

const silent = pino({ level: 'silent' });
const until = async (what: () => boolean, ms = 2_000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('startLoop', () => {
  it('runs a woken tick at once instead of after the wait, and once more when woken while running', async () => {
    let ticks = 0;
    let release: (() => void) | null = null;
    const loop = startLoop('test', 60_000, silent, async () => {
      ticks += 1;
      if (ticks === 1) await new Promise<void>((r) => (release = r));
    });
    try {
      expect(ticks).toBe(0);
      loop.wake();
      await until(() => ticks === 1);
      // Woken twice while the first tick runs: one more tick after it, not two.
      loop.wake();
      loop.wake();
      await new Promise((r) => setTimeout(r, 30));
      expect(ticks).toBe(1);
      release!();
      await until(() => ticks === 2);
      await new Promise((r) => setTimeout(r, 50));
      expect(ticks).toBe(2);
    } finally {
      await loop.stop();
    }
    loop.wake();
    await new Promise((r) => setTimeout(r, 30));
    expect(ticks).toBe(2);
  });

  it('keeps its interval without wake-ups, and a failing tick does not stop it', async () => {
    let ticks = 0;
    const loop = startLoop('test', 10, silent, async () => {
      ticks += 1;
      if (ticks === 1) throw new Error('boom');
    });
    try {
      await until(() => ticks >= 3);
    } finally {
      await loop.stop();
    }
  });
});

describe('startLoop stopping', () => {
  it('logs a tick that fails once the stop was asked as cut short, not as an error (its chain or database may be going away with it)', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    let fail!: (err: Error) => void;
    let started = false;
    const loop = startLoop('chain-4', 10, logger, () => {
      started = true;
      return new Promise<void>((_, reject) => (fail = reject));
    });
    await until(() => started);
    const stopping = loop.stop();
    fail(new Error('connect ECONNREFUSED 127.0.0.1:8545'));
    await stopping;
    expect(lines.map((l) => [l.level, l.msg])).toEqual([[30, 'worker tick cut short by the stop']]);
  });
});

describe('failureLog', () => {
  it('logs the first failure of a kind with its stack, repeats of it as warnings without one, and the recovery with the count', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const log = failureLog(logger, 'chain-4', 'worker tick');
    log.failed(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
    log.failed(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
    log.failed(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
    log.failed(new Error('HTTP request failed'));
    log.succeeded();
    log.succeeded();
    log.failed(new Error('HTTP request failed'));
    const view = lines.map((l) => [l.level, l.msg, Boolean((l.err as { stack?: string } | undefined)?.stack), l.repeats ?? l.failures ?? null]);
    expect(view).toEqual([
      [50, 'worker tick failed', true, null],
      [40, 'worker tick failed', false, 2],
      // The third in a row is not logged (the 4th, 8th… are).
      [50, 'worker tick failed', true, null],
      [30, 'worker tick succeeded again', false, 4],
      // After a success, the same message is a new failure again.
      [50, 'worker tick failed', true, null],
    ]);
    expect(lines.every((l) => l.worker === 'chain-4')).toBe(true);
  });

  it('logs a long run of the same failure at the 2nd, 4th, 8th, 16th… repeat, and the recovery with the whole count', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const log = failureLog(logger, 'settle-4', 'worker tick');
    for (let i = 0; i < 40; i += 1) log.failed(new Error('Connection terminated unexpectedly'));
    log.succeeded();
    expect(lines.map((l) => l.repeats ?? l.failures ?? 'first')).toEqual(['first', 2, 4, 8, 16, 32, 40]);
  });
});
