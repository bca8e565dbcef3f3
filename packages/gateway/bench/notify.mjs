#!/usr/bin/env node
// Notification-delivery benchmark of the built gateway (see bench/README.md, "bench:notify").
//
//   node bench/notify.mjs [--notifications 5000] [--latency-samples 200] [--gap-ms 20-50]
//                         [--concurrency 64] [--per-destination 8] [--destinations 1]
//                         [--poll-ms 1000] [--log-level info] [--rsa-seconds 3]
//                         [--ceiling-seconds 5] [--ceiling-http]
//                         [--database postgres://…] [--json] [--profile] [--profile-dir DIR]
//
// It prints figures; it asserts nothing (a missed target is printed, never an exit code).
//
// Layout: the gateway's delivery runs in a child of this script (`--internal-gateway`) pinned to
// CPU 0: it imports the BUILT gateway (dist/cli/gateway.js, createGateway + loadConfig, workers
// on) and is driven over IPC. The merchant's receiver is another child (`--internal-receiver`,
// plain node:http) pinned to CPU 1 with this script: it answers `SUCCESS` at once and decrypts
// nothing except a sample (checked after answering). Phases:
//   1. preload (`--internal-preload`, CPU 0, its own process, workers off): a merchant, an
//      application, N + latency-samples orders through the createOrder use case, and N of them
//      PAID through gateway.payments.transferObserved, which writes each ORDER_PAID notification
//      in the same transaction as the state change. The process exits: a backlog in the database.
//   2. the one-core RSA-2048 SHA256withRSA sign rate: a child on CPU 0 (the gateway child is up
//      but idle: its workers start only at `listen()`), signing a real payload from phase 1.
//   3. delivery of the backlog: the gateway child calls listen(), which starts its notification
//      worker; timed from just before that call until every row is DELIVERED; its CPU time.
//   4. delay from the state-change commit to the receiver's answer, idle system: one order at a
//      time, the SAME gateway process commits (transferObserved) and delivers (its own worker's
//      wake-up). Both children stamp CLOCK_MONOTONIC (process.hrtime), which all processes share.
//   5. the "delivery ceiling", with the gateway stopped: a child on CPU 0 (`--internal-ceiling`)
//      that does per delivery only what the protocol forces (a fresh envelope for the same
//      payload bytes with sealNotification, JSON.stringify, a POST with the gateway's own sender
//      adapter; optionally also a bare http.request) to the same receiver, with the gateway's
//      in-flight limit, and no database. Its rate bounds what any gateway doing this protocol on
//      this Node HTTP stack could reach on one core; the RSA sign cost is measured between its
//      ~1 s slices by another child on CPU 0 (`--internal-rsa-on-demand`), as the machine drifts.
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { checkBuilt, childEnv, closeGateway, cpuTimes, fail, hasTaskset, hrUs, loadDist, loadProtocol, noter, parallel, pinned, procStatus, round, runChild, runOrchestrator, staleDist, stopChild, track } from './common.mjs';
import { benchNodeFlags, isSqlite, NATIVE_WRITES, profileFlags, summariseProfile } from './profile.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const GATEWAY_DIR = resolve(HERE, '..');
const DIST = join(GATEWAY_DIR, 'dist');
/** The built modules the children import (named here so a missing build fails with a hint). */
const DIST_MODULES = {
  gateway: 'cli/gateway.js',
  config: 'cli/config.js',
  admin: 'app/merchant-admin.js',
  createOrder: 'app/create-order.js',
  nonceGuard: 'app/nonce-guard.js',
  rates: 'domain/rates.js',
  catalogue: 'domain/catalogue.js',
  httpSender: 'adapters/notify/http-sender.js',
};
const TARGETS = { ratio: 0.5, p99Ms: 500 };
// Delivery-ceiling warm-up: 1 s rounds, at least 2, until CPU per delivery settles (within 5% of
// the round before), at most 4.
const CEILING_WARMUP_S = 2;
const CEILING_WARMUP_MAX_S = 4;
const CEILING_LABEL = { sender: "the gateway's sender", http: 'bare http.request' };
/** What the gateway's sender is created with (cli/gateway.ts): notify.timeout_ms's default, private targets allowed. */
const SENDER_TIMEOUT_MS = 10_000;
const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const ORDER_DESC = 'Benchmark order: 1 x test item';
const USAGE = `usage: node bench/notify.mjs [options]     (npm run bench:notify)
  --notifications N     backlog size: PAID orders whose notifications are delivered (default 5000)
  --latency-samples N   commit-to-answer samples, one order at a time (default 200; 0 skips)
  --gap-ms A-B          idle gap between samples, uniform in [A, B] ms (default 20-50)
  --concurrency N       the gateway's notify.concurrency (default 64, the gateway's default)
  --per-destination N   the gateway's notify.per_destination (default 8, the gateway's default)
  --destinations N      receiver ports = destinations (host:port), orders spread over them (default 1)
  --poll-ms N           the gateway's notify.poll_ms (default 1000; irrelevant to the figures:
                        the committing/starting process wakes its own worker)
  --log-level L         the gateway's log level (default info, the gateway's default: one line
                        per delivery, part of the real cost)
  --rsa-seconds S       RSA-2048 sign measurement length (default 3)
  --ceiling-seconds S   delivery-ceiling run length, after a 2-4 s warm-up (default 5; 0 skips it)
  --ceiling-http        also measure the delivery ceiling with a bare http.request (the sender's own share)
  --database URL        postgres://… server to use: a fresh database is created there and dropped
                        at the end (default: SQLite in a fresh temporary data directory)
  --json                print only the one-line JSON of the figures
  --profile             run the delivering gateway under --cpu-prof (+ SQL statement trace) and
                        summarise the backlog window per delivery
  --profile-dir DIR     where the .cpuprofile and its summary go (default bench/profiles)
`;

// ---------------------------------------------------------------------------------------------
// Shared helpers.

/** A transfer that pays order `i` (10.50 USDT on Polygon, final) as the chain watcher would report it. */
function transferFact(paymentOrderNo, i) {
  return {
    paymentOrderNo,
    network: '4',
    currency: 'USDT',
    txHash: `0x${(i + 1).toString(16).padStart(64, '0')}`,
    logIndex: 0,
    blockNumber: 1000 + i,
    blockHash: `0x${(i + 0x1000000).toString(16).padStart(64, '0')}`,
    address: WALLET,
    amount: 10_500_000n,
    confirmations: 64,
    status: 'FINAL',
  };
}

/** Rows per status of a table's `column`, as { STATUS: n }. */
async function countBy(kysely, table, column) {
  const rows = await kysely
    .selectFrom(table)
    .select([column, (eb) => eb.fn.countAll().as('n')])
    .groupBy(column)
    .execute();
  return Object.fromEntries(rows.map((r) => [r[column], Number(r.n)]));
}

// ---------------------------------------------------------------------------------------------
// Internal child mode 1: the preload (its own process, CPU 0, workers off).

async function preloadChild(argsJson) {
  const a = JSON.parse(argsJson);
  const protocol = await loadProtocol();
  const m = await loadDist(DIST, DIST_MODULES);
  const config = m.config.loadConfig('production');
  const gw = await m.gateway.createGateway({ config, workers: false });
  try {
    const wallets = Object.fromEntries(m.catalogue.NETWORK_IDS.map((n) => [n, WALLET]));
    const merchant = await m.admin.createMerchant(gw, { name: 'Benchmark Merchant', wallets });
    if (!merchant.ok) throw new Error(`createMerchant: ${merchant.message}`);
    const pair = protocol.generateRsaKeyPair();
    const app = await m.admin.createApplication(gw, { merchantNo: merchant.value.merchantNo, merchantPublicKey: pair.publicKeyPem });
    if (!app.ok) throw new Error(`createApplication: ${app.message}`);
    const appId = app.value.application.appId;
    const merchantNo = merchant.value.merchantNo;
    writeFileSync(a.merchantPrivateKeyFile, pair.privateKeyPem, { mode: 0o600 });
    writeFileSync(a.merchantPublicKeyFile, pair.publicKeyPem);
    writeFileSync(a.platformPublicKeyFile, app.value.platformKey.publicKeyPem);

    const deps = { store: gw.store, clock: gw.clock, ids: gw.ids, deployment: config.deployment, rates: m.rates.rateTableFrom(config.rates), publicUrl: config.publicUrl };
    const caller = { appId, merchantNo };
    const total = a.backlog + a.latency;
    const orderNos = new Array(total);
    const t0 = performance.now();
    await parallel(0, total, 32, async (i) => {
      const nowMs = Date.now();
      const body = {
        merchant_no: merchantNo,
        request_no: `nb_${i}`,
        merchant_order_no: `shop-${i}`,
        merchant_order_time: Math.floor(nowMs / 1000),
        total_amount: '10.50',
        merchant_order_currency: 'USDT',
        merchant_order_desc: ORDER_DESC,
        notify_url: a.notifyUrls[i % a.notifyUrls.length],
      };
      const nonce = new m.nonceGuard.NonceGuard(gw.store, { appId, nonce: protocol.generateNonce(), expiresAtMs: nowMs + 600_000, nowMs });
      const r = await m.createOrder.createOrder(deps, caller, 'standard', body, nonce);
      if (!r.ok) throw new Error(`createOrder refused order ${i}: ${r.code} ${r.message}`);
      orderNos[i] = r.data.payment_order_no;
    });
    const t1 = performance.now();
    // The backlog: N orders paid through the payment port (state change + notification, one transaction).
    await parallel(0, a.backlog, 32, async (i) => {
      const outcome = await gw.payments.transferObserved(transferFact(orderNos[i], i));
      if (!outcome.ok || !outcome.changed || outcome.order.state.status !== 'PAID') {
        throw new Error(`transferObserved did not make order ${orderNos[i]} PAID: ${JSON.stringify(outcome.ok ? { status: outcome.order.state.status, changed: outcome.changed } : outcome)}`);
      }
    });
    const t2 = performance.now();
    const statuses = await countBy(gw.db.kysely, 'notifications', 'status');
    if ((statuses.PENDING ?? 0) !== a.backlog) throw new Error(`expected ${a.backlog} PENDING notifications, found ${JSON.stringify(statuses)}`);
    // A real payload as the delivery signs it (the stored payload plus notify_time), for the RSA figure.
    const [first] = await gw.store.notifications.listByOrder(orderNos[0]);
    const payloadJson = JSON.stringify({ ...JSON.parse(first.payload), notify_time: Math.floor(Date.now() / 1000) });
    writeFileSync(a.payloadFile, payloadJson);
    // The platform key the deliveries sign with (and its serial), for the delivery ceiling, which
    // opens no database; a temporary benchmark key, removed with the data directory.
    const signing = await gw.platformKeys.signingKeyFor(appId);
    writeFileSync(a.platformPrivateKeyFile, signing.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const out = {
      appId,
      merchantNo,
      platformSerial: signing.serial,
      latencyOrders: orderNos.slice(a.backlog),
      database: gw.db.description.replace(/\/\/[^@/]*@/, '//'),
      dialect: gw.db.dialect,
      payloadBytes: Buffer.byteLength(payloadJson),
      createSeconds: (t1 - t0) / 1000,
      paySeconds: (t2 - t1) / 1000,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await closeGateway(gw);
  }
}

/**
 * gateway.close(), holding the event loop open meanwhile: without a listen() before, nothing
 * else keeps the process alive while the SQLite checkpointer thread (unref'd) stops, and a
 * top-level await of close() would end the process with exit code 13 half-way.
 */

// ---------------------------------------------------------------------------------------------
// Internal child mode 2: the delivering gateway (CPU 0), driven over IPC.

async function gatewayChild() {
  const m = await loadDist(DIST, DIST_MODULES);
  const config = m.config.loadConfig('production');
  const gw = await m.gateway.createGateway({ config, workers: true });
  // Fastify's start-up work (plugins, routes) now, so listen() only binds and starts the workers.
  await gw.server.ready();
  const sqlSnapshots = process.env.SPARKPAY_BENCH_SQL_TRACE !== undefined;
  const send = (msg) => process.send(msg);
  let backlog = null; // { total, startUs, cpu0, done }
  let settled = 0;
  let checking = false;
  let fallback = null;

  const checkBacklog = async () => {
    if (!backlog || backlog.done || checking) return;
    checking = true;
    try {
      const statuses = await countBy(gw.db.kysely, 'notifications', 'status');
      if ((statuses.DELIVERED ?? 0) >= backlog.total && !backlog.done) {
        backlog.done = true;
        const endUs = hrUs();
        const cpu = process.cpuUsage(backlog.cpu0);
        if (sqlSnapshots) process.emit('SIGUSR2');
        clearInterval(fallback);
        send({ type: 'backlog-done', startUs: backlog.startUs, endUs, cpuUs: cpu.user + cpu.system, statuses, settled });
      } else if (!fallback) {
        // Everything settled once but not all delivered (failures wait for their retry): look again.
        fallback = setInterval(() => void checkBacklog(), 250);
      }
    } catch (err) {
      send({ type: 'error', message: `counting notifications: ${err.message}` });
    } finally {
      checking = false;
    }
  };

  process.on('message', (msg) => {
    void (async () => {
      try {
        if (msg.cmd === 'go') {
          backlog = { total: msg.total, startUs: hrUs(), cpu0: process.cpuUsage(), done: false };
          if (sqlSnapshots) process.emit('SIGUSR2');
          await gw.listen(); // starts the notification worker: it finds the backlog at once
          const kick = gw.notifications.onSettled;
          gw.notifications.onSettled = () => {
            kick();
            settled += 1;
            if (settled >= backlog.total) void checkBacklog();
          };
          send({ type: 'listening', atUs: hrUs() });
        } else if (msg.cmd === 'pay') {
          const before = hrUs();
          const outcome = await gw.payments.transferObserved(transferFact(msg.paymentOrderNo, msg.index));
          const commitUs = hrUs();
          send({ type: 'paid', paymentOrderNo: msg.paymentOrderNo, commitUs, callUs: commitUs - before, ok: outcome.ok && outcome.changed });
        } else if (msg.cmd === 'stats') {
          const [notifications, attempts] = await Promise.all([countBy(gw.db.kysely, 'notifications', 'status'), countBy(gw.db.kysely, 'notification_attempts', 'outcome')]);
          send({ type: 'stats', notifications, attempts, busy: gw.notifications.busy });
        } else if (msg.cmd === 'stop') {
          await closeGateway(gw);
          process.exit(0);
        }
      } catch (err) {
        send({ type: 'error', message: err instanceof Error ? err.stack : String(err) });
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', pid: process.pid });
}

// ---------------------------------------------------------------------------------------------
// Internal child mode 3: the merchant's receiver (CPU 1): answers SUCCESS at once.

async function receiverChild(argsJson) {
  const a = JSON.parse(argsJson);
  const protocol = await loadProtocol();
  let mode = 'bulk';
  let keys = null;
  const s = { received: 0, answered: 0, verified: 0, bad: 0, firstBad: null, firstUs: null, lastUs: null, methods: {}, contentTypes: {} };

  const check = (raw) => {
    try {
      const opened = protocol.openNotification(raw, keys);
      const p = opened.payload;
      if (p.notify_type !== 'ORDER_PAID' || p.pay_status !== 'PAID' || typeof p.notify_id !== 'string' || typeof p.notify_time !== 'number') {
        throw new Error(`unexpected payload ${opened.payloadJson.slice(0, 200)}`);
      }
      return p;
    } catch (err) {
      s.bad += 1;
      s.firstBad ??= `${err.kind ?? ''} ${err.message}`.trim();
      return null;
    }
  };

  const handle = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const arrivedUs = hrUs();
      s.received += 1;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('SUCCESS');
      const answeredUs = hrUs();
      s.answered += 1;
      s.firstUs ??= answeredUs;
      s.lastUs = answeredUs;
      s.methods[req.method] = (s.methods[req.method] ?? 0) + 1;
      const ct = String(req.headers['content-type']);
      s.contentTypes[ct] = (s.contentTypes[ct] ?? 0) + 1;
      const n = s.answered;
      if (mode === 'latency') {
        // Only after answering: the decryption is not part of the measured delay.
        setImmediate(() => {
          const raw = Buffer.concat(chunks);
          const p = keys ? check(raw) : null;
          if (p) s.verified += 1;
          process.send({ type: 'answered', paymentOrderNo: p?.payment_order_no ?? null, arrivedUs, answeredUs });
        });
      } else if (keys && (n <= 10 || n % a.sampleEvery === 0)) {
        setImmediate(() => {
          if (check(Buffer.concat(chunks))) s.verified += 1;
        });
      }
    });
  };

  const ports = [];
  for (let i = 0; i < a.destinations; i += 1) {
    const server = http.createServer(handle);
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    ports.push(server.address().port);
  }
  process.on('message', (msg) => {
    if (msg.cmd === 'keys') {
      const priv = readFileSync(msg.merchantPrivateKeyFile, 'utf8');
      const pub = readFileSync(msg.platformPublicKeyFile, 'utf8');
      keys = { merchantPrivateKey: protocol.parsePrivateKey(priv), platformPublicKey: protocol.parsePublicKey(pub) };
      process.send({ type: 'keys-ok' });
    } else if (msg.cmd === 'mode') {
      mode = msg.mode;
      process.send({ type: 'mode-ok' });
    } else if (msg.cmd === 'stats') {
      const cpu = process.cpuUsage();
      process.send({ type: 'stats', ...s, cpuUs: cpu.user + cpu.system });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'listening', ports });
}

// ---------------------------------------------------------------------------------------------
// Internal child mode 4: the one-core RSA-2048 sign rate (and, for context, a whole envelope).

async function rsaChild(argsJson) {
  const a = JSON.parse(argsJson);
  const protocol = await loadProtocol();
  const { loop, sign, seal, messageBytes } = rsaOps(protocol, a);
  loop(300, sign); // warm-up
  const signs = loop(a.seconds * 1000, sign);
  loop(100, seal);
  const seals = loop(Math.max(500, (a.seconds * 1000) / 3), seal);
  process.stdout.write(`${JSON.stringify({ signs, seals, messageBytes })}\n`);
}

/** The RSA sign loop and the whole-envelope loop of rsaChild, over the run's real payload. */
function rsaOps(protocol, a) {
  const payloadJson = readFileSync(a.payloadFile, 'utf8');
  const merchantPublicKey = protocol.parsePublicKey(readFileSync(a.merchantPublicKeyFile, 'utf8'));
  // A platform-like key: RSA-2048, e = 65537, parsed once (as PlatformKeys caches it).
  const platformPrivateKey = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }).privateKey;
  const loop = (ms, op) => {
    let n = 0;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    let now = start;
    while (now - start < ms) {
      for (let i = 0; i < 8; i += 1) op();
      n += 8;
      now = performance.now();
    }
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return { n, perSecond: (n * 1000) / (now - start), perCpuSecond: n / cpuSeconds, cpuSeconds };
  };
  // Exactly what the delivery signs: SHA256withRSA over the payload JSON, Base64.
  const sign = () => {
    if (protocol.signPayload(platformPrivateKey, payloadJson).length !== 344) throw new Error('RSA self-check failed');
  };
  // The whole envelope (sign + RSA-OAEP wrap + AES-256-CBC + JSON), for context only.
  const seal = () => JSON.stringify(protocol.sealNotification(payloadJson, { appId: '123456789012345678', serial: 'S1', merchantPublicKey, platformPrivateKey }));
  return { loop, sign, seal, messageBytes: Buffer.byteLength(payloadJson) };
}

/**
 * The same loops on demand, for the delivery-ceiling phase: pinned to CPU 0 beside the ceiling
 * children and idle between calls, it runs `ms` of RSA signs and `ms` of whole envelopes per
 * `measure` message (only between load slices) and answers their counts and CPU seconds.
 */
async function rsaOnDemandChild(argsJson) {
  const a = JSON.parse(argsJson);
  const protocol = await loadProtocol();
  const { loop, sign, seal } = rsaOps(protocol, a);
  loop(300, sign); // warm-up
  loop(100, seal);
  process.on('message', (msg) => {
    if (msg.cmd !== 'measure') return;
    const signs = loop(msg.ms, sign);
    const seals = loop(msg.ms, seal);
    process.send({ type: 'measured', signs, seals });
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------
// Internal child mode 5: the delivery ceiling (CPU 0, the gateway stopped), driven over IPC.
// Per delivery only what the protocol forces: a fresh envelope for the run's payload bytes
// (sealNotification: fresh AES key, RSA-OAEP wrap with the merchant key, AES-256-CBC, one
// SHA256withRSA signature with the platform key), JSON.stringify, one POST to the receiver,
// its answer checked for SUCCESS; no database, no logging, no attempt log. `kind` 'sender'
// POSTs with the gateway's own adapter (dist/adapters/notify/http-sender.js, created as the
// gateway creates it); 'http' with a bare http.request on a keep-alive agent. In flight: the
// gateway's limits, min(concurrency, per_destination x destinations), spread over the
// destinations as the orders were.

async function ceilingChild(argsJson) {
  const a = JSON.parse(argsJson);
  const protocol = await loadProtocol();
  const payloadJson = readFileSync(a.payloadFile, 'utf8');
  // Keys parsed once, as the gateway does (PlatformKeys and its merchant-key cache).
  const merchantPublicKey = protocol.parsePublicKey(readFileSync(a.merchantPublicKeyFile, 'utf8'));
  const platformPrivateKey = protocol.parsePrivateKey(readFileSync(a.platformPrivateKeyFile, 'utf8'));
  const seal = () => JSON.stringify(protocol.sealNotification(payloadJson, { appId: a.appId, serial: a.serial, merchantPublicKey, platformPrivateKey }));
  // The sender's request headers, so that the two kinds differ only in the code around the request.
  const headers = (body) => ({ 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'User-Agent': 'SparkPay-Notifier/0.1', Accept: 'text/plain, */*' });
  /** POSTs one envelope; resolves null when delivered (200 SUCCESS), else a description. */
  let post;
  if (a.kind === 'sender') {
    checkBuilt(DIST, DIST_MODULES);
    const { createHttpSender } = await import(pathToFileURL(join(DIST, DIST_MODULES.httpSender)).href);
    const sender = createHttpSender({ timeoutMs: SENDER_TIMEOUT_MS, allowPrivate: true, socketsPerHost: a.perDestination });
    post = async (url, body) => {
      const r = await sender.send(url, body);
      return r.delivered ? null : `${r.errorKind}: ${r.error ?? `HTTP ${r.httpStatus}`}`;
    };
  } else {
    const agent = new http.Agent({ keepAlive: true, maxSockets: a.perDestination, maxFreeSockets: a.perDestination });
    const targets = new Map(a.urls.map((u) => [u, new URL(u)]));
    post = (url, body) =>
      new Promise((resolvePost) => {
        const u = targets.get(url);
        const req = http.request({ agent, host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: headers(body) }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolvePost(res.statusCode === 200 && text.trim() === 'SUCCESS' ? null : `HTTP ${res.statusCode} ${text.slice(0, 100)}`);
          });
          res.on('error', (e) => resolvePost(e.code ?? e.message));
        });
        req.on('error', (e) => resolvePost(e.code ?? e.message));
        req.end(body);
      });
  }
  const lanes = Array.from({ length: Math.min(a.concurrency, a.perDestination * a.urls.length) }, (_, i) => a.urls[i % a.urls.length]);
  let run = null;
  const lane = async (url) => {
    while (performance.now() < run.until) {
      const err = await post(url, seal());
      if (err === null) run.ok += 1;
      else {
        run.errors += 1;
        run.firstError ??= err;
      }
    }
  };
  process.on('message', (msg) => {
    if (msg.cmd !== 'run') return;
    void (async () => {
      const cpu0 = process.cpuUsage();
      const start = performance.now();
      run = { until: start + msg.seconds * 1000, ok: 0, errors: 0, firstError: null };
      await Promise.all(lanes.map(lane));
      const seconds = (performance.now() - start) / 1000;
      const cpu = process.cpuUsage(cpu0);
      process.send({ type: 'ran', ok: run.ok, errors: run.errors, firstError: run.firstError, seconds, cpuUs: cpu.user + cpu.system, lanes: lanes.length });
    })().catch((err) => process.send({ type: 'error', message: err instanceof Error ? err.stack : String(err) }));
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------
// The orchestrator (CPU 1).

let tmpDir = null;
let pgDrop = null;
let gatewayState = null;
const note = noter('bench: ');

/** A child of this script in `mode`, with an IPC channel; stderr to `logFile` (or kept as a tail). */
function spawnIpc({ cpu, pin, mode, arg, env, nodeFlags = [], logFile = null }) {
  const args = [...nodeFlags, fileURLToPath(import.meta.url), mode, ...(arg === undefined ? [] : [arg])];
  const fd = logFile ? openSync(logFile, 'a') : null;
  const [cmd, cmdArgs] = pinned(cpu, pin, process.execPath, args);
  const child = track(spawn(cmd, cmdArgs, { env: childEnv(env), stdio: ['ignore', 'ignore', fd ?? 'pipe', 'ipc'] }));
  if (fd !== null) closeSync(fd);
  const tail = [];
  if (child.stderr) {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      tail.push(d);
      while (tail.length > 50) tail.shift();
    });
  }
  const state = { child, pid: child.pid, mode, exited: null, tail, logFile, buffer: [], waiters: [] };
  const describeExit = () => `${mode} child exited (${state.exited.signal ?? state.exited.code})${stderrOf(state)}`;
  child.on('message', (msg) => {
    if (msg?.type === 'error') note(`${mode} child: ${msg.message}`);
    const i = state.waiters.findIndex((w) => w.match(msg));
    if (i >= 0) state.waiters.splice(i, 1)[0].resolve(msg);
    else state.buffer.push(msg);
  });
  child.once('exit', (code, signal) => {
    state.exited = { code, signal };
    for (const w of state.waiters.splice(0)) w.reject(new Error(describeExit()));
  });
  child.once('error', (err) => {
    for (const w of state.waiters.splice(0)) w.reject(err);
  });
  /** The next message matching `match` (a type name or a predicate). */
  state.wait = (match, timeoutMs, what = typeof match === 'string' ? match : 'a message') => {
    const pred = typeof match === 'string' ? (m) => m?.type === match : match;
    const i = state.buffer.findIndex(pred);
    if (i >= 0) return Promise.resolve(state.buffer.splice(i, 1)[0]);
    if (state.exited) return Promise.reject(new Error(describeExit()));
    return new Promise((resolveWait, reject) => {
      const w = {
        match: pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolveWait(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        state.waiters.splice(state.waiters.indexOf(w), 1);
        reject(new Error(`the ${mode} child sent no ${what} within ${timeoutMs / 1000} s${stderrOf(state)}`));
      }, timeoutMs);
      state.waiters.push(w);
    });
  };
  state.send = (msg) => {
    if (!state.exited && child.connected) child.send(msg);
  };
  return state;
}

function stderrOf(s) {
  let text = s.tail.join('');
  if (s.logFile && existsSync(s.logFile)) text = readFileSync(s.logFile, 'utf8').slice(-4000);
  text = text.trim();
  return text ? `:\n${text.slice(-3000)}` : '';
}

async function stopGateway(wait) {
  await stopChild(gatewayState, 'the gateway', wait, { note, stopMessage: { cmd: 'stop' } });
}

/** Drops the PostgreSQL database of a --database run (at the end, on error and on a signal). */
async function dropDatabase() {
  if (!pgDrop) return;
  const drop = pgDrop;
  pgDrop = null;
  await drop().catch((err) => note(`could not drop the benchmark database: ${err.message}`));
}

/** A fresh database on the PostgreSQL server of `baseUrl`; returns its URL and a drop function. */
async function freshPostgres(baseUrl) {
  const require = createRequire(join(GATEWAY_DIR, 'package.json'));
  const pg = require('pg');
  const name = `sparkpay_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

// --- /proc sampling -------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: {
      notifications: { type: 'string', default: '5000' },
      'latency-samples': { type: 'string', default: '200' },
      'gap-ms': { type: 'string', default: '20-50' },
      concurrency: { type: 'string', default: '64' },
      'per-destination': { type: 'string', default: '8' },
      destinations: { type: 'string', default: '1' },
      'poll-ms': { type: 'string', default: '1000' },
      'log-level': { type: 'string', default: 'info' },
      'rsa-seconds': { type: 'string', default: '3' },
      'ceiling-seconds': { type: 'string', default: '5' },
      'ceiling-http': { type: 'boolean', default: false },
      database: { type: 'string' },
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
  const num = (name, min, max, integer = true) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) fail(`--${name} must be a${integer ? ' whole' : ''} number between ${min} and ${max}`);
    return n;
  };
  const gap = /^(\d+)(?:-(\d+))?$/.exec(values['gap-ms']);
  if (!gap || Number(gap[2] ?? gap[1]) < Number(gap[1])) fail('--gap-ms must be A-B (whole milliseconds, A <= B) or A');
  const opt = {
    notifications: num('notifications', 1, 1_000_000),
    latencySamples: num('latency-samples', 0, 100_000),
    gapMin: Number(gap[1]),
    gapMax: Number(gap[2] ?? gap[1]),
    concurrency: num('concurrency', 1, 10_000),
    perDestination: num('per-destination', 1, 1_000),
    destinations: num('destinations', 1, 64),
    pollMs: num('poll-ms', 10, 60_000),
    logLevel: values['log-level'],
    rsaSeconds: num('rsa-seconds', 0.5, 60, false),
    ceilingSeconds: num('ceiling-seconds', 0, 600, false),
    ceilingHttp: values['ceiling-http'],
    database: values.database ?? null,
    json: values.json,
    profile: values.profile,
    profileDir: resolve(values['profile-dir']),
  };
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(opt.logLevel)) fail('--log-level must be one of fatal, error, warn, info, debug, trace, silent');
  if (opt.database && !/^postgres(ql)?:\/\//i.test(opt.database)) fail('--database must be a postgres:// URL (SQLite in a temporary directory is the default)');
  note.quiet = opt.json;
  checkBuilt(DIST, DIST_MODULES);
  await loadProtocol();
  const warnings = [];
  const warn = (w) => {
    warnings.push(w);
    note(`warning: ${w}`);
  };
  const stale = staleDist({ tsc: true });
  if (stale) warn(`dist may be stale: ${stale} (rebuild with npx tsc -b packages/protocol packages/sdk packages/gateway)`);

  // --- pinning: this process (and all its threads) to CPU 1, the gateway to CPU 0 ------------
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  let pin = cpus >= 2 && hasTaskset();
  if (pin && spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' }).status !== 0) pin = false;
  if (!pin) warn(cpus < 2 ? `only ${cpus} CPU available: running unpinned, figures are not comparable` : 'taskset is unavailable or failed: running unpinned, figures are not comparable');
  const loadBefore = os.loadavg();
  if (loadBefore[0] > 0.5) note(`machine load average is ${loadBefore.map((l) => l.toFixed(2)).join(' ')}: figures may be depressed`);

  tmpDir = mkdtempSync(join(os.tmpdir(), 'sparkpay-bench-notify-'));
  const dataDir = join(tmpDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  // The delivery settings go through the configuration file, as an operator would set them.
  writeFileSync(join(dataDir, 'config.json'), `${JSON.stringify({ notify: { concurrency: opt.concurrency, per_destination: opt.perDestination, poll_ms: opt.pollMs } }, null, 2)}\n`);
  const files = {
    merchantPrivateKeyFile: join(tmpDir, 'merchant_private_key.pem'),
    merchantPublicKeyFile: join(tmpDir, 'merchant_public_key.pem'),
    platformPublicKeyFile: join(tmpDir, 'platform_public_key.pem'),
    platformPrivateKeyFile: join(tmpDir, 'platform_private_key.pem'),
    payloadFile: join(tmpDir, 'payload.json'),
  };
  let databaseUrl = null;
  if (opt.database) {
    note('creating a fresh PostgreSQL database…');
    const fresh = await freshPostgres(opt.database).catch((err) => fail(`cannot create a database on ${opt.database.replace(/\/\/[^@/]*@/, '//')}: ${err.message}`));
    databaseUrl = fresh.url;
    pgDrop = fresh.drop;
  }
  const gatewayEnv = {
    SPARKPAY_DATA_DIR: dataDir,
    SPARKPAY_MASTER_KEY: randomBytes(32).toString('hex'),
    SPARKPAY_NOTIFY_ALLOW_PRIVATE: '1',
    SPARKPAY_HOST: '127.0.0.1',
    SPARKPAY_PORT: '0',
    SPARKPAY_LOG_LEVEL: opt.logLevel,
    ...(databaseUrl ? { SPARKPAY_DATABASE_URL: databaseUrl } : {}),
  };
  /** The gateway's settings (childEnv leaves out the caller's, which would point it elsewhere). */
  const envFor = (extra = {}) => ({ ...gatewayEnv, ...extra });

  // --- the receiver (CPU 1) -------------------------------------------------------------------
  const sampleEvery = Math.max(50, Math.ceil(opt.notifications / 40));
  const receiver = spawnIpc({ cpu: 1, pin, mode: '--internal-receiver', arg: JSON.stringify({ destinations: opt.destinations, sampleEvery }), env: {} });
  const { ports } = await receiver.wait('listening', 30_000);
  const notifyUrls = ports.map((p) => `http://127.0.0.1:${p}/sparkpay/notify`);

  // --- 1. preload (CPU 0, its own process, workers off) ---------------------------------------
  note(`preloading ${opt.notifications} PAID orders (+ ${opt.latencySamples} unpaid for the delay samples) on ${databaseUrl ? 'PostgreSQL' : 'SQLite'}…`);
  const preloadArgs = { backlog: opt.notifications, latency: opt.latencySamples, notifyUrls, ...files };
  const setup = JSON.parse(
    (await runChild(...pinned(0, pin, process.execPath, [fileURLToPath(import.meta.url), '--internal-preload', JSON.stringify(preloadArgs)]), { env: childEnv(envFor({ SPARKPAY_LOG_LEVEL: 'warn' })) })).trim().split('\n').pop(),
  );
  note(`preloaded: ${opt.notifications + opt.latencySamples} orders created in ${setup.createSeconds.toFixed(1)} s, ${opt.notifications} paid (notification written) in ${setup.paySeconds.toFixed(1)} s; payload ${setup.payloadBytes} bytes`);
  receiver.send({ cmd: 'keys', merchantPrivateKeyFile: files.merchantPrivateKeyFile, platformPublicKeyFile: files.platformPublicKeyFile });
  await receiver.wait('keys-ok', 10_000);

  // --- the delivering gateway (CPU 0), idle until "go" ----------------------------------------
  const cpuProfDir = opt.profile ? join(tmpDir, 'cpuprof') : null;
  const sqlTrace = opt.profile && !databaseUrl ? join(tmpDir, 'sql-trace.jsonl') : null;
  const nodeFlags = [...benchNodeFlags(), ...profileFlags(cpuProfDir, sqlTrace)];
  const gatewayLog = join(tmpDir, 'gateway.log');
  note(`starting the delivering gateway (${pin ? 'pinned to CPU 0' : 'unpinned'}${opt.profile ? ', with --cpu-prof' : ''}; receiver ${pin ? 'on CPU 1' : 'unpinned'})…`);
  gatewayState = spawnIpc({ cpu: 0, pin, mode: '--internal-gateway', env: envFor(sqlTrace ? { SPARKPAY_BENCH_SQL_TRACE: sqlTrace } : {}), nodeFlags, logFile: gatewayLog });
  const gateway = gatewayState;
  await gateway.wait('ready', 60_000);
  let rssMaxKb = 0;
  const sampleRss = () => {
    const s = procStatus(gateway.pid);
    if (s && s.rssKb > rssMaxKb) rssMaxKb = s.rssKb;
  };
  sampleRss();
  const rssTimer = setInterval(sampleRss, 200);
  rssTimer.unref();

  // --- 2. the one-core RSA-2048 sign rate (CPU 0; the gateway is up but idle) -----------------
  // Measured before the backlog and again after it (the gateway idle again), because this
  // machine's speed drifts; the ratio uses the mean of the two.
  const measureRsa = async (seconds) => {
    const r = JSON.parse(
      (await runChild(...pinned(0, pin, process.execPath, [fileURLToPath(import.meta.url), '--internal-rsa', JSON.stringify({ seconds, payloadFile: files.payloadFile, merchantPublicKeyFile: files.merchantPublicKeyFile })]), { env: childEnv() })).trim().split('\n').pop(),
    );
    if (r.signs.perSecond < 0.9 * r.signs.perCpuSecond) warn(`an RSA measurement got only ${((r.signs.perSecond / r.signs.perCpuSecond) * 100).toFixed(0)}% of CPU 0 (other work shares the machine): the wall-clock ratio is unreliable; the CPU-time ratio is the better estimate`);
    return r;
  };
  note(`measuring the RSA-2048 sign rate on ${pin ? 'CPU 0' : 'one (unpinned) core'} for ${opt.rsaSeconds} s…`);
  const rsaBefore = await measureRsa(opt.rsaSeconds);
  note(`RSA-2048 sign: ${Math.round(rsaBefore.signs.perSecond)}/s; whole envelope (sign + OAEP + AES): ${Math.round(rsaBefore.seals.perSecond)}/s`);

  // --- 3. deliver the backlog -----------------------------------------------------------------
  note(`delivering the backlog of ${opt.notifications} (concurrency ${opt.concurrency}, ${opt.perDestination} per destination, ${opt.destinations} destination(s))…`);
  receiver.send({ cmd: 'stats' });
  const recvBefore = await receiver.wait('stats', 10_000);
  const core0 = cpuTimes(0);
  const wallStart = performance.now();
  gateway.send({ cmd: 'go', total: opt.notifications });
  const backlogTimeout = Math.max(120_000, opt.notifications * 20);
  const done = await gateway.wait('backlog-done', backlogTimeout, `backlog completion (all ${opt.notifications} DELIVERED)`);
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const core1 = cpuTimes(0);
  sampleRss();
  const hwmAfterBacklogKb = procStatus(gateway.pid)?.hwmKb ?? NaN;
  receiver.send({ cmd: 'stats' });
  const recvAfter = await receiver.wait('stats', 10_000);
  const listening = await gateway.wait('listening', 10_000);
  const seconds = (done.endUs - done.startUs) / 1e6;
  const D = opt.notifications / seconds;
  const gatewayCpuSeconds = done.cpuUs / 1e6;
  const cpuMsPerDelivery = (gatewayCpuSeconds * 1000) / opt.notifications;
  const otherOnCpu0 = core0 && core1 ? Math.max(0, (core1.busy - core0.busy - gatewayCpuSeconds) / wallSeconds) : NaN;
  const stealCpu0 = core0 && core1 ? (core1.steal - core0.steal) / wallSeconds : NaN;
  const receiverCpu = (recvAfter.cpuUs - recvBefore.cpuUs) / 1e6 / seconds;
  const firstAnswerMs = recvAfter.firstUs !== null ? (recvAfter.firstUs - done.startUs) / 1000 : NaN;
  note(`backlog delivered: ${Math.round(D)}/s (${seconds.toFixed(2)} s, ${cpuMsPerDelivery.toFixed(3)} ms gateway CPU per delivery)`);
  if (recvAfter.received - recvBefore.received !== opt.notifications) warn(`the receiver got ${recvAfter.received - recvBefore.received} requests for ${opt.notifications} notifications (retries or duplicates)`);
  if (pin && otherOnCpu0 > 0.05) warn(`other processes used ${(otherOnCpu0 * 100).toFixed(0)}% of CPU 0 during the delivery: the wall-clock figures are depressed; the CPU-time ratio is the better estimate`);
  if (gatewayCpuSeconds / seconds + (Number.isFinite(otherOnCpu0) ? otherOnCpu0 : 0) < 0.9) warn(`the gateway used only ${((gatewayCpuSeconds / seconds) * 100).toFixed(0)}% of its core during the delivery: not CPU-bound (waiting on the receiver, the database or its own limits?)`);
  if (receiverCpu > 0.8) warn(`the receiver used ${(receiverCpu * 100).toFixed(0)}% of its core: it may be the bottleneck`);

  note(`measuring the RSA-2048 sign rate again (${opt.rsaSeconds} s)…`);
  const rsaAfter = await measureRsa(opt.rsaSeconds);
  const mean = (f) => (f(rsaBefore) + f(rsaAfter)) / 2;
  const S = mean((r) => r.signs.perSecond);
  const Scpu = mean((r) => r.signs.perCpuSecond);
  const sealCpu = mean((r) => r.seals.perCpuSecond);
  const sealWall = mean((r) => r.seals.perSecond);
  const drift = rsaAfter.signs.perCpuSecond / rsaBefore.signs.perCpuSecond - 1;
  if (Math.abs(drift) > 0.1) warn(`the RSA sign rate moved by ${(drift * 100).toFixed(0)}% between the measurements before and after the backlog (${Math.round(rsaBefore.signs.perSecond)} → ${Math.round(rsaAfter.signs.perSecond)}/s): the machine's speed drifted or other work ran; the ratio uses the mean`);
  const rsa = { messageBytes: rsaBefore.messageBytes };

  // --- 4. commit → receiver's answer, one at a time on an idle system -------------------------
  let lat = null;
  if (opt.latencySamples > 0) {
    note(`delay samples: ${opt.latencySamples}, one order at a time, ${opt.gapMin}-${opt.gapMax} ms apart…`);
    receiver.send({ cmd: 'mode', mode: 'latency' });
    await receiver.wait('mode-ok', 10_000);
    await sleep(200);
    const delays = [];
    const arrivals = [];
    const calls = [];
    let mismatched = 0;
    for (let i = 0; i < opt.latencySamples; i += 1) {
      const paymentOrderNo = setup.latencyOrders[i];
      gateway.send({ cmd: 'pay', paymentOrderNo, index: opt.notifications + i });
      const paid = await gateway.wait((m) => m?.type === 'paid' && m.paymentOrderNo === paymentOrderNo, 30_000, `commit of ${paymentOrderNo}`);
      if (!paid.ok) throw new Error(`transferObserved did not change order ${paymentOrderNo}`);
      const answered = await receiver.wait((m) => m?.type === 'answered', 30_000, `answer for ${paymentOrderNo}`);
      if (answered.paymentOrderNo !== paymentOrderNo) mismatched += 1;
      delays.push((answered.answeredUs - paid.commitUs) / 1000);
      arrivals.push((answered.arrivedUs - paid.commitUs) / 1000);
      calls.push(paid.callUs / 1000);
      await sleep(opt.gapMin + Math.random() * (opt.gapMax - opt.gapMin));
    }
    if (mismatched > 0) warn(`${mismatched} delay samples were answered for another order than the one just paid`);
    lat = { delays, arrivals, calls, mismatched };
  }

  // --- 5. final state, RSS --------------------------------------------------------------------
  await sleep(100);
  gateway.send({ cmd: 'stats' });
  const stats = await gateway.wait('stats', 30_000);
  receiver.send({ cmd: 'stats' });
  const recvEnd = await receiver.wait('stats', 10_000);
  sampleRss();
  const hwmKb = procStatus(gateway.pid)?.hwmKb ?? NaN;
  clearInterval(rssTimer);
  const expectedTotal = opt.notifications + opt.latencySamples;
  if ((stats.notifications.DELIVERED ?? 0) !== expectedTotal) warn(`notifications at the end: ${JSON.stringify(stats.notifications)} (expected ${expectedTotal} DELIVERED)`);
  if (recvEnd.bad > 0) warn(`${recvEnd.bad} sampled envelopes did not open/verify: ${recvEnd.firstBad}`);

  let profile = null;
  if (opt.profile) {
    note('stopping the gateway to write its CPU profile…');
    await stopGateway(20_000);
    profile = summariseProfile({
      dir: cpuProfDir,
      outDir: opt.profileDir,
      name: 'notify',
      window: { startUs: done.startUs, endUs: done.endUs, only: 'backlog delivery only', of: 'the backlog' },
      unit: 'delivery',
      units: 'deliveries',
      count: opt.notifications,
      reference: `RSA sign alone ${(1000 / Scpu).toFixed(3)} ms`,
      layers: LAYERS,
      top: { layers: 12, modules: 16, self: 25, inclusive: 25, dbByCaller: 0 },
      sql: { rows: 16, slow: false, short: 'headTail' },
      sqlTrace,
    });
  }

  // --- 6. the delivery ceiling: the gateway stopped, a minimal deliverer on the same core -----
  // Per delivery only what the protocol forces (seal + POST, no database), to the same receiver
  // with the same in-flight limit. The run is cut into ~1 s slices (alternating between the
  // sender and bare http.request with --ceiling-http, so that both see the same machine), with
  // a short RSA sign and whole-envelope measurement (250 ms each) by a separate process on the
  // same core, idle otherwise, before the first slice and after each: this machine's speed
  // drifts by tens of percent within seconds, and the split "RSA vs the rest" needs figures
  // from the same seconds.
  const ceilings = {};
  const ceilingRsa = { signs: 0, signCpuSeconds: 0, seals: 0, sealCpuSeconds: 0 };
  let ceilingWarmup = null;
  if (opt.ceilingSeconds > 0) {
    if (!opt.profile) {
      note('stopping the gateway for the delivery-ceiling phase…');
      await stopGateway(20_000);
    }
    // Back to answering only (the delay samples had it report every request).
    receiver.send({ cmd: 'mode', mode: 'bulk' });
    await receiver.wait('mode-ok', 10_000);
    const kinds = ['sender', ...(opt.ceilingHttp ? ['http'] : [])];
    const kids = {};
    let rsaKid = null;
    try {
      rsaKid = spawnIpc({ cpu: 0, pin, mode: '--internal-rsa-on-demand', arg: JSON.stringify({ payloadFile: files.payloadFile, merchantPublicKeyFile: files.merchantPublicKeyFile }), env: {} });
      await rsaKid.wait('ready', 60_000);
      const ceilingArgs = {
        payloadFile: files.payloadFile,
        merchantPublicKeyFile: files.merchantPublicKeyFile,
        platformPrivateKeyFile: files.platformPrivateKeyFile,
        appId: setup.appId,
        serial: setup.platformSerial,
        urls: notifyUrls,
        concurrency: opt.concurrency,
        perDestination: opt.perDestination,
      };
      for (const kind of kinds) {
        kids[kind] = spawnIpc({ cpu: 0, pin, mode: '--internal-ceiling', arg: JSON.stringify({ ...ceilingArgs, kind }), env: {} });
        await kids[kind].wait('ready', 60_000);
      }
      /** One timed run of `kind` for `seconds`, with CPU 0's and the receiver's figures around it. */
      const runCeiling = async (kind, seconds) => {
        receiver.send({ cmd: 'stats' });
        const r0 = await receiver.wait('stats', 10_000);
        const c0 = cpuTimes(0);
        const w0 = performance.now();
        kids[kind].send({ cmd: 'run', seconds });
        const m = await kids[kind].wait('ran', seconds * 1000 + 60_000, `end of a ${seconds} s ceiling run`);
        const wall = (performance.now() - w0) / 1000;
        const c1 = cpuTimes(0);
        receiver.send({ cmd: 'stats' });
        const r1 = await receiver.wait('stats', 10_000);
        const cpuSeconds = m.cpuUs / 1e6;
        return {
          ok: m.ok,
          errors: m.errors,
          firstError: m.firstError,
          lanes: m.lanes,
          seconds: m.seconds,
          wall,
          cpuSeconds,
          otherOnCpu0: c0 && c1 ? Math.max(0, (c1.busy - c0.busy - cpuSeconds) / wall) : NaN,
          stealCpu0: c0 && c1 ? (c1.steal - c0.steal) / wall : NaN,
          receiverCpuSeconds: (r1.cpuUs - r0.cpuUs) / 1e6,
          received: r1.received - r0.received,
          checked: r1.verified + r1.bad - (r0.verified + r0.bad),
          bad: r1.bad - r0.bad,
          firstBad: r1.firstBad,
        };
      };
      const rsaSlice = async (ms) => {
        rsaKid.send({ cmd: 'measure', ms });
        const { signs, seals } = await rsaKid.wait('measured', ms * 2 + 30_000, 'an RSA measurement');
        ceilingRsa.signs += signs.n;
        ceilingRsa.signCpuSeconds += signs.cpuSeconds;
        ceilingRsa.seals += seals.n;
        ceilingRsa.sealCpuSeconds += seals.cpuSeconds;
        return { signMs: (signs.cpuSeconds * 1000) / signs.n, sealMs: (seals.cpuSeconds * 1000) / seals.n };
      };
      note(`delivery ceiling (${kinds.map((k) => `seal + ${CEILING_LABEL[k]}`).join('; ')}) started ${pin ? 'pinned to CPU 0' : 'unpinned'}; warm-up ${CEILING_WARMUP_S}–${CEILING_WARMUP_MAX_S} s${kinds.length > 1 ? ' each' : ''}…`);
      const warmCpu = Object.fromEntries(kinds.map((k) => [k, []]));
      let warmRounds = 0;
      const settled = () => kinds.every((k) => warmCpu[k].length >= 2 && Math.abs(warmCpu[k].at(-1) / warmCpu[k].at(-2) - 1) < 0.05);
      while (warmRounds < CEILING_WARMUP_MAX_S && (warmRounds < CEILING_WARMUP_S || !settled())) {
        for (const kind of kinds) {
          const w = await runCeiling(kind, 1);
          if (w.ok === 0) throw new Error(`the ${CEILING_LABEL[kind]} ceiling delivered nothing in its warm-up; first error: ${w.firstError}`);
          warmCpu[kind].push(w.cpuSeconds / w.ok);
        }
        warmRounds += 1;
      }
      ceilingWarmup = { seconds: warmRounds, settled: settled(), cpu_ms_per_delivery: Object.fromEntries(kinds.map((k) => [k, warmCpu[k].map((x) => round(x * 1000, 3))])) };
      // Warned only when the last round still moved by more than 10%.
      if (kinds.some((k) => Math.abs(warmCpu[k].at(-1) / warmCpu[k].at(-2) - 1) > 0.1)) warn(`the delivery ceiling's CPU per delivery had not settled after a ${warmRounds} s warm-up (${JSON.stringify(ceilingWarmup.cpu_ms_per_delivery)} ms): the machine is noisy, or it warms up slowly`);
      // An even number of rounds with two kinds (AB BA AB BA…), so a steady drift favours neither.
      let slices = Math.max(1, Math.round(opt.ceilingSeconds));
      if (kinds.length > 1 && slices % 2) slices += 1;
      const sliceSeconds = opt.ceilingSeconds / slices;
      note(`delivery ceiling: ${opt.ceilingSeconds} s${kinds.length > 1 ? ' per kind' : ''}, in ${slices} slice(s)${kinds.length > 1 ? ' alternating' : ''}, RSA measured between them…`);
      const parts = Object.fromEntries(kinds.map((k) => [k, []]));
      let rsaBefore = await rsaSlice(250);
      for (let i = 0; i < slices; i += 1) {
        for (const kind of i % 2 ? [...kinds].reverse() : kinds) {
          const m = await runCeiling(kind, sliceSeconds);
          const rsaAfter = await rsaSlice(250);
          // The RSA cost for this slice: the mean of the measurements just before and after it.
          m.signMs = (rsaBefore.signMs + rsaAfter.signMs) / 2;
          m.sealMs = (rsaBefore.sealMs + rsaAfter.sealMs) / 2;
          rsaBefore = rsaAfter;
          parts[kind].push(m);
        }
      }
      for (const kind of kinds) {
        const m = mergeCeiling(parts[kind]);
        if (m.ok === 0) throw new Error(`the ${CEILING_LABEL[kind]} ceiling delivered nothing; first error: ${m.firstError}`);
        ceilings[kind] = m;
        const what = `the delivery ceiling with ${CEILING_LABEL[kind]}`;
        if (pin && m.otherOnCpu0 > 0.05) warn(`other processes used ${(m.otherOnCpu0 * 100).toFixed(0)}% of CPU 0 during ${what}: its wall-clock rate is depressed; its CPU/delivery figure is the better estimate`);
        if (m.cpuCore + (Number.isFinite(m.otherOnCpu0) ? m.otherOnCpu0 : 0) < 0.9) warn(`${what} used only ${(m.cpuCore * 100).toFixed(0)}% of its core: not CPU-bound (waiting on the receiver or the in-flight limit?)`);
        if (m.receiverCpu > 0.8) warn(`the receiver used ${(m.receiverCpu * 100).toFixed(0)}% of its core during ${what}: it may be the bottleneck (the CPU/delivery figure still holds)`);
        if (m.errors > 0) warn(`${m.errors} deliveries of ${what} were not answered SUCCESS; first: ${m.firstError}`);
        if (m.received !== m.ok + m.errors) warn(`the receiver got ${m.received} requests for ${m.ok + m.errors} deliveries of ${what}`);
        if (m.bad > 0) warn(`${m.bad} of ${m.checked} sampled envelopes of ${what} did not open/verify: ${m.firstBad}`);
      }
    } finally {
      for (const kid of [...Object.values(kids), rsaKid]) if (kid) await stopChild(kid, `the ${kid.mode} child`, 3000, { note });
    }
  }
  const rsaSignCpuMs = 1000 / Scpu;
  // Gateway CPU a delivery may cost at the target ratio (CPU-time form): RSA sign ms / target.
  const budgetMs = rsaSignCpuMs / TARGETS.ratio;
  // RSA CPU per sign (and per whole envelope) measured alongside the ceiling.
  const signNearCeilingMs = ceilingRsa.signs > 0 ? (ceilingRsa.signCpuSeconds * 1000) / ceilingRsa.signs : rsaSignCpuMs;
  const sealNearCeilingMs = ceilingRsa.seals > 0 ? (ceilingRsa.sealCpuSeconds * 1000) / ceilingRsa.seals : 1000 / sealCpu;
  if (ceilingRsa.signs > 0 && Math.abs(signNearCeilingMs / rsaSignCpuMs - 1) > 0.1) {
    warn(`an RSA sign cost ${signNearCeilingMs.toFixed(3)} ms CPU alongside the delivery ceiling but ${rsaSignCpuMs.toFixed(3)} ms around the backlog: the machine's speed drifted; the ceiling's CPU figures are set against the RSA cost alongside`);
  }
  /**
   * The ceiling in units of "one RSA sign" measured around the same slices, which cancels the
   * drift; the gateway in units of the RSA sign cost measured around the backlog.
   */
  const ceilingView = (m) => {
    const signMs = m.signMs ?? signNearCeilingMs;
    const sealMs = m.sealMs ?? sealNearCeilingMs;
    const units = m.cpuMs / signMs;
    const gatewayUnits = cpuMsPerDelivery / rsaSignCpuMs;
    return {
      signMs,
      sealMs,
      units,
      ratioCpu: 1 / units,
      envelopeRestMs: sealMs - signMs,
      postMs: m.cpuMs - sealMs,
      stackMs: m.cpuMs - signMs,
      budgetMs: signMs / TARGETS.ratio,
      roomMs: signMs / TARGETS.ratio - m.cpuMs,
      gatewayOwnMs: (gatewayUnits - units) * signMs,
      shareCpu: units / gatewayUnits,
    };
  };
  // The sender adapter's own CPU per delivery: the two ceilings' difference in RSA units (slice
  // by slice), in ms at the RSA cost alongside.
  const senderOwnMs = ceilings.sender && ceilings.http ? (ceilingView(ceilings.sender).units - ceilingView(ceilings.http).units) * signNearCeilingMs : null;
  const ceilingJson = (m) => {
    if (!m) return null;
    const v = ceilingView(m);
    return {
      per_s: round(m.perSecond, 1),
      ratio: round(m.perSecond / S, 3),
      cpu_ms_per_delivery: round(m.cpuMs, 3),
      // RSA CPU per sign ÷ CPU per delivery, both from the same slices.
      ratio_cpu_time: round(v.ratioCpu, 3),
      rsa_sign_cpu_ms_alongside: round(v.signMs, 3),
      envelope_seal_cpu_ms_alongside: round(v.sealMs, 3),
      // Everything but the RSA sign: the rest of the envelope (OAEP, AES, JSON) and the POST.
      stack_cpu_ms_per_delivery: round(v.stackMs, 3),
      // The POST alone: ceiling CPU per delivery − a whole envelope (HTTP client, net, syscalls, the answer).
      post_cpu_ms_per_delivery: round(v.postMs, 3),
      gateway_share: round(D / m.perSecond, 3),
      gateway_share_cpu_time: round(v.shareCpu, 3),
      // Gateway CPU a delivery may cost at the target ratio, and what the ceiling leaves of it
      // for the gateway's own work (database, claims, attempt log, logging…); and what that costs now.
      budget_ms_per_delivery_at_target: round(v.budgetMs, 3),
      room_at_target_ms_per_delivery: round(v.roomMs, 3),
      gateway_own_cpu_ms_per_delivery: round(v.gatewayOwnMs, 3),
      seconds: round(m.seconds, 2),
      in_flight: m.lanes,
      delivered: m.ok,
      errors: m.errors,
      cpu_core_fraction: round(m.cpuCore, 3),
      other_processes_cpu0_fraction: round(m.otherOnCpu0, 3),
      steal_cpu0_fraction: round(m.stealCpu0, 3),
      receiver_cpu_core_fraction: round(m.receiverCpu, 3),
      receiver_requests: m.received,
      envelopes_checked: m.checked,
      envelopes_bad: m.bad,
      // Per slice, in run order: shows the machine's drift (the RSA figure alongside follows it).
      slices_cpu_ms_per_delivery: m.sliceCpuMs.map((x) => round(x, 3)),
    };
  };

  if (setup.dialect === 'postgres') warn('PostgreSQL: the database server is not pinned and its CPU is not in the gateway figures (it competes for both cores)');
  const sorted = (xs) => [...xs].sort((x, y) => x - y);
  const pct = (xs, p) => (xs.length ? xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(p * xs.length) - 1))] : NaN);
  const ld = lat ? sorted(lat.delays) : [];
  const la = lat ? sorted(lat.arrivals) : [];
  const lc = lat ? sorted(lat.calls) : [];
  const ratio = D / S;
  const ratioCpu = opt.notifications / gatewayCpuSeconds / Scpu;
  const figures = {
    deliveries_per_s: round(D, 1),
    rsa_sign_per_s: round(S, 1),
    ratio: round(ratio, 3),
    ratio_cpu_time: round(ratioCpu, 3),
    rsa_sign_per_cpu_s: round(Scpu, 1),
    // Before and after the backlog (the ratio uses their mean): the spread shows the machine's drift.
    rsa_sign_per_s_before_after: [round(rsaBefore.signs.perSecond, 1), round(rsaAfter.signs.perSecond, 1)],
    rsa_message_bytes: rsa.messageBytes,
    envelope_seal_per_s: round(sealWall, 1),
    envelope_seal_per_cpu_s: round(sealCpu, 1),
    backlog: {
      notifications: opt.notifications,
      seconds: round(seconds, 3),
      first_answer_ms: round(firstAnswerMs, 1),
      gateway_cpu_seconds: round(gatewayCpuSeconds, 3),
      gateway_cpu_core_fraction: round(gatewayCpuSeconds / seconds, 3),
      gateway_cpu_ms_per_delivery: round(cpuMsPerDelivery, 4),
      rsa_sign_cpu_ms: round(1000 / Scpu, 4),
      envelope_seal_cpu_ms: round(1000 / sealCpu, 4),
      other_processes_cpu0_fraction: round(otherOnCpu0, 3),
      steal_cpu0_fraction: round(stealCpu0, 3),
      receiver_requests: recvAfter.received - recvBefore.received,
      receiver_cpu_core_fraction: round(receiverCpu, 3),
      statuses_at_end: done.statuses,
    },
    delay_commit_to_answer: lat && {
      samples: ld.length,
      gap_ms: [opt.gapMin, opt.gapMax],
      p50_ms: round(pct(ld, 0.5), 2),
      p99_ms: round(pct(ld, 0.99), 2),
      max_ms: round(pct(ld, 1), 2),
      commit_to_arrival_p50_ms: round(pct(la, 0.5), 2),
      commit_to_arrival_p99_ms: round(pct(la, 0.99), 2),
      transfer_observed_call_p50_ms: round(pct(lc, 0.5), 2),
      transfer_observed_call_p99_ms: round(pct(lc, 0.99), 2),
      mismatched: lat.mismatched,
    },
    // Gateway CPU per delivery that still meets the target ratio: RSA sign CPU ms ÷ target.
    cpu_budget_ms_per_delivery_at_target: round(budgetMs, 3),
    delivery_ceiling: ceilingJson(ceilings.sender) ?? null,
    delivery_ceiling_warmup: ceilingWarmup,
    ...(opt.ceilingHttp ? { delivery_ceiling_http: ceilingJson(ceilings.http) ?? null, sender_own_cpu_ms_per_delivery: senderOwnMs === null ? null : round(senderOwnMs, 3) } : {}),
    gateway_peak_rss_mb: round(hwmKb / 1024, 1),
    gateway_peak_rss_after_backlog_mb: round(hwmAfterBacklogKb / 1024, 1),
    gateway_max_sampled_rss_mb: round(rssMaxKb / 1024, 1),
    preload: { orders_created: expectedTotal, create_seconds: round(setup.createSeconds, 2), paid: opt.notifications, pay_seconds: round(setup.paySeconds, 2), payload_bytes: setup.payloadBytes },
    notifications_at_end: stats.notifications,
    attempts_at_end: stats.attempts,
    receiver: { requests: recvEnd.received, answered: recvEnd.answered, envelopes_checked: recvEnd.verified + recvEnd.bad, envelopes_bad: recvEnd.bad, methods: recvEnd.methods, content_types: recvEnd.contentTypes },
    settings: { concurrency: opt.concurrency, per_destination: opt.perDestination, destinations: opt.destinations, poll_ms: opt.pollMs, log_level: opt.logLevel, database: setup.dialect },
    targets: { ratio_min: TARGETS.ratio, delay_p99_ms_max: TARGETS.p99Ms },
    meets_targets: { ratio: ratio >= TARGETS.ratio, delay_p99: lat ? pct(ld, 0.99) < TARGETS.p99Ms : null },
    environment: {
      pinned: pin,
      node: process.version,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cpus,
      loadavg_before: loadBefore.map((l) => round(l, 2)),
      loadavg_after: os.loadavg().map((l) => round(l, 2)),
      listen_ms_after_go: round((listening.atUs - done.startUs) / 1000, 1),
      date: new Date().toISOString(),
    },
    warnings,
    ...(profile ? { profile: profile.json } : {}),
  };

  if (!opt.json) {
    const pad = (s) => s.padEnd(58);
    const fmt = (ms) => (Number.isFinite(ms) ? `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms` : 'n/a');
    const lines = [
      '',
      `${pad(`deliveries/s (backlog of ${opt.notifications}, ${setup.dialect === 'postgres' ? 'PostgreSQL' : 'SQLite'}, gateway on 1 core):`)}${Math.round(D)}`,
      `${pad(`RSA-2048 signs/s (1 core, ${rsa.messageBytes}-byte payload):`)}${Math.round(S)}  (mean of ${Math.round(rsaBefore.signs.perSecond)} before and ${Math.round(rsaAfter.signs.perSecond)} after the backlog)`,
      `${pad('ratio:')}${ratio.toFixed(2)}  (target >= ${TARGETS.ratio})${ratio >= TARGETS.ratio ? '' : '  MISSED'}`,
      lat
        ? `${pad(`delay commit -> receiver's SUCCESS (idle, ${ld.length} samples):`)}p50 ${fmt(pct(ld, 0.5))}, p99 ${fmt(pct(ld, 0.99))}, max ${fmt(pct(ld, 1))}  (target p99 < ${TARGETS.p99Ms} ms)${pct(ld, 0.99) < TARGETS.p99Ms ? '' : '  MISSED'}`
        : `${pad('delay commit -> answer:')}skipped (--latency-samples 0)`,
      `${pad('gateway peak RSS (VmHWM):')}${Math.round(hwmKb / 1024)} MB  (after the backlog: ${Math.round(hwmAfterBacklogKb / 1024)} MB)`,
      '',
      ...ceilingLines(),
      `${pad('ratio by CPU time (robust to a shared machine):')}${ratioCpu.toFixed(2)}`,
      `${pad('gateway CPU during the backlog:')}${((gatewayCpuSeconds / seconds) * 100).toFixed(0)}% of one core, ${cpuMsPerDelivery.toFixed(3)} ms CPU/delivery (RSA sign alone ${(1000 / Scpu).toFixed(3)} ms; whole envelope ${(1000 / sealCpu).toFixed(3)} ms)`,
      `${pad('backlog:')}${seconds.toFixed(2)} s, first answer ${fmt(firstAnswerMs)} after start; ${recvAfter.received - recvBefore.received} requests for ${opt.notifications} notifications`,
      ...(lat
        ? [
            `${pad('  of the delay, commit -> request at the receiver:')}p50 ${fmt(pct(la, 0.5))}, p99 ${fmt(pct(la, 0.99))}`,
            `${pad('  transferObserved call (for reference):')}p50 ${fmt(pct(lc, 0.5))}, p99 ${fmt(pct(lc, 0.99))}`,
          ]
        : []),
      `${pad('notifications at the end:')}${JSON.stringify(stats.notifications)}; attempts ${JSON.stringify(stats.attempts)}`,
      `${pad('receiver:')}${recvEnd.received} requests, ${recvEnd.answered} answered SUCCESS, ${recvEnd.verified + recvEnd.bad} envelopes opened and verified (${recvEnd.bad} bad); ${(receiverCpu * 100).toFixed(0)}% of CPU 1 during the backlog`,
      `${pad('preload:')}${expectedTotal} orders created in ${setup.createSeconds.toFixed(1)} s, ${opt.notifications} paid (transferObserved) in ${setup.paySeconds.toFixed(1)} s`,
      `${pad('other work on CPU 0 (backlog):')}${pin ? `${(otherOnCpu0 * 100).toFixed(0)}% other processes, ${(stealCpu0 * 100).toFixed(0)}% steal` : 'n/a (not pinned)'}`,
      `${pad('settings:')}concurrency ${opt.concurrency}, per destination ${opt.perDestination}, ${opt.destinations} destination(s), poll ${opt.pollMs} ms, log level ${opt.logLevel}`,
      `${pad('machine:')}${figures.environment.cpu}, ${cpus} CPUs, ${pin ? 'pinned' : 'NOT pinned'}, load avg ${loadBefore[0].toFixed(2)} before / ${os.loadavg()[0].toFixed(2)} after`,
      ...warnings.map((w) => `warning: ${w}`),
      ...(profile ? ['', ...profile.text] : []),
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
  process.stdout.write(`${JSON.stringify(figures)}\n`);

  function ceilingLines() {
    const f = ceilings.sender;
    const h = ceilings.http;
    if (!f && !h) return opt.ceilingSeconds > 0 ? [] : [`${'delivery ceiling:'.padEnd(58)}skipped (--ceiling-seconds 0)`, ''];
    const p = (s) => (s.length < 58 ? s.padEnd(58) : `${s} `);
    const pc = (x) => `${Math.round(x * 100)}%`;
    const ms = (x) => x.toFixed(3);
    const head = (label, m) => `${p(`delivery ceiling (seal + ${label}, no DB, 1 core):`)}${Math.round(m.perSecond)}/s  (ratio ${(m.perSecond / S).toFixed(2)}), ${ms(m.cpuMs)} ms CPU/delivery`;
    const split = (m) => {
      const v = ceilingView(m);
      return `${p('  by CPU time:')}ratio ${v.ratioCpu.toFixed(2)}; RSA sign ${ms(v.signMs)} + rest of the envelope ${ms(v.envelopeRestMs)} + POST ${ms(v.postMs)} ms/delivery`;
    };
    const out = [];
    if (f) {
      const v = ceilingView(f);
      out.push(
        head('sender POST', f),
        `${p('gateway share of the ceiling:')}${pc(D / f.perSecond)}  (by CPU time ${pc(v.shareCpu)})`,
        split(f),
        `${p(`  CPU budget per delivery at ratio ${TARGETS.ratio}:`)}${ms(v.budgetMs)} ms; the ceiling takes ${ms(f.cpuMs)}, leaving ${ms(v.roomMs)} for the gateway's own work (now ${ms(v.gatewayOwnMs)})`,
      );
    }
    if (h) {
      out.push(head('bare http.request', h), split(h));
      if (f) out.push(`${p("the sender adapter's own share:")}${senderOwnMs.toFixed(3)} ms CPU/delivery (${pc((ceilingView(f).units - ceilingView(h).units) / ceilingView(f).units)} of the sender ceiling's)`);
    }
    const all = [f, h].filter(Boolean);
    out.push(
      `${p(`  ceiling / other work on CPU 0 / receiver CPU 1${h && f ? ' (sender; http)' : ''}:`)}${all.map((m) => `${pc(m.cpuCore)} / ${pin ? pc(m.otherOnCpu0) : 'n/a'} / ${pc(m.receiverCpu)}`).join('; ')}; ${all[0].lanes} in flight; RSA sign alongside ${ms(signNearCeilingMs)} ms (around the backlog ${ms(rsaSignCpuMs)})`,
      '',
    );
    return out;
  }
}

/** Sums delivery-ceiling slices into one set of figures (rates over the slices' run time). */
function mergeCeiling(parts) {
  const sum = (k) => parts.reduce((t, x) => t + x[k], 0);
  const ok = sum('ok');
  const seconds = sum('seconds');
  const wall = sum('wall');
  const cpuSeconds = sum('cpuSeconds');
  const overWall = (k) => parts.reduce((t, x) => t + x[k] * x.wall, 0) / wall;
  // RSA costs around the slices, weighted by their deliveries.
  const perDelivery = (k) => (parts.every((x) => x[k] > 0) ? parts.reduce((t, x) => t + x.ok * x[k], 0) / ok : undefined);
  return {
    ok,
    errors: sum('errors'),
    firstError: parts.find((x) => x.firstError)?.firstError ?? null,
    lanes: parts[0].lanes,
    seconds,
    perSecond: ok / seconds,
    cpuSeconds,
    cpuCore: cpuSeconds / seconds,
    cpuMs: (cpuSeconds * 1000) / ok,
    otherOnCpu0: overWall('otherOnCpu0'),
    stealCpu0: overWall('stealCpu0'),
    receiverCpu: sum('receiverCpuSeconds') / wall,
    received: sum('received'),
    checked: sum('checked'),
    bad: sum('bad'),
    firstBad: parts.at(-1).firstBad,
    sliceCpuMs: parts.map((x) => (x.cpuSeconds * 1000) / x.ok),
    signMs: perDelivery('signMs'),
    sealMs: perDelivery('sealMs'),
  };
}

// ---------------------------------------------------------------------------------------------
// The --profile summary's layers (profile.mjs): where the delivering gateway's self time goes,
// per leaf frame.

const LAYERS = [
  ['RSA sign (node:crypto)', (mod) => mod === 'node:internal/crypto/sig'],
  ['RSA-OAEP wrap + AES (node:crypto)', (mod) => mod === 'node:internal/crypto/cipher'],
  ['SQLite (prepare + execute, incl. WAL commits)', isSqlite],
  ['PostgreSQL client (pg)', (mod) => mod === 'pg' || mod === 'pg-protocol' || mod === 'pg-pool'],
  ['Kysely query building/compiling', (mod) => mod === 'kysely'],
  ['logging (pino)', (mod) => mod === 'pino' || mod === 'sonic-boom' || mod === 'fast-redact'],
  ['Node HTTP client/net/streams', (mod) => /^node:(_http|net|internal\/(stream|streams|http|net|dns)|stream|dns)/.test(mod) || NATIVE_WRITES.includes(mod)],
  ['other node:crypto (random, hashes)', (mod) => mod.startsWith('node:internal/crypto')],
  ['gateway code (JS self time)', (mod) => mod.startsWith('packages/gateway/')],
  ['protocol code (JS self time, excl. crypto)', (mod) => mod.startsWith('packages/protocol/')],
];

// ---------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv[0] === '--internal-preload') {
  await preloadChild(argv[1]);
} else if (argv[0] === '--internal-gateway') {
  await gatewayChild();
} else if (argv[0] === '--internal-receiver') {
  await receiverChild(argv[1]);
} else if (argv[0] === '--internal-rsa') {
  await rsaChild(argv[1]);
} else if (argv[0] === '--internal-rsa-on-demand') {
  await rsaOnDemandChild(argv[1]);
} else if (argv[0] === '--internal-ceiling') {
  await ceilingChild(argv[1]);
} else {
  await runOrchestrator({ main, stop: stopGateway, release: dropDatabase, finalWait: 10_000, stopping: 'stopping the children and removing ', tmpDir: () => tmpDir });
}
