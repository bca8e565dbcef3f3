// Helpers shared by the benchmark scripts (orders.mjs, notify.mjs, chain.mjs): exiting with a
// message, loading the built workspace packages, tracking child processes, CPU pinning with
// taskset, /proc readers (RSS, process CPU, per-CPU busy/steal time), the monotonic clock,
// rounding, bounded-parallel loops and the V8 CPU-profile frame naming.
// Each script keeps its own state, options and output; only code that was the same in each
// (up to parameters) lives here.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
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
