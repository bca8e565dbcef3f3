// Operator use cases behind the CLI (and later the console): merchants, applications, keys.
// Each returns a typed failure for bad input instead of throwing.
import { assertRsa2048, InvalidKeyError, parsePublicKey, publicKeyPem } from '@sparkpay/protocol';
import { isValidEvmAddress, isZeroAddress } from '../domain/address.js';
import { BIDI_FORMATTING, CONTROL_CHARACTERS } from '../domain/text.js';
import { parseNetworkId, type NetworkId } from '../domain/catalogue.js';
import type { PlatformKeys } from './platform-keys.js';
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

/** Registers a merchant RSA-2048 public key (PEM with or without header lines, §4). */
export async function createApplication(
  deps: AdminDeps,
  input: { merchantNo: string; merchantPublicKey: string; appId?: string },
): Promise<AdminResult<CreatedApplication>> {
  let normalized: string;
  try {
    const key = parsePublicKey(input.merchantPublicKey);
    assertRsa2048(key);
    normalized = publicKeyPem(key);
  } catch (err) {
    if (err instanceof InvalidKeyError) return { ok: false, message: `the merchant public key is not an RSA-2048 X.509 (SPKI) key: ${err.message}` };
    throw err;
  }
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
