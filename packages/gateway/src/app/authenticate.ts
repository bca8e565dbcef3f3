// Request authentication (§2), in the documented order: headers present (40003) → AppID
// known and enabled (40002) → timestamp well-formed (40009) and inside the window (40000) →
// nonce well-formed (40009) → signature over the exact body bytes (40000) → nonce not seen
// before (40000, settled through the returned NonceGuard). The rate limit (40011) is applied by
// the HTTP edge after this.
import type { KeyObject } from 'node:crypto';
import { NONCE_PATTERN, parsePublicKey, verifyMessage } from '@sparkpay/protocol';
import type { Clock, Store } from './ports.js';
import { NonceGuard } from './nonce-guard.js';
import { fail, type Result } from './result.js';

export interface AuthHeaders {
  appId: string | undefined;
  timestamp: string | undefined;
  nonce: string | undefined;
  signature: string | undefined;
}

export interface AuthenticatedApp {
  appId: string;
  merchantNo: string;
}

export interface AuthOptions {
  /** Allowed distance between the request timestamp and server time, seconds. */
  windowSeconds: number;
}

const HEADER_NAMES: Record<keyof AuthHeaders, string> = {
  appId: 'Sparkpay-App-Id',
  timestamp: 'Sparkpay-Timestamp',
  nonce: 'Sparkpay-Nonce',
  signature: 'Sparkpay-Signature',
};

/**
 * Longest AppID looked up (the gateway's are 18 digits). A longer one is unknown without a read:
 * every AppID named is kept by the directory cache (ADR 0010), also one that names nothing and
 * past its sender's budget of refusals, so 10,000 AppIDs of 16 KB (the header limit) held 160 MB.
 */
export const MAX_APP_ID_LENGTH = 64;

/** Merchant public keys, parsed once per distinct PEM (bounded). */
const MAX_CACHED_KEYS = 10_000;

export class Authenticator {
  private readonly keys = new Map<string, KeyObject>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly options: AuthOptions,
  ) {}

  /**
   * Every check of §2 up to the signature. The caller must settle the returned nonce guard
   * (replay check) before the request has any effect.
   */
  async authenticate(headers: AuthHeaders, body: Uint8Array): Promise<Result<{ app: AuthenticatedApp; nonce: NonceGuard }>> {
    for (const name of Object.keys(HEADER_NAMES) as (keyof AuthHeaders)[]) {
      const v = headers[name];
      if (v === undefined || v.trim() === '') return fail(40003, `missing required header: ${HEADER_NAMES[name]}`);
    }
    const { appId, timestamp, nonce, signature } = headers as Required<{ [K in keyof AuthHeaders]: string }>;
    const app = appId.length <= MAX_APP_ID_LENGTH ? await this.store.applications.get(appId) : null;
    if (!app || app.status !== 'ACTIVE') return fail(40002, app ? 'the application is disabled' : 'Invalid APPID: unknown application');

    // Any digits are a time (milliseconds, say, are merely far outside the window: 40000).
    if (!/^[0-9]+$/.test(timestamp)) return fail(40009, 'Sparkpay-Timestamp must be Unix time in seconds (decimal digits)');
    // Whole seconds against whole seconds: ±300 s means now - 300 and now + 300 both pass, whatever
    // fraction of the current second has gone by.
    const nowMs = this.clock.nowMs();
    const skew = Math.abs(Number(timestamp) - Math.floor(nowMs / 1000));
    if (skew > this.options.windowSeconds) {
      return fail(40000, `Sparkpay-Timestamp is outside the allowed window of ±${this.options.windowSeconds} s of server time`);
    }
    if (!NONCE_PATTERN.test(nonce)) return fail(40009, 'Sparkpay-Nonce must be 1-64 characters from [A-Za-z0-9_-]');

    if (!verifyMessage(this.merchantKey(app.merchantPublicKeyPem), timestamp, nonce, body, signature)) {
      return fail(40000, 'signature verification failed: the signature does not match the request and the registered public key');
    }
    // Remembered until the timestamp can no longer pass the window check: that compares whole
    // seconds, so it passes until the end of the second ts + window (found by review: ms-precise
    // expiry let a replay through in that last second). The replay check itself is the guard's,
    // so it can share the transaction of the request's effects.
    const expiresAtMs = (Math.max(Number(timestamp), Math.floor(nowMs / 1000)) + this.options.windowSeconds + 1) * 1000;
    return {
      ok: true,
      app: { appId: app.appId, merchantNo: app.merchantNo },
      nonce: new NonceGuard(this.store, { appId, nonce, expiresAtMs, nowMs }),
    };
  }

  /**
   * The AppID whose platform key signs a refusal made before authentication finished (a
   * missing header, an unreadable body, a disabled application): the named application when it
   * exists, disabled or not, so the merchant's SDK can verify the answer with the key it holds
   * (§3: the default key only when the AppID is unknown); else null, the default key.
   */
  async signerFor(appId: string | undefined): Promise<string | null> {
    if (appId === undefined || appId.trim() === '' || appId.length > MAX_APP_ID_LENGTH) return null;
    const app = await this.store.applications.get(appId);
    return app ? app.appId : null;
  }

  private merchantKey(pem: string): KeyObject {
    let key = this.keys.get(pem);
    if (!key) {
      if (this.keys.size >= MAX_CACHED_KEYS) this.keys.clear();
      key = parsePublicKey(pem);
      this.keys.set(pem, key);
    }
    return key;
  }
}
