// Sub-commands of `sparkpay`. Management commands open the same database as the server
// (SQLite WAL or PostgreSQL) and work while it runs.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateRsaKeyPair } from '@sparkpay/protocol';
import {
  activatePlatformKey,
  addPlatformKey,
  createApplication,
  createMerchant,
  listApplications,
  liveKeys,
  parseNetworkAddressPairs,
  retirePlatformKey,
  setApplicationStatus,
  setMerchantKey,
  updateMerchant,
  type AdminDeps,
  type LiveKey,
} from '../app/merchant-admin.js';
import { listOrderNotifications, resendNotification } from '../app/notification-admin.js';
import { settleClosedOrder } from '../app/settlement-admin.js';
import { notificationLines } from './notify-views.js';
import { attemptView, notificationView, orderReport } from '../app/operator-views.js';
import type { MerchantPatch } from '../app/ports.js';
import { ConfigError, loadConfig, loadOrCreateConsoleToken, type Mode } from './config.js';
import { seedDevelopment } from './dev-seed.js';
import { shutdown } from './shutdown.js';
import { createGateway, openCore, type Gateway } from './gateway.js';
import { resetChainCursors } from '../adapters/db/chain-cursor-store.js';
import { isPostgresUrl, openDatabase } from '../adapters/db/database.js';
import { sql } from 'kysely';
import { deployFactory } from '../adapters/chain/evm/factory-deploy.js';
import { parseNetworkId } from '../domain/catalogue.js';
import {
  devnetDeployment,
  devnetRelayers,
  claimDevDataDir,
  reapOrphanedAnvils,
  devnetInfo,
  removeDevnetFile,
  startDevnet,
  writeDevnetFile,
} from '../adapters/devnet/devnet.js';
import { args, escapedText, failed, reasonLine, UsageError } from './output.js';
import { devnetInfoCommand, devnetPayCommand, devnetReorgCommand } from './devnet-commands.js';

const USAGE = `usage: sparkpay <command> [options]     (sparkpay --version: the version)
  start                                  run the gateway (production mode)
  dev                                    run the gateway in development mode: a local chain (anvil) per network 2-5
                                         with test tokens, a demo merchant, keys in the data directory
  devnet info [--json]                   the running dev mode's chains: RPC URLs, chain ids, token contracts,
                                         factory, funded accounts (with their development private keys)
  devnet pay <cashier_url> [--network <n> --currency <code>] [--amount <decimal>] [--account 1|2|3] [--reorg] [--json]
                                         pay an order from a funded account, as a payer would: choose the pair on
                                         its cashier API (default: the one chosen), send what remains (or --amount);
                                         --reorg: the gateway sees the payment, then its block is replaced without it
  devnet reorg --network <n> [--depth <blocks> | --tx <hash>] [--keep] [--json]
                                         replace the newest blocks of one chain (down to --tx's block): their
                                         transactions are dropped, or with --keep mined again in the new blocks
  merchant create --name <name> [--json]
  merchant set <merchant_no> [--status ACTIVE|INACTIVE] [--online-payment on|off]
                [--wallet <network>=<address>]... [--ca-address <network>=<address>]... [--json]
  app create --merchant <merchant_no> --public-key <pem file> [--json]
  app list --merchant <merchant_no> [--json]   the merchant's applications: status, created, signing key serial
  app disable <app_id> [--json]          its requests are refused (40002) from now on (within 1 s on every instance)
  app enable <app_id> [--json]           a disabled application is served again (within 1 s on every instance)
  app keys <app_id> [--json]             the application's live platform public keys, serials, which one signs
  app add-key <app_id> [--activate] [--json]
                                         a new platform key, NEXT (listed, not signing) unless --activate
  app activate-key <app_id> <serial> [--json]   the NEXT key signs from now on (within 5 s on every instance)
  app retire-key <app_id> <serial> [--json]     a key that no longer signs leaves the live list
  app set-key <app_id> --public-key <pem file> [--json]   replace the merchant's public key
  keys generate --out <dir> [--json]     a merchant RSA-2048 key pair (PKCS#8 private, SPKI public)
  network deploy-factory <network> [--json]
                                         deploy the network's forwarder factory from its relayer account (once per
                                         network); prints the factory and forwarder to configure
  order show <payment_order_no> [--json]
  order settle <payment_order_no> [--json]   settle what arrived at a closed order's address (PAID_LATE)
  notify list --order <payment_order_no> [--json]   the order's notifications and every delivery attempt
  notify resend <notify_id> [--json]     a new series of attempts (same notify_id), due now
  backup --to <file> [--json]            a consistent copy of the SQLite database, taken while the gateway runs
                                         (PostgreSQL: pg_dump or continuous archiving); the master key is not in it`;

/** Resolves to an exit code, or null for a server that keeps running. */
export async function runCli(argv: string[]): Promise<number | null> {
  const [command, sub, ...rest] = argv;
  try {
    switch (command) {
      case 'version':
      case '--version': {
        const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
        process.stdout.write(`sparkpay ${String(pkg.version)}\n`);
        return 0;
      }
      case 'start':
      case 'dev':
        return await serve(command === 'dev' ? 'development' : 'production', argv.slice(1));
      case 'merchant':
        if (sub === 'create') return await merchantCreate(rest);
        if (sub === 'set') return await merchantSet(rest);
        break;
      case 'app':
        if (sub === 'create') return await appCreate(rest);
        if (sub === 'list') return await appList(rest);
        if (sub === 'disable') return await appSetStatus(rest, 'DISABLED');
        if (sub === 'enable') return await appSetStatus(rest, 'ACTIVE');
        if (sub === 'keys') return await appKeys(rest);
        if (sub === 'add-key') return await appAddKey(rest);
        if (sub === 'activate-key') return await appKeyStep(rest, 'activate');
        if (sub === 'retire-key') return await appKeyStep(rest, 'retire');
        if (sub === 'set-key') return await appSetKey(rest);
        break;
      case 'keys':
        if (sub === 'generate') return keysGenerate(rest);
        break;
      case 'network':
        if (sub === 'deploy-factory') return await networkDeployFactory(rest);
        break;
      case 'order':
        if (sub === 'show') return await orderShow(rest);
        if (sub === 'settle') return await orderSettle(rest);
        break;
      case 'devnet':
        if (sub === 'info') return devnetInfoCommand(rest);
        if (sub === 'pay') return await devnetPayCommand(rest);
        if (sub === 'reorg') return await devnetReorgCommand(rest);
        break;
      case 'notify':
        if (sub === 'list') return await notifyList(rest);
        if (sub === 'resend') return await notifyResend(rest);
        break;
      case 'backup':
        return await backup(argv.slice(1));
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 1 : 0;
    }
    throw new UsageError(`unknown command "${[command, sub].filter(Boolean).join(' ')}"; run "sparkpay help"`);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || isParseArgsError(err)) {
      // node's parseArgs explains some refusals over several lines: one line here.
      const message = isParseArgsError(err) ? (err as Error).message.split('\n').join(' ') : (err as Error).message;
      process.stderr.write(`sparkpay: ${reasonLine(message)}\n`);
      return 2;
    }
    throw err;
  }
}

function isParseArgsError(err: unknown): boolean {
  return typeof (err as { code?: unknown })?.code === 'string' && String((err as { code: string }).code).startsWith('ERR_PARSE_ARGS');
}

async function withCore<T>(fn: (deps: AdminDeps) => Promise<T>): Promise<T> {
  const config = loadConfig('production');
  const core = await openCore(config, undefined, undefined, { management: true });
  try {
    return await fn(core);
  } finally {
    await core.db.close();
  }
}


async function serve(mode: Mode, argv: string[]): Promise<null> {
  const { out } = args(argv, {});
  let config = loadConfig(mode);
  if (mode === 'development' && config.consoleToken === null) config = { ...config, consoleToken: loadOrCreateConsoleToken(config.consoleTokenFile) };
  // Development: the local chains first, so the gateway's deployment (and with it the chain
  // watchers and the cashier's deposit addresses) points at them from the start.
  const devnetFile = join(config.dataDir, 'devnet.json');
  // One `dev` per data directory: claimed before any chain starts.
  const release = mode === 'development' ? claimDevDataDir(config.dataDir) : () => undefined;
  let devnet: Awaited<ReturnType<typeof startDevnet>> | null = null;
  try {
    if (mode === 'development') {
      // A previous `sparkpay dev` killed outright left its anvils running: stop them first.
      const reaped = await reapOrphanedAnvils(devnetFile);
      if (reaped.length > 0) process.stderr.write(`stopped ${reaped.length} anvil process(es) left running by a previous "sparkpay dev" (pids ${reaped.join(', ')})\n`);
      devnet = await startDevnet({ host: config.host === '0.0.0.0' ? '0.0.0.0' : '127.0.0.1' });
    }
  } catch (err) {
    release();
    throw err;
  }
  const stopDevnet = async (): Promise<void> => {
    try {
      if (!devnet) return;
      removeOwnDevnetFile(devnetFile);
      await devnet.stop();
    } finally {
      release();
    }
  };
  let gateway: Gateway;
  try {
    if (devnet) config = { ...config, deployment: devnetDeployment(config.deployment, devnet), relayers: { ...devnetRelayers(devnet), ...config.relayers } };
    gateway = await createGateway({ config });
  } catch (err) {
    await stopDevnet();
    throw err;
  }
  const close = async (): Promise<void> => {
    try {
      await gateway.close();
    } finally {
      await stopDevnet();
    }
  };
  let dev: Awaited<ReturnType<typeof seedDevelopment>> | null = null;
  let address: string;
  try {
    if (devnet) {
      dev = await seedDevelopment(gateway, config.dataDir, devnet.merchantWallet);
      // The chains are new: the previous run's scan cursors and leases mean nothing on them.
      await resetChainCursors(gateway.db.kysely, devnet.chains.map((c) => c.network), Date.now());
      // …and the previous run's settlement transactions were never on them.
      await gateway.store.settlements.dropOpen(devnet.chains.map((c) => c.network), Date.now());
      mkdirSync(config.dataDir, { recursive: true });
      writeDevnetFile(devnetFile, devnetInfo(devnet));
    }
    address = await gateway.listen();
  } catch (err) {
    await close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`${config.host}:${config.port} is in use (another gateway, or another program, listens there): stop it, or give this one another port (SPARKPAY_PORT)`);
    }
    throw err;
  }
  const info: Record<string, unknown> = { mode, api_url: gateway.publicUrl(), listening: address, database: gateway.db.description, data_dir: config.dataDir };
  // The console's address; in development also where its sign-in token is (never the token itself).
  info.console_url = config.consoleToken ? `${gateway.publicUrl().replace(/\/+$/, '')}/console` : 'off (set console_token)';
  if (mode === 'development' && existsSync(config.consoleTokenFile)) info.console_token_file = config.consoleTokenFile;
  if (dev && devnet) {
    Object.assign(info, {
      merchant_no: dev.merchantNo,
      app_id: dev.appId,
      platform_key_serial: dev.serial,
      merchant_private_key_file: dev.merchantPrivateKeyFile,
      merchant_public_key_file: dev.merchantPublicKeyFile,
      platform_public_key_file: dev.platformPublicKeyFile,
      devnet_file: devnetFile,
      networks: Object.fromEntries(devnet.chains.map((c) => [c.network, { rpc_url: c.rpcUrl, chain_id: c.chainId }])),
    });
  } else {
    // What an operator checks after a start: which networks are served, by how many endpoints
    // (never their URLs: they may hold credentials), and the relayer account to fund.
    const served = config.deployment.networks.filter((n) => n.chain.rpcUrls.length > 0);
    info.networks = Object.fromEntries(
      served.map((n) => [n.id, { chain_id: n.chainId, rpc_endpoints: n.chain.rpcUrls.length, factory: n.chain.factory, relayer: gateway.relayers[n.id] ?? null }]),
    );
  }
  out.result(info, () => {
    const lines = Object.entries(info)
      .filter(([k]) => k !== 'networks')
      .map(([k, v]) => `${k.padEnd(26)} ${String(v)}`);
    if (devnet) {
      for (const c of devnet.chains) lines.push(`${`network ${c.network} RPC`.padEnd(26)} ${c.rpcUrl} (chain id ${c.chainId})`);
      lines.push(`${''.padEnd(26)} tokens, factory and funded accounts: sparkpay devnet info`);
    } else {
      const served = Object.entries(info.networks as Record<string, { chain_id: number; rpc_endpoints: number; factory: string | null; relayer: string | null }>);
      if (served.length === 0) lines.push(`${'networks'.padEnd(26)} none has an RPC endpoint: no payment can be seen (networks.<enum>.rpc_urls)`);
      for (const [id, n] of served) {
        const parts = [`chain id ${n.chain_id}`, `${n.rpc_endpoints} RPC endpoint${n.rpc_endpoints === 1 ? '' : 's'}`, n.factory ? `factory ${n.factory}` : 'no factory (no deposit addresses)', n.relayer ? `relayer ${n.relayer} (it pays for settlements: keep it funded)` : 'no relayer (no settlements)'];
        lines.push(`${`network ${id}`.padEnd(26)} ${parts.join(', ')}`);
      }
    }
    return lines;
  });
  const stop = (signal: string) => void shutdown(signal, close, gateway.logger);
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return null;
}

/** Removes the devnet file if this process wrote it (a second `dev` on the same data directory may own it now). */
function removeOwnDevnetFile(path: string): void {
  try {
    const owner = (JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown }).pid;
    if (owner === process.pid) removeDevnetFile(path);
  } catch {
    // Gone already, or not ours to judge.
  }
}

async function merchantCreate(argv: string[]): Promise<number> {
  const { values, out } = args(argv, { name: { type: 'string' } });
  if (typeof values.name !== 'string') throw new UsageError('merchant create needs --name <name>');
  const name = values.name;
  return withCore(async (deps) => {
    const r = await createMerchant(deps, { name });
    if (!r.ok) return failed(r.message);
    out.result({ merchant_no: r.value.merchantNo, name: r.value.name, status: r.value.status }, () => [`merchant_no ${r.value.merchantNo}`]);
    return 0;
  });
}

async function merchantSet(argv: string[]): Promise<number> {
  const { values, positionals, out } = args(
    argv,
    {
      status: { type: 'string' },
      'online-payment': { type: 'string' },
      wallet: { type: 'string', multiple: true },
      'ca-address': { type: 'string', multiple: true },
    },
    1,
  );
  const patch: MerchantPatch = {};
  if (values.status !== undefined) {
    if (values.status !== 'ACTIVE' && values.status !== 'INACTIVE') throw new UsageError('--status must be ACTIVE or INACTIVE');
    patch.status = values.status;
  }
  if (values['online-payment'] !== undefined) {
    if (values['online-payment'] !== 'on' && values['online-payment'] !== 'off') throw new UsageError('--online-payment must be on or off');
    patch.onlinePayment = values['online-payment'] === 'on';
  }
  const wallets = parseNetworkAddressPairs((values.wallet as string[] | undefined) ?? [], '--wallet');
  if (!wallets.ok) throw new UsageError(wallets.message);
  const cas = parseNetworkAddressPairs((values['ca-address'] as string[] | undefined) ?? [], '--ca-address');
  if (!cas.ok) throw new UsageError(cas.message);
  if (Object.keys(wallets.value).length) patch.wallets = wallets.value;
  if (Object.keys(cas.value).length) patch.caAddresses = cas.value;
  const merchantNo = positionals[0] as string;
  return withCore(async (deps) => {
    const r = await updateMerchant(deps, merchantNo, patch);
    if (!r.ok) return failed(r.message);
    const m = r.value;
    const view = { merchant_no: m.merchantNo, name: m.name, status: m.status, online_payment: m.onlinePayment, wallets: m.wallets, ca_addresses: m.caAddresses };
    out.result(view, () => [`merchant ${m.merchantNo} updated: ${m.status}, online payment ${m.onlinePayment ? 'on' : 'off'}`]);
    return 0;
  });
}

async function appCreate(argv: string[]): Promise<number> {
  const { values, out } = args(argv, { merchant: { type: 'string' }, 'public-key': { type: 'string' } });
  if (typeof values.merchant !== 'string' || typeof values['public-key'] !== 'string') {
    throw new UsageError('app create needs --merchant <merchant_no> --public-key <pem file>');
  }
  const pem = readPublicKeyFile(values['public-key']);
  const merchantNo = values.merchant;
  return withCore(async (deps) => {
    const r = await createApplication(deps, { merchantNo, merchantPublicKey: pem });
    if (!r.ok) return failed(r.message);
    const { application, platformKey } = r.value;
    out.result(
      { app_id: application.appId, merchant_no: application.merchantNo, platform_public_key: platformKey.publicKeyPem, serial: platformKey.serial },
      () => [`app_id ${application.appId}`, `merchant_no ${application.merchantNo}`, `serial ${platformKey.serial}`, platformKey.publicKeyPem.trim()],
    );
    return 0;
  });
}

async function appList(argv: string[]): Promise<number> {
  const { values, out } = args(argv, { merchant: { type: 'string' } });
  if (typeof values.merchant !== 'string') throw new UsageError('app list needs --merchant <merchant_no>');
  const merchantNo = values.merchant;
  return withCore(async (deps) => {
    const listed = await listApplications(deps, merchantNo);
    if (!listed) return failed(`merchant ${merchantNo} does not exist`);
    const views = listed.map(({ application: a, signingSerial }) => ({
      app_id: a.appId,
      status: a.status,
      created_at: new Date(a.createdAt).toISOString(),
      signing_serial: signingSerial,
    }));
    out.result({ merchant_no: merchantNo, applications: views }, () =>
      views.length === 0
        ? [`merchant ${merchantNo} has no applications`]
        : views.map((v) => `app_id ${v.app_id} ${v.status} (created ${v.created_at}), ${v.signing_serial ? `signing key ${v.signing_serial}` : 'no key of its own signs (the default key does)'}`),
    );
    return 0;
  });
}

async function appSetStatus(argv: string[], status: 'ACTIVE' | 'DISABLED'): Promise<number> {
  const { positionals, out } = args(argv, {}, 1);
  const appId = positionals[0] as string;
  return withCore(async (deps) => {
    const r = await setApplicationStatus(deps, appId, status);
    if (!r.ok) return failed(r.message);
    const { application: a, changed } = r.value;
    const state = a.status === 'DISABLED' ? 'disabled' : 'enabled';
    out.result({ app_id: a.appId, merchant_no: a.merchantNo, status: a.status, changed }, () => [
      changed
        ? `application ${a.appId} ${state}: its requests are ${a.status === 'DISABLED' ? 'refused (40002)' : 'served'} from now on (within 1 s on every instance)`
        : `application ${a.appId} is ${state} already; nothing changed`,
    ]);
    return 0;
  });
}

/**
 * The merchant public key file of `--public-key`. The key's own text given instead (`--public-key
 * "$(cat key.pem)"`) is refused as such, and none of it is echoed: it may be the private half.
 */
function readPublicKeyFile(path: string): string {
  // A PEM block, or a bare Base64 body (with or without line breaks), that names no file.
  if ((/-----BEGIN/.test(path) || /^[A-Za-z0-9+/=\s]{200,}$/.test(path)) && !existsSync(path)) {
    const what = /PRIVATE KEY/.test(path) ? 'a private key (never give it to the gateway: it needs the public half, merchant_public_key.pem)' : 'a key';
    throw new UsageError(`--public-key takes the path of a PEM file, not the key's text; this is the text of ${what}`);
  }
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

/** One live platform key as the commands print it. */
function keyView({ key, signing }: LiveKey) {
  return { serial: key.serial, status: key.status, signing, platform_public_key: key.publicKeyPem, created_at: new Date(key.createdAt).toISOString() };
}
const keyLines = (k: ReturnType<typeof keyView>) => [`serial ${k.serial} ${k.status}${k.signing ? ', signing' : ''} (created ${k.created_at})`, k.platform_public_key.trim()];

async function appKeys(argv: string[]): Promise<number> {
  const { positionals, out } = args(argv, {}, 1);
  const appId = positionals[0] as string;
  return withCore(async (deps) => {
    const keys = await liveKeys(deps, appId);
    if (!keys) return failed(`application ${appId} does not exist`);
    const list = keys.map(keyView);
    out.result({ app_id: appId, keys: list }, () => list.flatMap(keyLines));
    return 0;
  });
}

async function appAddKey(argv: string[]): Promise<number> {
  const { values, positionals, out } = args(argv, { activate: { type: 'boolean' } }, 1);
  const appId = positionals[0] as string;
  return withCore(async (deps) => {
    const r = await addPlatformKey(deps, appId, values.activate === true);
    if (!r.ok) return failed(r.message);
    const view = keyView(r.value);
    out.result({ app_id: appId, ...view }, () => [
      ...keyLines(view),
      view.signing ? 'it signs from now on (within 5 s on every instance)' : `give it to the merchant, then: sparkpay app activate-key ${appId} ${view.serial}`,
    ]);
    return 0;
  });
}

async function appKeyStep(argv: string[], step: 'activate' | 'retire'): Promise<number> {
  const { positionals, out } = args(argv, {}, 2);
  const [appId, serial] = positionals as [string, string];
  return withCore(async (deps) => {
    if (step === 'activate') {
      const r = await activatePlatformKey(deps, appId, serial);
      if (!r.ok) return failed(r.message);
      const view = keyView(r.value);
      out.result({ app_id: appId, ...view }, () => [...keyLines(view), 'it signs from now on (within 5 s on every instance); retire the one before once no answer signed with it is awaited']);
      return 0;
    }
    const r = await retirePlatformKey(deps, appId, serial);
    if (!r.ok) return failed(r.message);
    out.result({ app_id: appId, serial, status: r.value.status }, () => [`platform key ${serial} of ${appId} retired`]);
    return 0;
  });
}

async function appSetKey(argv: string[]): Promise<number> {
  const { values, positionals, out } = args(argv, { 'public-key': { type: 'string' } }, 1);
  const appId = positionals[0] as string;
  if (typeof values['public-key'] !== 'string') throw new UsageError('app set-key needs <app_id> --public-key <pem file>');
  const pem = readPublicKeyFile(values['public-key']);
  return withCore(async (deps) => {
    const r = await setMerchantKey(deps, appId, pem);
    if (!r.ok) return failed(r.message);
    out.result({ app_id: appId, merchant_no: r.value.merchantNo, merchant_public_key: r.value.merchantPublicKeyPem }, () => [
      `application ${appId}: requests are verified with the new merchant key from now on (within a second on every instance)`,
    ]);
    return 0;
  });
}

function keysGenerate(argv: string[]): number {
  const { values, out } = args(argv, { out: { type: 'string' } });
  if (typeof values.out !== 'string') throw new UsageError('keys generate needs --out <dir>');
  // An empty value (an unset variable in `--out "$DIR"`) is not the working directory.
  if (values.out.trim() === '') throw new UsageError('keys generate: --out must name a directory');
  const dir = resolve(values.out);
  const privateFile = join(dir, 'merchant_private_key.pem');
  const publicFile = join(dir, 'merchant_public_key.pem');
  // Neither file is overwritten, and a pair is written whole or not at all.
  const taken = [privateFile, publicFile].filter((f) => existsSync(f));
  if (taken.length > 0) return failed(`keys generate: ${taken.join(' and ')} already exist${taken.length === 1 ? 's' : ''}; nothing written`);
  mkdirSync(dir, { recursive: true });
  const pair = generateRsaKeyPair();
  writeFileSync(privateFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
  try {
    chmodSync(privateFile, 0o600);
    writeFileSync(publicFile, pair.publicKeyPem, { flag: 'wx' });
  } catch (err) {
    rmSync(privateFile, { force: true });
    throw err;
  }
  out.result({ private_key_file: privateFile, public_key_file: publicFile }, () => [`private key (PKCS#8): ${privateFile}`, `public key (X.509 SPKI): ${publicFile}`]);
  return 0;
}

async function networkDeployFactory(argv: string[]): Promise<number> {
  const { positionals, out } = args(argv, {}, 1);
  const id = parseNetworkId(positionals[0]);
  if (!id) throw new UsageError(`network deploy-factory takes a network enum (2, 3, 4 or 5), not ${JSON.stringify(positionals[0])}`);
  const config = loadConfig('production');
  const network = config.deployment.networks.find((n) => n.id === id);
  if (!network) return failed(`network ${id} is turned off in the configuration (networks.${id}: false)`);
  const relayer = config.relayers[id];
  if (!relayer) {
    return failed(`network ${id} has no relayer key (networks.${id}.relayer_key or relayer_key_file, or SPARKPAY_RELAYER_KEY_${id}): the factory is deployed from the relayer account, which also pays for the settlements`);
  }
  const r = await deployFactory(network, relayer.privateKey, {
    maxFeePerGas: relayer.maxFeePerGas,
    // Progress on stderr: stdout keeps the one result (a JSON object with --json).
    onSent: (txHash) => process.stderr.write(`sparkpay: factory deployment sent on network ${id} (${txHash}); waiting for it to be mined…\n`),
  });
  if (!r.ok) return failed(r.message);
  const view = { network: id, chain_id: r.chainId, factory: r.factory, forwarder: r.forwarder, init_code_hash: r.initCodeHash, tx_hash: r.txHash, block: r.block, gas_used: r.gasUsed, relayer: r.relayer };
  out.result(view, () => [
    `forwarder factory deployed on network ${id} (chain ${r.chainId}) in block ${r.block}, transaction ${r.txHash}`,
    `put these into the configuration, then restart the gateway:`,
    `  "networks": {"${id}": {"factory": "${r.factory}", "forwarder": "${r.forwarder}"}}`,
    `(and a fee_address for the platform fee, if the network has none yet)`,
  ]);
  return 0;
}

async function orderShow(argv: string[]): Promise<number> {
  const { positionals, out } = args(argv, {}, 1);
  const paymentOrderNo = positionals[0] as string;
  return withCore(async (deps) => {
    const view = await orderReport(deps.store, loadConfig('production').deployment, paymentOrderNo);
    if (!view) return failed(`payment order ${paymentOrderNo} does not exist`);
    const { settlement_state: settlementState, options } = view;
    // The merchant's texts (description, goods info…) and a node's error may hold any character: escaped.
    out.result(view, () => [
      ...Object.entries(view)
        .filter(([k, v]) => k !== 'settlements' && k !== 'settlement_state' && k !== 'options' && v !== '' && v !== null && !(Array.isArray(v) && v.length === 0))
        .map(([k, v]) => `${k.padEnd(30)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`),
      ...(settlementState
        ? [
            `${'settlement_state'.padEnd(30)} ${[
              settlementState.status,
              settlementState.tx_hash ? `transaction ${settlementState.tx_hash}` : null,
              settlementState.attempts > 0 ? `${settlementState.attempts} failed attempt${settlementState.attempts === 1 ? '' : 's'}` : null,
              settlementState.next_attempt_time !== null ? `next try ${new Date(settlementState.next_attempt_time * 1000).toISOString()}` : null,
              settlementState.last_error ? `last error: ${settlementState.last_error}` : null,
            ]
              .filter((x) => x !== null)
              .join(', ')}`,
          ]
        : []),
      // One line per pair offered: the amount due and the fee in base units, the USD rate.
      ...options.map((o) => `${'option'.padEnd(30)} ${o.network} ${o.currency.padEnd(5)} ${o.amount_base} base units (${o.decimals} decimals), fee ${o.fee_base}, USD rate ${o.usd_rate ?? 'none'}`),
      // One line per receiver paid: role, address, amount, status, transaction.
      ...view.settlements.map(
        (st) => `${'settlement'.padEnd(30)} ${st.role.padEnd(8)} ${st.receiver_addr} ${st.amount} ${st.currency} ${st.status} ${st.tx_hash ?? ''}`.trimEnd(),
      ),
    ].map(escapedText));
    return 0;
  });
}

/**
 * `sparkpay backup --to <file>`: the SQLite database copied with VACUUM INTO, a consistent
 * snapshot read while gateways keep writing (WAL), into a new file only its owner can read (it
 * holds the platform keys, sealed with the master key, which it does not hold).
 */
async function backup(argv: string[]): Promise<number> {
  const { values, out } = args(argv, { to: { type: 'string' } });
  if (typeof values.to !== 'string' || values.to.trim() === '') throw new UsageError('backup needs --to <file>');
  const to = resolve(values.to);
  const config = loadConfig('production');
  if (isPostgresUrl(config.databaseUrl)) {
    return failed('backup: the database is PostgreSQL; back it up with pg_dump, or continuously with WAL archiving (point-in-time recovery), which also keeps the orders made after the last dump');
  }
  if (!existsSync(config.databaseUrl)) return failed(`backup: there is no database at ${config.databaseUrl}`);
  if (existsSync(to)) return failed(`backup: ${to} already exists; nothing written`);
  // Created empty first, owner-only, as VACUUM INTO accepts: the copy never exists readable by others.
  writeFileSync(to, '', { mode: 0o600, flag: 'wx' });
  const db = await openDatabase({ url: config.databaseUrl, migrate: false });
  try {
    await sql`vacuum into ${to}`.execute(db.kysely);
  } catch (err) {
    rmSync(to, { force: true });
    throw err;
  } finally {
    await db.close();
  }
  chmodSync(to, 0o600);
  const view = { database: db.description, backup: to, bytes: statSync(to).size };
  out.result(view, () => [`${db.description} copied to ${to} (${view.bytes} bytes); keep the master key apart from it: the platform keys in it are sealed with that key`]);
  return 0;
}

async function orderSettle(argv: string[]): Promise<number> {
  const { positionals, out } = args(argv, {}, 1);
  const paymentOrderNo = positionals[0] as string;
  return withCore(async (deps) => {
    const r = await settleClosedOrder(deps, paymentOrderNo);
    if (!r.ok) return failed(r.message);
    const st = r.settlement;
    const view = { payment_order_no: paymentOrderNo, network: st.network, currency: st.currency, address: st.address, status: st.status, tx_hash: st.txHash, scheduled: r.scheduled, retried: r.retried === true };
    // A running server sends it within settlement.poll_ms.
    out.result(view, () => [
      r.scheduled
        ? `payment order ${paymentOrderNo}: settlement of ${st.address} scheduled; the running gateway sends it`
        : r.retried
          ? `payment order ${paymentOrderNo}: its settlement, deferred after ${st.attempts} failed attempt${st.attempts === 1 ? '' : 's'} (last: ${st.lastError ?? 'unknown'}), is due again now; the running gateway tries it`
          : `payment order ${paymentOrderNo} already has a settlement (${st.status}${st.txHash ? ` ${st.txHash}` : ''})`,
    ].map(escapedText));
    return 0;
  });
}

async function notifyList(argv: string[]): Promise<number> {
  const { values, out } = args(argv, { order: { type: 'string' } });
  if (typeof values.order !== 'string') throw new UsageError('notify list needs --order <payment_order_no>');
  const paymentOrderNo = values.order;
  return withCore(async (deps) => {
    const history = await listOrderNotifications(deps.store, paymentOrderNo);
    if (!history) return failed(`payment order ${paymentOrderNo} does not exist`);
    const views = history.map((h) => ({ ...notificationView(h.notification), attempt_log: h.attempts.map(attemptView) }));
    out.result({ payment_order_no: paymentOrderNo, notifications: views }, () =>
      history.length === 0 ? [`payment order ${paymentOrderNo} has no notifications`] : history.flatMap(notificationLines),
    );
    return 0;
  });
}

async function notifyResend(argv: string[]): Promise<number> {
  const { positionals, out } = args(argv, {}, 1);
  const notifyId = positionals[0] as string;
  return withCore(async (deps) => {
    const r = await resendNotification(deps, notifyId);
    if (!r.ok) return failed(r.message);
    const view = notificationView(r.notification);
    // A running server finds it at its next poll (within notify.poll_ms).
    out.result(view, () => [`notification ${notifyId} will be sent again (attempt series ${r.notification.series}) by the running gateway`]);
    return 0;
  });
}
