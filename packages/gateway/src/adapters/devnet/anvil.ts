// A local EVM chain: anvil (Foundry) as a child process, for the devnet and the tests.
// The binary is spawned directly (never through npx or a shell: killing a wrapper would leave
// anvil running on its port). Every anvil started here dies with this process: on exit, on an
// uncaught exception, and on SIGINT/SIGTERM/SIGHUP when nobody else handles them. Only a
// SIGKILL of this process can orphan one (nothing runs then; anvil has no parent-death option).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';

/** anvil's own default mnemonic: its accounts are the well-known, publicly funded test keys. */
export const ANVIL_DEFAULT_MNEMONIC = 'test test test test test test test test test test test junk';

export interface AnvilOptions {
  /** Default 31337 (anvil's). */
  readonly chainId?: number;
  /** Seconds between blocks; absent: automine (one block per transaction, at once). */
  readonly blockTime?: number;
  readonly mnemonic?: string;
  /** Funded accounts derived from the mnemonic (anvil's default: 10). */
  readonly accounts?: number;
  /** Interface to listen on; 0.0.0.0 to let wallets on other machines in. Default 127.0.0.1. */
  readonly host?: string;
  /** A fixed port (no retry: the caller chose it); absent: a free one, retried on EADDRINUSE. */
  readonly port?: number;
  /** Picks a candidate port; the default asks the kernel for a free one. Injected by tests. */
  readonly pickPort?: (host: string) => Promise<number>;
  /** The anvil executable; default: the one in the @foundry-rs/anvil-<os>-<arch> package. */
  readonly binary?: string;
  /** How long to wait for the JSON-RPC to answer (ms). */
  readonly startTimeoutMs?: number;
}

export interface AnvilNode {
  readonly rpcUrl: string;
  readonly chainId: number;
  readonly port: number;
  /** Unreferenced: it does not keep this process alive (a server or stop() must). */
  readonly process: ChildProcess;
  /** Kills anvil and resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

const PORT_ATTEMPTS = 8;

/** Starts anvil and resolves once its JSON-RPC answers with the expected chain id. */
export async function startAnvil(options: AnvilOptions = {}): Promise<AnvilNode> {
  const host = options.host ?? '127.0.0.1';
  const attempts = options.port === undefined ? PORT_ATTEMPTS : 1;
  for (let attempt = 1; ; attempt += 1) {
    const port = options.port ?? (await (options.pickPort ?? freePort)(host));
    try {
      return await startOn(host, port, options);
    } catch (err) {
      // Another process (often a parallel test's anvil) took the port between our probe and anvil's bind.
      if (!(err instanceof PortInUseError) || attempt >= attempts) throw err;
    }
  }
}

/** The anvil binary shipped in the npm package for this platform. */
export function anvilBinary(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  let dir: string;
  try {
    dir = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`anvil not found: install ${pkg} (an optional dependency of @sparkpay/gateway) or pass its path`);
  }
  const binary = join(dir, 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil');
  if (!existsSync(binary)) throw new Error(`anvil not found at ${binary}`);
  return binary;
}

class PortInUseError extends Error {}

async function startOn(host: string, port: number, options: AnvilOptions): Promise<AnvilNode> {
  const chainId = options.chainId ?? 31337;
  const args = ['--silent', '--host', host, '--port', String(port), '--chain-id', String(chainId), '--mnemonic', options.mnemonic ?? ANVIL_DEFAULT_MNEMONIC];
  if (options.blockTime !== undefined) args.push('--block-time', String(options.blockTime));
  if (options.accounts !== undefined) args.push('--accounts', String(options.accounts));
  const child = spawn(options.binary ?? anvilBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  let spawnError: Error | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    // A binary that cannot be run (ENOENT, EACCES) emits 'error' and possibly no 'exit'.
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
  });
  // Unreferenced: a forgotten node never keeps this process alive (the exit hook then kills it).
  child.unref();
  (child.stderr as { unref?: () => void } | null)?.unref?.();
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.ref(); // keep the event loop alive until anvil is gone
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const rpcUrl = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  try {
    const failure = (): string | null => {
      if (spawnError) return `anvil could not be started: ${spawnError.message}`;
      if (child.exitCode === null && child.signalCode === null) return null;
      return `anvil exited (${child.exitCode ?? child.signalCode}) before answering: ${stderr.trim() || 'no output'}`;
    };
    await waitForRpc(rpcUrl, chainId, failure, options.startTimeoutMs ?? 20_000);
  } catch (err) {
    await stop();
    // 'exit' may come before the last of stderr: read it to the end before judging the cause.
    if (child.stderr && !child.stderr.closed) await new Promise((resolve) => child.stderr?.once('close', resolve));
    if (/address already in use/i.test(stderr)) throw new PortInUseError(`port ${port} in use`);
    throw err;
  }
  return { rpcUrl, chainId, port, process: child, stop };
}

/** Polls eth_chainId until it answers `chainId`; `failure` says when anvil can no longer answer. */
async function waitForRpc(rpcUrl: string, chainId: number, failure: () => string | null, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const failed = failure();
    if (failed !== null) throw new Error(failed);
    try {
      const res = await fetch(rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
        signal: AbortSignal.timeout(1_000),
      });
      const body = (await res.json()) as { result?: string };
      // Checking the chain id also guards against answering some other server that holds the port.
      if (body.result !== undefined && Number(body.result) === chainId) return;
      last = `answered ${JSON.stringify(body)}`;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > until) throw new Error(`anvil at ${rpcUrl} did not answer within ${timeoutMs} ms (${last})`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A port the kernel just handed out and we released: free unless someone races us to it. */
async function freePort(host: string): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, host, resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const live = new Set<ChildProcess>();
let hooked = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.on('error', () => live.delete(child));
  if (hooked) return;
  hooked = true;
  // 'exit' runs for process.exit(), the end of the event loop and uncaught exceptions; only
  // synchronous work is possible there, and kill() is synchronous.
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      // Someone else handles the signal (the CLI's graceful shutdown): let it stop the nodes or
      // exit, which runs the exit hook. Alone, we would swallow the signal: kill, then re-raise
      // it with its default action so the process still dies of it.
      if (process.listenerCount(signal) > 1) return;
      killAll();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
}
