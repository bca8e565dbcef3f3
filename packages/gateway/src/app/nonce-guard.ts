// Replay protection for one authenticated request (§2). The nonce must be remembered before
// the request has any effect; for order creation it is remembered inside the order's own
// transaction, which saves a separate commit on the common path. Every other path remembers
// it with a write of its own before answering, so a replay always gets 40000.
import type { Store, StoreTx } from './ports.js';
import { fail, type Failure } from './result.js';

export interface NonceClaim {
  appId: string;
  nonce: string;
  /** Until when this nonce could pass the timestamp window check. */
  expiresAtMs: number;
  nowMs: number;
}

export class ReplayedRequestError extends Error {
  constructor() {
    super('replayed request');
  }
}

export function replayFailure(): Failure {
  return fail(40000, 'replayed request: this Sparkpay-Nonce was already used within the timestamp window');
}

export class NonceGuard {
  private outcome: Promise<boolean> | null = null;

  constructor(
    private readonly store: Store,
    readonly claim: NonceClaim,
  ) {}

  /** True once the nonce is remembered (or known to be a replay) in a committed write. */
  get settled(): boolean {
    return this.outcome !== null;
  }

  /** Remembers the nonce with its own write; false means a replay. Idempotent. */
  check(): Promise<boolean> {
    const c = this.claim;
    this.outcome ??= this.store.nonces.remember(c.appId, c.nonce, c.expiresAtMs, c.nowMs);
    return this.outcome;
  }

  /**
   * Remembers the nonce inside `tx`; throws ReplayedRequestError on a replay so the caller's
   * transaction rolls back. Call `rolledBack()` if the transaction fails for another reason.
   */
  async checkIn(tx: StoreTx): Promise<void> {
    if (this.outcome) {
      if (!(await this.outcome)) throw new ReplayedRequestError();
      return;
    }
    const c = this.claim;
    if (!(await tx.nonces.remember(c.appId, c.nonce, c.expiresAtMs, c.nowMs))) {
      // A replay is settled: the nonce is already remembered by the request that used it first.
      this.outcome = Promise.resolve(false);
      throw new ReplayedRequestError();
    }
    this.outcome = Promise.resolve(true);
  }

  /** The transaction that remembered the nonce did not commit: remember it again if needed. */
  rolledBack(): void {
    this.outcome = null;
  }
}
