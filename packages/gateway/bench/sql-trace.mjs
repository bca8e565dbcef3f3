// Preloaded into the gateway by `--profile` of orders.mjs, notify.mjs and chain.mjs (node
// --import, see profileFlags in profile.mjs): counts and times every SQLite statement preparation
// and execution, per SQL text. On SIGUSR2 (sent by orders.mjs; emitted by the gateway children of
// notify.mjs and chain.mjs themselves, process.emit) it appends a snapshot of the cumulative
// counters to $SPARKPAY_BENCH_SQL_TRACE, so the benchmark can take the difference over exactly
// its timed window. Benchmark tooling only; the gateway does not know about it.
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';

// The same CommonJS module instance the gateway's `import 'better-sqlite3'` gets.
const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');

const out = process.env.SPARKPAY_BENCH_SQL_TRACE;
const stats = new Map();
const entry = (sql) => {
  let e = stats.get(sql);
  if (!e) {
    e = { prepare: 0, prepareNs: 0, exec: 0, execNs: 0, execMaxNs: 0, slow: 0 };
    stats.set(sql, e);
  }
  return e;
};

let statementProtoPatched = false;
const prepare = Database.prototype.prepare;
Database.prototype.prepare = function tracedPrepare(sql) {
  const t0 = process.hrtime.bigint();
  const stmt = prepare.call(this, sql);
  const e = entry(sql);
  e.prepare += 1;
  e.prepareNs += Number(process.hrtime.bigint() - t0);
  if (!statementProtoPatched) {
    statementProtoPatched = true;
    const proto = Object.getPrototypeOf(stmt);
    for (const name of ['run', 'all', 'get']) {
      const original = proto[name];
      proto[name] = function tracedExec(...args) {
        const s = process.hrtime.bigint();
        try {
          return original.apply(this, args);
        } finally {
          const x = entry(this.source);
          const ns = Number(process.hrtime.bigint() - s);
          x.exec += 1;
          x.execNs += ns;
          if (ns > x.execMaxNs) x.execMaxNs = ns;
          if (ns > 1e6) x.slow += 1; // over 1 ms: a stall of the event loop

        }
      };
    }
  }
  return stmt;
};

if (out) {
  process.on('SIGUSR2', () => {
    // Maxima are per interval: reset them at each snapshot.
    appendFileSync(out, `${JSON.stringify({ at: Number(process.hrtime.bigint() / 1000n), stats: [...stats.entries()] })}\n`);
    for (const e of stats.values()) e.execMaxNs = 0;
  });
}
