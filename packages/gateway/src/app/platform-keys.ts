// Platform RSA keys: one or more per application (a serial each, so keys can rotate with
// an overlap) plus the platform default key that signs answers to unknown AppIDs.
// Private halves are sealed with the operator's master key and decrypted once per process.
import type { KeyObject } from 'node:crypto';
import { generateRsaKeyPair, parsePrivateKey } from '@sparkpay/protocol';
import type { Clock, Ids, KeyVault, PlatformKeyRecord, Store, StoreTx } from './ports.js';

export interface SigningKey {
  serial: string;
  privateKey: KeyObject;
}

/** How long the AppID → active serial mapping is trusted before it is read again. */
const ACTIVE_KEY_TTL_MS = 5_000;

export class PlatformKeys {
  private readonly decrypted = new Map<string, KeyObject>();
  private readonly active = new Map<string, { serial: string; until: number }>();

  constructor(
    private readonly store: Store,
    private readonly vault: KeyVault,
    private readonly ids: Ids,
    private readonly clock: Clock,
  ) {}

  /** Creates and stores a new active key for an application (or the default key). */
  async create(tx: StoreTx, appId: string | null): Promise<PlatformKeyRecord> {
    const serial = this.ids.keySerial();
    const pair = generateRsaKeyPair();
    const record: PlatformKeyRecord = {
      serial,
      appId,
      publicKeyPem: pair.publicKeyPem,
      privateKeyEnc: this.vault.seal(pair.privateKeyPem, serial),
      status: 'ACTIVE',
      createdAt: this.clock.nowMs(),
    };
    await tx.platformKeys.insert(record);
    return record;
  }

  /** The default key signs responses when the AppID is unknown; made on first start. */
  async ensureDefault(): Promise<PlatformKeyRecord> {
    const existing = await this.store.platformKeys.activeFor(null);
    if (existing) return existing;
    return this.store.transaction(async (tx) => (await tx.platformKeys.activeFor(null)) ?? this.create(tx, null));
  }

  /** The key that signs responses for `appId` (null or unknown: the default key). */
  async signingKeyFor(appId: string | null): Promise<SigningKey> {
    const cacheKey = appId ?? '';
    const now = this.clock.nowMs();
    const cached = this.active.get(cacheKey);
    if (cached && cached.until > now) return { serial: cached.serial, privateKey: await this.privateKey(cached.serial) };
    const record = (appId !== null ? await this.store.platformKeys.activeFor(appId) : null) ?? (await this.ensureDefault());
    this.active.set(cacheKey, { serial: record.serial, until: now + ACTIVE_KEY_TTL_MS });
    return { serial: record.serial, privateKey: this.unseal(record) };
  }

  private async privateKey(serial: string): Promise<KeyObject> {
    const hit = this.decrypted.get(serial);
    if (hit) return hit;
    const record = await this.store.platformKeys.get(serial);
    if (!record) throw new Error(`platform key ${serial} vanished`);
    return this.unseal(record);
  }

  private unseal(record: PlatformKeyRecord): KeyObject {
    const hit = this.decrypted.get(record.serial);
    if (hit) return hit;
    const key = parsePrivateKey(this.vault.open(record.privateKeyEnc, record.serial));
    this.decrypted.set(record.serial, key);
    return key;
  }
}
