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

export const FIRST_DEFAULT_SERIAL = 'DEFAULT0000000000001';

/** How long the AppID → active serial mapping is trusted before it is read again (a key activated by the CLI signs within it). */
export const ACTIVE_KEY_TTL_MS = 5_000;
/** How long after its cache entry ran out a key may still sign while the database does not answer. */
const STALE_SIGNING_MS = 60_000;
/** Applications whose signing key is cached at once, at most. */
const MAX_ACTIVE_ENTRIES = 10_000;

export class PlatformKeys {
  private readonly decrypted = new Map<string, KeyObject>();
  private readonly active = new Map<string, { serial: string; until: number }>();

  constructor(
    private readonly store: Store,
    private readonly vault: KeyVault,
    private readonly ids: Ids,
    private readonly clock: Clock,
  ) {}

  /** Creates and stores a new key for an application (or the default key), active unless `status` says NEXT. */
  async create(
    tx: StoreTx,
    appId: string | null,
    serial: string = this.ids.keySerial(),
    status: 'ACTIVE' | 'NEXT' = 'ACTIVE',
    createdAt: number = this.clock.nowMs(),
  ): Promise<PlatformKeyRecord> {
    await this.checkMasterKey(tx);
    const pair = generateRsaKeyPair();
    const record: PlatformKeyRecord = {
      serial,
      appId,
      publicKeyPem: pair.publicKeyPem,
      privateKeyEnc: this.vault.seal(pair.privateKeyPem, serial),
      status,
      createdAt,
    };
    await tx.platformKeys.insert(record);
    return record;
  }

  /**
   * The master key must open what the database already holds before it seals anything new: a
   * key sealed with another master key (a mistyped SPARKPAY_MASTER_KEY given to a management
   * command) could never be opened by the server. Checked once, on the platform default key, or
   * before the server's first start made it, on the first key stored (an application's).
   */
  private async checkMasterKey(tx: StoreTx): Promise<void> {
    if (this.masterKeyChecked) return;
    const existing = (await tx.platformKeys.activeFor(null)) ?? (await tx.platformKeys.oldest());
    if (existing) this.vault.open(existing.privateKeyEnc, existing.serial);
    this.masterKeyChecked = true;
  }

  private masterKeyChecked = false;

  /**
   * The default key signs responses when the AppID is unknown; made on first start. The first
   * one has a fixed serial, so instances starting together on an empty database insert the
   * same primary key: one wins, the others find its key.
   */
  async ensureDefault(): Promise<PlatformKeyRecord> {
    const existing = await this.store.platformKeys.activeFor(null);
    if (existing) return existing;
    try {
      return await this.store.transaction((tx) => this.create(tx, null, FIRST_DEFAULT_SERIAL));
    } catch (err) {
      const winner = await this.store.platformKeys.activeFor(null);
      if (winner) return winner;
      throw err;
    }
  }

  /** The key that signs responses for `appId` (null or unknown: the default key). */
  async signingKeyFor(appId: string | null): Promise<SigningKey> {
    const cacheKey = appId ?? '';
    const now = this.clock.nowMs();
    const cached = this.active.get(cacheKey);
    // Not beyond its time to live from now (a clock set back would keep a retired key signing for as long as the step).
    if (cached && cached.until > now && cached.until - now <= ACTIVE_KEY_TTL_MS) return { serial: cached.serial, privateKey: await this.privateKey(cached.serial) };
    let record: PlatformKeyRecord;
    try {
      record = (appId !== null ? await this.store.platformKeys.activeFor(appId) : null) ?? (await this.ensureDefault());
    } catch (err) {
      // The database does not answer: the answer that says so (50000) is still signed, with the
      // key that signed for this application in this process within the last minute (retiring it
      // takes its successor signing first, and the database: not in that minute), else with the
      // default key, which is never retired (ADR 0011).
      const recent = cached && cached.until + STALE_SIGNING_MS >= now ? cached : undefined;
      const stale = recent ?? this.active.get('');
      const key = stale && this.decrypted.get(stale.serial);
      if (stale && key) return { serial: stale.serial, privateKey: key };
      throw err;
    }
    // Bounded: answers to made-up AppIDs are cached too (as the default key's).
    if (this.active.size >= MAX_ACTIVE_ENTRIES) this.active.clear();
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
