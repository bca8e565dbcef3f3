// Running `sparkpay <args>` in a test: in this process through runCli (fast; never `start` or
// `dev`, which keep running), or the built executable in a child process.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { runCli } from '../src/cli/commands.js';

const MAIN = resolve(import.meta.dirname, '../dist/cli/main.js');

export type Env = Record<string, string | undefined>;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The exception that reached main.ts's catch-all (in-process runs only). */
  thrown: unknown;
}

/** The variables that configure the gateway; the test run's own (SPARKPAY_TEST_*, SPARKPAY_FUZZ_*) stay. */
export const CONFIG_VAR = /^SPARKPAY_(?!TEST_|FUZZ_)/;

/**
 * `sparkpay <args>` in this process: runCli with exactly `env` as the gateway's variables, `cwd`
 * as the working directory, stdout and stderr captured, and main.ts's handling of a rejection
 * (`sparkpay: <message>`, exit 1) verbatim. Never `start` or `dev` (they keep running).
 */
export async function inProcess(args: string[], env: Env, cwd: string): Promise<CliResult> {
  if (args[0] === 'start' || args[0] === 'dev') throw new Error('start/dev run in child processes only');
  const savedEnv = { ...process.env };
  for (const k of Object.keys(process.env)) if (CONFIG_VAR.test(k)) delete process.env[k];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) process.env[k] = v;
  const savedCwd = process.cwd();
  process.chdir(cwd);
  const out: string[] = [];
  const err: string[] = [];
  const capture = (into: string[]) => ((chunk: string | Uint8Array) => {
    into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  process.stdout.write = capture(out);
  process.stderr.write = capture(err);
  let code: number;
  let thrown: unknown = null;
  try {
    const r = await runCli(args);
    if (r === null) throw new Error('a server started in-process');
    code = r;
  } catch (e) {
    // main.ts
    thrown = e;
    err.push(`sparkpay: ${e instanceof Error ? e.message : String(e)}\n`);
    code = 1;
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
    process.chdir(savedCwd);
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
  }
  return { code, stdout: out.join(''), stderr: err.join(''), thrown };
}

/** The built executable in a child process (what the operator runs). */
export function childProcess(args: string[], env: Env, cwd: string): Promise<CliResult> {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!CONFIG_VAR.test(k)) base[k] = v;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) base[k] = v;
  return new Promise((resolveRun) => {
    execFile(process.execPath, [MAIN, ...args], { env: base, cwd, timeout: 20_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : -1) : 0;
      resolveRun({ code, stdout: String(stdout), stderr: String(stderr), thrown: null });
    });
  });
}

