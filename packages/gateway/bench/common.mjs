// Helpers shared by the benchmark scripts (orders.mjs, notify.mjs, chain.mjs): exiting with a
// message, loading the built workspace packages, tracking child processes, CPU pinning with
// taskset, /proc readers (RSS, process CPU, per-CPU busy/steal time), the monotonic clock,
// rounding, bounded-parallel loops and the V8 CPU-profile frame naming.
// Each script keeps its own state, options and output; only code that was the same in each
// (up to parameters) lives here.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

// --- output and loading -----------------------------------------------------------------------

export function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
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

// --- CPU profiles -------------------------------------------------------------------------------

export function shortUrl(url) {
  if (!url) return '';
  const u = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  const pk = u.indexOf('/packages/');
  if (pk >= 0) return u.slice(pk + 1);
  return u;
}

export function frameKey(cf) {
  const url = shortUrl(cf.url);
  return `${cf.functionName || '(anonymous)'}${url ? ` ${url}:${cf.lineNumber + 1}` : ''}`;
}

export function moduleOf(cf) {
  const url = shortUrl(cf.url);
  if (!url) return cf.functionName.startsWith('(') ? cf.functionName : `(native) ${cf.functionName}`;
  if (url.startsWith('node:')) return url;
  if (url.startsWith('packages/')) return url.replace(/\.js$/, '');
  const parts = url.split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

// --- the orchestrator's run ---------------------------------------------------------------------

/**
 * Runs the orchestrator's `main()`, then `cleanup(finalWait)`; on SIGINT/SIGTERM/SIGHUP it says
 * `bench: <signal>: <stopping><the temporary directory>…`, cleans up and exits 130; on an error,
 * it prints the message, sets exit code 1 and cleans up. At exit, as a last resort
 * (synchronously), it kills the tracked children, runs `lastResort()` and removes `tmpDir()`.
 */
export async function runOrchestrator({ main, cleanup, finalWait, stopping, tmpDir, onSignal = () => undefined, lastResort = () => undefined }) {
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
 * A gateway child of `script` (`--internal-gateway <arg>`, CPU 0) with an IPC channel; its stderr
 * goes to `logFile`. `wait(type)` resolves with the next message of that type (an `error` message
 * rejects); `request(msg, type)` sends and waits. Messages for which `unbuffered` is true are only
 * given to `listeners` (e.g. a stream of events nobody waits for).
 */
export function spawnIpcGateway({ script, pin, arg, env, logFile, note, unbuffered = () => false, requestTimeoutMs = 600_000 }) {
  const fd = openSync(logFile, 'a');
  const [cmd, cmdArgs] = pinned(0, pin, process.execPath, [script, '--internal-gateway', arg]);
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
  if (!s || s.exited) return;
  const exited = new Promise((r) => (s.exited ? r() : s.child.once('exit', r)));
  if (s.child.connected) s.child.send({ cmd: 'stop' });
  else s.child.kill('SIGTERM');
  const timeout = new globalThis.AbortController();
  const late = sleep(wait, 'timeout', { signal: timeout.signal }).catch(() => null);
  const outcome = await Promise.race([exited, late]);
  timeout.abort();
  if (outcome === 'timeout') {
    note(`the gateway did not stop within ${wait / 1000} s; sending SIGKILL`);
    s.child.kill('SIGKILL');
    await exited;
  }
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
