// SIGTERM while a worker runs several passes in one tick (a chain scan catching up, a settlement
// sending batch after batch): the stop waits for the pass under way, not for the rest of the tick
// (up to 100 scan passes, 20 settlement passes), so the lease is handed over at once, as README
// "Production, step by step" promises, and not after a container runtime's grace period kills the
// process with the lease still held.
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { ScanDeps, ScanResult } from '../app/scan-chain.js';
import type { Settler, SettleResult } from '../app/settle.js';
import { waitUntil } from '../../test/wait.js';

const PASS_MS = 40;
let scanPasses = 0;

vi.mock('../app/scan-chain.js', () => ({
  // Always behind the head: every pass scans 2,000 blocks of 200,000.
  scanChainOnce: async (_deps: unknown, onLease?: (held: boolean) => void): Promise<ScanResult> => {
    onLease?.(true);
    scanPasses += 1;
    const from = scanPasses * 2_000;
    await new Promise((r) => setTimeout(r, PASS_MS));
    return { leased: true, head: 200_000, scanned: { from, to: from + 1_999 }, transfers: 0, reverted: 0, caughtUp: false };
  },
}));

const { startChainWatcher } = await import('./chain-watcher.js');
const { startSettlementWorker } = await import('./settlement-worker.js');

/** A logger whose lines the test reads back. */
function capturing() {
  const out: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void out.push(line) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('stopping a worker in the middle of a multi-pass tick', () => {
  it('the chain watcher stops after the pass under way and releases its lease, instead of scanning on to the head', async () => {
    let released = 0;
    const deps = {
      network: { id: '4' },
      owner: 'me',
      clock: { nowMs: () => Date.now() },
      store: { chainCursors: { release: async () => ((released += 1), true) } },
    } as unknown as ScanDeps;
    const { logger, lines } = capturing();
    const watcher = startChainWatcher(deps, logger, 10);
    await waitUntil('two scan passes', () => scanPasses >= 2, 2_000);
    await watcher.stop();
    // Was: about 98 more passes (≈4 s here; minutes on a real chain) before the lease was released.
    expect(scanPasses).toBeLessThan(5);
    expect(released).toBe(1);
    // The handover is logged (a chaos run found only "shutting down" in the log).
    expect(lines()).toContainEqual(expect.objectContaining({ network: '4', msg: expect.stringMatching(/^handed over the network's chain scan lease/) }));
  });

  it('the settlement worker stops after the pass under way instead of sending more batches', async () => {
    let passes = 0;
    let released = 0;
    const settler = {
      settleOnce: async (): Promise<SettleResult> => {
        passes += 1;
        await new Promise((r) => setTimeout(r, PASS_MS));
        return { leased: true, sent: 5, settled: 0, replaced: 0, rebroadcast: 0, waiting: null };
      },
      release: async () => ((released += 1), true),
    } as unknown as Settler;
    const { logger, lines } = capturing();
    const worker = startSettlementWorker('4', settler, logger, 10);
    await waitUntil('two settlement passes', () => passes >= 2, 2_000);
    await worker.stop();
    // Was: up to 18 more batches sent after the stop was asked.
    expect(passes).toBeLessThan(5);
    expect(released).toBe(1);
    expect(lines()).toContainEqual(expect.objectContaining({ network: '4', msg: expect.stringMatching(/^handed over the network's settlement lease/) }));
  });
});
