// Operator use cases behind the CLI (and later the console): merchants, applications, keys.
// Each returns a typed failure for bad input instead of throwing.
import { assertRsa2048, InvalidKeyError, parsePublicKey, publicKeyPem } from '@sparkpay/protocol';
import { isValidEvmAddress, isZeroAddress } from '../domain/address.js';
import { BIDI_FORMATTING, CONTROL_CHARACTERS } from '../domain/text.js';
import { parseNetworkId, type NetworkId } from '../domain/catalogue.js';
import { ACTIVE_KEY_TTL_MS, type PlatformKeys } from './platform-keys.js';
import type { ApplicationRecord, Clock, Ids, MerchantPatch, MerchantRecord, PlatformKeyRecord, Store } from './ports.js';

export interface AdminDeps {
  store: Store;
  clock: Clock;
  ids: Ids;
  platformKeys: PlatformKeys;
}

export type AdminResult<T> = { ok: true; value: T } | { ok: false; message: string };

export async function createMerchant(deps: AdminDeps, input: { name: string; merchantNo?: string } & MerchantPatch): Promise<AdminResult<MerchantRecord>> {
  const name = input.name.trim();
  const bad = checkName(name);
  if (bad) return { ok: false, message: bad };
  if (input.merchantNo !== undefined && !/^M[0-9]{1,30}$/.test(input.merchantNo)) {
    return { ok: false, message: 'merchant_no must be "M" followed by digits' };
  }
  const checked = checkAddresses(input);
  if (!checked.ok) return checked;
  const merchant: MerchantRecord = {
    merchantNo: input.merchantNo ?? deps.ids.merchantNo(),
    name,
    status: input.status ?? 'ACTIVE',
    onlinePayment: input.onlinePayment ?? true,
    wallets: input.wallets ?? {},
    caAddresses: input.caAddresses ?? {},
    createdAt: deps.clock.nowMs(),
  };
  if (await deps.store.merchants.get(merchant.merchantNo)) return { ok: false, message: `merchant ${merchant.merchantNo} already exists` };
  await deps.store.transaction((tx) => tx.merchants.insert(merchant));
  return { ok: true, value: merchant };
}

export async function updateMerchant(deps: AdminDeps, merchantNo: string, patch: MerchantPatch): Promise<AdminResult<MerchantRecord>> {
  const checked = checkAddresses(patch);
  if (!checked.ok) return checked;
  const updated = await deps.store.transaction((tx) => tx.merchants.update(merchantNo, patch, deps.clock.nowMs()));
  if (!updated) return { ok: false, message: `merchant ${merchantNo} does not exist` };
  const merchant = await deps.store.merchants.get(merchantNo);
  return merchant ? { ok: true, value: merchant } : { ok: false, message: `merchant ${merchantNo} does not exist` };
}

export interface CreatedApplication {
  application: ApplicationRecord;
  platformKey: PlatformKeyRecord;
}

/** A merchant RSA-2048 public key (PEM with or without header lines, §4), normalised to SPKI PEM. */
function merchantKeyPem(text: string): AdminResult<string> {
  try {
    const key = parsePublicKey(text);
    assertRsa2048(key);
    return { ok: true, value: publicKeyPem(key) };
  } catch (err) {
    if (err instanceof InvalidKeyError) return { ok: false, message: `the merchant public key is not an RSA-2048 X.509 (SPKI) key: ${err.message}` };
    throw err;
  }
}

/** Registers a merchant RSA-2048 public key (PEM with or without header lines, §4). */
export async function createApplication(
  deps: AdminDeps,
  input: { merchantNo: string; merchantPublicKey: string; appId?: string },
): Promise<AdminResult<CreatedApplication>> {
  const key = merchantKeyPem(input.merchantPublicKey);
  if (!key.ok) return key;
  const normalized = key.value;
  if (!(await deps.store.merchants.get(input.merchantNo))) return { ok: false, message: `merchant ${input.merchantNo} does not exist` };
  const application: ApplicationRecord = {
    appId: input.appId ?? deps.ids.appId(),
    merchantNo: input.merchantNo,
    merchantPublicKeyPem: normalized,
    status: 'ACTIVE',
    createdAt: deps.clock.nowMs(),
  };
  const platformKey = await deps.store.transaction(async (tx) => {
    await tx.applications.insert(application);
    return deps.platformKeys.create(tx, application.appId);
  });
  return { ok: true, value: { application, platformKey } };
}

/**
 * Replaces the merchant public key of an application (the merchant's private key leaked, or it
 * rotates it): requests signed with the old key are refused from then on (40000), on every
 * instance within the application cache's second (ADR 0010).
 */
export async function setMerchantKey(deps: AdminDeps, appId: string, merchantPublicKey: string): Promise<AdminResult<ApplicationRecord>> {
  const key = merchantKeyPem(merchantPublicKey);
  if (!key.ok) return key;
  if (!(await deps.store.applications.setMerchantKey(appId, key.value, deps.clock.nowMs()))) return { ok: false, message: `application ${appId} does not exist` };
  const application = await deps.store.applications.get(appId);
  return application ? { ok: true, value: application } : { ok: false, message: `application ${appId} does not exist` };
}

export interface ApplicationStatusChange {
  application: ApplicationRecord;
  /** False when the application had that status already (nothing was written). */
  changed: boolean;
}

/**
 * Disables an application (its requests are refused with 40002, signed with its own platform
 * key, §2, §3) or enables it again. Every instance sees it within the application cache's second
 * (ADR 0010); orders it created before stay payable and their notifications are still delivered.
 */
export async function setApplicationStatus(deps: AdminDeps, appId: string, status: ApplicationRecord['status']): Promise<AdminResult<ApplicationStatusChange>> {
  // The status read back in the transaction of the write: the one this change left.
  const r = await deps.store.transaction(async (tx) => {
    const changed = await tx.applications.setStatus(appId, status, deps.clock.nowMs());
    return { changed, application: await tx.applications.get(appId) };
  });
  if (!r.application) return { ok: false, message: `application ${appId} does not exist` };
  return { ok: true, value: { application: r.application, changed: r.changed } };
}

/** An application as `app list` shows it: `signingSerial` is its platform key that signs now (null: none, its answers are signed with the default key). */
export interface ListedApplication {
  application: ApplicationRecord;
  signingSerial: string | null;
}

/** The merchant's applications, oldest first; null for an unknown merchant. */
export async function listApplications(deps: Pick<AdminDeps, 'store'>, merchantNo: string): Promise<ListedApplication[] | null> {
  if (!(await deps.store.merchants.get(merchantNo))) return null;
  const applications = await deps.store.applications.listByMerchant(merchantNo);
  return Promise.all(applications.map(async (application) => ({ application, signingSerial: (await deps.store.platformKeys.activeFor(application.appId))?.serial ?? null })));
}

/** A live platform key of an application (§3): listed for merchants; `signing`: the one that signs now. */
export interface LiveKey {
  key: PlatformKeyRecord;
  signing: boolean;
}

/** The application's live platform keys (ACTIVE and NEXT), oldest first; null for an unknown application. */
export async function liveKeys(deps: Pick<AdminDeps, 'store'>, appId: string): Promise<LiveKey[] | null> {
  if (!(await deps.store.applications.get(appId))) return null;
  return liveKeysOf(deps.store, appId);
}

/** The live platform keys of an application known to exist, oldest first. */
export async function liveKeysOf(store: AdminDeps['store'], appId: string): Promise<LiveKey[]> {
  const signing = await store.platformKeys.activeFor(appId);
  return (await store.platformKeys.list(appId)).filter((k) => k.status !== 'RETIRED').map((key) => ({ key, signing: key.serial === signing?.serial }));
}

/**
 * Key rotation with an overlap (§3), step 1: a new platform key for the application, NEXT (live:
 * merchants install it beside the one they have, keyed by serial) unless `activate`, when it
 * signs at once (a leaked key).
 */
export async function addPlatformKey(deps: AdminDeps, appId: string, activate: boolean): Promise<AdminResult<LiveKey>> {
  if (!(await deps.store.applications.get(appId))) return { ok: false, message: `application ${appId} does not exist` };
  const key = await deps.store.transaction(async (tx) => {
    // Newer than every key of the application, also within one millisecond: the newest ACTIVE key signs.
    const newest = Math.max(0, ...(await tx.platformKeys.list(appId)).map((k) => k.createdAt));
    return deps.platformKeys.create(tx, appId, undefined, activate ? 'ACTIVE' : 'NEXT', Math.max(deps.clock.nowMs(), newest + 1));
  });
  const now = await deps.store.platformKeys.activeFor(appId);
  return { ok: true, value: { key, signing: now?.serial === key.serial } };
}

/** Step 2: the NEXT key signs the application's answers and notifications from now on (every instance within ACTIVE_KEY_TTL_MS); the one before stays live until retired. */
export async function activatePlatformKey(deps: AdminDeps, appId: string, serial: string): Promise<AdminResult<LiveKey>> {
  const key = await ownKey(deps, appId, serial);
  if (!key.ok) return key;
  if (key.value.status !== 'NEXT') return { ok: false, message: `platform key ${serial} is ${key.value.status}; only a NEXT key (from "app add-key") can be activated` };
  const signing = await deps.store.platformKeys.activeFor(appId);
  // The newest ACTIVE key signs: an older key activated now would not.
  if (signing && signing.createdAt >= key.value.createdAt) return { ok: false, message: `platform key ${serial} is older than the key that signs now (${signing.serial}); add a new key instead` };
  if (!(await deps.store.platformKeys.setStatus(serial, 'NEXT', 'ACTIVE', deps.clock.nowMs()))) return { ok: false, message: `platform key ${serial} changed meanwhile; list the keys again` };
  // Another key activated at the same time may be the newer one: say what signs now.
  const now = await deps.store.platformKeys.activeFor(appId);
  return { ok: true, value: { key: (await deps.store.platformKeys.get(serial)) ?? key.value, signing: now?.serial === serial } };
}

/** Step 3: a key that no longer signs leaves the live list (a NEXT key can be withdrawn too). */
export async function retirePlatformKey(deps: AdminDeps, appId: string, serial: string): Promise<AdminResult<PlatformKeyRecord>> {
  const key = await ownKey(deps, appId, serial);
  if (!key.ok) return key;
  if (key.value.status === 'RETIRED') return { ok: false, message: `platform key ${serial} is already retired` };
  const signing = await deps.store.platformKeys.activeFor(appId);
  if (signing?.serial === serial) return { ok: false, message: `platform key ${serial} signs this application's answers; activate another key first ("app add-key", then "app activate-key")` };
  // Instances keep the key that signs for ACTIVE_KEY_TTL_MS: the one before may sign until then.
  const since = signing ? (signing.activatedAt ?? signing.createdAt) : 0;
  const wait = since + ACTIVE_KEY_TTL_MS - deps.clock.nowMs();
  if (key.value.status === 'ACTIVE' && wait > 0) {
    return { ok: false, message: `platform key ${signing!.serial} signs only since ${Math.ceil(wait / 1000)} s ago or less: instances may still sign with ${serial}; retire it in ${Math.ceil(wait / 1000)} s` };
  }
  if (!(await deps.store.platformKeys.setStatus(serial, key.value.status, 'RETIRED', deps.clock.nowMs()))) return { ok: false, message: `platform key ${serial} changed meanwhile; list the keys again` };
  return { ok: true, value: { ...key.value, status: 'RETIRED' } };
}

async function ownKey(deps: AdminDeps, appId: string, serial: string): Promise<AdminResult<PlatformKeyRecord>> {
  if (!(await deps.store.applications.get(appId))) return { ok: false, message: `application ${appId} does not exist` };
  const key = await deps.store.platformKeys.get(serial);
  if (!key || key.appId !== appId) return { ok: false, message: `application ${appId} has no platform key ${serial}` };
  return { ok: true, value: key };
}

/** Longest merchant name, in characters (code points). */
export const MERCHANT_NAME_MAX = 128;

/**
 * What is wrong with a merchant name, or null. Payers read it on the cashier page: no control
 * characters (a line break, a terminal escape) and none of the invisible marks that reorder
 * text (bidi overrides, embeddings, isolates and marks), which could make it read as another
 * name. Joiners stay allowed (emoji sequences need them).
 */
export function checkName(name: string): string | null {
  const length = [...name].length;
  if (length < 1 || length > MERCHANT_NAME_MAX) return `the merchant name must be 1-${MERCHANT_NAME_MAX} characters`;
  if (CONTROL_CHARACTERS.test(name)) return 'the merchant name must not contain control characters or line breaks';
  if (BIDI_FORMATTING.test(name)) return 'the merchant name must not contain bidirectional formatting characters';
  return null;
}

/** `2=0xabc…` pairs from the command line, validated. */
export function parseNetworkAddressPairs(pairs: readonly string[], what: string): AdminResult<Partial<Record<NetworkId, string>>> {
  const out: Partial<Record<NetworkId, string>> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const network = parseNetworkId(eq > 0 ? pair.slice(0, eq) : '');
    const address = eq > 0 ? pair.slice(eq + 1) : '';
    if (!network) return { ok: false, message: `${what} "${pair}": expected <network>=<address> with network 2, 3, 4 or 5` };
    if (!isValidEvmAddress(address)) return { ok: false, message: `${what} "${pair}": not a valid EVM address (0x + 40 hex, checksummed if mixed case)` };
    if (isZeroAddress(address)) return { ok: false, message: `${what} "${pair}": the zero address can receive nothing` };
    // Two addresses for one network: a slip, and the last one silently winning could send a
    // merchant's money to the wrong one.
    const earlier = out[network];
    if (earlier !== undefined && earlier.toLowerCase() !== address.toLowerCase()) {
      return { ok: false, message: `${what} names two addresses for network ${network} (${earlier} and ${address}): give one` };
    }
    out[network] = address;
  }
  return { ok: true, value: out };
}

function checkAddresses(patch: MerchantPatch): { ok: true } | { ok: false; message: string } {
  for (const [label, map] of [['wallet', patch.wallets], ['CA address', patch.caAddresses]] as const) {
    for (const [network, address] of Object.entries(map ?? {})) {
      if (!parseNetworkId(network)) return { ok: false, message: `${label}: unknown network ${network}` };
      if (!address || !isValidEvmAddress(address)) return { ok: false, message: `${label} for network ${network} is not a valid EVM address` };
      if (isZeroAddress(address)) return { ok: false, message: `${label} for network ${network} is the zero address, which can receive nothing` };
    }
  }
  return { ok: true };
}
