// The real gateway as a child process (`sparkpay start` from the built dist), for tests whose
// subject is the process itself: several of them on one database, or one killed mid-work.
// Needs the built package (`npx tsc -b packages/protocol packages/sdk packages/gateway`).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitUntil } from './wait.js';

/** The repository root: the children's working directory. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The CLI entry point the children run. */
export const GATEWAY_MAIN = join(ROOT, 'packages/gateway/dist/cli/main.js');

export interface GatewayProcess {
  name: string;
  proc: ChildProcess;
  baseUrl: string;
  /** The last 200 chunks of stdout and stderr, for failure messages. */
  output: string[];
}

/** Fails early with the command to run, rather than with a child that exits at once. */
export function assertGatewayBuilt(): void {
  if (!existsSync(GATEWAY_MAIN)) throw new Error(`${GATEWAY_MAIN} does not exist: build the gateway first (npx tsc -b packages/protocol packages/sdk packages/gateway)`);
}

/**
 * The environment of a child: ours minus every SPARKPAY_* setting (a developer's or CI's own
 * settings must not leak into the child's configuration) and NODE_OPTIONS (meant for the test
 * runner, not for the child), plus the given ones.
 */
export function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SPARKPAY_') && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, ...vars };
}

/** A port nothing listens on (taken, then released): for a child to bind, or for a connection to be refused. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface StartGatewayOptions {
  name: string;
  port: number;
  /** SPARKPAY_* settings of the child (data dir, database, master key, ...); port, host and log level are set here. */
  env: Record<string, string>;
}

/** `sparkpay start` (production mode) on 127.0.0.1:`port`. Returns at once: `waitHealthy` waits until it serves. */
export function startGatewayProcess({ name, port, env }: StartGatewayOptions): GatewayProcess {
  const vars = { ...env, SPARKPAY_PORT: String(port), SPARKPAY_HOST: '127.0.0.1', SPARKPAY_LOG_LEVEL: 'warn' };
  const proc = spawn(process.execPath, [GATEWAY_MAIN, 'start'], { cwd: ROOT, env: childEnv(vars), stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  // A ring buffer: a long-running child's warnings must not grow the test's memory without bound.
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return { name, proc, baseUrl: `http://127.0.0.1:${port}`, output };
}

export const isAlive = (c: GatewayProcess): boolean => c.proc.exitCode === null && c.proc.signalCode === null;

/** Resolves once /healthz answers 200; fails at once, with the child's output, if it exits first. */
export async function waitHealthy(c: GatewayProcess, timeoutMs: number): Promise<void> {
  await waitUntil(
    `gateway ${c.name} to be healthy`,
    async () => {
      if (!isAlive(c)) throw new Error(`gateway ${c.name} exited (${c.proc.exitCode ?? c.proc.signalCode}) before it was healthy:\n${c.output.join('')}`);
      try {
        return (await fetch(`${c.baseUrl}/healthz`)).status === 200;
      } catch {
        return false; // not listening yet
      }
    },
    timeoutMs,
    () => c.output.join(''),
  );
}

/** Sends `signal` and resolves when the process is gone (SIGKILL after 5 s if it lingers, so afterAll cannot hang). */
export async function stopProcess(c: GatewayProcess, signal: NodeJS.Signals): Promise<void> {
  if (!isAlive(c)) return;
  const exited = new Promise<void>((resolve) => c.proc.once('exit', () => resolve()));
  c.proc.kill(signal);
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
