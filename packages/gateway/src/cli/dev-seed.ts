// Development mode's demo merchant and application: created once, reused on every start.
// The merchant key pair and the platform public key are written to the data directory so
// the SDK example (and a newcomer's code) can use them at once.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateRsaKeyPair } from '@sparkpay/protocol';
import { createApplication, createMerchant, updateMerchant, type AdminDeps } from '../app/merchant-admin.js';
import { NETWORK_IDS, type NetworkId } from '../domain/catalogue.js';

export const DEMO_MERCHANT_NO = 'M100000000001';
/**
 * anvil's well-known development account #1: the demo merchant's external wallet everywhere
 * (the devnet's DEVNET_MERCHANT_WALLET_INDEX; settlements of devnet payments go there).
 */
export const DEMO_WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

export interface DevIdentity {
  merchantNo: string;
  appId: string;
  serial: string;
  merchantPrivateKeyFile: string;
  merchantPublicKeyFile: string;
  platformPublicKeyFile: string;
}

export async function seedDevelopment(deps: AdminDeps, dataDir: string, wallet: string = DEMO_WALLET): Promise<DevIdentity> {
  const files = {
    merchantPrivateKeyFile: join(dataDir, 'merchant_private_key.pem'),
    merchantPublicKeyFile: join(dataDir, 'merchant_public_key.pem'),
    platformPublicKeyFile: join(dataDir, 'platform_public_key.pem'),
  };
  const statePath = join(dataDir, 'dev.json');

  const existing = await deps.store.merchants.get(DEMO_MERCHANT_NO);
  if (!existing) {
    const wallets = Object.fromEntries(NETWORK_IDS.map((n) => [n, wallet])) as Record<NetworkId, string>;
    const created = await createMerchant(deps, { name: 'Demo Merchant', merchantNo: DEMO_MERCHANT_NO, wallets });
    if (!created.ok) throw new Error(`could not seed the demo merchant: ${created.message}`);
  } else {
    // A data directory from before a network existed: give it the wallet; one set by hand stays.
    const missing = Object.fromEntries(NETWORK_IDS.filter((n) => !existing.wallets[n]).map((n) => [n, wallet])) as Partial<Record<NetworkId, string>>;
    if (Object.keys(missing).length > 0) {
      const updated = await updateMerchant(deps, DEMO_MERCHANT_NO, { wallets: missing });
      if (!updated.ok) throw new Error(`could not set the demo merchant's wallets: ${updated.message}`);
    }
  }
  if (!existsSync(files.merchantPrivateKeyFile) || !existsSync(files.merchantPublicKeyFile)) {
    const pair = generateRsaKeyPair();
    writeFileSync(files.merchantPrivateKeyFile, pair.privateKeyPem, { mode: 0o600 });
    chmodSync(files.merchantPrivateKeyFile, 0o600);
    writeFileSync(files.merchantPublicKeyFile, pair.publicKeyPem);
  }
  const state = existsSync(statePath) ? (JSON.parse(readFileSync(statePath, 'utf8')) as { app_id?: string }) : {};
  let app = state.app_id ? await deps.store.applications.get(state.app_id) : null;
  let key = app ? await deps.store.platformKeys.activeFor(app.appId) : null;
  const merchantPublicKey = readFileSync(files.merchantPublicKeyFile, 'utf8');
  if (!app || !key || app.merchantPublicKeyPem.trim() !== merchantPublicKey.trim()) {
    const created = await createApplication(deps, { merchantNo: DEMO_MERCHANT_NO, merchantPublicKey });
    if (!created.ok) throw new Error(`could not seed the demo application: ${created.message}`);
    app = created.value.application;
    key = created.value.platformKey;
    writeFileSync(statePath, `${JSON.stringify({ merchant_no: DEMO_MERCHANT_NO, app_id: app.appId }, null, 2)}\n`);
  }
  writeFileSync(files.platformPublicKeyFile, key.publicKeyPem);
  return { merchantNo: DEMO_MERCHANT_NO, appId: app.appId, serial: key.serial, ...files };
}
