// `sparkpay network deploy-factory <network>`: how an operator deploys a network's forwarder
// factory (PROTOCOL §15: "deployed once by the operator") from the configured relayer account,
// on anvil. What it prints is what the configuration needs, and the network then passes the
// start's check; each refusal is one line naming what to fix, and nothing is deployed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicClient, http, toHex, type Address } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkNetwork } from '../src/adapters/chain/evm/deposit-addresses.js';
import { readForwarderCode } from '../src/adapters/chain/evm/forwarder-factory.js';
import { deployFactory } from '../src/adapters/chain/evm/factory-deploy.js';
import { mainnetDeployment, type NetworkDeployment } from '../src/domain/catalogue.js';
import { startRpcProxy } from './rpc-proxy.js';
import { loadConfig } from '../src/cli/config.js';
import { inProcess } from './cli-run.js';
import { rpc } from './chain-setup.js';
import { startTestChain, type TestChain } from './evm-chain.js';

describe('sparkpay network deploy-factory', () => {
  let chain: TestChain;
  let dir: string;
  const relayerKey = generatePrivateKey();
  const relayer = privateKeyToAccount(relayerKey).address;

  beforeAll(async () => {
    chain = await startTestChain();
    dir = mkdtempSync(join(tmpdir(), 'sparkpay-deploy-'));
  }, 60_000);
  afterAll(async () => {
    await chain?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the command with a configuration file whose network 4 is `network4`. */
  async function deploy(network4: Record<string, unknown>, ...extra: string[]) {
    const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ networks: { '4': network4 } }));
    const env = { SPARKPAY_CONFIG: file, SPARKPAY_DATA_DIR: join(dir, 'data') };
    return { ...(await inProcess(['network', 'deploy-factory', '4', ...extra], env, dir)), env };
  }
  const onChain = (over: Record<string, unknown> = {}) => ({ chain_id: chain.node.chainId, rpc_urls: [chain.node.rpcUrl], relayer_key: relayerKey, ...over });

  it('refuses, deploying nothing, without a relayer key, on another chain, or with an unfunded relayer', async () => {
    const noKey = await deploy({ chain_id: chain.node.chainId, rpc_urls: [chain.node.rpcUrl] });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/^sparkpay: network 4 has no relayer key \(networks\.4\.relayer_key/);
    const otherChain = await deploy(onChain({ chain_id: 137 }));
    expect(otherChain.code).toBe(1);
    expect(otherChain.stderr).toContain(`serves chain id ${chain.node.chainId}, not the configured chain_id 137: nothing deployed`);
    const unfunded = await deploy(onChain());
    expect(unfunded.code).toBe(1);
    expect(unfunded.stderr).toContain(`the relayer account ${relayer} holds nothing on chain ${chain.node.chainId}: fund it first`);
    const usage = await inProcess(['network', 'deploy-factory', '7'], {}, dir);
    expect(usage.code).toBe(2);
    expect(await chain.relayer.public.getTransactionCount({ address: relayer })).toBe(0);
  });

  it('deploys from the relayer account and prints the factory and forwarder that the start then finds matching', async () => {
    await rpc(chain, 'anvil_setBalance', [relayer, toHex(10n ** 18n)]);
    // As the README's production steps have it: the fee address is configured before the factory exists.
    const r = await deploy(onChain({ fee_address: '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65' }), '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/factory deployment sent on network 4 \(0x[0-9a-f]{64}\); waiting for it to be mined/);
    const out = JSON.parse(r.stdout) as Record<string, string | number>;
    expect(out).toMatchObject({ network: '4', chain_id: chain.node.chainId, relayer, factory: expect.stringMatching(/^0x[0-9a-fA-F]{40}$/), forwarder: expect.stringMatching(/^0x[0-9a-fA-F]{40}$/) });
    const client = createPublicClient({ transport: http(chain.node.rpcUrl), cacheTime: 0 });
    expect(await readForwarderCode(client, out.factory as Address)).toMatchObject({ implementation: out.forwarder });

    // Configured as printed (with a fee address), the network passes the start's check.
    const configured = onChain({ factory: out.factory, forwarder: out.forwarder, fee_address: '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65', currencies: { USDT: { contract: await chain.deployToken({ name: 'Tether USD', symbol: 'USDT', decimals: 6 }) }, USDC: { contract: await chain.deployToken({ name: 'USD Coin', symbol: 'USDC', decimals: 6 }) } } });
    const file = join(dir, 'configured.json');
    writeFileSync(file, JSON.stringify({ networks: { '4': configured } }));
    const config = loadConfig('production', { SPARKPAY_CONFIG: file, SPARKPAY_DATA_DIR: join(dir, 'data') });
    const network = config.deployment.networks.find((n) => n.id === '4')!;
    expect(await checkNetwork([client], network)).toEqual({ state: 'OK' });

    // Once configured, a second deployment is refused.
    const again = await deploy(configured);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`networks.4.factory is already ${out.factory}`);
  });

  it('reports a deployment whose forwarder cannot be read back with the factory address, never quoting the endpoint URL', async () => {
    const proxy = await startRpcProxy(chain.node.rpcUrl);
    try {
      const key = generatePrivateKey();
      await rpc(chain, 'anvil_setBalance', [privateKeyToAccount(key).address, toHex(10n ** 18n)]);
      const base = mainnetDeployment().networks.find((n) => n.id === '4')!;
      const network: NetworkDeployment = { ...base, chainId: chain.node.chainId, chain: { ...base.chain, rpcUrls: [`${proxy.url}/v3/SECRETAPIKEY0123456789abcdef`] } };
      // The endpoint answers everything but eth_call (a rate limit, a lagging backend).
      proxy.fault('http500', ['eth_call']);
      const r = await deployFactory(network, key, { pollingIntervalMs: 100, timeoutMs: 30_000 });
      expect(r).toMatchObject({ ok: false, message: expect.stringMatching(/^the factory was deployed at 0x[0-9a-fA-F]{40} \(transaction 0x[0-9a-f]{64}\), but reading its forwarder back failed/) });
      expect(JSON.stringify(r)).not.toContain('SECRETAPIKEY');
    } finally {
      proxy.fault('none');
      await proxy.close();
    }
  });
});
