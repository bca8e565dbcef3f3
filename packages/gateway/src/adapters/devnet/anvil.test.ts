import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { anvilBinary, startAnvil, type AnvilNode } from './anvil.js';
import { devAccount } from './test-tokens.js';

const started: AnvilNode[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

async function rpc(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  return ((await res.json()) as { result: unknown }).result;
}

/** Dead or a zombie (killed, not yet reaped by whoever inherited it): either way no longer serving. */
function isAlive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (existsSync('/proc/self/stat')) {
    if (!existsSync(stat)) return false;
    return readFileSync(stat, 'utf8').split(') ')[1]?.[0] !== 'Z';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function eventually(what: string, probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A port held by something that is not anvil (and hangs up on whoever connects). */
async function listen(port = 0): Promise<Server> {
  const srv = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(port, '127.0.0.1', resolve));
  return srv;
}

describe('startAnvil', () => {
  it('answers JSON-RPC with the requested chain id and automines by default (no block without a transaction)', async () => {
    const node = await startAnvil({ chainId: 4242 });
    started.push(node);
    expect(node.rpcUrl).toBe(`http://127.0.0.1:${node.port}`);
    expect(node.chainId).toBe(4242);
    expect(Number(await rpc(node.rpcUrl, 'eth_chainId'))).toBe(4242);
    await new Promise((r) => setTimeout(r, 1_200));
    expect(Number(await rpc(node.rpcUrl, 'eth_blockNumber'))).toBe(0);
    const accounts = (await rpc(node.rpcUrl, 'eth_accounts')) as string[];
    // anvil's default mnemonic: its first account is the well-known one.
    expect(accounts[0]?.toLowerCase()).toBe('0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266');
  });

  it('mines on its own with a block time, and derives accounts from the given mnemonic', async () => {
    const mnemonic = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
    const node = await startAnvil({ blockTime: 1, accounts: 2, mnemonic });
    started.push(node);
    const until = Date.now() + 5_000;
    let height = 0;
    while (height < 2 && Date.now() < until) {
      height = Number(await rpc(node.rpcUrl, 'eth_blockNumber'));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(height).toBeGreaterThanOrEqual(2);
    const accounts = (await rpc(node.rpcUrl, 'eth_accounts')) as string[];
    expect(accounts).toEqual([devAccount(0, mnemonic).address.toLowerCase(), devAccount(1, mnemonic).address.toLowerCase()]);
  });

  it('stop() kills anvil and resolves after it exited; a second stop() is a no-op', async () => {
    const node = await startAnvil();
    const pid = node.process.pid ?? 0;
    expect(isAlive(pid)).toBe(true);
    await node.stop();
    expect(node.process.exitCode !== null || node.process.signalCode !== null).toBe(true);
    await eventually('anvil gone', () => !isAlive(pid));
    await expect(rpc(node.rpcUrl, 'eth_chainId')).rejects.toThrow();
    await node.stop();
  });

  it('retries on another port when the one it picked is taken before anvil binds it', async () => {
    const busy = await listen();
    const busyPort = (busy.address() as AddressInfo).port;
    const picked: number[] = [];
    const free = async () => {
      const srv = await listen();
      const { port } = srv.address() as AddressInfo;
      await new Promise((r) => srv.close(r));
      return port;
    };
    try {
      const pickPort = async (): Promise<number> => {
        const port = picked.length === 0 ? busyPort : await free();
        picked.push(port);
        return port;
      };
      const node = await startAnvil({ pickPort });
      started.push(node);
      expect(picked).toHaveLength(2);
      expect(node.port).toBe(picked[1]);
      expect(Number(await rpc(node.rpcUrl, 'eth_chainId'))).toBe(31337);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it('fails, without retrying, when a fixed port is taken', async () => {
    const busy = await listen();
    try {
      await expect(startAnvil({ port: (busy.address() as AddressInfo).port })).rejects.toThrow(/in use/);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it('fails clearly when the binary cannot be run', async () => {
    await expect(startAnvil({ binary: '/nonexistent/anvil' })).rejects.toThrow(/could not be started.*ENOENT/);
  });
});

// The orphan guarantee needs a real parent that dies: a Node child runs the module (transpiled
// on the fly: it imports only node: built-ins), starts anvil, and ends in one of four ways.
describe('anvil never outlives its parent process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sparkpay-anvil-'));
  const source = readFileSync(fileURLToPath(new URL('./anvil.ts', import.meta.url)), 'utf8');
  writeFileSync(join(dir, 'anvil.mjs'), ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
  writeFileSync(
    join(dir, 'parent.mjs'),
    `import { startAnvil } from './anvil.mjs';
const [mode, binary] = process.argv.slice(2);
const node = await startAnvil({ binary });
process.stdout.write(JSON.stringify({ pid: node.process.pid }) + '\\n');
if (mode === 'exit') process.exit(0);
if (mode === 'throw') setTimeout(() => { throw new Error('boom'); }, 10);
if (mode === 'signal') setInterval(() => {}, 1000);
`,
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function runParent(mode: string): Promise<{ pid: number; code: number | null; signal: string | null }> {
    const child = spawn(process.execPath, [join(dir, 'parent.mjs'), mode, anvilBinary()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let pid = 0;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const line = out.split('\n')[0];
      if (pid === 0 && out.includes('\n') && line) {
        pid = (JSON.parse(line) as { pid: number }).pid;
        if (mode === 'signal') child.kill('SIGTERM');
      }
    });
    child.stderr.resume();
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    return { pid, code, signal };
  }

  it.each(['exit', 'drain', 'throw', 'signal'])('kills anvil when the parent ends by %s', async (mode) => {
    const { pid, code, signal } = await runParent(mode);
    expect(pid).toBeGreaterThan(0);
    await eventually(`anvil ${pid} gone`, () => !isAlive(pid));
    if (mode === 'signal') expect(signal).toBe('SIGTERM'); // re-raised: the parent still dies of it
    if (mode === 'throw') expect(code).toBe(1);
    if (mode === 'exit' || mode === 'drain') expect(code).toBe(0);
  });
});
