// One scan loop per network that has RPC endpoints: a thin loop around scanChainOnce. Passes
// continue at once while the scan is behind the head, otherwise every poll interval.
import type { Logger } from 'pino';
import { scanChainOnce, type ScanDeps } from '../app/scan-chain.js';
import { startLoop, type WorkerLoop } from './worker-loop.js';

export function startChainWatcher(deps: ScanDeps, logger: Logger, pollMs: number): WorkerLoop {
  return startLoop(`chain-${deps.network.id}`, pollMs, logger, async () => {
    for (let pass = 0; pass < 100; pass += 1) {
      const r = await scanChainOnce(deps);
      if (r.transfers > 0 || r.reverted > 0) logger.info({ network: deps.network.id, ...r }, 'chain scan');
      if (!r.leased || !r.scanned || r.head === null || r.scanned.to >= r.head) return;
    }
  });
}
