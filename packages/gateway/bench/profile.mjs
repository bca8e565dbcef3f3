// The `--profile` summaries of the benchmark scripts (orders.mjs, notify.mjs, chain.mjs): the node
// flags that make a gateway child write a V8 CPU profile (and preload the SQL trace), and the
// summary of one timed window of it in ms per unit of work (an order, a delivery, a transfer):
// self time by layer (each script's own table), module and function, the inclusive time of the
// gateway's own functions, optionally the database time by the nearest gateway caller, and the
// SQL statements from sql-trace.mjs's two snapshots around the window. Each script passes what
// differs (its unit, window, layers table, list lengths); the printed lines and JSON fields are
// named after the unit.

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { round } from './common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * Node flags for a profiled gateway child: `--cpu-prof` into `cpuProfDir` (a sample every 0.5 ms)
 * and, when `sqlTrace` is set, sql-trace.mjs preloaded (the child also needs
 * SPARKPAY_BENCH_SQL_TRACE=`sqlTrace` in its environment).
 */
export function profileFlags(cpuProfDir, sqlTrace) {
  const flags = [];
  if (cpuProfDir) flags.push('--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, '--cpu-prof-interval=500');
  if (sqlTrace) flags.push('--import', pathToFileURL(join(HERE, 'sql-trace.mjs')).href);
  return flags;
}

/** Extra node flags for the gateway child, for experiments (e.g. SPARKPAY_BENCH_NODE_FLAGS='--max-semi-space-size=64'). */
export function benchNodeFlags() {
  return (process.env.SPARKPAY_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
}

// --- V8 CPU-profile frame naming ----------------------------------------------------------------

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

// --- layers -------------------------------------------------------------------------------------

// A layers table is a list of [label, test(mod, callFrame)]: a leaf frame (native time is charged
// to the JS function that called it) goes to the first layer whose test holds, else to GC or
// 'other'. Tests the scripts' tables share:

/** better-sqlite3 (and the trace's wrapper around it), and Kysely's executeQuery, which runs it. */
export const isSqlite = (mod, cf) => mod === 'better-sqlite3' || mod.includes('bench/sql-trace') || (mod === 'kysely' && cf.functionName === 'executeQuery');

/** The native socket writes, charged to the Node streams layer. */
export const NATIVE_WRITES = ['(native) writev', '(native) writeBuffer', '(native) writeUtf8String', '(native) writeLatin1String'];

function layerOf(layers, cf, mod) {
  for (const [label, test] of layers) if (test(mod, cf)) return label;
  if (cf.functionName === '(garbage collector)') return 'GC';
  return 'other (node internals, microtasks, V8)';
}

// --- the summary --------------------------------------------------------------------------------

/** SQL text shorteners: the head, or the head and the tail (statements that differ near the end). */
const SQL_SHORT = {
  head: (q) => (q.length > 110 ? `${q.slice(0, 107)}...` : q).replace(/\s+/g, ' '),
  headTail: (q) => (q.length > 150 ? `${q.slice(0, 70)} … ${q.slice(-75)}` : q).replace(/\s+/g, ' '),
};

/**
 * Summarises the .cpuprofile a gateway child wrote into `dir` over `window` (CLOCK_MONOTONIC µs:
 * `startUs`, `endUs`; `only`, what the header says it covers, e.g. 'saturated run only'; `of`,
 * the same as a noun, e.g. 'the saturated run'), per `unit` ('order') of `count` `units`
 * ('orders'). Keeps a copy as `<outDir>/<name>-<date>.cpuprofile` and the text beside it (.txt).
 * `reference` closes the header (e.g. the RSA cost per unit); `spawnUs`, when set, is when the
 * child was spawned (a profile that starts over a minute before it does not share our clock);
 * `top` the list lengths (layers, modules, self, inclusive, dbByCaller: 0 leaves that list out);
 * `sql` the SQL table's options (rows, slow: the slowest-execution columns, short: 'head' or
 * 'headTail', digits: of the statement counts per unit, 2 by default). Returns { text: lines, json }.
 */
export function summariseProfile({ dir, outDir, name, window, unit, units, count, reference = null, spawnUs = null, layers, top, sql, sqlTrace }) {
  const found = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (found.length === 0) return { text: ['profile: the gateway wrote no .cpuprofile (did it exit cleanly?)'], json: null };
  const file = join(dir, found[0]);
  mkdirSync(outDir, { recursive: true });
  const kept = join(outDir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
  copyFileSync(file, kept);
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample times; V8's profiler and process.hrtime both read CLOCK_MONOTONIC (µs here).
  let t = p.startTime;
  const times = p.timeDeltas.map((d) => (t += d));
  let { startUs: lo, endUs: hi } = window;
  let windowNote = window.only;
  if (!(p.startTime <= hi && p.endTime >= lo) || (spawnUs !== null && p.startTime < spawnUs - 60e6)) {
    lo = -Infinity;
    hi = Infinity;
    windowNote = `WHOLE process lifetime (clock mismatch: could not isolate ${window.of})`;
  }
  const self = new Map();
  const total = new Map();
  const modules = new Map();
  const dbByCaller = new Map();
  const layerTimes = new Map();
  let busyUs = 0;
  const add = (m, k, w) => m.set(k, (m.get(k) ?? 0) + w);
  for (let i = 0; i < p.samples.length; i += 1) {
    if (times[i] < lo || times[i] > hi) continue;
    const w = p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0;
    const leaf = byId.get(p.samples[i]);
    if (leaf.callFrame.functionName === '(idle)') continue;
    busyUs += w;
    add(self, frameKey(leaf.callFrame), w);
    const mod = moduleOf(leaf.callFrame);
    add(modules, mod, w);
    add(layerTimes, layerOf(layers, leaf.callFrame, mod), w);
    if (top.dbByCaller > 0 && (mod === 'kysely' || mod === 'better-sqlite3')) {
      // Database time (query building, statement preparation, SQLite itself) by the nearest
      // store method on the stack.
      let caller = '(no gateway frame)';
      for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
        const cf = byId.get(id).callFrame;
        if (/packages\/gateway\/dist\//.test(cf.url)) {
          caller = frameKey(cf);
          break;
        }
      }
      add(dbByCaller, caller, w);
    }
    const seen = new Set();
    for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
      const k = frameKey(byId.get(id).callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      add(total, k, w);
    }
  }
  const per = (us) => (count > 0 ? us / 1000 / count : NaN);
  const best = (m, n, filter = () => true) =>
    [...m.entries()]
      .filter(([k]) => filter(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n);
  const line = ([k, us]) => `  ${((us / busyUs) * 100).toFixed(1).padStart(5)}%  ${per(us).toFixed(4)} ms/${unit}  ${k}`;
  const ours = (k) => /(gateway|protocol)\/dist\//.test(k);
  const lists = {
    layers: best(layerTimes, top.layers),
    modules: best(modules, top.modules),
    self: best(self, top.self),
    inclusive: best(total, top.inclusive, ours),
    db: top.dbByCaller > 0 ? best(dbByCaller, top.dbByCaller) : null,
  };
  const text = [
    `CPU profile of the gateway (${windowNote}; ${(busyUs / 1e6).toFixed(2)} s busy, ${count} ${units}, ${per(busyUs).toFixed(3)} ms/${unit} busy${reference ? `; ${reference}` : ''})`,
    `  saved to ${relative(process.cwd(), kept)} (open in Chrome DevTools or speedscope)`,
    'self time by layer:',
    ...lists.layers.map(line),
    'self time by module:',
    ...lists.modules.map(line),
    'top functions by self time:',
    ...lists.self.map(line),
    'gateway/protocol functions by total (inclusive) time:',
    ...lists.inclusive.map(line),
    ...(lists.db ? ['database self time (kysely + better-sqlite3) by the nearest gateway caller (async hops lose the caller):', ...lists.db.map(line)] : []),
  ];
  const sqlSummary = summariseSqlTrace(sqlTrace, { of: window.of, unit, count, ...sql });
  text.push(...sqlSummary.text);
  writeFileSync(kept.replace(/\.cpuprofile$/, '.txt'), `${text.join('\n')}\n`);
  const asJson = (entries) => entries.map(([k, us]) => ({ frame: k, pct: round((us / busyUs) * 100, 2), [`ms_per_${unit}`]: round(per(us), 4) }));
  return {
    text,
    json: {
      file: kept,
      window: windowNote,
      [`busy_ms_per_${unit}`]: round(per(busyUs), 4),
      layers: asJson(lists.layers),
      modules: asJson(lists.modules),
      self: asJson(lists.self),
      inclusive: asJson(lists.inclusive),
      ...(lists.db ? { database_by_caller: asJson(lists.db) } : {}),
      sql: sqlSummary.json,
    },
  };
}

/**
 * Per-SQL counts and times over the window, from the first and the last snapshot sql-trace.mjs
 * appended to `file` (none: not SQLite).
 */
function summariseSqlTrace(file, { of, unit, count, rows: shown, slow, short, digits = 2 }) {
  if (!file) return { text: ['SQL trace: SQLite only'], json: null };
  const lines = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
  if (lines.length < 2) return { text: ['SQL trace: no snapshots (sql-trace.mjs not loaded?)'], json: null };
  const before = new Map(JSON.parse(lines[0]).stats);
  const after = JSON.parse(lines[lines.length - 1]).stats;
  const rows = [];
  for (const [sql, a] of after) {
    const b = before.get(sql) ?? { prepare: 0, prepareNs: 0, exec: 0, execNs: 0 };
    const d = { sql, prepare: a.prepare - b.prepare, prepareNs: a.prepareNs - b.prepareNs, exec: a.exec - b.exec, execNs: a.execNs - b.execNs, maxNs: a.execMaxNs ?? 0, slow: (a.slow ?? 0) - (b.slow ?? 0) };
    if (d.prepare || d.exec) rows.push(d);
  }
  rows.sort((x, y) => y.prepareNs + y.execNs - (x.prepareNs + x.execNs));
  const sum = (k) => rows.reduce((s, r) => s + r[k], 0);
  const per = (n) => n / count;
  const ms = (ns) => (ns / 1e6 / count).toFixed(4);
  const cut = SQL_SHORT[short];
  const text = [
    `SQL over ${of}: ${per(sum('exec')).toFixed(digits)} statements/${unit}, prepare ${ms(sum('prepareNs'))} ms/${unit} (${per(sum('prepare')).toFixed(digits)} prepares/${unit}), execute ${ms(sum('execNs'))} ms/${unit} (wall time inside better-sqlite3)`,
    `   per ${unit}: execs  prepare ms  execute ms  ${slow ? '| slowest exec ms  execs > 1 ms  ' : ''}SQL`,
    ...rows
      .slice(0, shown)
      .map((r) => `   ${per(r.exec).toFixed(digits).padStart(unit.length + 10)}  ${ms(r.prepareNs).padStart(10)}  ${ms(r.execNs).padStart(10)}  ${slow ? `| ${(r.maxNs / 1e6).toFixed(2).padStart(15)}  ${String(r.slow).padStart(12)}  ` : ''}${cut(r.sql)}`),
  ];
  const json = {
    [`statements_per_${unit}`]: round(per(sum('exec')), digits + 1),
    [`prepare_ms_per_${unit}`]: round(sum('prepareNs') / 1e6 / count, 4),
    [`execute_ms_per_${unit}`]: round(sum('execNs') / 1e6 / count, 4),
    statements: rows.slice(0, shown).map((r) => ({
      sql: r.sql,
      [`per_${unit}`]: round(per(r.exec), digits + 1),
      [`prepare_ms_per_${unit}`]: round(r.prepareNs / 1e6 / count, 4),
      [`execute_ms_per_${unit}`]: round(r.execNs / 1e6 / count, 4),
      ...(slow ? { slowest_exec_ms: round(r.maxNs / 1e6, 3), execs_over_1ms: r.slow } : {}),
    })),
  };
  return { text, json };
}
