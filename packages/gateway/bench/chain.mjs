#!/usr/bin/env node
// Chain-watching benchmark of the built gateway (see bench/README.md, "bench:chain").
//
//   node bench/chain.mjs [--transfers 10000] [--addresses 1000] [--senders 8] [--confirmations 64] [--ingest-repeats 3]
//                        [--latency-samples 50] [--latency-confirmations 2] [--chain-poll-ms 500]
//                        [--open-orders 100000] [--rss-scans 5] [--native-orders 10000] [--native-payments 20]
//                        [--log-level warn] [--json]
//                        [--profile] [--profile-dir DIR]
//
// It prints figures; it asserts nothing (a missed target is printed, never an exit code).
//
// One anvil (spawned by the gateway's own dist/adapters/devnet/anvil.js, pinned to CPU 1 with
// this script) carries the forwarder factory and a 6-decimal USDT; the gateway's Polygon (4) is
// mapped to it through <data dir>/config.json (chain_id, rpc_urls, confirmations, factory,
// forwarder, fee_address, currencies.USDT.contract), as an operator would. Every phase has its own
// fresh data directory (SQLite): a preload child (`--internal-preload`, CPU 0) creates the merchant
// and the orders through the createOrder use case and selects Polygon USDT on each through the
// cashier's selectPaymentOption use case (which stores the deposit address); then a gateway child
// (`--internal-gateway`, CPU 0, the BUILT gateway: dist/cli/gateway.js createGateway +
// dist/cli/config.js loadConfig('production')) is driven over IPC.
//   1. ingestion: `--transfers` real USDT Transfer logs (token.transfer from `--senders` funded
//      accounts, sent with automine off and mined with anvil_mine) to the `--addresses` orders'
//      deposit addresses; the gateway child (workers off) times a bare viem eth_getLogs + decode
//      loop over the same block range and recipients, then gateway.scanChain('4') from a cold
//      cursor until it reaches the head, then the bare loop again.
//   2. delay final block -> PAID: anvil mines a block every second; the gateway child runs with
//      its workers (chain watcher) on; orders are paid one at a time; see README.
//   3. RSS with `--open-orders` open orders watched: the gateway child (workers off) runs
//      `--rss-scans` scans, each after a block with transfers to some of the watched addresses.
//   4. native-coin receipts with `--native-orders` open POL orders watched: the same rounds of a
//      block with `--native-payments` plain value transfers to watched addresses, then one scan,
//      and one scan after an empty block, by a gateway that reads every watched balance on every
//      pass (chain_native_sparse_from above the count) and by one with the default threshold (on
//      copies of the same data); the RPC calls of each scan are counted by a proxy in front of anvil.
// With --profile, the ingestion's gateway children run under --cpu-prof with sql-trace.mjs, and
// the timed scan of the reported (median) repetition is summarised per transfer.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { checkBuilt, childEnv, closeGateway, fail, hasTaskset, hrUs, jsonRpc, loadDist, loadProtocol, noter, parallel, pinned, procStatus, quantile, round, runChild, runOrchestrator, spawnIpcGateway, stopIpcGateway } from './common.mjs';
import { isSqlite, NATIVE_WRITES, profileFlags, summariseProfile } from './profile.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const GATEWAY_DIR = resolve(HERE, '..');
const DIST = join(GATEWAY_DIR, 'dist');
/** The built modules used here (named so a missing build fails with a hint). */
const DIST_MODULES = {
  gateway: 'cli/gateway.js',
  config: 'cli/config.js',
  admin: 'app/merchant-admin.js',
  createOrder: 'app/create-order.js',
  cashier: 'app/cashier.js',
  nonceGuard: 'app/nonce-guard.js',
  rates: 'domain/rates.js',
  catalogue: 'domain/catalogue.js',
  deposits: 'adapters/chain/evm/deposit-addresses.js',
  anvil: 'adapters/devnet/anvil.js',
  tokens: 'adapters/devnet/test-tokens.js',
  factory: 'adapters/chain/evm/forwarder-factory.js',
  clients: 'adapters/chain/evm/clients.js',
  reader: 'adapters/chain/evm/chain-reader.js',
};
const TARGETS = { ratio: 0.7, p99Ms: 2000, rssMb: 400 };
const NETWORK = '4';
const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const FEE_ADDRESS = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';
const ORDER_AMOUNT = '10.50';
const ORDER_AMOUNT_BASE = 10_500_000n;
/** The native phase's orders: 100 POL (18 decimals; above the minimum service fee). */
const NATIVE_ORDER_AMOUNT = '100';
const NATIVE_POL_USD = '0.5';
const NATIVE_ORDER_AMOUNT_BASE = 100n * 10n ** 18n;
const TRANSFER_TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
/** The chain reader's recipients per eth_getLogs (RECIPIENTS_PER_REQUEST in src/app/scan-chain.ts). */
const RECIPIENTS_PER_REQUEST = 200;
const USAGE = `usage: node bench/chain.mjs [options]     (npm run bench:chain)
  --transfers N              ingestion: USDT Transfer logs to the watched addresses (default 10000; 0 skips)
  --addresses N              ingestion: orders with a deposit address, the transfers spread over them (default 1000)
  --senders N                ingestion: funded accounts sending the transfers (default 8, max 8)
  --confirmations N          Polygon's confirmations for the ingestion and RSS phases (default 64, its
                             default); the cold cursor starts at head - N, so the transfers' blocks must fit
  --raw-repeats N            bare eth_getLogs+decode passes before and after the gateway's scan (default 2 each)
  --ingest-repeats N         ingestion repetitions, each on a fresh copy of the preloaded database (default 3;
                             the median by ratio is reported)
  --cold-scan                time the gateway's scan cold: without the untimed warm-up scan by another
                             gateway of the same process on another copy of the data
  --latency-samples N        delay phase: orders paid one at a time (default 50; 0 skips)
  --latency-confirmations N  Polygon's confirmations in the delay phase (default 2)
  --chain-poll-ms N          the gateway's chain_poll_ms in the delay phase (default 500, the gateway's
                             development default; production's is 2000)
  --open-orders N            RSS phase: open orders with deposit addresses (default 100000; 0 skips)
  --rss-scans N              RSS phase: scans, each after a block of transfers (default 5)
  --native-orders N          native phase: open POL orders with deposit addresses (default 10000; 0 skips)
  --native-payments N        native phase: value transfers in each round's block (default 20)
  --log-level L              the gateway's log level (default warn)
  --json                     print only the one-line JSON of the figures
  --profile                  run the ingestion's gateway under --cpu-prof (+ SQL statement trace) and
                             summarise the timed scan of the reported repetition per transfer
  --profile-dir DIR          where the .cpuprofile and its summary go (default bench/profiles)
`;

// ---------------------------------------------------------------------------------------------
// Internal child 1: the preload (CPU 0, its own process, workers off): merchant, orders, and the
// Polygon USDT selection of each (its deposit address), through the use cases.

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
    const deps = { store: gw.store, clock: gw.clock, ids: gw.ids, deployment: config.deployment, rates: m.rates.rateTableFrom(config.rates), publicUrl: config.publicUrl };
    const cashierDeps = { store: gw.store, clock: gw.clock, deployment: config.deployment, deposits: m.deposits.evmDepositAddresses };
    const caller = { appId, merchantNo };
    const currency = a.currency ?? 'USDT';
    const native = currency !== 'USDT';
    const out = new Array(a.orders);
    const t0 = performance.now();
    await parallel(0, a.orders, 32, async (i) => {
      const nowMs = Date.now();
      const body = {
        merchant_no: merchantNo,
        request_no: `cb_${i}`,
        merchant_order_no: `shop-${i}`,
        merchant_order_time: Math.floor(nowMs / 1000),
        total_amount: native ? NATIVE_ORDER_AMOUNT : ORDER_AMOUNT,
        merchant_order_currency: currency,
        merchant_order_desc: 'Benchmark order: 1 x test item',
        notify_url: a.notifyUrl,
      };
      const nonce = new m.nonceGuard.NonceGuard(gw.store, { appId, nonce: protocol.generateNonce(), expiresAtMs: nowMs + 600_000, nowMs });
      const r = await m.createOrder.createOrder(deps, caller, 'standard', body, nonce);
      if (!r.ok) throw new Error(`createOrder refused order ${i}: ${r.code} ${r.message}`);
      const no = r.data.payment_order_no;
      const token = new URL(String(r.data.cashier_url)).searchParams.get('t');
      const s = await m.cashier.selectPaymentOption(cashierDeps, no, token, { network: NETWORK, currency });
      if (!s.ok) throw new Error(`selectPaymentOption refused order ${no}: ${s.reason} ${s.message}`);
      const expected = native ? NATIVE_ORDER_AMOUNT_BASE : ORDER_AMOUNT_BASE;
      if (BigInt(s.data.amount_base) !== expected) throw new Error(`order ${no} asks ${s.data.amount_base} base units, expected ${expected}`);
      out[i] = [no, s.data.address.toLowerCase()];
    });
    writeFileSync(a.ordersFile, JSON.stringify(out));
    process.stdout.write(`${JSON.stringify({ seconds: (performance.now() - t0) / 1000 })}\n`);
  } finally {
    await closeGateway(gw);
  }
}

// ---------------------------------------------------------------------------------------------
// Internal child 2: the gateway (CPU 0), driven over IPC.

async function gatewayChild(argsJson) {
  const a = JSON.parse(argsJson);
  const m = await loadDist(DIST, DIST_MODULES);
  const { createPublicClient, decodeEventLog, erc20Abi, http } = await import('viem');
  const config = m.config.loadConfig('production');
  const gw = await m.gateway.createGateway({ config, workers: a.workers });
  const send = (msg) => process.send(msg);
  // The scanner holds this same PaymentFacts object (cli/gateway.ts), so wrapping its methods
  // times the scan's own calls: the time inside them, and the moment a call that made an order
  // PAID has committed (the call resolves after its transaction). Builds differ in what the scan
  // calls: a whole pass's facts at once (`passObserved`, one outcome per order), each order's
  // (`transfersObserved`), or one transfer at a time (`transferObserved`): all are wrapped, and a
  // call of one from inside another is counted once.
  let observeUs = 0;
  let observed = 0;
  let depth = 0;
  const wrap = (name, factsOf, outcomesOf) => {
    const original = gw.payments[name];
    if (typeof original !== 'function') return;
    gw.payments[name] = async (arg) => {
      const facts = factsOf(arg);
      const t = hrUs();
      depth += 1;
      let result;
      try {
        result = await original.call(gw.payments, arg);
      } finally {
        depth -= 1;
      }
      const end = hrUs();
      if (depth === 0) {
        observeUs += end - t;
        observed += facts.length;
        for (const outcome of outcomesOf(result)) {
          if (!(outcome.ok && outcome.changed && outcome.order.state.status === 'PAID')) continue;
          const own = facts.filter((f) => f.paymentOrderNo === outcome.order.paymentOrderNo);
          const last = own.reduce((x, y) => (y.blockNumber > x.blockNumber ? y : x));
          send({ type: 'paid', paymentOrderNo: last.paymentOrderNo, us: end, blockNumber: last.blockNumber, confirmations: last.confirmations });
        }
      }
      return result;
    };
  };
  wrap('transferObserved', (fact) => [fact], (outcome) => [outcome]);
  wrap('transfersObserved', (facts) => facts, (outcome) => [outcome]);
  wrap('passObserved', (facts) => facts, (outcomes) => outcomes);
  if (a.workers) await gw.listen();
  else await gw.server.ready();
  // The JS heap's peak, sampled (a sample can be late during long synchronous work).
  let peakHeapUsed = 0;
  setInterval(() => {
    peakHeapUsed = Math.max(peakHeapUsed, process.memoryUsage().heapUsed);
  }, 100).unref();
  const network = config.deployment.networks.find((n) => n.id === NETWORK);
  const client = createPublicClient({ transport: http(network.chain.rpcUrls[0], { timeout: 30_000, retryCount: 0 }), cacheTime: 0 });

  /** The bare loop: eth_getLogs over the same recipients' 200-address chunks and range, decoded with viem. */
  async function raw({ ordersFile, from, to }) {
    const recipients = [...new Set(JSON.parse(readFileSync(ordersFile, 'utf8')).map(([, address]) => address))];
    const token = network.currencies.find((c) => c.code === 'USDT').contract.toLowerCase();
    const pad = (x) => `0x${x.slice(2).padStart(64, '0')}`;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let logs = 0;
    let sum = 0n;
    for (let i = 0; i < recipients.length; i += RECIPIENTS_PER_REQUEST) {
      const got = await client.request({
        method: 'eth_getLogs',
        params: [{ fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}`, address: [token], topics: [TRANSFER_TOPIC, null, recipients.slice(i, i + RECIPIENTS_PER_REQUEST).map(pad)] }],
      });
      for (const l of got) {
        const ev = decodeEventLog({ abi: erc20Abi, data: l.data, topics: l.topics });
        sum += ev.args.value;
        logs += 1;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { logs, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, sum: sum.toString() };
  }

  /** The gateway's own chain reader alone (its JSON-RPC client and decoding), the same requests one after another, no database. */
  const ownReader = m.reader.evmChainReader(network.chain.rpcUrls);
  async function readerOnly({ ordersFile, from, to }) {
    const recipients = [...new Set(JSON.parse(readFileSync(ordersFile, 'utf8')).map(([, address]) => address))];
    const token = network.currencies.find((c) => c.code === 'USDT').contract.toLowerCase();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let logs = 0;
    let sum = 0n;
    for (let i = 0; i < recipients.length; i += RECIPIENTS_PER_REQUEST) {
      for (const t of (await ownReader.tokenTransfers([token], recipients.slice(i, i + RECIPIENTS_PER_REQUEST), from, to)).transfers) {
        sum += t.amount;
        logs += 1;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { logs, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, sum: sum.toString() };
  }

  /**
   * gateway.scanChain until the scan has reached the head it saw. The timed scan (`timed`) is
   * the --profile window: its CLOCK_MONOTONIC start and end, and a snapshot of the SQL trace
   * (when loaded) at each.
   */
  const sqlSnapshots = process.env.SPARKPAY_BENCH_SQL_TRACE !== undefined;
  async function scan({ timed = false }) {
    if (timed && sqlSnapshots) process.emit('SIGUSR2');
    const startUs = hrUs();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    observeUs = 0;
    observed = 0;
    const passes = [];
    for (;;) {
      const r = await gw.scanChain(NETWORK);
      passes.push(r);
      if (!r.leased || !r.scanned || r.head === null || r.scanned.to >= r.head) break;
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const endUs = hrUs();
    if (timed && sqlSnapshots) process.emit('SIGUSR2');
    return {
      startUs,
      endUs,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      transfers: passes.reduce((s, r) => s + r.transfers, 0),
      observedFacts: observed,
      observeSeconds: observeUs / 1e6,
      passes: passes.length,
      leased: passes.every((r) => r.leased),
      from: passes.find((r) => r.scanned)?.scanned.from ?? null,
      to: passes.findLast((r) => r.scanned)?.scanned.to ?? null,
      head: passes.at(-1).head,
    };
  }

  /**
   * One untimed cold scan by a second gateway of this process on `dir` (another copy of the same
   * preloaded data): the scan's code is compiled and optimised by V8 as in a gateway that has been
   * running, as the bare loops' warm-up passes do for theirs. The timed gateway's own store (its
   * compiled statements) stays cold.
   */
  async function warmScan({ dir }) {
    const other = await m.gateway.createGateway({ config: m.config.loadConfig('production', { ...process.env, SPARKPAY_DATA_DIR: dir }), workers: false });
    try {
      await other.server.ready();
      let transfers = 0;
      for (;;) {
        const r = await other.scanChain(NETWORK);
        transfers += r.transfers;
        if (!r.leased || !r.scanned || r.head === null || r.scanned.to >= r.head) break;
      }
      return { transfers };
    } finally {
      await closeGateway(other);
    }
  }

  process.on('message', async (msg) => {
    try {
      if (msg.cmd === 'raw') send({ type: 'raw', ...(await raw(msg)) });
      else if (msg.cmd === 'warm-scan') send({ type: 'warm-scan', ...(await warmScan(msg)) });
      else if (msg.cmd === 'reader') send({ type: 'reader', ...(await readerOnly(msg)) });
      else if (msg.cmd === 'scan') send({ type: 'scan', ...(await scan(msg)) });
      else if (msg.cmd === 'count') {
        const rows = await gw.db.kysely.selectFrom('orders').select(['pay_status', (eb) => eb.fn.countAll().as('n')]).groupBy('pay_status').execute();
        send({ type: 'count', orders: Object.fromEntries(rows.map((r) => [r.pay_status, Number(r.n)])) });
      } else if (msg.cmd === 'mem') {
        const mem = process.memoryUsage();
        // Every watched address record, with its settlement plan as listWatched gives it (none).
        const watched = await gw.store.depositAddresses.listWatched(NETWORK, Math.floor(Date.now() / 1000));
        const planBytes = watched.reduce((t, d) => t + d.plan.length, 0);
        send({ type: 'mem', ...mem, peakHeapUsed, watched: watched.length, planBytes });
      } else if (msg.cmd === 'stop') {
        await closeGateway(gw);
        process.exit(0);
      }
    } catch (err) {
      send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  });
  send({ type: 'ready', pid: process.pid });
}

// ---------------------------------------------------------------------------------------------
// The parent: anvil, phases, figures.

let tmpDir = null;
let anvilNode = null;
let gatewayState = null;
const note = noter('');

/** A gateway child with an IPC channel; its stderr goes to `logFile`. */
function spawnGateway({ pin, arg, env, logFile, nodeFlags }) {
  return spawnIpcGateway({ script: fileURLToPath(import.meta.url), pin, arg, env, logFile, note, nodeFlags, unbuffered: (msg) => msg?.type === 'paid', requestTimeoutMs: 600_000 });
}

async function stopGateway(wait = 10_000) {
  const s = gatewayState;
  gatewayState = null;
  await stopIpcGateway(s, wait, note);
}

/** Stops anvil (at the end, on error and on a signal). */
async function stopAnvil() {
  if (!anvilNode) return;
  const node = anvilNode;
  anvilNode = null;
  await node.stop().catch(() => undefined);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        transfers: { type: 'string', default: '10000' },
        addresses: { type: 'string', default: '1000' },
        senders: { type: 'string', default: '8' },
        confirmations: { type: 'string', default: '64' },
        'raw-repeats': { type: 'string', default: '2' },
        'ingest-repeats': { type: 'string', default: '3' },
        'cold-scan': { type: 'boolean', default: false },
        'latency-samples': { type: 'string', default: '50' },
        'latency-confirmations': { type: 'string', default: '2' },
        'chain-poll-ms': { type: 'string', default: '500' },
        'open-orders': { type: 'string', default: '100000' },
        'native-orders': { type: 'string', default: '10000' },
        'native-payments': { type: 'string', default: '20' },
        'rss-scans': { type: 'string', default: '5' },
        'log-level': { type: 'string', default: 'warn' },
        json: { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        'profile-dir': { type: 'string', default: join(HERE, 'profiles') },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    fail(`${err.message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const int = (name, min, max = Number.MAX_SAFE_INTEGER) => {
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < min || v > max) fail(`--${name} must be a whole number from ${min} to ${max}\n${USAGE}`);
    return v;
  };
  return {
    transfers: int('transfers', 0),
    addresses: int('addresses', 1),
    senders: int('senders', 1, 8),
    confirmations: int('confirmations', 1, 10_000),
    rawRepeats: int('raw-repeats', 1, 20),
    ingestRepeats: int('ingest-repeats', 1, 20),
    warmScan: !values['cold-scan'],
    latencySamples: int('latency-samples', 0),
    latencyConfirmations: int('latency-confirmations', 1, 100),
    chainPollMs: int('chain-poll-ms', 50, 600_000),
    openOrders: int('open-orders', 0),
    rssScans: int('rss-scans', 1, 1000),
    nativeOrders: int('native-orders', 0),
    nativePayments: int('native-payments', 1, 1000),
    logLevel: values['log-level'],
    json: values.json,
    profile: values.profile,
    profileDir: resolve(values['profile-dir']),
  };
}

async function main() {
  const opt = parseOptions();
  note.quiet = opt.json;
  checkBuilt(DIST, DIST_MODULES);
  await loadProtocol();
  const m = await loadDist(DIST, DIST_MODULES);
  const viem = await import('viem');
  const warnings = [];
  const warn = (w) => {
    warnings.push(w);
    note(`warning: ${w}`);
  };

  // --- pinning: this script and anvil on CPU 1, the gateway (and preloads) on CPU 0 -----------
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  let pin = cpus >= 2 && hasTaskset();
  if (pin && spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' }).status !== 0) pin = false;
  if (!pin) warn(cpus < 2 ? `only ${cpus} CPU available: running unpinned` : 'taskset is unavailable or failed: running unpinned');
  const load = os.loadavg();
  if (load[0] > 0.5) warn(`machine load average is ${load.map((l) => l.toFixed(2)).join(' ')} at the start: other work shares the machine, figures may be depressed`);

  tmpDir = mkdtempSync(join(os.tmpdir(), 'sparkpay-bench-chain-'));

  // --- the chain ---------------------------------------------------------------------------
  note('starting anvil, deploying the forwarder factory and USDT (6 decimals)…');
  anvilNode = await m.anvil.startAnvil({ chainId: 31337, accounts: 10 });
  if (pin && spawnSync('taskset', ['-a', '-p', '-c', '1', String(anvilNode.process.pid)], { stdio: 'ignore' }).status !== 0) warn('could not pin anvil to CPU 1');
  const rpcUrl = anvilNode.rpcUrl;
  const { rpc, rpcBatch } = jsonRpc(rpcUrl);

  const relayer = m.clients.evmClients(rpcUrl, anvilNode.chainId, m.tokens.devAccount(0));
  const factory = await m.factory.deployForwarderFactory(relayer);
  const usdt = await m.tokens.deployTestToken(relayer, { name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
  // Senders: accounts 1..8 send the ingestion transfers; account 9 pays in the other phases.
  const senders = Array.from({ length: 9 }, (_, i) => m.tokens.devAccount(i + 1).address);
  for (const s of senders) await m.tokens.mintTestToken(relayer, usdt, s, 10n ** 30n);
  const payer = senders[8];
  const nonces = new Map();
  const nextNonce = async (from) => {
    if (!nonces.has(from)) nonces.set(from, Number(await rpc('eth_getTransactionCount', [from, 'pending'])));
    const n = nonces.get(from);
    nonces.set(from, n + 1);
    return `0x${n.toString(16)}`;
  };
  const transferTx = async (from, to, amount) => [
    'eth_sendTransaction',
    [{ from, to: usdt, gas: '0x186a0', nonce: await nextNonce(from), data: viem.encodeFunctionData({ abi: viem.erc20Abi, functionName: 'transfer', args: [to, amount] }) }],
  ];
  /** Mines one block at a time until the pool is empty; the blocks mined. */
  const mineAll = async () => {
    const first = Number(await rpc('eth_blockNumber')) + 1;
    for (let i = 0; i < 10_000; i += 1) {
      const status = await rpc('txpool_status');
      if (Number(status.pending) + Number(status.queued) === 0) break;
      await rpc('anvil_mine', ['0x1']);
    }
    return { first, last: Number(await rpc('eth_blockNumber')) };
  };
  await rpc('evm_setAutomine', [false]);

  /** A fresh data directory whose Polygon is this anvil, with `confirmations`. */
  const dataDirFor = (name, confirmations, extra = {}, rpcUrls = [rpcUrl]) => {
    const dir = join(tmpDir, name);
    mkdirSync(dir, { recursive: true });
    const config = {
      log_level: opt.logLevel,
      ...extra,
      networks: {
        [NETWORK]: {
          chain_id: anvilNode.chainId,
          rpc_urls: rpcUrls,
          confirmations,
          factory: factory.factory,
          forwarder: factory.implementation,
          fee_address: FEE_ADDRESS,
          currencies: { USDT: { contract: usdt, decimals: 6 } },
        },
      },
    };
    writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    return {
      dir,
      env: {
        SPARKPAY_DATA_DIR: dir,
        SPARKPAY_MASTER_KEY: randomBytes(32).toString('hex'),
        SPARKPAY_NOTIFY_ALLOW_PRIVATE: '1',
        SPARKPAY_HOST: '127.0.0.1',
        SPARKPAY_PORT: '0',
        SPARKPAY_RATE_LIMIT: '0',
      },
    };
  };
  // Notifications (ORDER_PAID in the delay phase) go to a closed local port: refused at once.
  const notifyUrl = 'http://127.0.0.1:9/sparkpay/notify';
  const preload = async (data, orders, currency = 'USDT') => {
    const ordersFile = join(data.dir, 'orders.json');
    const r = JSON.parse((await runChild(...pinned(0, pin, process.execPath, [fileURLToPath(import.meta.url), '--internal-preload', JSON.stringify({ orders, notifyUrl, ordersFile, currency })]), { env: childEnv(data.env), timeoutMs: 1_800_000 })).trim().split('\n').pop());
    return { ordersFile, orders: JSON.parse(readFileSync(ordersFile, 'utf8')), seconds: r.seconds };
  };
  /** A gateway child on `data`; with `prof` ({ dir, sqlTrace }), under --cpu-prof and the SQL trace. */
  const startGateway = async (data, workers, prof = null) => {
    const env = prof ? { ...data.env, SPARKPAY_BENCH_SQL_TRACE: prof.sqlTrace } : data.env;
    const nodeFlags = prof ? profileFlags(prof.dir, prof.sqlTrace) : [];
    gatewayState = spawnGateway({ pin, arg: JSON.stringify({ workers }), env, nodeFlags, logFile: join(tmpDir, `${data.dir.split('/').pop()}-gateway.log`) });
    const ready = await gatewayState.wait('ready', 60_000);
    gatewayState.pid = ready.pid;
    return gatewayState;
  };
  const figures = { network: NETWORK, pinned: pin, anvil: rpcUrl.replace(/:\d+$/, ':…') };
  let profile = null;
  if (opt.profile && opt.transfers === 0) warn('--profile profiles the ingestion phase, which --transfers 0 skips: nothing is profiled');

  // --- 1. ingestion ------------------------------------------------------------------------------
  if (opt.transfers > 0) {
    const data = dataDirFor('ingest', opt.confirmations);
    note(`ingestion: preloading ${opt.addresses} orders with deposit addresses…`);
    const pre = await preload(data, opt.addresses);
    note(`  ${opt.addresses} orders created and their Polygon USDT selected in ${pre.seconds.toFixed(1)} s`);
    note(`ingestion: sending ${opt.transfers} USDT transfers from ${opt.senders} accounts (automine off)…`);
    const t0 = performance.now();
    const calls = [];
    for (let i = 0; i < opt.transfers; i += 1) calls.push(await transferTx(senders[i % opt.senders], pre.orders[i % pre.orders.length][1], 1_000_000n));
    await rpcBatch(calls);
    const mined = await mineAll();
    const head = Number(await rpc('eth_blockNumber'));
    const count = (await rpc('eth_getLogs', [{ fromBlock: `0x${mined.first.toString(16)}`, toBlock: `0x${mined.last.toString(16)}`, address: usdt, topics: [TRANSFER_TOPIC] }])).length;
    note(`  ${count} Transfer logs in blocks ${mined.first}-${mined.last} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    if (count !== opt.transfers) warn(`${count} Transfer logs mined, ${opt.transfers} sent (some transactions failed?)`);
    const from = Math.max(0, head - opt.confirmations);
    if (mined.first < from) warn(`the transfers span blocks ${mined.first}-${mined.last}, but a cold cursor starts at head - confirmations = ${from}: the scan misses some (raise --confirmations)`);

    // Each repetition: a copy of the preloaded data directory (nothing scanned yet), a fresh
    // gateway child, the bare loops around one cold scan. The machine's speed drifts by a fifth
    // from run to run: the median repetition (by ratio) is reported, with every one's ratio.
    const repetition = async (r, last) => {
      const copy = { dir: join(tmpDir, `ingest-${r}`), env: {} };
      cpSync(data.dir, copy.dir, { recursive: true });
      copy.env = { ...data.env, SPARKPAY_DATA_DIR: copy.dir };
      // With --profile, each repetition's gateway is profiled; the reported one's is summarised.
      const prof = opt.profile ? { dir: join(tmpDir, `ingest-${r}-cpuprof`), sqlTrace: join(tmpDir, `ingest-${r}-sql-trace.jsonl`), spawnUs: hrUs() } : null;
      await startGateway(copy, false, prof);
      const raws = [];
      const readers = [];
      const rawOnce = async () => raws.push(await gatewayState.request({ cmd: 'raw', ordersFile: pre.ordersFile, from, to: head }, 'raw'));
      const readerOnce = async () => readers.push(await gatewayState.request({ cmd: 'reader', ordersFile: pre.ordersFile, from, to: head }, 'reader'));
      // One untimed pass of each first: viem's decoder and this process's JIT warm up outside the
      // figures; the scan's on another copy of the data, by another gateway of the same process.
      await gatewayState.request({ cmd: 'raw', ordersFile: pre.ordersFile, from, to: head }, 'raw');
      await gatewayState.request({ cmd: 'reader', ordersFile: pre.ordersFile, from, to: head }, 'reader');
      if (opt.warmScan) {
        const warmDir = join(tmpDir, `ingest-${r}-warm-up`);
        cpSync(data.dir, warmDir, { recursive: true });
        const warm = await gatewayState.request({ cmd: 'warm-scan', dir: warmDir }, 'warm-scan', 1_800_000);
        rmSync(warmDir, { recursive: true, force: true });
        if (warm.transfers !== opt.transfers) warn(`the warm-up scan ingested ${warm.transfers} transfers, ${opt.transfers} were sent`);
      }
      for (let i = 0; i < opt.rawRepeats; i += 1) {
        await rawOnce();
        await readerOnce();
      }
      const scan = await gatewayState.request({ cmd: 'scan', timed: true }, 'scan', 1_800_000);
      for (let i = 0; i < opt.rawRepeats; i += 1) {
        await readerOnce();
        await rawOnce();
      }
      let next = null;
      if (last) {
        // The next pass, one (empty) block later: every transfer just ingested is still unfinal, so
        // the scan re-checks each one (its block's hash, its confirmations) and records the change.
        await rpc('anvil_mine', ['0x1']);
        next = await gatewayState.request({ cmd: 'scan' }, 'scan', 1_800_000);
      }
      const counts = await gatewayState.request({ cmd: 'count' }, 'count');
      if (prof) note('  stopping the gateway to write its CPU profile…');
      await stopGateway(prof ? 20_000 : undefined);
      rmSync(copy.dir, { recursive: true, force: true });
      const rawLogs = raws[0].logs;
      if (raws.some((x) => x.logs !== rawLogs)) warn('the bare loop read different numbers of logs in its passes');
      if (scan.transfers !== rawLogs) warn(`the gateway ingested ${scan.transfers} transfers, the bare loop read ${rawLogs} logs`);
      if (scan.from !== from || scan.to !== head) warn(`the gateway scanned ${scan.from}-${scan.to}, the bare loop ${from}-${head}`);
      if (readers.some((x) => x.logs !== rawLogs)) warn("the gateway's reader alone read a different number of logs than the bare loop");
      const rawSeconds = raws.reduce((a, x) => a + x.seconds, 0) / raws.length;
      const readerSeconds = readers.reduce((a, x) => a + x.seconds, 0) / readers.length;
      const gwRate = scan.transfers / scan.seconds;
      return { scan, raws, readers, next, counts, rawLogs, rawSeconds, readerSeconds, gwRate, rawRate: rawLogs / rawSeconds, readerRate: readers[0].logs / readerSeconds, ratio: gwRate / (rawLogs / rawSeconds), prof };
    };
    note(`ingestion: ${opt.ingestRepeats} repetition(s), each on a fresh copy of the preloaded database: bare eth_getLogs + decode and the gateway's reader alone over blocks ${from}-${head} (1 warm-up each + ×${opt.rawRepeats}), ${opt.warmScan ? `one untimed scan of another copy of the data by another gateway of the same process (warm-up), ` : ''}gateway.scanChain('${NETWORK}') from a cold cursor, both again (×${opt.rawRepeats})…`);
    const reps = [];
    for (let r = 0; r < opt.ingestRepeats; r += 1) reps.push(await repetition(r, r === opt.ingestRepeats - 1));
    const median = [...reps].sort((a, b) => a.ratio - b.ratio)[Math.floor((reps.length - 1) / 2)];
    const { scan, raws, readers, rawLogs, rawSeconds, readerSeconds, gwRate, rawRate, readerRate } = median;
    const { next, counts } = reps[reps.length - 1];
    figures.ingestion = {
      transfers: opt.transfers,
      addresses: opt.addresses,
      blocks: { from, to: head, transfer_blocks: mined.last - mined.first + 1 },
      repetitions: reps.map((x) => ({ ratio: round(x.ratio, 4), gateway_seconds: round(x.scan.seconds, 3), payment_port_seconds: round(x.scan.observeSeconds, 3), raw_seconds: round(x.rawSeconds, 4), own_reader_seconds: round(x.readerSeconds, 4) })),
      gateway: { transfers: scan.transfers, seconds: round(scan.seconds, 3), per_s: round(gwRate, 1), cpu_seconds: round(scan.cpuSeconds, 3), passes: scan.passes, payment_port_seconds: round(scan.observeSeconds, 3), other_seconds: round(scan.seconds - scan.observeSeconds, 3) },
      raw: { logs: rawLogs, seconds: round(rawSeconds, 4), per_s: round(rawRate, 1), cpu_seconds: round(raws.reduce((a, x) => a + x.cpuSeconds, 0) / raws.length, 4), passes_seconds: raws.map((x) => round(x.seconds, 4)) },
      ratio: round(median.ratio, 4),
      own_reader: { logs: readers[0].logs, seconds: round(readerSeconds, 4), per_s: round(readerRate, 1), cpu_seconds: round(readers.reduce((a, x) => a + x.cpuSeconds, 0) / readers.length, 4), ratio: round(gwRate / readerRate, 4) },
      next_pass: { seconds: round(next.seconds, 3), cpu_seconds: round(next.cpuSeconds, 3), facts_recorded: next.observedFacts, payment_port_seconds: round(next.observeSeconds, 3) },
      orders_after: counts.orders,
    };
    if (opt.profile) {
      // CPU per log of the bare loop and of the gateway's reader alone, in the same process.
      const cpuMs = (xs) => (xs.reduce((a, x) => a + x.cpuSeconds, 0) * 1000) / xs.reduce((a, x) => a + x.logs, 0);
      profile = summariseProfile({
        dir: median.prof.dir,
        outDir: opt.profileDir,
        name: 'chain',
        window: { startUs: scan.startUs, endUs: scan.endUs, only: `timed scan only${reps.length > 1 ? ', the median repetition' : ''}`, of: 'the timed scan' },
        unit: 'transfer',
        units: 'transfers',
        count: scan.transfers,
        reference: `CPU alone: bare eth_getLogs + decode ${cpuMs(raws).toFixed(4)} ms/transfer, the gateway's reader ${cpuMs(readers).toFixed(4)} ms/transfer`,
        spawnUs: median.prof.spawnUs,
        layers: LAYERS,
        top: { layers: 12, modules: 16, self: 25, inclusive: 25, dbByCaller: 8 },
        // A pass writes a request's worth of transfers per statement: counts per transfer are small.
        sql: { rows: 16, slow: true, short: 'headTail', digits: 4 },
        sqlTrace: median.prof.sqlTrace,
      });
    }
  }

  // --- 2. delay from the final block to the PAID commit ------------------------------------------
  if (opt.latencySamples > 0) {
    const data = dataDirFor('latency', opt.latencyConfirmations, { chain_poll_ms: opt.chainPollMs });
    note(`delay: preloading ${opt.latencySamples} orders…`);
    const pre = await preload(data, opt.latencySamples);
    await rpc('evm_setIntervalMining', [1]);
    // First-seen time of each block: polled over JSON-RPC every ~10 ms from this process (CPU 1).
    const seenUs = new Map();
    let polling = true;
    let lastSeen = Number(await rpc('eth_blockNumber'));
    const poller = (async () => {
      while (polling) {
        const n = Number(await rpc('eth_blockNumber').catch(() => lastSeen));
        const now = hrUs();
        for (let b = lastSeen + 1; b <= n; b += 1) seenUs.set(b, now);
        lastSeen = Math.max(lastSeen, n);
        await sleep(10);
      }
    })();
    const gw = await startGateway(data, true);
    const paid = new Map();
    const waiting = new Map();
    gw.listeners.push((msg) => {
      if (msg?.type !== 'paid') return;
      paid.set(msg.paymentOrderNo, msg);
      waiting.get(msg.paymentOrderNo)?.(msg);
    });
    await sleep(2000); // the watcher's first pass sets its cursor
    note(`delay: paying ${opt.latencySamples} orders one at a time (1 s blocks, ${opt.latencyConfirmations} confirmations, chain_poll_ms ${opt.chainPollMs})…`);
    const delays = [];
    const samples = [];
    let timeouts = 0;
    let beforePoller = 0;
    for (const [no, address] of pre.orders) {
      await sleep(Math.floor(Math.random() * 1000)); // decorrelates payments from the block clock
      const got = new Promise((r) => waiting.set(no, r));
      const [method, params] = await transferTx(payer, address, ORDER_AMOUNT_BASE);
      await rpc(method, params);
      const msg = await Promise.race([got, sleep(60_000).then(() => null)]);
      waiting.delete(no);
      if (!msg) {
        timeouts += 1;
        warn(`order ${no} was not PAID within 60 s`);
        if (timeouts >= 3) {
          warn('3 payments were not seen PAID: the delay phase stops (is the watcher running? see the gateway log)');
          break;
        }
        continue;
      }
      const finalBlock = msg.blockNumber + opt.latencyConfirmations - 1;
      // The scan that made it final may have seen a later head; the payment was final from finalBlock.
      // The watcher can see a new head a few ms before this script's poller does: wait for it.
      for (let w = 0; w < 100 && !seenUs.has(finalBlock); w += 1) await sleep(10);
      const seen = seenUs.get(finalBlock);
      if (seen === undefined) {
        warn(`block ${finalBlock} was never seen by the poller`);
        continue;
      }
      // Negative when the poller saw the block after the commit: the delay was below its resolution.
      if (msg.us < seen) beforePoller += 1;
      const delayMs = Math.max(0, (msg.us - seen) / 1000);
      delays.push(delayMs);
      samples.push({ order: no, tx_block: msg.blockNumber, final_block: finalBlock, confirmations_seen: msg.confirmations, delay_ms: round(delayMs, 1) });
    }
    polling = false;
    await poller;
    await rpc('evm_setIntervalMining', [0]);
    await rpc('evm_setAutomine', [false]);
    const counts = await gatewayState.request({ cmd: 'count' }, 'count');
    await stopGateway();
    const sorted = [...delays].sort((x, y) => x - y);
    figures.delay = {
      samples: delays.length,
      timeouts,
      confirmations: opt.latencyConfirmations,
      chain_poll_ms: opt.chainPollMs,
      p50_ms: round(quantile(sorted, 0.5), 1),
      p99_ms: round(quantile(sorted, 0.99), 1),
      max_ms: round(sorted.at(-1), 1),
      min_ms: round(sorted[0], 1),
      orders_after: counts.orders,
      paid_before_poller_saw_block: beforePoller,
      late_head: samples.filter((s) => s.confirmations_seen > opt.latencyConfirmations).length,
    };
  }

  // --- 3. RSS with open orders watched -----------------------------------------------------------
  if (opt.openOrders > 0) {
    const data = dataDirFor('rss', opt.confirmations);
    note(`rss: preloading ${opt.openOrders} open orders with deposit addresses (a while)…`);
    const pre = await preload(data, opt.openOrders);
    note(`  created and selected in ${pre.seconds.toFixed(1)} s (${Math.round(opt.openOrders / pre.seconds)}/s)`);
    const gw = await startGateway(data, false);
    const atStart = procStatus(gw.pid);
    let peakRss = atStart?.rssKb ?? 0;
    const sampler = setInterval(() => {
      const s = procStatus(gw.pid);
      if (s) peakRss = Math.max(peakRss, s.rssKb);
    }, 100);
    const scans = [];
    const perBlock = Math.min(200, pre.orders.length);
    note(`rss: ${opt.rssScans} scans, each after a block with ${perBlock} transfers to watched addresses…`);
    for (let k = 0; k < opt.rssScans; k += 1) {
      const calls = [];
      for (let i = 0; i < perBlock; i += 1) calls.push(await transferTx(senders[i % 8], pre.orders[Math.floor(Math.random() * pre.orders.length)][1], 1_000_000n));
      await rpcBatch(calls);
      await mineAll();
      scans.push(await gw.request({ cmd: 'scan' }, 'scan', 1_800_000));
    }
    clearInterval(sampler);
    const end = procStatus(gw.pid);
    const mem = await gw.request({ cmd: 'mem' }, 'mem');
    await stopGateway();
    figures.rss = {
      open_orders: opt.openOrders,
      scans: scans.length,
      transfers: scans.reduce((s, x) => s + x.transfers, 0),
      scan_seconds: scans.map((s) => round(s.seconds, 3)),
      rss_at_start_mb: round((atStart?.rssKb ?? NaN) / 1024, 1),
      rss_at_end_mb: round((end?.rssKb ?? NaN) / 1024, 1),
      peak_rss_mb: round(Math.max(end?.hwmKb ?? 0, peakRss) / 1024, 1),
      heap_used_at_end_mb: round(mem.heapUsed / 2 ** 20, 1),
      peak_heap_used_mb: round(mem.peakHeapUsed / 2 ** 20, 1),
      heap_total_at_end_mb: round(mem.heapTotal / 2 ** 20, 1),
      watched_addresses: mem.watched,
      watched_plan_json_mb: round(mem.planBytes / 2 ** 20, 1),
    };
  }
  // --- 4. native-coin receipts with many open native orders --------------------------------------
  if (opt.nativeOrders > 0) {
    const proxy = await countingProxy(rpcUrl);
    // Production ships no POL rate (the operator sets one): the demo rate of development mode.
    const polRate = { rates: { POL: NATIVE_POL_USD } };
    const base = dataDirFor('native', opt.confirmations, polRate, [proxy.url]);
    note(`native: preloading ${opt.nativeOrders} open POL orders with deposit addresses…`);
    const pre = await preload(base, opt.nativeOrders, 'POL');
    note(`  created and selected in ${pre.seconds.toFixed(1)} s`);
    const modes = [
      ['every balance, every pass', { ...polRate, chain_native_sparse_from: 1_000_000_000 }],
      ['where value was sent (default)', polRate],
    ];
    figures.native = { open_orders: opt.nativeOrders, payments_per_round: opt.nativePayments, rounds: opt.rssScans, modes: [] };
    for (const [label, extra] of modes) {
      const data = dataDirFor(`native-${figures.native.modes.length}`, opt.confirmations, extra, [proxy.url]);
      cpSync(base.dir, data.dir, { recursive: true, filter: (src) => !src.endsWith('config.json') });
      data.env.SPARKPAY_MASTER_KEY = base.env.SPARKPAY_MASTER_KEY;
      const gw = await startGateway(data, false);
      /** One scan and the RPC calls it made. */
      const counted = async () => {
        const before = { ...proxy.calls };
        const r = await gw.request({ cmd: 'scan' }, 'scan', 1_800_000);
        const delta = (method) => (proxy.calls[method] ?? 0) - (before[method] ?? 0);
        return { seconds: r.seconds, transfers: r.transfers, balances: delta('eth_getBalance'), blocks: delta('eth_getBlockByNumber'), requests: proxy.requests - (before.__requests ?? 0) };
      };
      proxy.calls.__requests = proxy.requests;
      const first = await counted();
      const paid = [];
      const idle = [];
      note(`native (${label}): ${opt.rssScans} rounds of a block with ${opt.nativePayments} payments, then a scan, and a scan after an empty block…`);
      for (let k = 0; k < opt.rssScans; k += 1) {
        const calls = [];
        for (let i = 0; i < opt.nativePayments; i += 1) {
          const from = senders[i % 8];
          calls.push(['eth_sendTransaction', [{ from, to: pre.orders[Math.floor(Math.random() * pre.orders.length)][1], value: '0x1', gas: '0x5208', nonce: await nextNonce(from) }]]);
        }
        await rpcBatch(calls);
        await mineAll();
        proxy.calls.__requests = proxy.requests;
        paid.push(await counted());
        await rpc('anvil_mine', ['0x1']);
        proxy.calls.__requests = proxy.requests;
        idle.push(await counted());
      }
      await stopGateway();
      const med = (xs, f) => quantile(xs.map(f).sort((a, b) => a - b), 0.5);
      figures.native.modes.push({
        mode: label,
        first_scan: { seconds: round(first.seconds, 3), balances: first.balances },
        after_payments: { median_seconds: round(med(paid, (x) => x.seconds), 3), median_balances: med(paid, (x) => x.balances), median_blocks: med(paid, (x) => x.blocks), transfers: paid.reduce((t, x) => t + x.transfers, 0) },
        after_empty_block: { median_seconds: round(med(idle, (x) => x.seconds), 3), median_balances: med(idle, (x) => x.balances), median_blocks: med(idle, (x) => x.blocks) },
      });
    }
    await proxy.close();
  }
  figures.targets = TARGETS;
  figures.warnings = warnings;
  if (profile) figures.profile = profile.json;

  // --- report ------------------------------------------------------------------------------------
  if (!opt.json) {
    const pad = (s) => s.padEnd(52);
    const lines = [''];
    const f = figures;
    if (f.ingestion) {
      const i = f.ingestion;
      lines.push(
        `${pad(`transfers ingested by gateway.scanChain (cold cursor):`)}${i.gateway.per_s.toFixed(0)}/s  (${i.gateway.transfers} in ${i.gateway.seconds.toFixed(2)} s, ${i.gateway.passes} pass(es), CPU ${i.gateway.cpu_seconds.toFixed(2)} s)`,
        `${pad('  of which inside the payment port (DB):')}${i.gateway.payment_port_seconds.toFixed(2)} s; the rest (RPC, listWatched, cursor) ${i.gateway.other_seconds.toFixed(2)} s`,
        `${pad('bare eth_getLogs + decode (viem, no DB):')}${i.raw.per_s.toFixed(0)}/s  (${i.raw.logs} logs in ${(i.raw.seconds * 1000).toFixed(0)} ms, mean of ${i.raw.passes_seconds.length} passes)`,
        `${pad('ratio:')}${i.ratio.toFixed(3)}  (target >= ${TARGETS.ratio}${i.ratio >= TARGETS.ratio ? '' : ': MISSED'})${i.repetitions.length > 1 ? `; median of ${i.repetitions.length} repetitions: ${i.repetitions.map((x) => x.ratio.toFixed(3)).join(', ')}` : ''}`,
        `${pad("the gateway's own reader alone (no DB):")}${i.own_reader.per_s.toFixed(0)}/s  (${(i.own_reader.seconds * 1000).toFixed(0)} ms; the scan is ${i.own_reader.ratio.toFixed(3)} of it)`,
        `${pad('next pass, one empty block later:')}${i.next_pass.seconds.toFixed(2)} s  (re-checks and re-records ${i.next_pass.facts_recorded} unfinal payments; ${i.next_pass.payment_port_seconds.toFixed(2)} s in the payment port)`,
        `${pad('  set-up:')}${i.transfers} transfers to ${i.addresses} addresses in ${i.blocks.transfer_blocks} blocks; scanned ${i.blocks.from}-${i.blocks.to}`,
        '',
      );
    }
    if (f.delay) {
      const d = f.delay;
      lines.push(
        `${pad('delay final block -> PAID commit:')}p50 ${d.p50_ms} ms, p99 ${d.p99_ms} ms, max ${d.max_ms} ms  (target p99 < ${TARGETS.p99Ms} ms${d.p99_ms < TARGETS.p99Ms ? '' : ': MISSED'})`,
        `${pad('  set-up:')}${d.samples} payments one at a time, 1 s blocks, ${d.confirmations} confirmations, chain_poll_ms ${d.chain_poll_ms}${d.timeouts ? `, ${d.timeouts} timed out` : ''}`,
        '',
      );
    }
    if (f.rss) {
      const r = f.rss;
      lines.push(
        `${pad(`gateway peak RSS, ${r.open_orders} open orders watched:`)}${r.peak_rss_mb} MB  (target < ${TARGETS.rssMb} MB${r.peak_rss_mb < TARGETS.rssMb ? '' : ': MISSED'}; at start ${r.rss_at_start_mb} MB, after the scans ${r.rss_at_end_mb} MB)`,
        `${pad('  scans:')}${r.scans} (${r.transfers} transfers), ${r.scan_seconds.map((s) => s.toFixed(2)).join(' / ')} s each`,
        `${pad('  JS heap:')}peak used ${r.peak_heap_used_mb} MB (sampled), at the end used ${r.heap_used_at_end_mb} of ${r.heap_total_at_end_mb} MB; ${r.watched_addresses} watched addresses, listed with ${r.watched_plan_json_mb} MB of plan JSON (a pass lists one page of 5,000; above 1,000 it asks for every transfer of the tokens in its blocks)`,
        '',
      );
    }
    if (f.native) {
      const n = f.native;
      lines.push(`native-coin receipts, ${n.open_orders} open POL orders watched (${n.rounds} rounds; medians per scan):`);
      for (const m of n.modes) {
        lines.push(
          `${pad(`  ${m.mode}:`)}after a block of ${n.payments_per_round} payments ${m.after_payments.median_seconds.toFixed(3)} s, ${m.after_payments.median_balances} balances + ${m.after_payments.median_blocks} blocks read (${m.after_payments.transfers} receipts in all)`,
          `${pad('')}after an empty block ${m.after_empty_block.median_seconds.toFixed(3)} s, ${m.after_empty_block.median_balances} balances + ${m.after_empty_block.median_blocks} blocks read; first scan ${m.first_scan.seconds.toFixed(3)} s, ${m.first_scan.balances} balances`,
        );
      }
      lines.push('');
    }
    if (warnings.length) lines.push(`warnings (${warnings.length}):`, ...warnings.map((w) => `  - ${w}`), '');
    if (profile) lines.push(...profile.text, '');
    lines.push('Other work may share this machine: compare figures from quiet runs only.');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

// ---------------------------------------------------------------------------------------------
// A JSON-RPC proxy in front of anvil that counts the calls per method (a batch counts each call).

async function countingProxy(target) {
  const http = await import('node:http');
  const calls = {};
  const state = { requests: 0 };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      state.requests += 1;
      try {
        const parsed = JSON.parse(body.toString('utf8'));
        for (const c of Array.isArray(parsed) ? parsed : [parsed]) calls[c.method] = (calls[c.method] ?? 0) + 1;
        const answer = await globalThis.fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
      } catch (err) {
        res.writeHead(502).end(String(err));
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls,
    get requests() {
      return state.requests;
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

// ---------------------------------------------------------------------------------------------
// The --profile summary's layers (profile.mjs): where the scanning gateway's self time goes, per
// leaf frame.

const LAYERS = [
  ['SQLite (prepare + execute, incl. WAL commits)', isSqlite],
  ['Kysely query building/compiling', (mod) => mod === 'kysely'],
  ['viem (JSON-RPC client, ABI, hashing)', (mod) => ['viem', 'abitype', 'ox'].includes(mod) || /^@(noble|scure)\//.test(mod)],
  ['fetch (undici)', (mod) => mod.startsWith('node:internal/deps/undici')],
  ['logging (pino)', (mod) => mod === 'pino' || mod === 'sonic-boom' || mod === 'fast-redact'],
  ['Node HTTP/net/streams', (mod) => /^node:(_http|net|internal\/(stream|streams|http|net|dns)|stream|dns)/.test(mod) || NATIVE_WRITES.includes(mod)],
  ['node:crypto', (mod) => mod.startsWith('node:internal/crypto')],
  ['gateway code (JS self time)', (mod) => mod.startsWith('packages/gateway/')],
  ['protocol code (JS self time)', (mod) => mod.startsWith('packages/protocol/')],
];

// ---------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv[0] === '--internal-preload') {
  await preloadChild(argv[1]);
} else if (argv[0] === '--internal-gateway') {
  await gatewayChild(argv[1]);
} else {
  await runOrchestrator({
    main,
    stop: stopGateway,
    release: stopAnvil,
    finalWait: 10_000,
    stopping: 'stopping anvil and the children, removing ',
    tmpDir: () => tmpDir,
    lastResort: () => {
      if (anvilNode) anvilNode.process.kill('SIGKILL');
    },
  });
}
