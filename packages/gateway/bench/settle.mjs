#!/usr/bin/env node
// Settlement benchmark of the built gateway (see bench/README.md, "bench:settle").
//
//   node bench/settle.mjs [--batches 1,5,10,20] [--confirmations 2] [--latency-samples 20]
//                         [--chain-poll-ms 250] [--settle-poll-ms 250] [--log-level warn] [--json]
//
// It prints figures; it asserts nothing (a missed target is printed, never an exit code).
//
// One anvil (spawned by the gateway's own dist/adapters/devnet/anvil.js, pinned to CPU 1 with
// this script) carries the forwarder factory and a 6-decimal USDT (TestToken); the gateway's
// Polygon (4) is mapped to it through <data dir>/config.json (chain_id, rpc_urls, confirmations,
// factory, forwarder, fee_address, currencies.USDT.contract, relayer_key_file, max_fee_gwei,
// settlement.*), as an operator would. Every gateway child (`--internal-gateway`, CPU 0, the
// BUILT gateway: dist/cli/gateway.js createGateway + dist/cli/config.js loadConfig('production'))
// has its own fresh data directory (SQLite) and is driven over IPC; it creates its orders through
// the createOrder use case and selects Polygon USDT on each through the cashier's
// selectPaymentOption use case (which stores the deposit address and the settlement plan).
// Accounts (anvil's well-known dev keys): #0 deploys and mints, #1 is the merchant wallet, #2 the
// platform fee address, #3 pays, #4 and #5 are the split's seller and other receiver, #6 a token
// holder for the reference transfer, #7 the gateway's relayer.
//   1. reference: a plain USDT transfer (6 decimals) to an address that already holds the token,
//      and to a fresh address; gasUsed from the receipts.
//   2. gas per order: for each batch size N (`--batches`), a gateway (workers off) with
//      settlement.batch_size N; N orders without split (merchant + fee), N with a three-way
//      split plus fee (the same seller on each), and N with that split and a different seller on
//      each (a marketplace; printed, not a target kind), paid with real token transfers
//      (automine off, anvil_mine), scanned to PAID
//      (gateway.scanChain), then settled by gateway.settle('4'): one pass sends the N due orders
//      in one transaction, blocks are mined on top, the next pass makes them final (COMPLETED).
//      Gas per order = the receipt's gasUsed / N.
//   3. latency after PAID: anvil mines a block every second; a gateway with its workers on
//      (chain watcher + settlement worker); orders paid one at a time; PAID -> settlement
//      transaction sent and PAID -> COMPLETED from the database's timestamps.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { checkBuilt, children, closeGateway, fail, hasTaskset, jsonRpc, loadDist, loadProtocol, parallel, quantile, round, runOrchestrator, spawnIpcGateway, stopIpcGateway } from './common.mjs';

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
  devnet: 'adapters/devnet/devnet.js',
  factory: 'adapters/chain/evm/forwarder-factory.js',
  clients: 'adapters/chain/evm/clients.js',
};
/** Gas per order at batch size 20 below this many plain transfers (to a holder); latency has no target in the issue. */
const TARGETS = { transfersPerOrderAtBatch: 20, maxTransfersPerOrder: 2 };
const NETWORK = '4';
const RELAYER_INDEX = 7;
/**
 * The kinds of order settled: receivers merchant + fee; seller + other + merchant + fee with the
 * same seller on every order (a shop with a partner); the same split with a different seller on
 * every order (a marketplace: every seller is one more transfer in the batch). `target`: the
 * kinds the issue's target is read on; the third is printed for what it costs.
 */
const KINDS = {
  plain: { label: 'merchant + fee', amount: '10.50', receivers: 2, target: true },
  split: { label: 'split 3 + fee', amount: '100', receivers: 4, target: true },
  sellers: { label: 'split, n sellers', amount: '100', receivers: 4, target: false },
};
/** Receivers paid by one transaction of `batch` orders of `kind` (each one transfer from the factory). */
const payeesPerTx = (kind, batch) => (kind === 'plain' ? 2 : kind === 'split' ? 4 : 3 + batch);
const USAGE = `usage: node bench/settle.mjs [options]     (npm run bench:settle)
  --batches LIST             settlement batch sizes measured for gas (default 1,5,10,20); each runs a
                             gateway with settlement.batch_size set to it, once per kind of order
  --confirmations N          Polygon's confirmations in both phases (default 2)
  --latency-samples N        latency phase: orders paid one at a time (default 20; 0 skips)
  --chain-poll-ms N          the gateway's chain_poll_ms in the latency phase (default 250)
  --settle-poll-ms N         the gateway's settlement.poll_ms in the latency phase (default 250)
  --log-level L              the gateway's log level (default warn)
  --json                     print only the one-line JSON of the figures
`;

// ---------------------------------------------------------------------------------------------
// Shared helpers.


const median = (xs) => quantile([...xs].sort((x, y) => x - y), 0.5);

// ---------------------------------------------------------------------------------------------
// Internal child: a gateway (CPU 0) on its data directory, driven over IPC. It creates a
// merchant at start; orders are created through the use cases; chain scans and settlement passes
// are the gateway's own (scanChain / settle), or its workers after `listen`.

async function gatewayChild(argsJson) {
  const a = JSON.parse(argsJson);
  const protocol = await loadProtocol();
  const m = await loadDist(DIST, DIST_MODULES);
  const config = m.config.loadConfig('production');
  const gw = await m.gateway.createGateway({ config, workers: a.workers });
  const send = (msg) => process.send(msg);

  const wallets = Object.fromEntries(m.catalogue.NETWORK_IDS.map((n) => [n, a.wallet]));
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
  let seq = 0;

  /** `count` orders of `kind`, each with Polygon USDT selected: [payment order no, deposit address, base units]. */
  async function orders({ count, kind }) {
    const out = new Array(count);
    await parallel(0, count, 8, async (i) => {
      const n = (seq += 1);
      const nowMs = Date.now();
      const body = {
        merchant_no: merchantNo,
        request_no: `sb_${kind}_${n}`,
        merchant_order_no: `shop-${kind}-${n}`,
        merchant_order_time: Math.floor(nowMs / 1000),
        total_amount: KINDS[kind].amount,
        merchant_order_currency: 'USDT',
        merchant_order_desc: 'Benchmark order: 1 x test item',
        notify_url: a.notifyUrl,
      };
      if (kind !== 'plain') {
        const seller = kind === 'split' ? a.seller : a.sellers[i % a.sellers.length];
        body.divide_detail = { seller_amount: '80', seller_addr: seller, merchant_amount: '15', other_details: [{ receiver_addr: a.other, amount: '5' }] };
      }
      const nonce = new m.nonceGuard.NonceGuard(gw.store, { appId, nonce: protocol.generateNonce(), expiresAtMs: nowMs + 600_000, nowMs });
      const r = await m.createOrder.createOrder(deps, caller, 'standard', body, nonce);
      if (!r.ok) throw new Error(`createOrder refused a ${kind} order: ${r.code} ${r.message}`);
      const no = r.data.payment_order_no;
      const token = new URL(String(r.data.cashier_url)).searchParams.get('t');
      const s = await m.cashier.selectPaymentOption(cashierDeps, no, token, { network: NETWORK, currency: 'USDT' });
      if (!s.ok) throw new Error(`selectPaymentOption refused order ${no}: ${s.reason} ${s.message}`);
      out[i] = [no, s.data.address.toLowerCase(), String(s.data.amount_base)];
    });
    return out;
  }

  /** gateway.scanChain until a pass has reached the head it saw. */
  async function scan() {
    let transfers = 0;
    let passes = 0;
    for (; passes < 100; ) {
      const r = await gw.scanChain(NETWORK);
      passes += 1;
      transfers += r.transfers;
      if (!r.leased || !r.scanned || r.head === null || r.scanned.to >= r.head) break;
    }
    return { transfers, passes };
  }

  /** The orders, their settlement rows and the settlement transactions they are in (bigints as strings). */
  async function status({ nos }) {
    const txs = new Map();
    const rows = [];
    for (const no of nos) {
      const order = await gw.store.orders.get(no);
      const st = await gw.store.settlements.get(no);
      if (st?.txId && !txs.has(st.txId)) txs.set(st.txId, await gw.store.settlements.getTx(st.txId));
      rows.push({
        no,
        status: order?.state.status ?? null,
        payTime: order?.state.payTime ?? null,
        completedTime: order?.state.completedTime ?? null,
        settlement: st && { status: st.status, txId: st.txId, txHash: st.txHash, attempts: st.attempts, lastError: st.lastError, createdAt: st.createdAt, settledAt: st.settledAt },
      });
    }
    const txRows = Object.fromEntries(
      [...txs].map(([id, t]) => [
        id,
        t && {
          status: t.status,
          txHash: t.txHash,
          minedHash: t.minedHash,
          hashes: t.hashes,
          orderCount: t.orderCount,
          blockNumber: t.blockNumber,
          gasUsed: t.gasUsed === null ? null : t.gasUsed.toString(),
          gasLimit: t.gasLimit.toString(),
          createdAt: t.createdAt,
          sentAt: t.sentAt,
          updatedAt: t.updatedAt,
        },
      ]),
    );
    return { orders: rows, txs: txRows };
  }

  process.on('message', async (msg) => {
    try {
      if (msg.cmd === 'orders') send({ type: 'orders', orders: await orders(msg) });
      else if (msg.cmd === 'scan') send({ type: 'scan', ...(await scan()) });
      else if (msg.cmd === 'settle') send({ type: 'settle', ...(await gw.settle(NETWORK)) });
      else if (msg.cmd === 'status') send({ type: 'status', ...(await status(msg)) });
      else if (msg.cmd === 'listen') {
        await gw.listen();
        send({ type: 'listening' });
      } else if (msg.cmd === 'stop') {
        await closeGateway(gw);
        process.exit(0);
      }
    } catch (err) {
      send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  });
  send({ type: 'ready', pid: process.pid, relayer: gw.relayers[NETWORK] ?? null, settlement: config.settlement });
}

// ---------------------------------------------------------------------------------------------
// The parent: anvil, phases, figures.

let tmpDir = null;
let anvilNode = null;
let gatewayState = null;
let quiet = false;

function note(line) {
  if (!quiet) process.stderr.write(`${line}\n`);
}


/** A gateway child with an IPC channel; its stderr goes to `logFile`. */
function spawnGateway({ pin, arg, env, logFile }) {
  return spawnIpcGateway({ script: fileURLToPath(import.meta.url), pin, arg, env, logFile, note, requestTimeoutMs: 120_000 });
}

async function stopGateway(wait = 10_000) {
  const s = gatewayState;
  gatewayState = null;
  await stopIpcGateway(s, wait, note);
}

async function cleanup(wait) {
  try {
    await stopGateway(wait);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (anvilNode) {
      const node = anvilNode;
      anvilNode = null;
      await node.stop().catch(() => undefined);
    }
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
    tmpDir = null;
  }
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        batches: { type: 'string', default: '1,5,10,20' },
        confirmations: { type: 'string', default: '2' },
        'latency-samples': { type: 'string', default: '20' },
        'chain-poll-ms': { type: 'string', default: '250' },
        'settle-poll-ms': { type: 'string', default: '250' },
        'log-level': { type: 'string', default: 'warn' },
        json: { type: 'boolean', default: false },
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
  const batches = values.batches.trim() === '' ? [] : values.batches.split(',').map((s) => Number(s.trim()));
  // settlement.batch_size is 1..100 (cli/config.ts).
  if (batches.some((b) => !Number.isInteger(b) || b < 1 || b > 100)) fail(`--batches must be a comma-separated list of whole numbers from 1 to 100 (or empty to skip)\n${USAGE}`);
  return {
    batches: [...new Set(batches)],
    confirmations: int('confirmations', 1, 100),
    latencySamples: int('latency-samples', 0),
    chainPollMs: int('chain-poll-ms', 50, 600_000),
    settlePollMs: int('settle-poll-ms', 50, 600_000),
    logLevel: values['log-level'],
    json: values.json,
  };
}

async function main() {
  const opt = parseOptions();
  quiet = opt.json;
  checkBuilt(DIST, DIST_MODULES);
  await loadProtocol();
  const m = await loadDist(DIST, DIST_MODULES);
  const viem = await import('viem');
  const warnings = [];
  const warn = (w) => {
    warnings.push(w);
    note(`warning: ${w}`);
  };

  // --- pinning: this script and anvil on CPU 1, the gateway on CPU 0 ----------------------------
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  let pin = cpus >= 2 && hasTaskset();
  if (pin && spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' }).status !== 0) pin = false;
  if (!pin) warn(cpus < 2 ? `only ${cpus} CPU available: running unpinned` : 'taskset is unavailable or failed: running unpinned');
  const load = os.loadavg();
  if (load[0] > 0.5) warn(`machine load average is ${load.map((l) => l.toFixed(2)).join(' ')} at the start: other work shares the machine (the gas figures do not depend on it; the latencies may)`);

  tmpDir = mkdtempSync(join(os.tmpdir(), 'sparkpay-bench-settle-'));

  // --- the chain ---------------------------------------------------------------------------
  note('starting anvil, deploying the forwarder factory and USDT (TestToken, 6 decimals)…');
  anvilNode = await m.anvil.startAnvil({ chainId: 31337, accounts: 10 });
  if (pin && spawnSync('taskset', ['-a', '-p', '-c', '1', String(anvilNode.process.pid)], { stdio: 'ignore' }).status !== 0) warn('could not pin anvil to CPU 1');
  const rpcUrl = anvilNode.rpcUrl;
  const { rpc, rpcBatch } = jsonRpc(rpcUrl);

  const hex = (n) => `0x${n.toString(16)}`;
  const account = (i) => m.tokens.devAccount(i).address;
  const deployer = m.clients.evmClients(rpcUrl, anvilNode.chainId, m.tokens.devAccount(0));
  const factory = await m.factory.deployForwarderFactory(deployer);
  const usdt = await m.tokens.deployTestToken(deployer, { name: 'Tether USD (test)', symbol: 'USDT', decimals: 6 });
  const roles = { wallet: account(1), fee: account(2), payer: account(3), seller: account(4), other: account(5), holder: account(6) };
  // The marketplace kind's sellers: one per order of the largest batch, each already a holder.
  roles.sellers = Array.from({ length: Math.max(1, ...opt.batches) }, () => viem.getAddress(`0x${randomBytes(20).toString('hex')}`));
  const relayerKey = m.devnet.devnetAccount(RELAYER_INDEX);
  // The payer gets plenty; every receiver (and the reference holder) already holds some USDT.
  await m.tokens.mintTestToken(deployer, usdt, roles.payer, 10n ** 30n);
  for (const who of [roles.wallet, roles.fee, roles.seller, roles.other, roles.holder, ...roles.sellers]) await m.tokens.mintTestToken(deployer, usdt, who, 1_000_000n);
  await rpc('evm_setAutomine', [false]);

  const nonces = new Map();
  const nextNonce = async (from) => {
    if (!nonces.has(from)) nonces.set(from, Number(await rpc('eth_getTransactionCount', [from, 'pending'])));
    const n = nonces.get(from);
    nonces.set(from, n + 1);
    return hex(n);
  };
  const transferTx = async (from, to, amount) => [
    'eth_sendTransaction',
    [{ from, to: usdt, gas: '0x186a0', nonce: await nextNonce(from), data: viem.encodeFunctionData({ abi: viem.erc20Abi, functionName: 'transfer', args: [to, amount] }) }],
  ];
  const receiptOf = (hash) => rpc('eth_getTransactionReceipt', [hash]);
  const poolEmpty = async () => {
    const s = await rpc('txpool_status');
    return Number(s.pending) + Number(s.queued) === 0;
  };
  const factoryAddress = factory.factory.toLowerCase();
  const DISTRIBUTION_TOPIC = viem.toEventSelector('Distribution(bytes32,address,address,uint256,uint256)');
  const TRANSFER_TOPIC = viem.toEventSelector('Transfer(address,address,uint256)');
  const topicOf = (address) => `0x${address.slice(2).toLowerCase().padStart(64, '0')}`;

  /** A fresh data directory whose Polygon is this anvil, settled by relayer #7. */
  const dataDirFor = (name, extra = {}) => {
    const dir = join(tmpDir, name);
    mkdirSync(dir, { recursive: true });
    const keyFile = join(dir, 'relayer.key');
    writeFileSync(keyFile, `${relayerKey.privateKey}\n`, { mode: 0o600 });
    const config = {
      log_level: opt.logLevel,
      ...extra,
      networks: {
        [NETWORK]: {
          chain_id: anvilNode.chainId,
          rpc_urls: [rpcUrl],
          confirmations: opt.confirmations,
          factory: factory.factory,
          forwarder: factory.implementation,
          fee_address: roles.fee,
          relayer_key_file: keyFile,
          max_fee_gwei: '100',
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
  // Notifications (ORDER_PAID, ORDER_COMPLETED) go to a closed local port: refused at once.
  const notifyUrl = 'http://127.0.0.1:9/sparkpay/notify';
  const startGateway = async (data, workers) => {
    const arg = JSON.stringify({ workers, notifyUrl, wallet: roles.wallet, seller: roles.seller, sellers: roles.sellers, other: roles.other });
    gatewayState = spawnGateway({ pin, arg, env: data.env, logFile: join(tmpDir, `${data.dir.split('/').pop()}-gateway.log`) });
    const ready = await gatewayState.wait('ready', 60_000);
    gatewayState.pid = ready.pid;
    if (ready.relayer?.toLowerCase() !== relayerKey.address.toLowerCase()) throw new Error(`the gateway's Polygon relayer is ${ready.relayer}, expected account #${RELAYER_INDEX} ${relayerKey.address}`);
    gatewayState.settlement = ready.settlement;
    return gatewayState;
  };
  const figures = { network: NETWORK, pinned: pin, confirmations: opt.confirmations, relayer: relayerKey.address };

  // --- 1. reference: a plain ERC-20 transfer -------------------------------------------------
  note('reference: plain USDT transfers (to a holder, to a fresh address)…');
  const transferGas = async (to) => {
    const [method, params] = await transferTx(roles.payer, to, 1_000_000n);
    const hash = await rpc(method, params);
    await rpc('anvil_mine', ['0x1']);
    const r = await receiptOf(hash);
    if (r?.status !== '0x1') throw new Error(`the reference transfer to ${to} failed`);
    return Number(r.gasUsed);
  };
  const toHolder = [];
  const toFresh = [];
  for (let i = 0; i < 3; i += 1) {
    toHolder.push(await transferGas(roles.holder));
    toFresh.push(await transferGas(viem.getAddress(`0x${randomBytes(20).toString('hex')}`)));
  }
  const transferRef = median(toHolder);
  if (new Set(toHolder).size > 1 || new Set(toFresh).size > 1) warn(`the reference transfers' gas varied: to a holder ${toHolder.join('/')}, to a fresh address ${toFresh.join('/')} (medians used)`);
  figures.transfer = { to_holder_gas: transferRef, to_fresh_address_gas: median(toFresh), reference: 'to_holder_gas', samples: { to_holder: toHolder, to_fresh: toFresh } };

  // --- 2. gas per order by batch size ----------------------------------------------------------
  figures.gas = [];
  for (const batch of opt.batches) {
    const data = dataDirFor(`gas-${batch}`, { settlement: { batch_size: batch, poll_ms: opt.settlePollMs } });
    const gw = await startGateway(data, false);
    if (gw.settlement.batchSize !== batch) warn(`the gateway's settlement.batch_size is ${gw.settlement.batchSize}, ${batch} was configured`);
    await gw.request({ cmd: 'scan' }, 'scan'); // sets the watcher's cursor before any payment
    for (const kind of Object.keys(KINDS)) {
      note(`gas: batch ${batch}, ${KINDS[kind].label}: ${batch} orders created, paid, scanned to PAID, settled…`);
      const { orders } = await gw.request({ cmd: 'orders', count: batch, kind }, 'orders');
      const nos = orders.map(([no]) => no);
      const calls = [];
      for (const [, address, base] of orders) calls.push(await transferTx(roles.payer, address, BigInt(base)));
      await rpcBatch(calls);
      await rpc('anvil_mine', [hex(opt.confirmations)]);
      if (!(await poolEmpty())) warn(`batch ${batch} ${kind}: payments left in the pool after a block`);
      let st = null;
      for (let k = 0; k < 5; k += 1) {
        await gw.request({ cmd: 'scan' }, 'scan');
        st = await gw.request({ cmd: 'status', nos }, 'status');
        if (st.orders.every((o) => o.status === 'PAID')) break;
        await rpc('anvil_mine', ['0x1']);
      }
      const paid = st.orders.filter((o) => o.status === 'PAID').length;
      if (paid !== batch) warn(`batch ${batch} ${kind}: ${paid} of ${batch} orders PAID after scanning (${[...new Set(st.orders.map((o) => o.status))].join(', ')})`);
      // The pass that sends: the N due orders in one transaction (settlement.batch_size = N).
      const sendPass = await gw.request({ cmd: 'settle' }, 'settle');
      if (sendPass.sent !== paid) warn(`batch ${batch} ${kind}: the first settlement pass sent ${sendPass.sent} of ${paid} due orders${sendPass.waiting ? ` (waiting: ${sendPass.waiting})` : ''}`);
      // Blocks on top, then the pass that makes them final (COMPLETED).
      await rpc('anvil_mine', [hex(opt.confirmations)]);
      const passes = [sendPass];
      let settled = 0;
      for (let k = 0; k < 5 && settled < sendPass.sent; k += 1) {
        const p = await gw.request({ cmd: 'settle' }, 'settle');
        passes.push(p);
        settled += p.settled;
        if (settled < sendPass.sent) await rpc('anvil_mine', ['0x1']);
      }
      st = await gw.request({ cmd: 'status', nos }, 'status');
      const completed = st.orders.filter((o) => o.status === 'COMPLETED').length;
      if (completed !== batch) warn(`batch ${batch} ${kind}: ${completed} of ${batch} orders COMPLETED (${[...new Set(st.orders.map((o) => `${o.status}/${o.settlement?.status ?? '-'}`))].join(', ')}; ${st.orders.find((o) => o.settlement?.lastError)?.settlement.lastError ?? ''})`);
      const txIds = [...new Set(st.orders.map((o) => o.settlement?.txId).filter(Boolean))];
      const hashes = new Set(st.orders.map((o) => o.settlement?.txHash).filter(Boolean));
      if (txIds.length !== 1) warn(`batch ${batch} ${kind}: the orders are in ${txIds.length} settlement transactions, not one`);
      // The transaction with the most orders is the batch measured.
      const txId = txIds.sort((x, y) => (st.txs[y]?.orderCount ?? 0) - (st.txs[x]?.orderCount ?? 0))[0];
      const tx = txId ? st.txs[txId] : null;
      if (!tx) throw new Error(`batch ${batch} ${kind}: no settlement transaction was recorded`);
      const hash = tx.minedHash ?? tx.txHash;
      const receipt = await receiptOf(hash);
      if (!receipt) throw new Error(`batch ${batch} ${kind}: no receipt for settlement transaction ${hash}`);
      if (receipt.status !== '0x1') warn(`batch ${batch} ${kind}: settlement transaction ${hash} reverted`);
      const ours = receipt.logs.filter((l) => l.address.toLowerCase() === factoryAddress);
      const distributions = ours.filter((l) => l.topics[0] === DISTRIBUTION_TOPIC).length;
      // The token's Transfer events: each forwarder to the factory, then the factory to each payee once.
      const transfers = receipt.logs.filter((l) => l.address.toLowerCase() === usdt.toLowerCase() && l.topics[0] === TRANSFER_TOPIC);
      const pulled = transfers.filter((l) => l.topics[2] === topicOf(factoryAddress)).length;
      const payouts = transfers.filter((l) => l.topics[1] === topicOf(factoryAddress)).length;
      const gasUsed = Number(receipt.gasUsed);
      if (tx.gasUsed !== null && Number(tx.gasUsed) !== gasUsed) warn(`batch ${batch} ${kind}: settlement_txs.gas_used ${tx.gasUsed} but the receipt says ${gasUsed}`);
      if (tx.orderCount !== distributions) warn(`batch ${batch} ${kind}: settlement_txs.order_count ${tx.orderCount} but the receipt has ${distributions} Distribution events`);
      if (pulled !== distributions) warn(`batch ${batch} ${kind}: ${pulled} transfers into the factory for ${distributions} orders`);
      if (payouts !== payeesPerTx(kind, distributions)) warn(`batch ${batch} ${kind}: ${payouts} transfers out of the factory for ${payeesPerTx(kind, distributions)} distinct receivers`);
      const perOrder = gasUsed / (distributions || tx.orderCount);
      figures.gas.push({
        kind,
        receivers: KINDS[kind].receivers,
        batch_size: batch,
        orders: batch,
        transactions: txIds.length,
        orders_in_tx: tx.orderCount,
        orders_sharing_tx_hash: Math.max(0, ...[...hashes].map((h) => st.orders.filter((o) => o.settlement?.txHash === h).length)),
        distributions_in_receipt: distributions,
        transfers_into_factory: pulled,
        payout_transfers: payouts,
        completed,
        tx_hash: hash,
        tx_status: tx.status,
        gas_used: gasUsed,
        gas_limit: Number(tx.gasLimit),
        gas_per_order: round(perOrder, 0),
        ratio: round(perOrder / transferRef, 3),
        passes: passes.map((p) => ({ sent: p.sent, settled: p.settled, waiting: p.waiting })),
      });
    }
    await stopGateway();
  }
  // Marginal gas of one more order in a batch, against the smallest batch measured.
  for (const kind of Object.keys(KINDS)) {
    const rows = figures.gas.filter((g) => g.kind === kind).sort((x, y) => x.batch_size - y.batch_size);
    const base = rows[0];
    for (const r of rows.slice(1)) r.marginal_gas_per_order = round((r.gas_used - base.gas_used) / (r.distributions_in_receipt - base.distributions_in_receipt), 0);
  }
  const atTarget = figures.gas.filter((g) => g.batch_size === TARGETS.transfersPerOrderAtBatch);
  figures.target = {
    batch_size: TARGETS.transfersPerOrderAtBatch,
    max_transfers_per_order: TARGETS.maxTransfersPerOrder,
    ...Object.fromEntries(atTarget.map((g) => [g.kind, { ratio: g.ratio, met: g.ratio < TARGETS.maxTransfersPerOrder, ...(KINDS[g.kind].target ? {} : { informative: true }) }])),
  };

  // --- 3. latency after PAID -----------------------------------------------------------------
  if (opt.latencySamples > 0) {
    const data = dataDirFor('latency', { chain_poll_ms: opt.chainPollMs, settlement: { poll_ms: opt.settlePollMs } });
    const gw = await startGateway(data, true);
    note(`latency: ${opt.latencySamples} orders created…`);
    const { orders } = await gw.request({ cmd: 'orders', count: opt.latencySamples, kind: 'plain' }, 'orders');
    await rpc('evm_setIntervalMining', [1]);
    await gw.request({ cmd: 'listen' }, 'listening');
    await sleep(1500); // the watcher's first pass sets its cursor
    note(`latency: paying ${orders.length} orders one at a time (1 s blocks, ${opt.confirmations} confirmations, chain_poll_ms ${opt.chainPollMs}, settlement.poll_ms ${opt.settlePollMs}, batch_size ${gw.settlement.batchSize})…`);
    const samples = [];
    let timeouts = 0;
    for (const [no, address, base] of orders) {
      await sleep(Math.floor(Math.random() * 1000)); // decorrelates payments from the block clock
      const [method, params] = await transferTx(roles.payer, address, BigInt(base));
      await rpc(method, params);
      const deadline = performance.now() + 60_000;
      let st = null;
      for (;;) {
        st = await gw.request({ cmd: 'status', nos: [no] }, 'status');
        if (st.orders[0].status === 'COMPLETED' || performance.now() > deadline) break;
        await sleep(100);
      }
      const o = st.orders[0];
      if (o.status !== 'COMPLETED') {
        timeouts += 1;
        warn(`order ${no} was not COMPLETED within 60 s (${o.status}, settlement ${o.settlement?.status ?? 'none'}${o.settlement?.lastError ? `: ${o.settlement.lastError}` : ''})`);
        if (timeouts >= 3) {
          warn('3 orders were not COMPLETED: the latency phase stops (are the workers running? see the gateway log)');
          break;
        }
        continue;
      }
      const tx = st.txs[o.settlement.txId];
      const paidAt = o.settlement.createdAt;
      const sentAt = tx?.sentAt ?? null;
      if (sentAt === null) warn(`order ${no}: its settlement transaction has no sent_at (broadcast refused at first?)`);
      samples.push({
        order: no,
        paid_at_ms: paidAt,
        intent_ms: tx ? tx.createdAt - paidAt : null,
        sent_ms: sentAt === null ? null : sentAt - paidAt,
        completed_ms: o.settlement.settledAt - paidAt,
        orders_in_tx: tx?.orderCount ?? null,
        tx_hashes: tx?.hashes.length ?? null,
        completed_time_s: o.completedTime,
        pay_time_s: o.payTime,
      });
    }
    await rpc('evm_setIntervalMining', [0]);
    await rpc('evm_setAutomine', [false]);
    await stopGateway();
    const stats = (key) => {
      const xs = samples.map((s) => s[key]).filter((x) => x !== null).sort((x, y) => x - y);
      return { p50_ms: round(quantile(xs, 0.5), 0), p95_ms: round(quantile(xs, 0.95), 0), max_ms: round(xs.at(-1), 0), min_ms: round(xs[0], 0), samples: xs.length };
    };
    const batched = samples.filter((s) => s.orders_in_tx !== 1).length;
    if (batched > 0) warn(`${batched} latency samples shared their settlement transaction with other orders`);
    const inconsistent = samples.filter((s) => s.completed_time_s !== Math.floor((s.paid_at_ms + s.completed_ms) / 1000)).length;
    figures.latency = {
      samples: samples.length,
      timeouts,
      confirmations: opt.confirmations,
      block_time_s: 1,
      chain_poll_ms: opt.chainPollMs,
      settlement_poll_ms: opt.settlePollMs,
      paid_to_sent: stats('sent_ms'),
      paid_to_completed: stats('completed_ms'),
      paid_to_intent_recorded: stats('intent_ms'),
      replaced_or_rebroadcast: samples.filter((s) => s.tx_hashes > 1).length,
      completed_time_mismatch: inconsistent,
      orders_per_tx_max: Math.max(0, ...samples.map((s) => s.orders_in_tx ?? 0)),
    };
  }
  figures.targets = TARGETS;
  figures.seconds = round(performance.now() / 1000, 1); // since this process started
  figures.warnings = warnings;

  // --- report ------------------------------------------------------------------------------------
  if (!opt.json) {
    const f = figures;
    const pad = (s) => s.padEnd(46);
    const k = (n) => n.toLocaleString('en-US');
    const lines = [
      '',
      `${pad('plain USDT transfer (TestToken, 6 decimals):')}${k(f.transfer.to_holder_gas)} gas to an address holding the token (the reference "transfer" below), ${k(f.transfer.to_fresh_address_gas)} gas to a fresh address`,
      '',
    ];
    if (f.gas.length) {
      lines.push(
        `settlement gas per order (gateway.settle, settlement.batch_size = batch; receivers already hold USDT; ${f.confirmations} confirmations):`,
        `  ${'orders'.padEnd(16)}${'batch'.padStart(6)}${'orders/tx'.padStart(11)}${'txs'.padStart(5)}${'gasUsed'.padStart(12)}${'gas/order'.padStart(11)}${'transfers/order'.padStart(17)}${'marginal/order'.padStart(16)}`,
      );
      for (const g of f.gas) {
        lines.push(
          `  ${KINDS[g.kind].label.padEnd(16)}${String(g.batch_size).padStart(6)}${String(g.distributions_in_receipt).padStart(11)}${String(g.transactions).padStart(5)}${k(g.gas_used).padStart(12)}${k(g.gas_per_order).padStart(11)}${g.ratio.toFixed(2).padStart(17)}${(g.marginal_gas_per_order === undefined ? '' : k(g.marginal_gas_per_order)).padStart(16)}`,
        );
      }
      lines.push(
        '  (orders/tx: Distribution events in the receipt, = settlement_txs.order_count; transfers/order: gas/order ÷ the transfer to a holder;',
        '   marginal/order: extra gas per extra order against the smallest batch)',
      );
      const t = f.target;
      const verdict = Object.keys(KINDS)
        .filter((kind) => t[kind] && KINDS[kind].target)
        .map((kind) => `${KINDS[kind].label} ${t[kind].ratio.toFixed(2)} (${t[kind].met ? 'met' : 'MISSED'})`);
      lines.push(`${pad(`target at batch ${t.batch_size}: < ${t.max_transfers_per_order} transfers per order:`)}${verdict.length ? verdict.join('; ') : 'not measured (batch 20 not in --batches)'}`);
      if (t.sellers) lines.push(`${pad('  (not a target kind) split, n sellers:')}${t.sellers.ratio.toFixed(2)}: each order also pays its own seller, one more transfer in the batch`);
      lines.push('');
    }
    if (f.latency) {
      const l = f.latency;
      const row = (label, s) => `  ${label.padEnd(34)}${`${k(s.p50_ms ?? NaN)} ms`.padStart(10)}${`${k(s.p95_ms ?? NaN)} ms`.padStart(10)}${`${k(s.max_ms ?? NaN)} ms`.padStart(10)}`;
      lines.push(
        `settlement latency after PAID (${l.samples} orders one at a time; 1 s blocks, ${l.confirmations} confirmations, chain_poll_ms ${l.chain_poll_ms}, settlement.poll_ms ${l.settlement_poll_ms}${l.timeouts ? `; ${l.timeouts} timed out` : ''}):`,
        `  ${''.padEnd(34)}${'p50'.padStart(10)}${'p95'.padStart(10)}${'max'.padStart(10)}`,
        row('PAID -> settlement tx sent', l.paid_to_sent),
        row('PAID -> COMPLETED', l.paid_to_completed),
        '  (database timestamps: settlements.created_at (set in the PAID transaction), settlement_txs.sent_at, settlements.settled_at)',
        '',
      );
    }
    if (warnings.length) lines.push(`warnings (${warnings.length}):`, ...warnings.map((w) => `  - ${w}`), '');
    lines.push(`run time ${f.seconds} s. Gas figures do not depend on the machine (they move by a few dozen gas between runs: zero bytes in the calldata's order refs and addresses cost less); latencies are wall-clock: compare them from quiet runs only.`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

// ---------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv[0] === '--internal-gateway') {
  await gatewayChild(argv[1]);
} else {
  await runOrchestrator({
    main,
    cleanup,
    finalWait: 10_000,
    stopping: 'stopping anvil and the children, removing ',
    tmpDir: () => tmpDir,
    lastResort: () => {
      if (anvilNode) anvilNode.process.kill('SIGKILL');
    },
  });
}
