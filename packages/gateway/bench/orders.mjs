#!/usr/bin/env node
// Order-creation benchmark of the built gateway (see bench/README.md).
//
//   node bench/orders.mjs [--concurrency 16] [--seconds 10] [--warmup 2] [--latency-seconds 5]
//                         [--load 0.8] [--rsa-seconds 3] [--ceiling-seconds 5] [--ceiling-http]
//                         [--json] [--profile] [--profile-dir DIR]
//
// It prints figures; it asserts nothing. The throughput is reported as a ratio against the
// one-core RSA-2048 sign+verify rate measured in the same run (every order costs the server
// one verify of the request and one sign of the response, so that rate bounds the order rate).
//
// Layout: the gateway (`dist/cli/main.js dev`) runs as a child pinned to CPU 0 on a fresh
// SQLite data directory; this process is the load generator, pinned to CPU 1. Requests are
// signed ahead of time (on both cores while the server is idle) so that the generator's own
// RSA signing does not limit or disturb the measurement.
//
// Last, with the gateway stopped, the "stack ceiling": a minimal Fastify server (optionally
// also a bare node:http one) on the same core that does only what the protocol forces on every
// request (verify, JSON.parse, a small signed envelope), driven the same way. Its rate is what
// this HTTP stack could do with a gateway that cost nothing.
import { spawn, spawnSync } from 'node:child_process';
import { constants as cryptoConstants, createPrivateKey, createPublicKey, sign as rsaSign, verify as rsaVerify } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setImmediate as yieldNow, setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { BUILD_HINT, cpuTimes, fail, hasTaskset, hrUs, loadProtocol as loadWorkspaceProtocol, noter, pinned, procCpuSeconds, procStatus, round, runChild, runOrchestrator, staleDist, stopChild, track } from './common.mjs';
import { benchNodeFlags, isSqlite, NATIVE_WRITES, profileFlags, summariseProfile } from './profile.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const GATEWAY_DIR = resolve(HERE, '..');
const MAIN_JS = join(GATEWAY_DIR, 'dist', 'cli', 'main.js');
const TARGETS = { ratio: 0.6, p99Ms: 25, rssMb: 250 };
// Stack-ceiling warm-up: 1 s rounds, at least 2, until CPU per request settles (within 5% of
// the round before), at most 4.
const CEILING_WARMUP_S = 2;
const CEILING_WARMUP_MAX_S = 4;
const CEILING_BODY_LIMIT = 64 * 1024; // the gateway's MAX_BODY_BYTES
const CEILING_LABEL = { fastify: 'fastify', http: 'bare node:http' };
const BODY_PAD = 'Benchmark order: 1 x test item';
const USAGE = `usage: node bench/orders.mjs [options]     (npm run bench)
  --concurrency N      closed-loop connections of the saturated run (default 16)
  --seconds S          saturated run length (default 10)
  --warmup S           warm-up length (default 2)
  --latency-seconds S  open-loop latency run length (default 5; 0 skips it)
  --load F             open-loop rate as a fraction of the saturated rate (default 0.8)
  --rsa-seconds S      RSA-2048 sign+verify measurement length (default 3)
  --ceiling-seconds S  stack-ceiling run length, after a 2-4 s warm-up (default 5; 0 skips it)
  --ceiling-http       also measure the stack ceiling on bare node:http (Fastify's own share)
  --json               print only the one-line JSON of the figures
  --profile            run the gateway under --cpu-prof and summarise the saturated window
  --profile-dir DIR    where the .cpuprofile and its summary go (default bench/profiles)
`;

// ---------------------------------------------------------------------------------------------
// Shared helpers (used by the orchestrator and by the internal child modes).

async function loadProtocol() {
  if (!existsSync(MAIN_JS)) {
    fail(`the gateway is not built (${MAIN_JS} is missing).\n${BUILD_HINT}`);
  }
  return loadWorkspaceProtocol();
}

/** A typical standard order body (~300 bytes), unique by `seq`. */
function orderBody(ctx, seq, nowSec) {
  return JSON.stringify({
    merchant_no: ctx.merchantNo,
    request_no: `${ctx.runId}_${seq}`,
    merchant_order_no: `shop-${ctx.runId}-${seq}`,
    merchant_order_time: nowSec,
    total_amount: '10.50',
    merchant_order_currency: 'USDT',
    merchant_order_desc: BODY_PAD,
    notify_url: 'https://merchant.example.com/sparkpay/notify',
  });
}

/** One signed order creation, ready to send: { body: Buffer, headers }. */
function signedOrder(ctx, protocol, seq) {
  const nowSec = Math.floor(Date.now() / 1000);
  const body = orderBody(ctx, seq, nowSec);
  const timestamp = String(nowSec);
  const nonce = protocol.generateNonce();
  const signature = protocol.signMessage(ctx.privateKey, timestamp, nonce, body);
  return toRequest(ctx, body, timestamp, nonce, signature);
}

function toRequest(ctx, body, timestamp, nonce, signature) {
  const bytes = Buffer.from(body, 'utf8');
  return {
    body: bytes,
    headers: {
      'content-type': 'application/json',
      'content-length': String(bytes.length),
      'user-agent': 'sparkpay-bench/1.0',
      'sparkpay-app-id': ctx.appId,
      'sparkpay-timestamp': timestamp,
      'sparkpay-nonce': nonce,
      'sparkpay-signature': signature,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Internal child mode 1: the one-core RSA-2048 sign+verify rate.

/**
 * The server's per-order crypto, timed: sign a response (Base64 for the header) and verify a
 * request, ~345-byte strings-to-sign. Returns run(ms) → { n, ms, cpuSeconds }.
 */
function rsaLoop(privateKey, publicKey) {
  const body = orderBody({ merchantNo: 'M100000000001', runId: 'rsa' }, 123456, Math.floor(Date.now() / 1000));
  const request = Buffer.from(`${Math.floor(Date.now() / 1000)}\nAbCdEfGhIjKlMnOpQrStUvWxYz012345\n${body}\n`);
  const response = Buffer.from(`${Math.floor(Date.now() / 1000)}\nZyXwVuTsRqPoNmLkJiHgFeDcBa543210\n${body}\n`);
  const opts = { key: privateKey, padding: cryptoConstants.RSA_PKCS1_PADDING };
  const requestSignature = rsaSign('sha256', request, opts);
  const pub = { key: publicKey, padding: cryptoConstants.RSA_PKCS1_PADDING };
  const iteration = () => {
    const s = rsaSign('sha256', response, opts).toString('base64');
    if (s.length !== 344 || !rsaVerify('sha256', request, pub, requestSignature)) throw new Error('RSA self-check failed');
  };
  const run = (ms) => {
    let n = 0;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    let now = start;
    while (now - start < ms) {
      for (let i = 0; i < 8; i += 1) iteration();
      n += 8;
      now = performance.now();
    }
    const cpu = process.cpuUsage(cpu0);
    return { n, ms: now - start, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  };
  run.messageBytes = request.length;
  return run;
}

/**
 * The same loop on demand, for the stack-ceiling phase: pinned to CPU 0 beside the ceiling
 * servers, it reads a number of milliseconds per stdin line (only between load slices) and
 * answers one JSON line { ops, cpuSeconds } each.
 */
async function rsaOnDemandChild(privateFile, publicFile) {
  const run = rsaLoop(createPrivateKey(readFileSync(privateFile, 'utf8')), createPublicKey(readFileSync(publicFile, 'utf8')));
  run(300); // warm-up
  process.stdout.write('ready\n');
  const { createInterface } = await import('node:readline');
  for await (const line of createInterface({ input: process.stdin })) {
    const { n, cpuSeconds } = run(Math.min(5000, Number(line) || 250));
    process.stdout.write(`${JSON.stringify({ ops: n, cpuSeconds })}\n`);
  }
}

function rsaBoundChild(privateFile, publicFile, seconds) {
  const run = rsaLoop(createPrivateKey(readFileSync(privateFile, 'utf8')), createPublicKey(readFileSync(publicFile, 'utf8')));
  run(300); // warm-up
  const { n, ms, cpuSeconds } = run(seconds * 1000);
  process.stdout.write(`${JSON.stringify({ ops: n, seconds: ms / 1000, perSecond: (n * 1000) / ms, perCpuSecond: n / cpuSeconds, messageBytes: run.messageBytes })}\n`);
}

// ---------------------------------------------------------------------------------------------
// Internal child mode 2: pre-sign a batch of requests (on the core the server is idling on).

async function presignChild(argsJson) {
  const a = JSON.parse(argsJson);
  const protocol = await loadProtocol();
  const ctx = { ...a, privateKey: protocol.parsePrivateKey(readFileSync(a.privateKeyFile, 'utf8')) };
  const lines = [];
  for (let seq = a.from; seq < a.to; seq += 1) {
    const r = signedOrder(ctx, protocol, seq);
    lines.push(JSON.stringify([r.body.toString('utf8'), r.headers['sparkpay-timestamp'], r.headers['sparkpay-nonce'], r.headers['sparkpay-signature']]));
  }
  writeFileSync(a.out, `${lines.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// Internal child mode 3: the stack ceiling. A server that does only what the protocol forces on
// every request — read the four Sparkpay-* headers, verify the request signature, JSON.parse
// the body, build a small envelope (the ten fields of an order creation's `data`), stringify
// and sign it, set the four response headers — and nothing else: no database, no logging, no
// request id, no rate limit, no strict UTF-8 or nesting checks. `kind` is 'fastify' (the
// gateway's framework, with its raw-body set-up) or 'http' (bare node:http). It prints
// {"port":N} once listening and runs until killed.

async function ceilingChild(argsJson) {
  const a = JSON.parse(argsJson);
  const protocol = await import('@sparkpay/protocol');
  // Keys parsed once, as the gateway does (it caches its platform keys).
  const verifyKey = protocol.parsePublicKey(readFileSync(a.publicKeyFile, 'utf8'));
  const signKey = protocol.parsePrivateKey(readFileSync(a.privateKeyFile, 'utf8'));
  const serial = 'bench-ceiling-1';
  let seq = 0;

  /** headers, raw body → { status, headers, body } (always the signed envelope). */
  const handle = (h, raw) => {
    const appId = h['sparkpay-app-id'];
    const timestamp = h['sparkpay-timestamp'];
    const nonce = h['sparkpay-nonce'];
    const signature = h['sparkpay-signature'];
    let envelope;
    if (!appId || !timestamp || !nonce || !signature) envelope = { code: 40003, message: 'Missing required parameter' };
    else if (!protocol.verifyMessage(verifyKey, timestamp, nonce, raw, signature)) envelope = { code: 40000, message: 'Signature verification of the interface parameters failed' };
    else {
      let o = null;
      try {
        o = JSON.parse(raw.toString('utf8'));
      } catch {
        /* answered below */
      }
      if (o === null || typeof o !== 'object') envelope = { code: 40009, message: 'the request body is not valid JSON' };
      else {
        seq += 1;
        const paymentOrderNo = `P${(1_000_000_000_000 + seq).toString()}`;
        envelope = {
          code: 0,
          message: 'success',
          data: {
            payment_order_no: paymentOrderNo,
            merchant_no: o.merchant_no,
            request_no: o.request_no,
            merchant_order_no: o.merchant_order_no ?? '',
            pay_status: 'PENDING',
            total_amount: o.total_amount,
            merchant_order_currency: o.merchant_order_currency,
            payment_options: [{ network: 'TRON', currency: 'USDT', amount: String(o.total_amount) }],
            expire_time: Number(o.merchant_order_time) + 1800,
            cashier_url: `http://127.0.0.1:8080/cashier/${paymentOrderNo}?t=c${seq.toString(36).padStart(31, '0')}`,
          },
        };
      }
    }
    const body = JSON.stringify(envelope);
    const ts = String(Math.floor(Date.now() / 1000));
    const rnonce = protocol.generateNonce();
    return {
      status: envelope.code === 0 ? 200 : 400,
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'Sparkpay-Timestamp': ts,
        'Sparkpay-Nonce': rnonce,
        'Sparkpay-Signature': protocol.signMessage(signKey, ts, rnonce, body),
        'Sparkpay-Serial': serial,
      },
      body,
    };
  };

  let address;
  if (a.kind === 'fastify') {
    const require = createRequire(new URL('../package.json', import.meta.url));
    const Fastify = require('fastify');
    const app = Fastify({ logger: false, bodyLimit: CEILING_BODY_LIMIT });
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: CEILING_BODY_LIMIT }, (_req, body, done) => done(null, body));
    app.post('/v4/pay/cashier', async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const r = handle(req.headers, raw);
      return reply.code(r.status).headers(r.headers).send(r.body);
    });
    address = await app.listen({ host: '127.0.0.1', port: 0 });
    address = new URL(address).port;
  } else {
    const server = http.createServer((req, res) => {
      if (req.method !== 'POST' || req.url !== '/v4/pay/cashier') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":404,"message":"not found"}');
        req.resume();
        return;
      }
      const chunks = [];
      let size = 0;
      let tooLarge = false;
      req.on('data', (c) => {
        size += c.length;
        if (size > CEILING_BODY_LIMIT) tooLarge = true;
        else chunks.push(c);
      });
      req.on('end', () => {
        if (tooLarge) {
          res.writeHead(413, { 'content-type': 'application/json' }).end('{"code":40009,"message":"request body too large"}');
          return;
        }
        const r = handle(req.headers, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
        res.writeHead(r.status, r.headers).end(r.body);
      });
    });
    server.keepAliveTimeout = 72_000; // Fastify's default, so idle sockets behave alike
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    address = server.address().port;
  }
  process.stdout.write(`${JSON.stringify({ port: Number(address) })}\n`);
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

let tmpDir = null;
let server = null;
let aborting = false;
const note = noter('bench: ');

async function freePort() {
  return new Promise((resolvePort, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolvePort(port));
    });
  });
}

/** How runChild runs this script's helper children (presigning, the RSA bound). */
const HELPER_RUN = { timeoutMs: 120_000, tailChars: 2000, describe: (command, args) => `${command} ${args.slice(0, 4).join(' ')}…` };

/** Starts `main.js dev --json` pinned to CPU 0; resolves once its JSON line is read and /healthz is ok. */
async function startServer({ pin, port, dataDir, profileDir, sqlTrace }) {
  const env = { ...process.env, SPARKPAY_DATA_DIR: dataDir, SPARKPAY_PORT: String(port), SPARKPAY_HOST: '127.0.0.1', SPARKPAY_RATE_LIMIT: '0', SPARKPAY_LOG_LEVEL: 'warn' };
  // SQLite in the data directory, whatever the caller's environment says.
  for (const k of ['SPARKPAY_DATABASE_URL', 'SPARKPAY_CONFIG', 'SPARKPAY_MASTER_KEY', 'SPARKPAY_PUBLIC_URL', 'SPARKPAY_MODE', 'NODE_OPTIONS']) delete env[k];
  // Extra node flags for the server only, for experiments (e.g. SPARKPAY_BENCH_NODE_FLAGS='--max-semi-space-size=64').
  const nodeFlags = [...benchNodeFlags(), ...profileFlags(profileDir, sqlTrace)];
  if (sqlTrace) env.SPARKPAY_BENCH_SQL_TRACE = sqlTrace;
  const [cmd, args] = pinned(0, pin, process.execPath, [...nodeFlags, MAIN_JS, 'dev', '--json']);
  const child = track(spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const stderrTail = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderrTail.push(d);
    while (stderrTail.length > 50) stderrTail.shift();
  });
  const state = { child, pid: child.pid, stderrTail, exited: null, info: null };
  child.once('exit', (code, signal) => (state.exited = { code, signal }));

  state.info = await new Promise((resolveInfo, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`the gateway printed nothing within 60 s\n${stderrTail.join('')}`)), 60_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0 || state.info) return;
      clearTimeout(timer);
      try {
        resolveInfo(JSON.parse(buf.slice(0, nl)));
      } catch {
        reject(new Error(`the gateway's first stdout line is not JSON: ${buf.slice(0, 300)}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited during start-up (${signal ?? code}):\n${stderrTail.join('').trim().slice(-3000)}`));
    });
    child.once('error', reject);
  });
  for (const k of ['app_id', 'merchant_no', 'merchant_private_key_file', 'platform_public_key_file']) {
    if (!state.info[k]) throw new Error(`the gateway's JSON lacks "${k}": ${JSON.stringify(state.info)}`);
  }
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (state.exited) throw new Error(`the gateway exited (${state.exited.signal ?? state.exited.code}):\n${stderrTail.join('')}`);
    const ok = await new Promise((r) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
        res.resume();
        res.on('end', () => r(res.statusCode === 200));
      });
      req.on('error', () => r(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error('/healthz did not answer 200 within 30 s');
    await sleep(50);
  }
  return state;
}

/** Starts the stack-ceiling server (`kind` 'fastify' or 'http') pinned to CPU 0; resolves once it listens. */
async function startCeiling({ pin, kind, privateKeyFile, publicKeyFile }) {
  const args = [fileURLToPath(import.meta.url), '--internal-ceiling', JSON.stringify({ kind, privateKeyFile, publicKeyFile })];
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const [cmd, cmdArgs] = pinned(0, pin, process.execPath, args);
  const child = track(spawn(cmd, cmdArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const state = { child, pid: child.pid, kind, stderrTail: [], exited: null, port: 0 };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    state.stderrTail.push(d);
    while (state.stderrTail.length > 50) state.stderrTail.shift();
  });
  child.once('exit', (code, signal) => (state.exited = { code, signal }));
  state.port = await new Promise((resolvePort, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`the ${kind} ceiling server printed nothing within 30 s\n${state.stderrTail.join('')}`)), 30_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolvePort(JSON.parse(buf.slice(0, nl)).port);
      } catch {
        reject(new Error(`the ${kind} ceiling server's first stdout line is not JSON: ${buf.slice(0, 300)}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the ${kind} ceiling server exited during start-up (${signal ?? code}):\n${state.stderrTail.join('').trim().slice(-3000)}`));
    });
    child.once('error', reject);
  });
  return state;
}

/** SIGTERM (then SIGKILL) to a child started by startServer/startCeiling. */
async function stopChildAfterSigterm(s, what, wait) {
  await stopChild(s, what, wait, { note, within: ' of SIGTERM' });
}

async function stopServer(wait = 5000) {
  await stopChildAfterSigterm(server, 'the gateway', wait);
}

// --- /proc sampling of the server -----------------------------------------------------------

// --- HTTP -----------------------------------------------------------------------------------

function send(agent, port, req) {
  return new Promise((resolveSend) => {
    const r = http.request({ agent, host: '127.0.0.1', port, method: 'POST', path: '/v4/pay/cashier', headers: req.headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolveSend({ status: res.statusCode, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), headers: res.headers }));
      res.on('error', (e) => resolveSend({ status: 0, error: e.code ?? e.message }));
    });
    r.on('error', (e) => resolveSend({ status: 0, error: e.code ?? e.message }));
    r.end(req.body);
  });
}

const OK_PREFIX = Buffer.from('{"code":0,');

function newStats(verifyKey) {
  return { verifyKey, ok: 0, errors: 0, statuses: {}, codes: {}, transport: {}, latencies: [], sigChecked: 0, sigBad: 0, first: Infinity, last: 0 };
}

/** Sums closed-loop slices into one set of figures (rates over the slices' active time). */
function mergeStats(parts) {
  const m = newStats(parts[0]?.verifyKey);
  let active = 0;
  let serverCpuSeconds = 0;
  let other = 0;
  let steal = 0;
  let generator = 0;
  m.elapsed = 0;
  m.inlineSigned = 0;
  for (const p of parts) {
    for (const k of ['ok', 'errors', 'sigChecked', 'sigBad', 'inlineSigned']) m[k] += p[k] ?? 0;
    for (const k of ['statuses', 'codes', 'transport']) for (const [key, n] of Object.entries(p[k])) m[k][key] = (m[k][key] ?? 0) + n;
    for (const l of p.latencies) m.latencies.push(l);
    m.firstError ??= p.firstError;
    m.elapsed += p.elapsed;
    active += p.activeSeconds;
    serverCpuSeconds += p.serverCpuSeconds;
    other += p.otherOnCpu0 * p.elapsed;
    steal += p.stealCpu0 * p.elapsed;
    generator += p.generatorCpu * p.elapsed;
  }
  m.perSecond = m.ok / active;
  m.serverCpuSeconds = serverCpuSeconds;
  m.serverCpu = serverCpuSeconds / m.elapsed;
  m.otherOnCpu0 = other / m.elapsed;
  m.stealCpu0 = steal / m.elapsed;
  m.generatorCpu = generator / m.elapsed;
  m.cpuMs = (serverCpuSeconds * 1000) / m.ok;
  m.sliceCpuMs = parts.map((p) => (p.serverCpuSeconds * 1000) / p.ok);
  // RSA cost per sign+verify around the slices, weighted by their requests (stack ceiling).
  if (parts.every((p) => p.rsaMs > 0)) m.rsaMs = parts.reduce((t, p) => t + p.ok * p.rsaMs, 0) / m.ok;
  return m;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: {
      concurrency: { type: 'string', default: '16' },
      seconds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      'latency-seconds': { type: 'string', default: '5' },
      load: { type: 'string', default: '0.8' },
      'rsa-seconds': { type: 'string', default: '3' },
      'ceiling-seconds': { type: 'string', default: '5' },
      'ceiling-http': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'profile-dir': { type: 'string', default: join(HERE, 'profiles') },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const num = (name, min, max) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min || n > max) fail(`--${name} must be a number between ${min} and ${max}`);
    return n;
  };
  const opt = {
    concurrency: Math.round(num('concurrency', 1, 1024)),
    seconds: num('seconds', 0.5, 600),
    warmup: num('warmup', 0, 60),
    latencySeconds: num('latency-seconds', 0, 600),
    load: num('load', 0.05, 1.5),
    rsaSeconds: num('rsa-seconds', 0.5, 60),
    ceilingSeconds: num('ceiling-seconds', 0, 600),
    ceilingHttp: values['ceiling-http'],
    json: values.json,
    profile: values.profile,
    profileDir: resolve(values['profile-dir']),
  };
  note.quiet = opt.json;
  const protocol = await loadProtocol();
  const warnings = [];
  const warn = (w) => {
    warnings.push(w);
    note(`warning: ${w}`);
  };
  const stale = staleDist();
  if (stale) warn(`dist may be stale: ${stale} (rebuild with npx tsc -b packages/protocol packages/sdk packages/gateway)`);

  // --- pinning: this process (and all its threads) to CPU 1, the server to CPU 0 -------------
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  let pin = cpus >= 2 && hasTaskset();
  if (pin) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
    if (r.status !== 0) pin = false;
  }
  if (!pin) warn(cpus < 2 ? `only ${cpus} CPU available: running unpinned, figures are not comparable` : 'taskset is unavailable or failed: running unpinned (server and load generator share the CPUs), figures are not comparable');
  const loadBefore = os.loadavg();
  if (loadBefore[0] > 0.5) note(`machine load average is ${loadBefore.map((l) => l.toFixed(2)).join(' ')}: figures may be depressed`);

  tmpDir = mkdtempSync(join(os.tmpdir(), 'sparkpay-bench-'));
  const dataDir = join(tmpDir, 'data');
  const cpuProfDir = opt.profile ? join(tmpDir, 'cpuprof') : null;
  const sqlTrace = opt.profile ? join(tmpDir, 'sql-trace.jsonl') : null;
  const port = await freePort();

  note(`starting the gateway (SQLite, ${pin ? 'pinned to CPU 0' : 'unpinned'}${opt.profile ? ', with --cpu-prof' : ''})…`);
  const serverSpawnUs = hrUs();
  server = await startServer({ pin, port, dataDir, profileDir: cpuProfDir, sqlTrace });
  const info = server.info;
  const ctx = {
    runId: `b${Date.now().toString(36)}`,
    appId: String(info.app_id),
    merchantNo: String(info.merchant_no),
    privateKeyFile: info.merchant_private_key_file,
    privateKey: protocol.parsePrivateKey(readFileSync(info.merchant_private_key_file, 'utf8')),
  };
  const platformPublicKey = protocol.parsePublicKey(readFileSync(info.platform_public_key_file, 'utf8'));

  let rssMaxKb = 0;
  const sampleRss = () => {
    const s = procStatus(server.pid);
    if (s && s.rssKb > rssMaxKb) rssMaxKb = s.rssKb;
  };
  sampleRss();
  const rssTimer = setInterval(sampleRss, 200);
  rssTimer.unref();

  // --- the request pool -----------------------------------------------------------------------
  const pool = [];
  let poolNext = 0;
  let nextSeq = 0;
  let inlineSigned = 0;
  const remaining = () => pool.length - poolNext;
  const take = () => {
    if (poolNext < pool.length) {
      const r = pool[poolNext];
      pool[poolNext++] = undefined;
      return r;
    }
    inlineSigned += 1;
    return signedOrder(ctx, protocol, nextSeq++);
  };
  /** Signs in this process (CPU 1) in small chunks until `until()` is true or `max` are made. */
  const signLocally = async (until, max = Infinity) => {
    let made = 0;
    while (made < max && !until()) {
      const n = Math.min(64, max - made);
      for (let i = 0; i < n; i += 1) pool.push(signedOrder(ctx, protocol, nextSeq++));
      made += n;
      await yieldNow();
    }
    return made;
  };
  /** Tops the pool up to `want` unused requests, half signed by a child on CPU 0 (the server is idle). */
  const topUp = async (want) => {
    const deficit = Math.ceil(want - remaining());
    if (deficit <= 0) return 0;
    const started = performance.now();
    const childShare = deficit >= 400 ? Math.floor(deficit / 2) : 0;
    const from = nextSeq;
    nextSeq += childShare;
    const out = join(tmpDir, `presign-${from}.jsonl`);
    const childDone = childShare
      ? runChild(...pinned(0, pin, process.execPath, [fileURLToPath(import.meta.url), '--internal-presign', JSON.stringify({ runId: ctx.runId, appId: ctx.appId, merchantNo: ctx.merchantNo, privateKeyFile: ctx.privateKeyFile, from, to: from + childShare, out })]), HELPER_RUN)
      : Promise.resolve();
    await signLocally(() => false, deficit - childShare);
    await childDone;
    if (childShare) {
      for (const line of readFileSync(out, 'utf8').split('\n')) {
        if (!line) continue;
        const [body, ts, nonce, sig] = JSON.parse(line);
        pool.push(toRequest(ctx, body, ts, nonce, sig));
      }
      rmSync(out, { force: true });
    }
    note(`pre-signed ${deficit} requests in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return deficit;
  };

  // --- 1. the one-core RSA bound (CPU 0, server idle) while CPU 1 pre-signs -------------------
  note(`measuring the RSA-2048 sign+verify rate on ${pin ? 'CPU 0' : 'one (unpinned) core'} for ${opt.rsaSeconds} s…`);
  let boundDone = false;
  const boundRun = runChild(...pinned(0, pin, process.execPath, [fileURLToPath(import.meta.url), '--internal-rsa-bound', info.merchant_private_key_file, info.merchant_public_key_file, String(opt.rsaSeconds)]), HELPER_RUN).finally(() => (boundDone = true));
  const localSignStart = performance.now();
  const localSigned = await signLocally(() => boundDone);
  const generatorSignRate = (localSigned * 1000) / (performance.now() - localSignStart);
  const bound = JSON.parse((await boundRun).trim().split('\n').pop());
  const R = bound.perSecond;
  const Rcpu = bound.perCpuSecond;
  if (bound.perSecond < 0.9 * bound.perCpuSecond) warn(`the RSA measurement got only ${((bound.perSecond / bound.perCpuSecond) * 100).toFixed(0)}% of CPU 0 (other work shares the machine): the wall-clock ratio is unreliable; the CPU-time ratio is the better estimate`);
  note(`RSA-2048 sign+verify: ${Math.round(R)}/s; pool: ${remaining()} pre-signed requests`);

  // --- 2. warm-up (closed loop) ---------------------------------------------------------------
  const agent = new http.Agent({ keepAlive: true, maxSockets: opt.concurrency, maxFreeSockets: 1024 });
  const record = (stats, res, latencyMs, endMs) => {
    if (endMs < stats.first) stats.first = endMs;
    stats.last = endMs;
    if (res.status === 0) {
      stats.errors += 1;
      stats.transport[res.error] = (stats.transport[res.error] ?? 0) + 1;
      return;
    }
    stats.statuses[res.status] = (stats.statuses[res.status] ?? 0) + 1;
    let ok = res.status === 200 && res.body.length > OK_PREFIX.length && res.body.compare(OK_PREFIX, 0, OK_PREFIX.length, 0, OK_PREFIX.length) === 0;
    if (!ok) {
      let code = 'not JSON';
      try {
        code = String(JSON.parse(res.body.toString('utf8')).code);
      } catch {
        /* counted as not JSON */
      }
      if (code === '0' && res.status === 200) ok = true;
      else stats.codes[code] = (stats.codes[code] ?? 0) + 1;
      if (!ok && stats.errors === 0) stats.firstError = `${res.status} ${res.body.toString('utf8').slice(0, 300)}`;
    }
    // Response signatures: the first 100, then one in 64.
    if (stats.sigChecked < 100 || (stats.ok + stats.errors) % 64 === 0) {
      stats.sigChecked += 1;
      const h = res.headers;
      const valid = protocol.verifyMessage(stats.verifyKey, String(h['sparkpay-timestamp']), String(h['sparkpay-nonce']), res.body, String(h['sparkpay-signature']));
      if (!valid) stats.sigBad += 1;
    }
    if (ok) {
      stats.ok += 1;
      stats.latencies.push(latencyMs);
    } else stats.errors += 1;
  };
  /** Closed loop against `target` ({ pid, port, agent, verifyKey }; the gateway by default). */
  const closedLoop = async (seconds, concurrency, target = { pid: server.pid, port, agent, verifyKey: platformPublicKey }) => {
    const stats = newStats(target.verifyKey);
    const cpu0 = process.cpuUsage();
    const srv0 = procCpuSeconds(target.pid);
    const core0 = cpuTimes(0);
    const start = performance.now();
    const end = start + seconds * 1000;
    const worker = async () => {
      while (performance.now() < end && !aborting) {
        const req = (target.take ?? take)();
        const t0 = performance.now();
        const res = await send(target.agent, target.port, req);
        const t1 = performance.now();
        record(stats, res, t1 - t0, t1);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpu0);
    stats.elapsed = elapsed;
    stats.activeSeconds = (stats.last - start) / 1000;
    stats.perSecond = stats.ok / stats.activeSeconds;
    stats.generatorCpu = (cpu.user + cpu.system) / 1e6 / elapsed;
    const serverCpuSeconds = procCpuSeconds(target.pid) - srv0;
    stats.serverCpuSeconds = serverCpuSeconds;
    stats.serverCpu = serverCpuSeconds / elapsed;
    const core1 = cpuTimes(0);
    // What else ran on CPU 0 meanwhile (only meaningful when pinned): other processes, and the
    // hypervisor's steal time on a VM. Either depresses the wall-clock figures.
    stats.otherOnCpu0 = core0 && core1 ? Math.max(0, (core1.busy - core0.busy - serverCpuSeconds) / elapsed) : NaN;
    stats.stealCpu0 = core0 && core1 ? (core1.steal - core0.steal) / elapsed : NaN;
    return stats;
  };
  const checkServer = () => {
    if (server.exited) throw new Error(`the gateway exited during the run (${server.exited.signal ?? server.exited.code}):\n${server.stderrTail.join('').trim().slice(-3000)}`);
  };

  if (opt.warmup > 0) {
    note(`warm-up: ${opt.warmup} s at concurrency ${opt.concurrency}…`);
    await topUp(Math.min(R, 4000) * opt.warmup);
  }
  const warm = opt.warmup > 0 ? await closedLoop(opt.warmup, opt.concurrency) : null;
  checkServer();
  if (warm && warm.ok === 0) throw new Error(`no order was created during the warm-up; first error: ${warm.firstError ?? JSON.stringify(warm.transport)}`);

  // --- 3. saturated closed loop ---------------------------------------------------------------
  // The server cannot exceed R (it signs and verifies once per order): size the pool from the
  // warm-up rate with a wide margin (the warm-up is still cold: it runs at a third to half of the
  // steady rate), capped by R; anything beyond is signed inline (and reported).
  const estimate = warm ? Math.min(R * 1.1, Math.max(warm.perSecond * 3, 50)) : R * 1.1;
  await topUp(estimate * opt.seconds + opt.concurrency * 2);
  note(`saturated run: ${opt.seconds} s at concurrency ${opt.concurrency}…`);
  const inlineBeforeSat = inlineSigned;
  if (sqlTrace) {
    server.child.kill('SIGUSR2'); // SQL counters snapshot (the server is idle now)
    await sleep(100);
  }
  const satWindow = { startUs: hrUs() };
  const sat = await closedLoop(opt.seconds, opt.concurrency);
  satWindow.endUs = hrUs();
  if (sqlTrace) server.child.kill('SIGUSR2');
  sat.inlineSigned = inlineSigned - inlineBeforeSat;
  checkServer();
  if (sat.ok === 0) throw new Error(`no order was created; first error: ${sat.firstError ?? JSON.stringify(sat.transport)}`);
  const T = sat.perSecond;
  if (sat.inlineSigned > 0) warn(`${sat.inlineSigned} requests of the saturated run were signed inline (the pre-signed pool ran out)`);
  if (sat.generatorCpu > 0.9) warn(`the load generator used ${(sat.generatorCpu * 100).toFixed(0)}% of its core during the saturated run: it may be the bottleneck`);
  if (pin && sat.otherOnCpu0 > 0.05) warn(`other processes used ${(sat.otherOnCpu0 * 100).toFixed(0)}% of CPU 0 during the saturated run: the wall-clock figures are depressed; the CPU-time ratio is the better estimate`);
  if (sat.serverCpu + (Number.isFinite(sat.otherOnCpu0) ? sat.otherOnCpu0 : 0) < 0.9) warn(`the server used only ${(sat.serverCpu * 100).toFixed(0)}% of its core during the saturated run: not saturated (raise --concurrency?)`);

  // --- 4. open loop at `load` × T -------------------------------------------------------------
  let lat = null;
  const rate = opt.load * T;
  if (opt.latencySeconds > 0) {
    await topUp(rate * opt.latencySeconds * 1.02 + 10);
    note(`latency run: ${opt.latencySeconds} s open loop at ${Math.round(rate)} orders/s (${Math.round(opt.load * 100)}% of the saturated rate)…`);
    agent.maxSockets = Math.max(opt.concurrency, 256);
    lat = await openLoop(rate, opt.latencySeconds);
    checkServer();
  }

  // --- 5. RSS ---------------------------------------------------------------------------------
  sampleRss();
  const finalStatus = procStatus(server.pid);
  const hwmKb = finalStatus?.hwmKb ?? NaN;
  clearInterval(rssTimer);
  agent.destroy();

  let profile = null;
  if (opt.profile) {
    note('stopping the gateway to write its CPU profile…');
    await stopServer(20_000);
    profile = summariseProfile({
      dir: cpuProfDir,
      outDir: opt.profileDir,
      name: 'orders',
      window: { ...satWindow, only: 'saturated run only', of: 'the saturated run' },
      unit: 'order',
      units: 'orders',
      count: sat.ok,
      reference: `RSA sign+verify alone ${(1000 / R).toFixed(3)} ms/order`,
      spawnUs: serverSpawnUs,
      layers: LAYERS,
      top: { layers: 12, modules: 20, self: 30, inclusive: 30, dbByCaller: 8 },
      sql: { rows: 15, slow: true, short: 'head' },
      sqlTrace,
    });
  }

  // --- 6. the stack ceiling: the gateway stopped, a minimal server on the same core -----------
  // Same pool of pre-signed requests (it verifies them with the merchant key and signs its
  // answers with the merchant key too: RSA-2048 either way), same closed loop. The run is cut
  // into ~1 s slices (alternating between the servers with --ceiling-http, so that both see
  // the same machine), with a short RSA sign+verify measurement (a separate process on the same
  // core, idle otherwise) before the first slice and after each: this machine's speed drifts by
  // tens of percent within seconds, and the split "RSA vs the rest of the stack" needs both
  // figures from the same seconds. (Measured inside a ceiling server instead, the RSA loop
  // made that server's next requests dearer, which skewed the Fastify/node:http comparison.)
  const ceilings = {};
  const ceilingRsa = { ops: 0, cpuSeconds: 0 };
  let ceilingWarmup = null;
  if (opt.ceilingSeconds > 0) {
    if (!opt.profile) {
      note('stopping the gateway for the stack-ceiling phase…');
      await stopServer();
    }
    const merchantPublicKey = protocol.parsePublicKey(readFileSync(info.merchant_public_key_file, 'utf8'));
    // One sign + one verify per request on one core: it cannot beat the RSA rate per CPU second.
    const cap = Rcpu * 1.05;
    const kinds = ['fastify', ...(opt.ceilingHttp ? ['http'] : [])];
    const servers = {};
    const alive = (c) => {
      if (c.exited) throw new Error(`the ${c.kind} ceiling server exited during the run (${c.exited.signal ?? c.exited.code}):\n${c.stderrTail.join('').trim().slice(-3000)}`);
    };
    let rsaChild = null;
    const rsaLines = [];
    let rsaWaiter = null;
    const rsaSlice = async (ms) => {
      rsaChild.stdin.write(`${ms}\n`);
      const { ops, cpuSeconds } = JSON.parse(await nextRsaLine());
      ceilingRsa.ops += ops;
      ceilingRsa.cpuSeconds += cpuSeconds;
      return (cpuSeconds * 1000) / ops;
    };
    const nextRsaLine = () =>
      new Promise((resolveLine, reject) => {
        if (rsaLines.length) return resolveLine(rsaLines.shift());
        if (rsaChild.exitCode !== null || rsaChild.signalCode !== null) return reject(new Error('the RSA measurement child exited'));
        rsaWaiter = { resolveLine, reject };
      });
    try {
      // All requests first (half signed on CPU 0), so that nothing else runs there from the
      // warm-up on; sized from the RSA cap, so the pool should not run out. The warm-up re-sends
      // a small set over and over (the ceiling checks no replays), which saves signing time.
      const recycled = [];
      await topUp((cap * opt.ceilingSeconds + opt.concurrency * 4) * kinds.length + 2000);
      for (let i = 0; i < 2000; i += 1) recycled.push(take());
      let recycledNext = 0;
      const takeRecycled = () => recycled[recycledNext++ % recycled.length];
      // The RSA loop on demand: its own process (idle between calls) on the same core.
      rsaChild = track(spawn(...pinned(0, pin, process.execPath, [fileURLToPath(import.meta.url), '--internal-rsa-on-demand', info.merchant_private_key_file, info.merchant_public_key_file]), { stdio: ['pipe', 'pipe', 'inherit'] }));
      let rsaBuf = '';
      rsaChild.stdin.on('error', () => {}); // a dead child is reported by nextRsaLine
      rsaChild.stdout.setEncoding('utf8');
      rsaChild.stdout.on('data', (d) => {
        rsaBuf += d;
        for (let nl = rsaBuf.indexOf('\n'); nl >= 0; nl = rsaBuf.indexOf('\n')) {
          rsaLines.push(rsaBuf.slice(0, nl));
          rsaBuf = rsaBuf.slice(nl + 1);
        }
        if (rsaWaiter && rsaLines.length) {
          const w = rsaWaiter;
          rsaWaiter = null;
          w.resolveLine(rsaLines.shift());
        }
      });
      rsaChild.once('exit', () => rsaWaiter?.reject(new Error('the RSA measurement child exited')));
      if ((await nextRsaLine()) !== 'ready') throw new Error('the RSA measurement child did not start');
      for (const kind of kinds) {
        const c = await startCeiling({ pin, kind, privateKeyFile: info.merchant_private_key_file, publicKeyFile: info.merchant_public_key_file });
        servers[kind] = { c, target: { pid: c.pid, port: c.port, agent: new http.Agent({ keepAlive: true, maxSockets: opt.concurrency, maxFreeSockets: 1024 }), verifyKey: merchantPublicKey } };
      }
      note(`stack ceiling (${kinds.map((k) => CEILING_LABEL[k]).join(', ')}) started ${pin ? 'pinned to CPU 0' : 'unpinned'}; warm-up ${CEILING_WARMUP_S}–${CEILING_WARMUP_MAX_S} s${kinds.length > 1 ? ' each' : ''}…`);
      const warmCpu = Object.fromEntries(kinds.map((k) => [k, []]));
      let warmRounds = 0;
      const settled = () => kinds.every((k) => warmCpu[k].length >= 2 && Math.abs(warmCpu[k].at(-1) / warmCpu[k].at(-2) - 1) < 0.05);
      while (warmRounds < CEILING_WARMUP_MAX_S && (warmRounds < CEILING_WARMUP_S || !settled())) {
        for (const kind of kinds) {
          const w = await closedLoop(1, opt.concurrency, { ...servers[kind].target, take: takeRecycled });
          alive(servers[kind].c);
          if (w.ok === 0) throw new Error(`the ${kind} ceiling server answered nothing right in its warm-up; first error: ${w.firstError ?? JSON.stringify(w.transport)}`);
          warmCpu[kind].push(w.serverCpuSeconds / w.ok);
        }
        warmRounds += 1;
      }
      ceilingWarmup = { seconds: warmRounds, settled: settled(), cpu_ms_per_request: Object.fromEntries(kinds.map((k) => [k, warmCpu[k].map((x) => round(x * 1000, 3))])) };
      // Warned only when the last round still moved by more than 10%.
      if (kinds.some((k) => Math.abs(warmCpu[k].at(-1) / warmCpu[k].at(-2) - 1) > 0.1)) warn(`the stack-ceiling servers' CPU per request had not settled after a ${warmRounds} s warm-up (${JSON.stringify(ceilingWarmup.cpu_ms_per_request)} ms): the machine is noisy, or they warm up slowly`);
      // An even number of rounds with two servers (AB BA AB BA…), so a steady drift favours neither.
      let slices = Math.max(1, Math.round(opt.ceilingSeconds));
      if (kinds.length > 1 && slices % 2) slices += 1;
      const sliceSeconds = opt.ceilingSeconds / slices;
      note(`stack ceiling: ${opt.ceilingSeconds} s${kinds.length > 1 ? ' per server' : ''} at concurrency ${opt.concurrency}, in ${slices} slice(s)${kinds.length > 1 ? ' alternating' : ''}, RSA measured between them…`);
      const parts = Object.fromEntries(kinds.map((k) => [k, []]));
      let rsaBefore = await rsaSlice(250);
      for (let i = 0; i < slices; i += 1) {
        for (const kind of i % 2 ? [...kinds].reverse() : kinds) {
          const inline0 = inlineSigned;
          const m = await closedLoop(sliceSeconds, opt.concurrency, servers[kind].target);
          m.inlineSigned = inlineSigned - inline0;
          alive(servers[kind].c);
          const rsaAfter = await rsaSlice(250);
          // The RSA cost for this slice: the mean of the measurements just before and after it.
          m.rsaMs = (rsaBefore + rsaAfter) / 2;
          rsaBefore = rsaAfter;
          parts[kind].push(m);
        }
      }
      for (const kind of kinds) {
        const m = mergeStats(parts[kind]);
        if (m.ok === 0) throw new Error(`the ${kind} ceiling server answered nothing right; first error: ${m.firstError ?? JSON.stringify(m.transport)}`);
        ceilings[kind] = m;
        const what = `the ${CEILING_LABEL[kind]} stack-ceiling run`;
        if (m.inlineSigned > 0) warn(`${m.inlineSigned} requests of ${what} were signed inline (the pre-signed pool ran out)`);
        if (m.generatorCpu > 0.9) warn(`the load generator used ${(m.generatorCpu * 100).toFixed(0)}% of its core during ${what}: it may be the bottleneck (its CPU/request figure still holds)`);
        if (pin && m.otherOnCpu0 > 0.05) warn(`other processes used ${(m.otherOnCpu0 * 100).toFixed(0)}% of CPU 0 during ${what}: its wall-clock rate is depressed; its CPU/request figure is the better estimate`);
        if (m.serverCpu + (Number.isFinite(m.otherOnCpu0) ? m.otherOnCpu0 : 0) < 0.9) warn(`the ceiling server used only ${(m.serverCpu * 100).toFixed(0)}% of its core during ${what}: not saturated`);
        if (m.errors > 0) warn(`${m.errors} errors in ${what}${describeErrors(m)}`);
      }
    } finally {
      rsaChild?.stdin.end();
      for (const { c, target } of Object.values(servers)) {
        target.agent.destroy();
        await stopChildAfterSigterm(c, `the ${c.kind} ceiling server`, 3000);
      }
    }
  }
  const gatewayCpuMs = (sat.serverCpu * sat.elapsed * 1000) / sat.ok;
  const rsaCpuMs = 1000 / Rcpu;
  // Server CPU per order that still meets the target ratio (CPU-time form): RSA ms / target.
  const budgetMs = rsaCpuMs / TARGETS.ratio;
  // RSA CPU per sign+verify measured alongside the ceiling (the main figure if it could not be).
  const rsaNearCeilingMs = ceilingRsa.ops > 0 ? (ceilingRsa.cpuSeconds * 1000) / ceilingRsa.ops : rsaCpuMs;
  if (ceilingRsa.ops > 0 && Math.abs(rsaNearCeilingMs / rsaCpuMs - 1) > 0.1) {
    warn(`RSA sign+verify cost ${rsaNearCeilingMs.toFixed(3)} ms CPU alongside the stack ceiling but ${rsaCpuMs.toFixed(3)} ms at the start: the machine's speed drifted; the ceiling's CPU figures are set against the RSA cost alongside`);
  }
  /**
   * The ceiling in units of "one RSA sign+verify" measured around the same slices, which
   * cancels the drift; the gateway in units of the RSA cost from the start of the run.
   */
  const ceilingView = (m) => {
    const rsaMs = m.rsaMs ?? rsaNearCeilingMs;
    const units = m.cpuMs / rsaMs;
    const gatewayUnits = gatewayCpuMs / rsaCpuMs;
    return {
      rsaMs,
      units,
      ratioCpu: 1 / units,
      stackMs: m.cpuMs - rsaMs,
      budgetMs: rsaMs / TARGETS.ratio,
      roomMs: rsaMs / TARGETS.ratio - m.cpuMs,
      gatewayOwnMs: (gatewayUnits - units) * rsaMs,
      shareCpu: units / gatewayUnits,
    };
  };
  // Fastify's own CPU per request: the two ceilings' difference in RSA units (slice by slice),
  // in ms at the RSA cost alongside.
  const fastifyOwnMs = ceilings.fastify && ceilings.http ? (ceilingView(ceilings.fastify).units - ceilingView(ceilings.http).units) * rsaNearCeilingMs : null;
  const ceilingJson = (m) => {
    if (!m) return null;
    const v = ceilingView(m);
    return {
      per_s: round(m.perSecond, 1),
      ratio: round(m.perSecond / R, 3),
      cpu_ms_per_request: round(m.cpuMs, 3),
      // RSA CPU per sign+verify ÷ CPU per request, both from the same slices.
      ratio_cpu_time: round(v.ratioCpu, 3),
      rsa_cpu_ms_alongside: round(v.rsaMs, 3),
      // Everything but the RSA sign+verify: HTTP parsing/writing, framework, JSON, syscalls.
      stack_cpu_ms_per_request: round(v.stackMs, 3),
      gateway_share: round(T / m.perSecond, 3),
      gateway_share_cpu_time: round(v.shareCpu, 3),
      // Server CPU an order may cost at the target ratio, and what the ceiling leaves of it for
      // the gateway's own work (database, order logic, logging…); and what that work costs now.
      budget_ms_per_order_at_target: round(v.budgetMs, 3),
      room_at_target_ms_per_order: round(v.roomMs, 3),
      gateway_own_cpu_ms_per_order: round(v.gatewayOwnMs, 3),
      seconds: round(m.elapsed, 2),
      ok: m.ok,
      errors: m.errors,
      server_cpu_core_fraction: round(m.serverCpu, 3),
      other_processes_cpu0_fraction: round(m.otherOnCpu0, 3),
      generator_cpu_core_fraction: round(m.generatorCpu, 3),
      inline_signed: m.inlineSigned,
      response_signatures_checked: m.sigChecked,
      response_signatures_bad: m.sigBad,
      latency_p50_ms: round(pct(m.latencies, 0.5), 2),
      latency_p99_ms: round(pct(m.latencies, 0.99), 2),
      // Per slice, in run order: shows the machine's drift (the RSA figure alongside follows it).
      slices_cpu_ms_per_request: m.sliceCpuMs.map((x) => round(x, 3)),
    };
  };

  const figures = {
    orders_per_s: round(T, 1),
    rsa_sign_verify_per_s: round(R, 1),
    ratio: round(T / R, 3),
    // The same ratio from CPU time (server CPU per order vs RSA CPU per op): less sensitive to
    // other work sharing CPU 0, which the wall-clock ratio is not.
    ratio_cpu_time: round(1000 / ((sat.serverCpu * sat.elapsed * 1000) / sat.ok) / Rcpu, 3),
    rsa_sign_verify_per_cpu_s: round(Rcpu, 1),
    rsa_message_bytes: bound.messageBytes,
    latency_at_load: lat && {
      load: opt.load,
      target_rate_per_s: round(rate, 1),
      achieved_rate_per_s: round(lat.achieved, 1),
      p50_ms: round(lat.p50, 2),
      p99_ms: round(lat.p99, 2),
      max_ms: round(lat.max, 2),
      ok: lat.stats.ok,
      errors: lat.stats.errors,
    },
    latency_saturated: { concurrency: opt.concurrency, p50_ms: round(pct(sat.latencies, 0.5), 2), p99_ms: round(pct(sat.latencies, 0.99), 2), max_ms: round(pct(sat.latencies, 1), 2) },
    server_peak_rss_mb: round(hwmKb / 1024, 1),
    server_max_sampled_rss_mb: round(rssMaxKb / 1024, 1),
    saturated: {
      seconds: round(sat.elapsed, 2),
      ok: sat.ok,
      errors: sat.errors,
      http_status: sat.statuses,
      error_codes: sat.codes,
      transport_errors: sat.transport,
      server_cpu_core_fraction: round(sat.serverCpu, 3),
      server_cpu_ms_per_order: round((sat.serverCpu * sat.elapsed * 1000) / sat.ok, 3),
      rsa_cpu_ms_per_order: round(1000 / Rcpu, 3),
      other_processes_cpu0_fraction: round(sat.otherOnCpu0, 3),
      steal_cpu0_fraction: round(sat.stealCpu0, 3),
      generator_cpu_core_fraction: round(sat.generatorCpu, 3),
      inline_signed: sat.inlineSigned,
      response_signatures_checked: sat.sigChecked,
      response_signatures_bad: sat.sigBad,
    },
    warmup: warm && { seconds: opt.warmup, orders_per_s: round(warm.perSecond, 1), errors: warm.errors },
    cpu_budget_ms_per_order_at_target: round(budgetMs, 3),
    stack_ceiling: ceilingJson(ceilings.fastify) ?? null,
    stack_ceiling_warmup: ceilingWarmup,
    ...(opt.ceilingHttp ? { stack_ceiling_http: ceilingJson(ceilings.http) ?? null, fastify_own_cpu_ms_per_request: fastifyOwnMs === null ? null : round(fastifyOwnMs, 3) } : {}),
    generator_sign_per_s: round(generatorSignRate, 1),
    targets: { ratio_min: TARGETS.ratio, p99_ms_max: TARGETS.p99Ms, rss_mb_max: TARGETS.rssMb },
    meets_targets: {
      ratio: T / R >= TARGETS.ratio,
      p99: lat ? lat.p99 < TARGETS.p99Ms : null,
      rss: hwmKb / 1024 < TARGETS.rssMb,
    },
    environment: {
      pinned: pin,
      node: process.version,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cpus,
      loadavg_before: loadBefore.map((l) => round(l, 2)),
      loadavg_after: os.loadavg().map((l) => round(l, 2)),
      date: new Date().toISOString(),
    },
    warnings,
    ...(profile ? { profile: profile.json } : {}),
  };

  if (!opt.json) {
    const pad = (s) => s.padEnd(52);
    const lines = [
      '',
      `${pad('order creations/s (HTTP, SQLite, server on 1 core):')}${Math.round(T)}`,
      `${pad('RSA-2048 sign+verify/s (1 core):')}${Math.round(R)}`,
      `${pad('ratio:')}${(T / R).toFixed(2)}  (target >= ${TARGETS.ratio})${T / R >= TARGETS.ratio ? '' : '  MISSED'}`,
      lat
        ? `${pad(`latency at ${Math.round(opt.load * 100)}% load (${Math.round(lat.achieved)}/s, open loop):`)}p50 ${fmtMs(lat.p50)}, p99 ${fmtMs(lat.p99)}  (target p99 < ${TARGETS.p99Ms} ms)${lat.p99 < TARGETS.p99Ms ? '' : '  MISSED'}`
        : `${pad('latency at load:')}skipped (--latency-seconds 0)`,
      `${pad(`latency saturated (c=${opt.concurrency}, closed loop):`)}p50 ${fmtMs(pct(sat.latencies, 0.5))}, p99 ${fmtMs(pct(sat.latencies, 0.99))}`,
      `${pad('server peak RSS (VmHWM):')}${Math.round(hwmKb / 1024)} MB  (target < ${TARGETS.rssMb} MB)${hwmKb / 1024 < TARGETS.rssMb ? '' : '  MISSED'}`,
      '',
      ...ceilingLines(),
      `${pad('ratio by CPU time (robust to a shared machine):')}${(1000 / ((sat.serverCpu * sat.elapsed * 1000) / sat.ok) / Rcpu).toFixed(2)}`,
      `${pad('server CPU during the saturated run:')}${(sat.serverCpu * 100).toFixed(0)}% of one core, ${((sat.serverCpu * sat.elapsed * 1000) / sat.ok).toFixed(3)} ms CPU/order (RSA sign+verify alone: ${(1000 / Rcpu).toFixed(3)} ms)`,
      `${pad('other work on CPU 0 (saturated run):')}${pin ? `${(sat.otherOnCpu0 * 100).toFixed(0)}% other processes, ${(sat.stealCpu0 * 100).toFixed(0)}% steal` : 'n/a (not pinned)'}`,
      `${pad('load generator CPU (saturated run):')}${(sat.generatorCpu * 100).toFixed(0)}% of one core; ${sat.inlineSigned} requests signed inline`,
      `${pad('errors (saturated / latency run):')}${sat.errors} / ${lat ? lat.stats.errors : '-'}${describeErrors(sat, lat?.stats)}`,
      `${pad('response signatures checked:')}${sat.sigChecked + (lat?.stats.sigChecked ?? 0)}, bad: ${sat.sigBad + (lat?.stats.sigBad ?? 0)}`,
      `${pad('machine:')}${figures.environment.cpu}, ${cpus} CPUs, ${pin ? 'pinned' : 'NOT pinned'}, load avg ${loadBefore[0].toFixed(2)} before / ${os.loadavg()[0].toFixed(2)} after`,
      ...warnings.map((w) => `warning: ${w}`),
      ...(profile ? ['', ...profile.text] : []),
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
  process.stdout.write(`${JSON.stringify(figures)}\n`);

  function ceilingLines() {
    const f = ceilings.fastify;
    const h = ceilings.http;
    if (!f && !h) return opt.ceilingSeconds > 0 ? [] : ['stack ceiling:                                          skipped (--ceiling-seconds 0)', ''];
    const p = (s) => (s.length < 56 ? s.padEnd(56) : `${s} `);
    const pc = (x) => `${Math.round(x * 100)}%`;
    const ms = (x) => x.toFixed(2);
    const head = (label, m) => `${p(`stack ceiling (${label} + verify + sign, no DB, 1 core):`)}${Math.round(m.perSecond)}/s  (ratio ${(m.perSecond / R).toFixed(2)}), ${ms(m.cpuMs)} ms CPU/request`;
    const split = (m) => {
      const v = ceilingView(m);
      return `${p('  by CPU time:')}ratio ${v.ratioCpu.toFixed(2)}; RSA sign+verify ${ms(v.rsaMs)} + rest of the stack ${ms(v.stackMs)} ms/request`;
    };
    const out = [];
    if (f) {
      const v = ceilingView(f);
      out.push(
        head('fastify', f),
        `${p('gateway share of the ceiling:')}${pc(T / f.perSecond)}  (by CPU time ${pc(v.shareCpu)})`,
        split(f),
        `${p(`  CPU budget per order at ratio ${TARGETS.ratio}:`)}${ms(v.budgetMs)} ms; the ceiling takes ${ms(f.cpuMs)}, leaving ${ms(v.roomMs)} for the gateway's own work (now ${ms(v.gatewayOwnMs)})`,
      );
    }
    if (h) {
      out.push(head('node:http', h), split(h));
      if (f) out.push(`${p("Fastify's own share:")}${fastifyOwnMs.toFixed(3)} ms CPU/request (${pc((ceilingView(f).units - ceilingView(h).units) / ceilingView(f).units)} of the Fastify ceiling's)`);
    }
    const all = [f, h].filter(Boolean);
    out.push(
      `${p(`  other work on CPU 0 / load generator CPU${h && f ? ' (fastify; http)' : ''}:`)}${all.map((m) => `${pin ? pc(m.otherOnCpu0) : 'n/a'} / ${pc(m.generatorCpu)}`).join('; ')}; RSA alongside ${ms(rsaNearCeilingMs)} ms (at the start ${ms(rsaCpuMs)})`,
      '',
    );
    return out;
  }

  // --- the open loop (closure over agent, pool, stats) ----------------------------------------
  async function openLoop(ratePerSecond, seconds) {
    const stats = newStats(platformPublicKey);
    const total = Math.max(1, Math.floor(ratePerSecond * seconds));
    const interval = 1000 / ratePerSecond;
    let sent = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const start = performance.now();
    await new Promise((done) => {
      const fire = (scheduled) => {
        inFlight += 1;
        if (inFlight > maxInFlight) maxInFlight = inFlight;
        const req = take();
        send(agent, port, req).then((res) => {
          const t = performance.now();
          // From the scheduled send time: queueing behind a slow server counts (no coordinated omission).
          record(stats, res, t - scheduled, t);
          inFlight -= 1;
          if (sent >= total && inFlight === 0) done();
        });
      };
      const tick = () => {
        if (aborting) return done();
        const now = performance.now();
        const due = Math.min(total, Math.floor((now - start) / interval) + 1);
        while (sent < due) fire(start + sent++ * interval);
        if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
      };
      tick();
    });
    return {
      stats,
      achieved: stats.ok / ((stats.last - start) / 1000),
      p50: pct(stats.latencies, 0.5),
      p99: pct(stats.latencies, 0.99),
      max: pct(stats.latencies, 1),
      maxInFlight,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The --profile summary's layers (profile.mjs): where the server's self time goes, per leaf frame.

const FASTIFY_MODULES = ['fastify', 'find-my-way', 'avvio', 'light-my-request', 'fast-json-stringify', 'fast-querystring', 'process-warning'];
const LAYERS = [
  ['RSA sign/verify (node:crypto)', (mod) => mod === 'node:internal/crypto/sig'],
  ['SQLite (prepare + execute, incl. WAL commits/checkpoints)', isSqlite],
  ['Kysely query building/compiling', (mod) => mod === 'kysely'],
  ['logging (pino, fastify child loggers)', (mod, cf) => mod === 'pino' || /fastify\/lib\/logger/.test(cf.url)],
  ['Fastify', (mod) => FASTIFY_MODULES.includes(mod) || mod.startsWith('@fastify/')],
  ['Node HTTP/net/streams', (mod) => /^node:(_http|net|internal\/(stream|streams|http|net)|stream)/.test(mod) || NATIVE_WRITES.includes(mod)],
  ['other node:crypto (random, hashes)', (mod) => mod.startsWith('node:internal/crypto')],
  ['gateway code (JS self time)', (mod) => mod.startsWith('packages/gateway/')],
  ['protocol code (JS self time, excl. RSA)', (mod) => mod.startsWith('packages/protocol/')],
];

// ---------------------------------------------------------------------------------------------

function pct(values, p) {
  if (values.length === 0) return NaN;
  if (!values.sorted) {
    values.sort((a, b) => a - b);
    values.sorted = true;
  }
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil(p * values.length) - 1))];
}

function fmtMs(ms) {
  return Number.isFinite(ms) ? `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms` : 'n/a';
}

function describeErrors(...all) {
  const parts = [];
  for (const s of all) {
    if (!s || s.errors === 0) continue;
    parts.push(`status ${JSON.stringify(s.statuses)} codes ${JSON.stringify(s.codes)} transport ${JSON.stringify(s.transport)}${s.firstError ? ` first: ${s.firstError}` : ''}`);
  }
  return parts.length ? `  (${parts.join('; ')})` : '';
}

// ---------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv[0] === '--internal-rsa-bound') {
  rsaBoundChild(argv[1], argv[2], Number(argv[3]));
} else if (argv[0] === '--internal-presign') {
  await presignChild(argv[1]);
} else if (argv[0] === '--internal-rsa-on-demand') {
  await rsaOnDemandChild(argv[1], argv[2]);
} else if (argv[0] === '--internal-ceiling') {
  await ceilingChild(argv[1]);
} else {
  await runOrchestrator({
    main,
    stop: stopServer,
    finalWait: 5000,
    stopping: 'stopping the gateway and removing ',
    tmpDir: () => tmpDir,
    onSignal: () => {
      aborting = true;
    },
  });
}
