// Helpers shared by the benchmark scripts (orders.mjs, notify.mjs, chain.mjs, settle.mjs):
// exiting with a message, progress notes, loading the built workspace packages and checking that
// the build is current, running and stopping child processes (and tracking them for cleanup), CPU
// pinning with taskset, /proc readers (RSS, process CPU, per-CPU busy/steal time), the monotonic
// clock, rounding, bounded-parallel loops, the orchestrator's run and its cleanup. The --profile
// summaries are in profile.mjs.
// Each script keeps its own state, options and output; only code that was the same in each
// (up to parameters) lives here.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

// --- output and loading -----------------------------------------------------------------------

export function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

/**
 * `note(message)`: a progress line on stderr, `<prefix><message>`, unless `note.quiet` is set
 * (--json).
 */
export function noter(prefix) {
  const note = (message) => {
    if (!note.quiet) process.stderr.write(`${prefix}${message}\n`);
  };
  note.quiet = false;
  return note;
}

export const BUILD_HINT = '  Build first: npx tsc -b packages/protocol packages/sdk packages/gateway   (or `npm run build` at the root)';

/** Fails unless every one of `modules` (paths relative to `dist`) is built. */
export function checkBuilt(dist, modules) {
  for (const rel of Object.values(modules)) {
    const file = join(dist, rel);
    if (!existsSync(file)) fail(`the gateway is not built (${file} is missing).\n${BUILD_HINT}`);
  }
}

/** The built gateway modules, by the names of `modules` (paths relative to `dist`). */
export async function loadDist(dist, modules) {
  checkBuilt(dist, modules);
  const out = {};
  for (const [name, rel] of Object.entries(modules)) out[name] = await import(pathToFileURL(join(dist, rel)).href);
  return out;
}

const GATEWAY_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * What makes the protocol's or the gateway's dist out of date, or null. With `tsc`, `tsc -b
 * --dry` decides when the workspace's TypeScript is there (it compares content hashes, so a
 * source file merely touched, e.g. by a git checkout, is not stale); otherwise (or without it)
 * the first source file newer than its compiled output.
 */
export function staleDist({ tsc = false } = {}) {
  const root = resolve(GATEWAY_DIR, '..', '..');
  const tscBin = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (tsc && existsSync(tscBin)) {
    const r = spawnSync(process.execPath, [tscBin, '-b', '--dry', 'packages/protocol', 'packages/gateway'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) {
      const m = /would build project '([^']+)'/.exec(r.stdout ?? '');
      return m ? `${relative(process.cwd(), dirname(m[1])) || '.'} (tsc -b --dry would rebuild it)` : null;
    }
  }
  for (const pkg of ['protocol', 'gateway']) {
    const pkgRoot = resolve(GATEWAY_DIR, '..', pkg);
    const walk = (d) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) {
          const r = walk(p);
          if (r) return r;
        } else if (e.name.endsWith('.ts') && !/\.(test|suite)\.ts$/.test(e.name) && !e.name.endsWith('.d.ts')) {
          const out = join(pkgRoot, 'dist', relative(join(pkgRoot, 'src'), p)).replace(/\.ts$/, '.js');
          if (!existsSync(out) || statSync(out).mtimeMs + 1000 < statSync(p).mtimeMs) return `${relative(process.cwd(), p)} is newer than its build output`;
        }
      }
      return null;
    };
    try {
      const r = walk(join(pkgRoot, 'src'));
      if (r) return r;
    } catch {
      /* no sources to compare */
    }
  }
  return null;
}

export async function loadProtocol() {
  try {
    return await import('@sparkpay/protocol');
  } catch (err) {
    fail(`cannot load @sparkpay/protocol from the workspace (${err.code ?? err.message}).\n  Run \`npm install\` and build it: npx tsc -b packages/protocol packages/sdk packages/gateway`);
  }
}

// --- child processes --------------------------------------------------------------------------

/** The live children of this process, for cleanup. */
export const children = new Set();

export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function hasTaskset() {
  return spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;
}

/** `taskset -c <cpu> <cmd…>` when pinning is available, else the command as is. */
export function pinned(cpu, pin, command, args) {
  return pin ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
}

/** A child by its `--internal-…` mode(s), else by its command. */
const internalMode = (command, args) => args.filter((x) => x.startsWith('--internal')).join(' ') || command;

/**
 * Runs `command args` to the end and resolves with its stdout; rejects, with the end of its
 * stderr (`tailChars`), when it exits otherwise than with 0 (SIGKILL after `timeoutMs`). `env` is
 * its whole environment (default: ours, as it is); the error names it by `describe(command, args)`
 * (default: its --internal-… mode).
 */
export function runChild(command, args, { env, timeoutMs = 600_000, tailChars = 3000, describe = internalMode } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = track(spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-2 * tailChars)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolveRun(out);
      else reject(new Error(`${describe(command, args)} exited with ${signal ?? code}: ${err.trim().slice(-tailChars)}`));
    });
  });
}

/**
 * Stops a child (`s`: { child, exited }, as the scripts keep them): `stopMessage` over its IPC
 * channel when given and connected, else SIGTERM; after `wait` ms, a note (`<what> did not stop
 * within N s<within>; sending SIGKILL`) and SIGKILL. The timer never holds this process open.
 */
export async function stopChild(s, what, wait, { note, stopMessage = null, within = '' }) {
  if (!s || s.exited) return;
  const exited = new Promise((r) => (s.exited ? r() : s.child.once('exit', r)));
  if (stopMessage && s.child.connected) s.child.send(stopMessage);
  else s.child.kill('SIGTERM');
  const timeout = new globalThis.AbortController();
  const late = sleep(wait, 'timeout', { signal: timeout.signal }).catch(() => null);
  const outcome = await Promise.race([exited, late]);
  timeout.abort();
  if (outcome === 'timeout') {
    note(`${what} did not stop within ${wait / 1000} s${within}; sending SIGKILL`);
    s.child.kill('SIGKILL');
    await exited;
  }
}

/** gateway.close(), holding the event loop open meanwhile (see notify.mjs). */
export async function closeGateway(gw) {
  const hold = setInterval(() => undefined, 1000);
  try {
    await gw.close();
  } finally {
    clearInterval(hold);
  }
}

/** `fn(i)` for every i in [from, to), at most `width` at a time. */
export async function parallel(from, to, width, fn) {
  let next = from;
  const lane = async () => {
    while (next < to) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, to - from) }, lane));
}

// --- /proc --------------------------------------------------------------------------------------

export function procStatus(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** The kernel's clock ticks per second. */
export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number(r.stdout?.trim()) || 100;
})();

/** utime+stime of a process in seconds, or NaN. */
export function procCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** CPU `n`'s busy (non-idle) and steal time in seconds, from /proc/stat; null if unreadable. */
export function cpuTimes(n) {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${n} `));
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return { busy: (user + nice + system + irq + softirq) / CLK_TCK, steal: (steal ?? 0) / CLK_TCK, idle: (idle + iowait) / CLK_TCK };
  } catch {
    return null;
  }
}

// --- numbers ------------------------------------------------------------------------------------

/** CLOCK_MONOTONIC in µs: the same clock in every process on the machine (and in V8's profiles). */
export function hrUs() {
  return Number(process.hrtime.bigint() / 1000n);
}

export function round(x, digits) {
  if (!Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// --- the orchestrator's run ---------------------------------------------------------------------

/**
 * Runs the orchestrator's `main()`, then `cleanup(finalWait)`; on SIGINT/SIGTERM/SIGHUP it says
 * `bench: <signal>: <stopping><the temporary directory>…`, cleans up and exits 130; on an error,
 * it prints the message, sets exit code 1 and cleans up. At exit, as a last resort
 * (synchronously), it kills the tracked children, runs `lastResort()` and removes `tmpDir()`.
 * Without a `cleanup`, the cleanup is: `stop(wait)` (the main child, killed after `wait` ms),
 * SIGKILL to every tracked child still alive, `release()` (e.g. a database to drop, anvil), and
 * the removal of `tmpDir()`.
 */
export async function runOrchestrator({ main, cleanup, stop, release = async () => undefined, finalWait, stopping, tmpDir, onSignal = () => undefined, lastResort = () => undefined }) {
  cleanup ??= async (wait) => {
    try {
      await stop(wait);
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await release();
      const dir = tmpDir();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  };
  let signalled = null;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (signalled) return;
      signalled = sig;
      onSignal();
      process.stderr.write(`bench: ${sig}: ${stopping}${tmpDir() ?? 'temporary files'}…\n`);
      cleanup(3000).finally(() => process.exit(130));
    });
  }
  process.on('exit', () => {
    // Last resort (synchronous): never leave a child or a data directory behind.
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    lastResort();
    const dir = tmpDir();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  try {
    await main();
    await cleanup(finalWait);
  } catch (err) {
    if (!signalled) {
      process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
      await cleanup(3000);
    }
  }
}

/** The q-quantile of an ascending array (NaN when empty). */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** A child's environment: ours without NODE_OPTIONS and every SPARKPAY_* setting, plus `extra`. */
export function childEnv(extra = {}) {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const k of Object.keys(env)) if (k.startsWith('SPARKPAY_')) delete env[k];
  return { ...env, ...extra };
}

/**
 * A gateway child of `script` (`node <nodeFlags> <script> --internal-gateway <arg>`, CPU 0) with an
 * IPC channel; its stderr goes to `logFile`. `wait(type)` resolves with the next message of that type (an `error` message
 * rejects); `request(msg, type)` sends and waits. Messages for which `unbuffered` is true are only
 * given to `listeners` (e.g. a stream of events nobody waits for).
 */
export function spawnIpcGateway({ script, pin, arg, env, logFile, note, nodeFlags = [], unbuffered = () => false, requestTimeoutMs = 600_000 }) {
  const fd = openSync(logFile, 'a');
  const [cmd, cmdArgs] = pinned(0, pin, process.execPath, [...nodeFlags, script, '--internal-gateway', arg]);
  const child = track(spawn(cmd, cmdArgs, { env: childEnv(env), stdio: ['ignore', 'ignore', fd, 'ipc'] }));
  closeSync(fd);
  const state = { child, exited: null, buffer: [], waiters: [], pid: null, listeners: [] };
  const tail = () => {
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().slice(-3000) : '';
    return text ? `:\n${text}` : '';
  };
  child.on('message', (msg) => {
    if (msg?.type === 'error') note(`gateway child: ${msg.message}`);
    for (const l of state.listeners) l(msg);
    const i = state.waiters.findIndex((w) => w.match(msg));
    if (i >= 0) state.waiters.splice(i, 1)[0].resolve(msg);
    else if (!unbuffered(msg)) state.buffer.push(msg);
  });
  child.once('exit', (code, signal) => {
    state.exited = { code, signal };
    for (const w of state.waiters.splice(0)) w.reject(new Error(`the gateway child exited (${signal ?? code})${tail()}`));
  });
  state.wait = (type, timeoutMs) => {
    const i = state.buffer.findIndex((m) => m?.type === type || m?.type === 'error');
    if (i >= 0) {
      const m = state.buffer.splice(i, 1)[0];
      return m.type === 'error' ? Promise.reject(new Error(`gateway child: ${m.message}`)) : Promise.resolve(m);
    }
    if (state.exited) return Promise.reject(new Error(`the gateway child exited (${state.exited.signal ?? state.exited.code})${tail()}`));
    return new Promise((resolveWait, reject) => {
      const w = {
        match: (m) => m?.type === type || m?.type === 'error',
        resolve: (m) => {
          clearTimeout(timer);
          if (m.type === 'error') reject(new Error(`gateway child: ${m.message}`));
          else resolveWait(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        state.waiters.splice(state.waiters.indexOf(w), 1);
        reject(new Error(`the gateway child sent no ${type} within ${timeoutMs / 1000} s${tail()}`));
      }, timeoutMs);
      state.waiters.push(w);
    });
  };
  state.request = (msg, type, timeoutMs = requestTimeoutMs) => {
    child.send(msg);
    return state.wait(type, timeoutMs);
  };
  return state;
}

/** Asks a spawnIpcGateway child to stop (SIGKILL after `wait` ms); the timer never holds this process open. */
export async function stopIpcGateway(s, wait, note) {
  await stopChild(s, 'the gateway', wait, { note, stopMessage: { cmd: 'stop' } });
}

/**
 * Plain JSON-RPC to a node (anvil): `rpc(method, params)` and `rpcBatch([[method, params], …], size)`
 * (JSON-RPC batches of `size` calls, results in call order); both throw on the first error.
 */
export function jsonRpc(rpcUrl) {
  let rpcId = 0;
  const rpcCall = async (body) => {
    const res = await globalThis.fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`anvil: HTTP ${res.status}`);
    return res.json();
  };
  const rpc = async (method, params = []) => {
    const r = await rpcCall({ jsonrpc: '2.0', id: ++rpcId, method, params });
    if (r.error) throw new Error(`anvil ${method}: ${r.error.message}`);
    return r.result;
  };
  const rpcBatch = async (calls, size = 500) => {
    const out = [];
    for (let i = 0; i < calls.length; i += size) {
      const rs = await rpcCall(calls.slice(i, i + size).map(([method, params]) => ({ jsonrpc: '2.0', id: ++rpcId, method, params })));
      for (const r of rs) if (r.error) throw new Error(`anvil: ${r.error.message}`);
      out.push(...rs.sort((x, y) => x.id - y.id).map((r) => r.result));
    }
    return out;
  };
  return { rpc, rpcBatch };
}
