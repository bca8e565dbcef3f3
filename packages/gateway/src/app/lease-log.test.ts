import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { leadershipLog } from './lease-log.js';

describe('leadershipLog', () => {
  it('logs whether this instance holds the lease when it learns it, then only when that changes', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const leading = leadershipLog(logger, '4', 'chain scan');
    for (const leased of [false, false, true, true, true, false, true]) leading(leased);
    expect(lines.map((l) => [l.network, l.msg])).toEqual([
      ['4', "another instance runs the network's chain scan (it holds the lease)"],
      ['4', "this instance runs the network's chain scan (it holds the lease)"],
      ['4', "another instance runs the network's chain scan (it holds the lease)"],
      ['4', "this instance runs the network's chain scan (it holds the lease)"],
    ]);
  });
});
