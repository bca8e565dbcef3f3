// One settlement loop per network with a relayer (issue 5): passes continue at once while work
// was done (a batch sent, transactions followed), otherwise every poll interval.
import type { Logger } from 'pino';
import type { Settler } from '../app/settle.js';
import { startLoop, type WakeableLoop } from './worker-loop.js';

export function startSettlementWorker(network: string, settler: Settler, logger: Logger, pollMs: number): WakeableLoop {
  const loop = startLoop(`settle-${network}`, pollMs, logger, async (stopping) => {
    for (let pass = 0; pass < 20 && !stopping(); pass += 1) {
      const r = await settler.settleOnce();
      if (r.sent > 0 || r.settled > 0 || r.replaced > 0 || r.rebroadcast > 0) logger.debug({ network, ...r }, 'settlement pass');
      if (!r.leased || r.sent === 0) return;
    }
  });
  return {
    wake: () => loop.wake(),
    async stop() {
      await loop.stop();
      await settler.release().then(
        (held) => held && logger.info({ network }, 'handed over the network\'s settlement lease: another instance takes it over at once'),
        (err: unknown) => logger.warn({ err, network }, 'could not release the settlement lease'),
      );
    },
  };
}
