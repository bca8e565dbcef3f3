// Soak: does anything in a running gateway grow with the traffic it serves? The built gateway
// runs in a child of this script (`--internal-gateway`, node --expose-gc, SQLite, every worker
// on) while this script sends it, for --seconds, a mix of the traffic a public gateway gets:
// order creations by --apps applications (each with a notify_url on one of --destinations
// local receivers and a deadline inside the run, so the expiry worker closes them and the
// notifications are delivered; the payer then picks a pair, which hands out the order's deposit
// address), queries of those orders,
// cashier polls with their tokens, and the traffic of strangers, each request from a random
// 127.x.y.z address (Linux routes all of 127/8 to the loopback; the gateway sees distinct
// clients): signed requests naming random AppIDs, cashier requests for orders that do not exist,
// and console sign-ins with a wrong token. Every --sample seconds the child collects its garbage
// (twice) and reports its heap, RSS, open file descriptors and the rows of the growing tables;
// after the traffic stops, --idle seconds more of samples.
// It prints figures; it asserts nothing (see README.md).
//
//   node bench/soak.mjs [--seconds 180] [--concurrency 8] [--apps 20] [--destinations 16]
//                       [--sample 15] [--idle 20] [--window 30] [--mix order=40,query=5,…] [--json]
//
// --mix weighs the kinds of request (default order=40,query=5,poll=5,appid=20,cashier=15,
// console=15; a kind left out is not sent): `order` creates an order and selects its pair,
// `query` and `poll` ask about one made earlier (signed API, cashier with its token), `appid`,
// `cashier` and `console` are the strangers'. --window is SPARKPAY_TIMESTAMP_WINDOW: the nonces
// of the run are swept within it.

import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { checkBuilt, closeGateway, fail, loadDist, loadProtocol, noter, procStatus, runOrchestrator, spawnIpcGateway, stopIpcGateway } from './common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = join(resolve(HERE, '..'), 'dist');
const DIST_MODULES = { gateway: 'cli/gateway.js', config: 'cli/config.js', admin: 'app/merchant-admin.js' };

// The test deployment's factory, forwarder and fee address (test/harness.ts): deposit addresses
// are computed from them, no chain is needed.
const NETWORK = '2';
const FACTORY = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const FORWARDER = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512';
const FEE_ADDRESS = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';
const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const CONSOLE_TOKEN = 'soak-console-token-0123456789';
const TABLES = ['orders', 'deposit_addresses', 'nonces', 'notifications', 'notification_attempts'];

// ---------------------------------------------------------------------------------------------
// The gateway child: created, then driven over IPC (setup, mem, stop).

async function gatewayChild() {
  const m = await loadDist(DIST, DIST_MODULES);
  const gw = await m.gateway.createGateway({ config: m.config.loadConfig('production'), workers: true });
  const send = (msg) => process.send(msg);
  const rows = async () => {
    const out = {};
    for (const t of TABLES) out[t] = Number((await gw.db.kysely.selectFrom(t).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    return out;
  };
  process.on('message', (msg) => {
    void (async () => {
      try {
        if (msg.cmd === 'setup') {
          const apps = [];
          for (const pem of msg.publicKeys) {
            const merchant = await m.admin.createMerchant(gw, { name: `Soak ${apps.length}`, wallets: { [NETWORK]: WALLET } });
            if (!merchant.ok) throw new Error(merchant.message);
            const app = await m.admin.createApplication(gw, { merchantNo: merchant.value.merchantNo, merchantPublicKey: pem });
            if (!app.ok) throw new Error(app.message);
            apps.push({ appId: app.value.application.appId, merchantNo: merchant.value.merchantNo });
          }
          const base = await gw.listen();
          send({ type: 'ready', base, apps });
        } else if (msg.cmd === 'mem') {
          globalThis.gc();
          globalThis.gc();
          const u = process.memoryUsage();
          const db = join(process.env.SPARKPAY_DATA_DIR, 'sparkpay.db');
          const dbBytes = ['', '-wal'].reduce((t, suffix) => t + (existsSync(db + suffix) ? statSync(db + suffix).size : 0), 0);
          send({ type: 'mem', heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers, rss: u.rss, fds: readdirSync('/proc/self/fd').length, handles: process.getActiveResourcesInfo().length, rows: await rows(), dbBytes });
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
  send({ type: 'started', pid: process.pid });
}

// ---------------------------------------------------------------------------------------------
// The orchestrator: receivers, the child, the traffic, the samples.

const { values: opt } = parseArgs({
  args: process.argv[2]?.startsWith('--internal') ? [] : process.argv.slice(2),
  options: {
    seconds: { type: 'string', default: '180' },
    concurrency: { type: 'string', default: '8' },
    apps: { type: 'string', default: '20' },
    destinations: { type: 'string', default: '16' },
    sample: { type: 'string', default: '15' },
    idle: { type: 'string', default: '20' },
    window: { type: 'string', default: '30' },
    mix: { type: 'string', default: 'order=40,query=5,poll=5,appid=20,cashier=15,console=15' },
    json: { type: 'boolean', default: false },
  },
});
const num = (name) => {
  const v = Number(opt[name]);
  if (!Number.isFinite(v) || v < 0) fail(`--${name} must be a number ≥ 0`);
  return v;
};

const note = noter('soak: ');
let tmpDir = null;
let child = null;
const receivers = [];

/** A random loopback address other than 127.0.0.1: a client the gateway has not seen. */
const stranger = () => `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

/** One HTTP request on a connection of its own (from `localAddress` when given); resolves to { status, text }. */
function request(base, { method = 'GET', path, headers = {}, body, localAddress }) {
  const url = new URL(path, base);
  return new Promise((resolveReq) => {
    const req = http.request(url, { method, headers: { ...headers, ...(body ? { 'content-length': Buffer.byteLength(body) } : {}) }, agent: false, localAddress }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolveReq({ status: res.statusCode, text }));
      res.on('error', (err) => resolveReq({ status: 0, text: err.message }));
    });
    req.on('error', (err) => resolveReq({ status: 0, text: err.message }));
    req.end(body);
  });
}

async function main() {
  checkBuilt(DIST, DIST_MODULES);
  if (process.platform !== 'linux') fail('the strangers come from 127.x.y.z addresses: Linux only');
  note.quiet = opt.json;
  const protocol = await loadProtocol();
  const seconds = num('seconds');
  const sampleS = Math.max(1, num('sample'));

  // Receivers answering SUCCESS, one per loopback address: every destination its own host.
  let delivered = 0;
  for (let i = 0; i < num('destinations'); i += 1) {
    const host = `127.0.0.${i + 2}`;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        delivered += 1;
        res.end('SUCCESS');
      });
    });
    await new Promise((r, j) => server.once('error', j).listen(0, host, r));
    receivers.push({ server, url: `http://${host}:${server.address().port}/notify` });
  }

  tmpDir = mkdtempSync(join(os.tmpdir(), 'sparkpay-soak-'));
  writeFileSync(
    join(tmpDir, 'config.json'),
    JSON.stringify({ networks: { [NETWORK]: { factory: FACTORY, forwarder: FORWARDER, fee_address: FEE_ADDRESS } }, notify: { poll_ms: 200 } }),
  );
  const env = {
    SPARKPAY_DATA_DIR: tmpDir,
    SPARKPAY_MASTER_KEY: randomBytes(32).toString('hex'),
    SPARKPAY_HOST: '127.0.0.1',
    SPARKPAY_PORT: '0',
    SPARKPAY_LOG_LEVEL: 'warn',
    SPARKPAY_NOTIFY_ALLOW_PRIVATE: '1',
    SPARKPAY_CONSOLE_TOKEN: CONSOLE_TOKEN,
    SPARKPAY_TIMESTAMP_WINDOW: String(num('window')),
  };
  child = spawnIpcGateway({ script: fileURLToPath(import.meta.url), pin: false, arg: '', env, logFile: join(tmpDir, 'gateway.log'), note, nodeFlags: ['--expose-gc'] });
  const { pid } = await child.wait('started', 60_000);
  note(`generating ${num('apps')} merchant keys`);
  const keys = Array.from({ length: num('apps') }, () => generateKeyPairSync('rsa', { modulusLength: 2048 }));
  const ready = await child.request({ cmd: 'setup', publicKeys: keys.map((k) => k.publicKey.export({ type: 'spki', format: 'pem' }).toString()) }, 'ready', 120_000);
  const base = ready.base;
  const apps = ready.apps.map((a, i) => ({ ...a, privateKey: keys[i].privateKey }));
  const stray = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

  const counts = {};
  const count = (kind, status) => {
    const c = (counts[kind] ??= { sent: 0, byStatus: {} });
    c.sent += 1;
    c.byStatus[status] = (c.byStatus[status] ?? 0) + 1;
  };
  const created = []; // { app, requestNo, path }, the last 1,000
  let seq = 0;
  const signed = (app, key, method, path, body = '') => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = protocol.generateNonce();
    return request(base, {
      method,
      path,
      body: body || undefined,
      headers: {
        ...(body ? { 'content-type': 'application/json' } : {}),
        'user-agent': 'sparkpay-soak/1.0',
        'sparkpay-app-id': app.appId,
        'sparkpay-timestamp': timestamp,
        'sparkpay-nonce': nonce,
        'sparkpay-signature': protocol.signMessage(key, timestamp, nonce, body),
      },
    });
  };
  const ops = [
    ['order', 'order (and its pair selected)', async () => {
      const app = apps[randomInt(apps.length)];
      const now = Math.floor(Date.now() / 1000);
      const requestNo = `soak_${process.pid}_${(seq += 1)}`;
      const body = JSON.stringify({
        merchant_no: app.merchantNo,
        request_no: requestNo,
        merchant_order_time: now,
        total_amount: `${randomInt(5, 500)}.${String(randomInt(100)).padStart(2, '0')}`,
        merchant_order_currency: 'USDT',
        merchant_order_desc: 'soak',
        merchant_order_timeout: now + randomInt(20, 90),
        notify_url: `${receivers[randomInt(receivers.length)].url}?o=${seq}`,
      });
      const r = await signed(app, app.privateKey, 'POST', '/v4/pay/cashier', body);
      const code = JSON.parse(r.text || '{}').code;
      if (code === 0) {
        const cashierUrl = new URL(JSON.parse(r.text).data.cashier_url);
        const cashier = `/cashier/api/orders/${cashierUrl.pathname.split('/').pop()}`;
        created.push({ app, requestNo, cashier: `${cashier}${cashierUrl.search}` });
        if (created.length > 1000) created.shift();
        // The payer picks a pair: the order's deposit address is handed out.
        const chosen = await request(base, { method: 'POST', path: `${cashier}/select${cashierUrl.search}`, body: JSON.stringify({ network: NETWORK, currency: 'USDT' }), headers: { 'content-type': 'application/json' } });
        if (chosen.status !== 200) return `selected: ${chosen.status}`;
      }
      return code ?? r.status;
    }],
    ['query', 'query', async () => {
      const o = created[randomInt(Math.max(1, created.length))];
      if (!o) return 'none yet';
      const r = await signed(o.app, o.app.privateKey, 'GET', `/v4/pay/orders/${o.app.merchantNo}/${o.requestNo}`);
      return JSON.parse(r.text || '{}').code ?? r.status;
    }],
    ['poll', 'cashier poll', async () => {
      const o = created[randomInt(Math.max(1, created.length))];
      if (!o) return 'none yet';
      return (await request(base, { path: o.cashier })).status;
    }],
    ['appid', 'unknown AppID (random client)', async () => {
      const appId = String(randomInt(1e9, 1e10 - 1)) + String(randomInt(1e8, 1e9 - 1));
      const timestamp = String(Math.floor(Date.now() / 1000));
      const r = await request(base, {
        method: 'POST',
        path: '/v4/pay/cashier',
        body: '{}',
        localAddress: stranger(),
        headers: { 'content-type': 'application/json', 'user-agent': 'soak', 'sparkpay-app-id': appId, 'sparkpay-timestamp': timestamp, 'sparkpay-nonce': protocol.generateNonce(), 'sparkpay-signature': protocol.signMessage(stray, timestamp, 'x', '{}') },
      });
      return JSON.parse(r.text || '{}').code ?? r.status;
    }],
    ['cashier', 'cashier, unknown order (random client)', async () => {
      const no = String(randomInt(1e9, 1e10 - 1)) + String(randomInt(1e9, 1e10 - 1));
      return (await request(base, { path: `/cashier/api/orders/${no}?t=${randomBytes(16).toString('base64url')}`, localAddress: stranger() })).status;
    }],
    ['console', 'console sign-in, wrong token (random client)', async () =>
      (await request(base, { method: 'POST', path: '/console/login', body: `token=${randomBytes(12).toString('hex')}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, localAddress: stranger() })).status],
  ];
  const weights = new Map(
    opt.mix.split(',').map((part) => {
      const [name, weight] = part.split('=');
      if (!ops.some(([n]) => n === name) || !(Number(weight) >= 0)) fail(`--mix: "${part}" is not <kind>=<weight> with a kind among ${ops.map(([n]) => n).join(', ')}`);
      return [name, Number(weight)];
    }),
  );
  const weighted = ops.filter(([name]) => (weights.get(name) ?? 0) > 0);
  if (weighted.length === 0) fail('--mix: no kind of request has a weight');
  const totalWeight = weighted.reduce((t, [name]) => t + weights.get(name), 0);
  const pick = () => {
    let x = randomInt(totalWeight);
    for (const op of weighted) if ((x -= weights.get(op[0])) < 0) return op;
    return weighted[0];
  };

  const samples = [];
  const startMs = Date.now();
  const sample = async (phase) => {
    const mem = await child.request({ cmd: 'mem' }, 'mem', 60_000);
    const s = { t: Math.round((Date.now() - startMs) / 1000), phase, requests: Object.values(counts).reduce((t, c) => t + c.sent, 0), delivered, ...mem, vmHwmKb: procStatus(pid).hwmKb };
    samples.push(s);
    note(`${String(s.t).padStart(4)} s ${phase.padEnd(7)} requests ${String(s.requests).padStart(7)}  heap ${mb(s.heapUsed)}  rss ${mb(s.rss)}  external ${mb(s.external)}  fds ${s.fds}  handles ${s.handles}  rows ${JSON.stringify(s.rows)}`);
  };

  note(`traffic for ${seconds} s at ${num('concurrency')} in flight (pid ${pid})`);
  await sample('start');
  const until = Date.now() + seconds * 1000;
  let sampling = Promise.resolve();
  const timer = setInterval(() => (sampling = sampling.then(() => sample('traffic'))), sampleS * 1000);
  await Promise.all(
    Array.from({ length: num('concurrency') }, async () => {
      while (Date.now() < until) {
        const [, kind, run] = pick();
        try {
          count(kind, await run());
        } catch (err) {
          count(kind, `error: ${err.message.slice(0, 60)}`);
        }
      }
    }),
  );
  clearInterval(timer);
  await sampling;
  for (let left = num('idle'); left > 0; left -= sampleS) {
    await sleep(Math.min(left, sampleS) * 1000);
    await sample('idle');
  }

  const trafficSamples = samples.filter((s) => s.phase !== 'idle');
  const third = trafficSamples[Math.floor(trafficSamples.length / 3)] ?? samples[0];
  const last = samples.at(-1);
  const slope = (k) => ((last[k] - third[k]) / Math.max(1, last.requests - third.requests)) * 1e5;
  const figures = {
    seconds,
    requests: last.requests,
    delivered,
    counts,
    heapGrowthPer100kRequestsAfterFirstThird: Math.round(slope('heapUsed')),
    rssGrowthPer100kRequestsAfterFirstThird: Math.round(slope('rss')),
    peakRssKb: last.vmHwmKb,
    samples,
  };
  if (opt.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
  else {
    const lines = [
      '',
      `requests: ${last.requests} in ${seconds} s; notifications delivered: ${delivered}`,
      ...Object.entries(counts).map(([k, c]) => `  ${k.padEnd(46)} ${String(c.sent).padStart(7)}  ${JSON.stringify(c.byStatus)}`),
      '',
      '   t  phase    requests   heap MB    rss MB  ext MB   fds  handles  nonces  orders  attempts',
      ...samples.map(
        (s) =>
          `${String(s.t).padStart(4)}  ${s.phase.padEnd(7)} ${String(s.requests).padStart(9)} ${mb(s.heapUsed).padStart(9)} ${mb(s.rss).padStart(9)} ${mb(s.external).padStart(7)} ${String(s.fds).padStart(5)} ${String(s.handles).padStart(8)} ${String(s.rows.nonces).padStart(7)} ${String(s.rows.orders).padStart(7)} ${String(s.rows.notification_attempts).padStart(9)}`,
      ),
      '',
      `heap after GC, from the first third of the traffic to the end: ${signedBytes(last.heapUsed - third.heapUsed)} (${signedBytes(figures.heapGrowthPer100kRequestsAfterFirstThird)} per 100,000 requests)`,
      `RSS over the same span: ${signedBytes(last.rss - third.rss)}; peak RSS ${(last.vmHwmKb / 1024).toFixed(1)} MB`,
      `SQLite database and WAL at the end: ${mb(last.dbBytes)} MB${last.rows.orders > 0 ? `, ${(last.dbBytes / last.rows.orders / 1024).toFixed(1)} KB per order with its rows` : ''}`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  }
}

const mb = (bytes) => (bytes / 1048576).toFixed(1);
const signedBytes = (bytes) => `${bytes >= 0 ? '+' : '−'}${mb(Math.abs(bytes))} MB`;

if (process.argv[2] === '--internal-gateway') {
  await gatewayChild();
} else {
  await runOrchestrator({
    main,
    stop: async (wait) => {
      await stopIpcGateway(child, wait, note);
      for (const r of receivers) r.server.close();
    },
    finalWait: 20_000,
    stopping: 'stopping the gateway and removing ',
    tmpDir: () => tmpDir,
  });
}
