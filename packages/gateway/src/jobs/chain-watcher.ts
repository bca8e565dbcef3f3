// One scan loop per network that has RPC endpoints: a thin loop around scanChainOnce. Passes
// continue at once while the scan is behind the head, otherwise every poll interval.
import type { Logger } from 'pino';
import { noMetrics, type Metrics } from '../app/ports.js';
import { scanChainOnce, type LeaseListener, type ScanDeps, type ScanResult } from '../app/scan-chain.js';
import { leadershipLog } from '../app/lease-log.js';
import { startLoop, type WorkerLoop } from './worker-loop.js';

/** One scan pass, then the network's head and scan position to `metrics` (when this instance holds the lease; else that it does not). */
export async function scanPass(deps: ScanDeps, metrics: Metrics = noMetrics, onLease?: LeaseListener): Promise<ScanResult> {
  // deps itself, every pass: the scan keeps its memory of native balances on it.
  let r: ScanResult;
  try {
    r = await scanChainOnce(deps, (held) => {
      metrics.chainLease(deps.network.id, held);
      onLease?.(held);
    });
  } catch (err) {
    // Counted: the chain gauges keep the last pass's figures meanwhile, and only the caught-up age tells.
    metrics.chainScanFailed(deps.network.id);
    throw err;
  }
  if (r.leased && r.head !== null) metrics.chainScanned(deps.network.id, r.head, r.scanned?.to ?? null);
  if (r.caughtUpAt !== undefined) metrics.chainCaughtUp(deps.network.id, r.caughtUpAt);
  return r;
}

/**
 * Stopping waits for the pass in progress, then gives the network's scan lease back: a gateway
 * restarted at once (or another instance) scans without waiting for the lease to run out.
 */
export function startChainWatcher(deps: ScanDeps, logger: Logger, pollMs: number, metrics: Metrics = noMetrics): WorkerLoop {
  const leading = leadershipLog(logger, deps.network.id, 'chain scan');
  const loop = startLoop(`chain-${deps.network.id}`, pollMs, logger, async (stopping) => {
    for (let pass = 0; pass < 100 && !stopping(); pass += 1) {
      const r = await scanPass(deps, metrics, leading);
      if (r.transfers > 0 || r.reverted > 0) logger.info({ network: deps.network.id, ...r }, 'chain scan');
      if (!r.leased || !r.scanned || r.head === null || r.scanned.to >= r.head) return;
    }
  });
  return {
    async stop() {
      await loop.stop();
      await deps.store.chainCursors.release(deps.network.id, deps.owner, deps.clock.nowMs()).then(
        (held) => held && logger.info({ network: deps.network.id }, 'handed over the network\'s chain scan lease: another instance takes it over at once'),
        (err: unknown) => logger.warn({ err, network: deps.network.id }, 'could not release the chain scan lease'),
      );
    },
  };
}
