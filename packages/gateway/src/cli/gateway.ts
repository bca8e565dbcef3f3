// The composition root: configuration → adapters → use cases → servers and workers.
import { sql } from 'kysely';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { Authenticator } from '../app/authenticate.js';
import { closeOrder } from '../app/close-order.js';
import { cashierOrder, cashierTokenValid, selectPaymentOption } from '../app/cashier.js';
import { createOrder } from '../app/create-order.js';
import { expireOverdueOrders } from '../app/expire-orders.js';
import { NotificationDelivery, perApplicationLimit } from '../app/deliver-notifications.js';
import { PlatformKeys } from '../app/platform-keys.js';
import { systemClock, type Clock, type Ids, type KeyVault, type OutboxSignal, type Store } from '../app/ports.js';
import { queryOrder } from '../app/query-order.js';
import { deploymentDecimals } from '../app/order-view.js';
import { paymentFacts, type PaymentFacts } from '../app/record-payment.js';
import type { ScanDeps, ScanResult } from '../app/scan-chain.js';
import { createKeyVault, loadOrCreateMasterKeyFile, MasterKeyError, parseMasterKey } from '../adapters/crypto/master-key-vault.js';
import { randomAlnum, randomIds } from '../adapters/crypto/random-ids.js';
import { openDatabase, type Db } from '../adapters/db/database.js';
import { withDirectoryCache } from '../adapters/db/directory-cache.js';
import { createStore } from '../adapters/db/store.js';
import { tokenBucket } from '../adapters/http/rate-limit.js';
import { createHttpSender } from '../adapters/notify/http-sender.js';
import { evmChainReader } from '../adapters/chain/evm/chain-reader.js';
import { CheckedDepositAddresses } from '../adapters/chain/evm/deposit-addresses.js';
import { secretScrubber } from '../domain/endpoint-secrets.js';
import { buildServer } from '../adapters/http/server.js';
import { operatorReads } from '../adapters/db/operator-reads.js';
import { consoleFind, consoleMerchants, consoleOrder, consoleOverview } from '../app/operator-console.js';
import { resendNotification } from '../app/notification-admin.js';
import { PrometheusMetrics } from '../adapters/metrics/prometheus.js';
import { currenciesWithoutRate, rateTableFrom } from '../domain/rates.js';
import { scanPass, startChainWatcher } from '../jobs/chain-watcher.js';
import { Settler, type SettleResult } from '../app/settle.js';
import { evmRelayer } from '../adapters/chain/evm/relayer.js';
import { startSettlementWorker } from '../jobs/settlement-worker.js';
import { startExpiryWorker } from '../jobs/expiry-worker.js';
import { startNotificationWorker, type NotificationWorker } from '../jobs/notification-worker.js';
import { startLoop, type WakeableLoop, type WorkerLoop } from '../jobs/worker-loop.js';
import type { NetworkDeployment } from '../domain/catalogue.js';
import { defaultPublicUrl, type Config } from './config.js';

export interface GatewayOptions {
  config: Config;
  logger?: Logger;
  clock?: Clock;
  ids?: Ids;
  /** Start the background workers (default true). */
  workers?: boolean;
}

export interface Gateway {
  config: Config;
  db: Db;
  store: Store;
  server: ReturnType<typeof buildServer>;
  platformKeys: PlatformKeys;
  payments: PaymentFacts;
  /** Notification delivery (the worker drives it; tests may call deliverDue directly). */
  notifications: NotificationDelivery;
  /** One scan pass of a network's chain (the watcher runs these; tests may call them directly). */
  scanChain(network: string): Promise<ScanResult>;
  /** One pass of the expiry worker: how many overdue orders it closed (tests may call it directly). */
  expireOrders(): Promise<number>;
  /** One settlement pass of a network (the settlement worker runs these; tests may call them directly). */
  settle(network: string): Promise<SettleResult>;
  /** The relayer account of each network that settles. */
  relayers: Record<string, string>;
  /** Counters and chain gauges, served on GET /metrics unless the configuration turns it off. */
  metrics: PrometheusMetrics;
  /** Wakes the delivery worker of this process (after writes it did not make itself, e.g. a resend). */
  outbox: OutboxSignal;
  logger: Logger;
  clock: Clock;
  ids: Ids;
  /** Listens on config.host:config.port; resolves to the base URL. */
  listen(): Promise<string>;
  /**
   * The base of cashier_url: the configured one; with port 0 and no SPARKPAY_PUBLIC_URL, the
   * port the system chose once listening (a cashier_url naming port 0 reaches nothing).
   */
  publicUrl(): string;
  close(): Promise<void>;
}

/**
 * Logs go to stderr, so stdout stays for command output (`--json` prints one object there). The
 * configured RPC endpoints' credentials (an API key in the path, a password) never reach a line:
 * the gateway names an endpoint by its host, and what a library quotes of a URL is scrubbed.
 */
export function createLogger(config: Pick<Config, 'logLevel'> & { deployment?: Config['deployment'] }, destination: pino.DestinationStream = pino.destination({ dest: 2, sync: false })): Logger {
  const scrub = secretScrubber((config.deployment?.networks ?? []).flatMap((n) => n.chain.rpcUrls));
  return pino(
    {
      level: config.logLevel,
      base: { service: 'sparkpay' },
      // Defence in depth: the code never logs these, and if it ever did they are removed.
      redact: { paths: ['*.privateKey', '*.private_key', '*.signature', '*.headers', 'req.headers', '*.masterKey'], remove: true },
      hooks: { streamWrite: scrub },
    },
    destination,
  );
}

/**
 * The master key: the operator's SPARKPAY_MASTER_KEY; in development a key file generated into
 * the data directory. Management commands (`create: false`) never generate one — a key made up
 * there would seal keys the server cannot open — they use the development file if it exists.
 */
export function openKeyVault(config: Config, create = config.mode === 'development'): KeyVault {
  if (config.masterKey) return createKeyVault(parseMasterKey(config.masterKey));
  if (create) return createKeyVault(loadOrCreateMasterKeyFile(config.masterKeyFile));
  if (existsSync(config.masterKeyFile)) return createKeyVault(parseMasterKey(readFileSync(config.masterKeyFile, 'utf8'), `the master key file ${config.masterKeyFile}`));
  throw new MasterKeyError(
    `SPARKPAY_MASTER_KEY is not set (32 bytes, e.g. \`openssl rand -hex 32\`) and there is no development key ${config.masterKeyFile}`,
  );
}

/** A vault opened on first use, so commands that never touch platform keys need no master key. */
function lazyVault(open: () => KeyVault): KeyVault {
  let vault: KeyVault | null = null;
  const get = () => (vault ??= open());
  return { seal: (p, c) => get().seal(p, c), open: (s, c) => get().open(s, c) };
}

/** A file's permission bits, or null when it cannot be read. */
function fileMode(path: string): number | null {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return null;
  }
}

/** Database, store, keys: what the management commands need, without the servers. */
export async function openCore(config: Config, clock: Clock = systemClock, ids: Ids = randomIds, options: { management?: boolean } = {}) {
  // The server checks its key at start; management commands only when they need one.
  const vault = options.management ? lazyVault(() => openKeyVault(config, false)) : openKeyVault(config);
  const db = await openDatabase({ url: config.databaseUrl, backgroundCheckpoints: !options.management });
  const store = createStore(db);
  const platformKeys = new PlatformKeys(store, vault, ids, clock);
  return { db, store, platformKeys, clock, ids };
}

/** How often a network's factory is asked again while it is not known to match. */
const FACTORY_CHECK_RETRY_MS = 30_000;

/**
 * Asks each network's factory at start whether it creates forwarders from the configured
 * implementation (deposit-addresses.ts); until one of its nodes answered, addresses are handed
 * out from the configuration. A mismatch is an error in the log, and the network offers no
 * deposit address until a later check finds the factory matching.
 */
function startFactoryCheck(deposits: CheckedDepositAddresses, networks: readonly NetworkDeployment[], logger: Logger): WorkerLoop {
  /** Networks said to be unchecked (once, until checked). */
  const unchecked = new Set<string>();
  const loop = startLoop('factory-check', FACTORY_CHECK_RETRY_MS, logger, async () => {
    if (!deposits.pending(networks)) return;
    const changed = await deposits.checkAll(networks);
    // No node answered: said once (the operator otherwise saw nothing at all for that network).
    for (const network of networks) {
      const check = deposits.status(network.id);
      if (check.state !== 'UNCHECKED' || unchecked.has(network.id) || network.chain.rpcUrls.length === 0 || !network.chain.factory || !network.chain.forwarder) continue;
      unchecked.add(network.id);
      logger.warn({ network: network.id, reason: check.reason }, `no RPC endpoint of the network answered: its chain id, factory and tokens are not checked yet, and deposit addresses are handed out from the configuration until one answers (asked again every ${FACTORY_CHECK_RETRY_MS / 1000} s)`);
    }
    for (const [network, check] of changed) {
      if (check.state !== 'UNCHECKED') unchecked.delete(network);
      if (check.state === 'MISMATCH') {
        logger.error({ network, reason: check.reason }, 'the network\'s chain does not match the configuration (networks.<enum>.chain_id / rpc_urls / factory / forwarder): no deposit addresses are handed out on this network');
        continue;
      }
      for (const [contract, { reason, absent }] of check.state === 'OK' ? (check.refused ?? []) : []) {
        // No contract at all: a token this chain does not have (a testnet's); one that disagrees is a configuration error.
        if (absent) logger.warn({ network, contract, reason }, 'a token of the network has no contract on its chain: it is not offered for payment on this network (networks.<enum>.currencies)');
        else logger.error({ network, contract, reason }, 'a token of the network does not match the configuration (networks.<enum>.currencies): it is not offered for payment on this network');
      }
      if (check.state === 'OK') {
        logger.info({ network }, check.refused?.size ? 'network checked: its chain id and forwarder factory match the configuration; the tokens named above are not offered' : 'network checked: its chain id, forwarder factory and tokens match the configuration');
      }
    }
  });
  loop.wake();
  return loop;
}

/** How far this process's clock may be from the database server's before the start warns. */
const CLOCK_SKEW_WARN_MS = 2_000;

/**
 * Leases (notification attempts, chain scans, settlement) are compared with each instance's own
 * clock: instances on PostgreSQL whose clocks disagree by more than a lease's margin take over
 * each other's leases early (a notification POSTed twice at once, say). The database server's
 * clock is the one every instance can compare with: the start says so when this one is off.
 */
async function warnOfClockSkew(db: Db, clock: Clock, logger: Logger): Promise<void> {
  if (db.dialect !== 'postgres') return;
  try {
    const before = clock.nowMs();
    const { rows } = await sql<{ ms: string }>`select (extract(epoch from clock_timestamp()) * 1000)::bigint::text as ms`.execute(db.kysely);
    const after = clock.nowMs();
    const skew = Number(rows[0]!.ms) - (before + after) / 2;
    if (Math.abs(skew) > CLOCK_SKEW_WARN_MS + (after - before) / 2) {
      logger.warn({ skewMs: Math.round(skew) }, "this process's clock differs from the database server's: leases of several instances assume their clocks agree (keep them in sync, e.g. NTP); a notification may otherwise be sent twice at once");
    }
  } catch (err) {
    logger.warn({ err }, "could not compare this process's clock with the database server's");
  }
}

export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const { config } = options;
  // Leases (notifications, chain scans) and the attempt log name the process that holds them, and so do its log lines.
  const instance = `${hostname()}/${process.pid}/${randomAlnum(6)}`;
  const logger = (options.logger ?? createLogger(config)).child({ instance });
  const clock = options.clock ?? systemClock;
  const ids = options.ids ?? randomIds;
  const core = await openCore(config, clock, ids);
  const { db, platformKeys } = core;
  // Merchants and applications are read on every request: kept for a second (ADR 0010).
  const store = withDirectoryCache(core.store, clock);
  if (config.mode === 'production' && !config.masterKey) {
    logger.warn({ file: config.masterKeyFile }, 'SPARKPAY_MASTER_KEY is not set: the master key is read from the file in the data directory, next to the database it protects; keep a copy elsewhere (without it the platform keys cannot be opened)');
  }
  // The file opens every platform private key: like the relayer key file, said when others can read it.
  const masterKeyFileMode = config.masterKey ? null : fileMode(config.masterKeyFile);
  if (masterKeyFileMode !== null && (masterKeyFileMode & 0o077) !== 0) {
    const mode = `0${masterKeyFileMode.toString(8).padStart(3, '0')}`;
    logger.warn({ file: config.masterKeyFile, mode }, `the master key file can be read by other users of this machine (mode ${mode}): whoever reads it, and a copy of the database, has every platform private key; chmod 600 it`);
  }
  try {
    await platformKeys.ensureDefault();
    // The master key must open the keys the database holds: a wrong SPARKPAY_MASTER_KEY stops the
    // start with one line, instead of a server that reports ready and fails every request.
    await platformKeys.signingKeyFor(null);
  } catch (err) {
    // Closed at once: PostgreSQL's idle connections would keep the failed start alive 10 s more.
    await db.close().catch(() => undefined);
    throw err;
  }
  await warnOfClockSkew(db, clock, logger);
  const rates = rateTableFrom(config.rates);
  const outbox = { worker: null as NotificationWorker | null, notify: () => outbox.worker?.notify() };
  // Counted even when not served (cheap); the process metrics only when served.
  // The networks whose chains this gateway scans (those with RPC endpoints).
  const scannedNetworks = config.deployment.networks.filter((n) => n.chain.rpcUrls.length > 0);
  const scanned = scannedNetworks.map((n) => n.id);
  const metrics = new PrometheusMetrics({
    networks: config.deployment.networks.map((n) => n.id),
    processMetrics: config.metrics,
    // The queues operators watch, read from the database at each scrape.
    backlog: {
      nowMs: () => clock.nowMs(),
      notifications: (now) => store.notifications.backlog(now),
      settlements: () => store.settlements.backlog(),
      chainCaughtUp: () => store.chainCursors.caughtUpTimes(scanned),
    },
  });
  // The settlement worker of a network wakes up when an order there becomes due (not only every poll).
  const settlementWorkers = new Map<string, WakeableLoop>();
  const tokens = deploymentDecimals(config.deployment);
  const deps = { store, clock, ids, outbox, metrics, settlementDue: (network: string) => settlementWorkers.get(network)?.wake(), tokens };
  const sender = createHttpSender({ timeoutMs: config.notify.timeoutMs, allowPrivate: config.notifyAllowPrivate, socketsPerHost: config.notify.perDestination });
  const notifications = new NotificationDelivery(
    { store, clock, platformKeys, sender, log: logger.child({ worker: 'notifications' }), metrics },
    {
      // Leases and the attempt log name the process that sent.
      owner: instance,
      leaseMs: config.notify.leaseMs,
      concurrency: config.notify.concurrency,
      perDestination: config.notify.perDestination,
      perApplication: perApplicationLimit(config.notify.concurrency, config.notify.perDestination),
    },
  );
  const payments = paymentFacts(deps);
  const scanners = new Map<string, ScanDeps>(
    scannedNetworks.map((network) => [
      network.id,
      {
        store,
        clock,
        payments,
        network,
        reader: evmChainReader(network.chain.rpcUrls, { log: logger.child({ network: network.id }), chainId: network.chainId }),
        // The scan's own lines name the network (once: pino does not merge a bound key with a logged one).
        log: logger.child({ worker: 'chain' }),
        owner: instance,
        leaseMs: Math.max(30_000, config.chainPollMs * 10),
        maxBlocks: 2_000,
        wideScanFrom: config.chainWideScanFrom,
        nativeSparseFrom: config.chainNativeSparseFrom,
        nativeFullReadMs: config.chainNativeFullReadMs,
      },
    ]),
  );
  const settlers = new Map<string, Settler>();
  for (const network of config.deployment.networks) {
    const relayer = config.relayers[network.id];
    if (!relayer || network.chain.rpcUrls.length === 0 || !network.chain.factory) continue;
    settlers.set(
      network.id,
      new Settler({
        ...deps,
        chain: evmRelayer({ rpcUrls: network.chain.rpcUrls, chainId: network.chainId, factory: network.chain.factory, privateKey: relayer.privateKey, log: logger.child({ worker: 'settlement', network: network.id }) }),
        network,
        log: logger.child({ worker: 'settlement' }),
        owner: instance,
        leaseMs: Math.max(config.settlement.leaseMs, config.settlement.pollMs * 10),
        settings: { ...config.settlement, maxFeePerGas: relayer.maxFeePerGas },
      }),
    );
  }
  if (config.metrics && !config.metricsToken && config.mode === 'production') {
    logger.warn('GET /metrics is served to anyone who can reach this port: set metrics_token (SPARKPAY_METRICS_TOKEN) for the scraper, or "metrics": false');
  }
  if (config.exposedSecrets) {
    const { path, mode, settings } = config.exposedSecrets;
    logger.warn({ file: path, mode, settings }, `the configuration file holds secrets (${settings.join(', ')}) and other users of this machine can read it (mode ${mode}): chmod 600 it, or give them in the environment or key files`);
  }
  for (const [network, relayer] of Object.entries(config.relayers)) {
    const exposed = relayer?.exposedFile;
    // The path and mode only: never anything of the key.
    if (exposed) logger.warn({ network, file: exposed.path, mode: exposed.mode }, `the relayer key file can be read by other users of this machine (mode ${exposed.mode}): whoever reads it can spend the relayer's gas money; chmod 600 it`);
  }
  const unpriced = currenciesWithoutRate(config.deployment, rates);
  if (unpriced.length > 0) {
    logger.warn({ currencies: unpriced }, `no USD rate is configured for ${unpriced.join(', ')}: no order can be paid in them (the minimum fee is in USD, PROTOCOL §14); set "rates" in the configuration file, or leave them out (networks.<enum>.currencies)`);
  }
  for (const network of config.deployment.networks) {
    if (network.chain.rpcUrls.length > 0 && !settlers.has(network.id)) {
      logger.warn({ network: network.id }, 'no settlement relayer configured for this network: its paid orders will wait (networks.<enum>.relayer_key)');
    }
  }
  const deposits = new CheckedDepositAddresses();
  // The cashier reads the merchant uncached: the wallet it finds is committed to by the deposit
  // address's settlement plan, so a wallet changed a moment ago must never be used (ADR 0010).
  const cashierDeps = { store: core.store, clock, deployment: config.deployment, deposits };
  const consoleDeps = config.consoleToken ? { store, reads: operatorReads(db.kysely), clock, deployment: config.deployment, outbox } : null;
  if (!consoleDeps) logger.info('the operator console is off: set console_token (SPARKPAY_CONSOLE_TOKEN) to serve it at /console');
  let ready = false;
  let stopping = false;
  let publicUrl = config.publicUrl;
  const server = buildServer({
    logger,
    clock,
    ids,
    platformKeys,
    authenticator: new Authenticator(store, clock, { windowSeconds: config.timestampWindowSeconds }),
    rateLimiter: config.rateLimit > 0 ? tokenBucket(config.rateLimit) : null,
    refusalLimiter: config.refusalRateLimit > 0 ? tokenBucket(config.refusalRateLimit, config.refusalRateLimit * 5) : null,
    isReady: () => ready,
    isStopping: () => stopping,
    databaseAnswers: () => db.answers(),
    metrics: config.metrics ? metrics : undefined,
    metricsToken: config.metricsToken,
    trustProxy: config.trustProxy,
    api: {
      createOrder: (app, edition, body, nonce) =>
        createOrder({ ...deps, deployment: config.deployment, rates, publicUrl }, app, edition, body, nonce),
      queryOrder: (app, edition, merchantNo, requestNo) => queryOrder(store, app, edition, merchantNo, requestNo, tokens),
      closeOrder: (app, body) => closeOrder(deps, app, body),
    },
    ...(consoleDeps && config.consoleToken
      ? {
          console: {
            token: config.consoleToken,
            // The scheme's case does not matter (public_url "HTTPS://…" is https too).
            secureCookie: new URL(config.publicUrl).protocol === 'https:',
            overview: (filter) => consoleOverview(consoleDeps, filter),
            order: (paymentOrderNo) => consoleOrder(consoleDeps, paymentOrderNo),
            find: (typed, merchantNo) => consoleFind(consoleDeps, typed, merchantNo),
            merchants: (after) => consoleMerchants(consoleDeps, after),
            resend: (notifyId) => resendNotification(consoleDeps, notifyId),
          },
        }
      : {}),
    cashier: {
      check: (paymentOrderNo, token) => cashierTokenValid(store, paymentOrderNo, token),
      order: (paymentOrderNo, token) => cashierOrder(cashierDeps, paymentOrderNo, token),
      select: (paymentOrderNo, token, body) => selectPaymentOption(cashierDeps, paymentOrderNo, token, body),
    },
  });
  const workers: WorkerLoop[] = [];
  return {
    config,
    publicUrl: () => publicUrl,
    db,
    store,
    server,
    platformKeys,
    payments,
    async scanChain(network) {
      const scanner = scanners.get(network);
      if (!scanner) throw new Error(`network ${network} has no RPC endpoints configured`);
      return scanPass(scanner, metrics);
    },
    expireOrders: () => expireOverdueOrders(deps, scanned, undefined, logger),
    async settle(network) {
      const settler = settlers.get(network);
      if (!settler) throw new Error(`network ${network} has no settlement relayer configured`);
      return settler.settleOnce();
    },
    relayers: Object.fromEntries([...settlers].map(([id, s]) => [id, s.relayer])),
    notifications,
    metrics,
    outbox,
    logger,
    clock,
    ids,
    async listen() {
      const address = await server.listen({ host: config.host, port: config.port });
      if (config.port === 0 && config.publicUrl === defaultPublicUrl(config.host, 0)) publicUrl = defaultPublicUrl(config.host, Number(new URL(address).port));
      if (options.workers !== false) {
        workers.push(startExpiryWorker(deps, scanned, logger, config.expiryIntervalMs));
        workers.push(startFactoryCheck(deposits, config.deployment.networks, logger));
        for (const scanner of scanners.values()) workers.push(startChainWatcher(scanner, logger, config.chainPollMs, metrics));
        for (const [id, settler] of settlers) {
          const worker = startSettlementWorker(id, settler, logger, config.settlement.pollMs);
          settlementWorkers.set(id, worker);
          workers.push(worker);
        }
        outbox.worker = startNotificationWorker(notifications, logger, config.notify.pollMs);
        workers.push(outbox.worker);
      }
      ready = true;
      logger.info({ address, database: db.description, mode: config.mode }, 'sparkpay gateway listening');
      return address;
    },
    async close() {
      ready = false;
      stopping = true;
      await Promise.all(workers.map((w) => w.stop()));
      // Attempts started by hand (tests, no worker) are cut short too.
      await notifications.stop();
      sender.close();
      await server.close();
      await db.close();
      logger.flush();
    },
  };
}
