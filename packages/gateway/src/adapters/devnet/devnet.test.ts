import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDeployment, mainnetDeployment } from '../../domain/catalogue.js';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startAnvil } from './anvil.js';
import { claimDevDataDir, DEVNET_CHAIN_IDS, DEVNET_CONFIRMATIONS, devnetAccount, devnetDeployment, DevnetNotRunningError, readDevnetFile, reapOrphanedAnvils, writeDevnetFile, type DevnetChain, type DevnetInfo } from './devnet.js';
import { devAccount } from './test-tokens.js';

const A = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as const;

describe('devnet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sparkpay-devnet-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('derives the same accounts as anvil (devAccount)', () => {
    for (const i of [0, 1, 2, 3]) expect(devnetAccount(i).address).toBe(devAccount(i).address);
    // anvil's well-known account #0.
    expect(devnetAccount(0).privateKey).toBe('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
  });

  it('maps the deployment onto the local chains: chain ids, RPC URL, contracts, tokens; fees and left-out networks stay', () => {
    const base = mainnetDeployment();
    const withoutIris = { networks: base.networks.filter((n) => n.id !== '5').map((n) => (n.id === '2' ? { ...n, feeRate: '0.004' } : n)) };
    const chains = (['2', '3', '4', '5'] as const).map(
      (network, i): DevnetChain => ({
        network,
        chainId: DEVNET_CHAIN_IDS[network],
        rpcUrl: `http://127.0.0.1:${9000 + i}`,
        tokens: network === '5' ? { IRIS: A(1) } : network === '2' ? { USDT: A(1), USDC: A(2), HSK: A(3) } : { USDT: A(1), USDC: A(2) },
        factory: A(100 + i),
        forwarder: A(200 + i),
        node: null as never,
      }),
    );
    const d = devnetDeployment(withoutIris, { chains, feeAddress: A(999) });
    expect(checkDeployment(d)).toEqual([]);
    expect(d.networks.map((n) => n.id)).toEqual(['2', '3', '4']);
    const bsc = d.networks.find((n) => n.id === '3')!;
    expect(bsc).toMatchObject({ chainId: 3133703, chain: { rpcUrls: ['http://127.0.0.1:9001'], confirmations: DEVNET_CONFIRMATIONS, factory: A(101), forwarder: A(201), feeAddress: A(999) } });
    expect(bsc.currencies).toEqual([
      { code: 'BNB', contract: null, decimals: 18, precision: 8 },
      { code: 'USDT', contract: A(1), decimals: 18, precision: 6 },
      { code: 'USDC', contract: A(2), decimals: 18, precision: 6 },
    ]);
    expect(d.networks[0]!.feeRate).toBe('0.004');
    expect(new Set(Object.values(DEVNET_CHAIN_IDS)).size).toBe(4);
    for (const id of Object.values(DEVNET_CHAIN_IDS)) expect([1, 56, 137, 6688, 31337]).not.toContain(id);
  });

  it('writes the devnet file 0600 and reads it back only while its process runs', () => {
    const path = join(dir, 'devnet.json');
    expect(() => readDevnetFile(path)).toThrow(DevnetNotRunningError);
    const info: DevnetInfo = { networks: {}, funded_accounts: [], merchant_wallet: A(1), pid: process.pid };
    writeDevnetFile(path, info);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readDevnetFile(path)).toEqual(info);
    writeDevnetFile(path, { ...info, pid: 2 ** 22 + 12345 });
    expect(() => readDevnetFile(path)).toThrow(/is not running/);
    writeFileSync(path, 'nonsense');
    expect(() => readDevnetFile(path)).toThrow(/not a devnet file/);
  });

  it('stops the anvils of a dev process that died without stopping them, and nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sparkpay-reap-'));
    const path = join(dir, 'devnet.json');
    const anvil = await startAnvil({ chainId: 3133799 });
    const bystander = spawn('sleep', ['30'], { stdio: 'ignore' });
    const deadOwner = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      const file = (owner: number) => JSON.stringify({ networks: {}, funded_accounts: [], merchant_wallet: '0x', pid: owner, anvil_pids: [anvil.process.pid, bystander.pid] });
      // The owner still runs: nothing is touched.
      writeFileSync(path, file(process.pid));
      expect(await reapOrphanedAnvils(path)).toEqual([]);
      expect(alive(anvil.process.pid!)).toBe(true);
      // The owner is gone: its anvil is stopped, the process that is not an anvil is left alone, the file goes.
      writeFileSync(path, file(deadOwner));
      expect(await reapOrphanedAnvils(path)).toEqual([anvil.process.pid]);
      expect(alive(anvil.process.pid!)).toBe(false);
      expect(alive(bystander.pid!)).toBe(true);
      expect(existsSync(path)).toBe(false);
      expect(await reapOrphanedAnvils(path)).toEqual([]);
    } finally {
      bystander.kill('SIGKILL');
      await anvil.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('claims a data directory for one dev: refused while a live process holds it, taken over from a dead one, released only by its holder', () => {
    const root = mkdtempSync(join(tmpdir(), 'sparkpay-claim-'));
    const data = join(root, 'data');
    const pidFile = join(data, 'dev.pid');
    // A process whose command line names the CLI, as `node …/main.js dev` does (however node is called).
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'sparkpay', 'dev'], { stdio: 'ignore' });
    const deadPid = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
    // A live process that is no sparkpay (the pid of a dead holder reused): its claim is stale.
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      // A new directory is made the owner's only.
      const release = claimDevDataDir(data);
      expect(statSync(data).mode & 0o777).toBe(0o700);
      expect(statSync(pidFile).mode & 0o777).toBe(0o600);
      release();
      expect(existsSync(pidFile)).toBe(false);
      // Held by a running process: refused, naming it; its claim stays.
      writeFileSync(pidFile, `${holder.pid}\n`);
      expect(() => claimDevDataDir(data)).toThrow(new RegExp(`another "sparkpay dev" \\(pid ${holder.pid}\\) is running on the data directory`));
      expect(Number(readFileSync(pidFile, 'utf8'))).toBe(holder.pid);
      // A live process that is not a sparkpay dev: taken over.
      writeFileSync(pidFile, `${stranger.pid}\n`);
      claimDevDataDir(data)();
      // Its process gone (killed outright): taken over.
      writeFileSync(pidFile, `${deadPid}\n`);
      const mine = claimDevDataDir(data);
      expect(Number(readFileSync(pidFile, 'utf8'))).toBe(process.pid);
      // Claimed by another since: this process's release leaves that claim alone.
      writeFileSync(pidFile, `${holder.pid}\n`);
      mine();
      expect(existsSync(pidFile)).toBe(true);
    } finally {
      holder.kill('SIGKILL');
      stranger.kill('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    }
  });
});
