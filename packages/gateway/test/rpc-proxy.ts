// A small JSON-RPC proxy in front of a node, for the chain watcher's hardening tests: it passes
// requests through, or answers HTTP 500, or drops the connection, for chosen methods; it can
// refuse eth_getLogs ranges wider than a bound the way hosted providers do, and play an endpoint
// that lags the node (all of it, or only the backend its log requests reach).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type ProxyFault = 'none' | 'http500' | 'drop';

interface RpcCall {
  id?: unknown;
  method?: string;
  params?: unknown[];
}

export interface RpcProxy {
  readonly url: string;
  /** What happens to calls of `methods` (all methods when omitted). */
  fault(kind: ProxyFault, methods?: readonly string[]): void;
  /** The head is `blocks` less than the node's (eth_blockNumber, and the block eth_getBlockByNumber calls latest): an endpoint that lags behind. */
  lag(blocks: number): void;
  /**
   * Requests that carry an eth_getLogs call (alone or in a batch) are answered by a node `blocks`
   * behind the head, the way a load balancer may send them to a backend that lags while the head
   * came from an up-to-date one: its logs stop at its head, it has no later block, its latest
   * block is its head. Other requests see the real head.
   */
  logsLag(blocks: number): void;
  /**
   * Runs `hook` once, the first time a `method` call has been answered by the node, before the
   * answer goes back: the node has acted on the call, the caller has not heard of it yet.
   */
  afterCall(method: string, hook: () => Promise<void>): void;
  /** eth_getLogs over more than `blocks` blocks is refused with a provider-style error; null: no bound. */
  maxLogRange(blocks: number | null): void;
  /**
   * An eth_getLogs answer of more than `logs` logs is replaced by a provider-style "too many
   * results" error, as a provider capping results does (whatever the range); null: no cap.
   */
  maxLogResults(logs: number | null): void;
  /** Calls of `methods` are answered the JSON-RPC error "method not found" (-32601), as a provider that does not serve them does; [] serves all. */
  unsupported(methods: readonly string[]): void;
  /** The next `calls` eth_getTransactionReceipt calls are answered null, as a node answers while it has not indexed the transaction's block yet. */
  hideReceipts(calls: number): void;
  /** Refuse eth_getLogs without a recipient filter (topic 2) as too many results, whatever its range, as a provider capping results does for a busy token. */
  refuseUnfilteredLogs(on: boolean): void;
  /** Calls per method that reached the proxy, what it did with them, and the size of each JSON-RPC batch. */
  readonly stats: { calls: Record<string, number>; failed: number; refusedRanges: number; cappedResults: number; logRanges: number[]; batchSizes: number[] };
  close(): Promise<void>;
}

const body = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

const blockOf = (tag: unknown) => (typeof tag === 'string' && tag.startsWith('0x') ? Number(BigInt(tag)) : null);

/** Listens on a free local port; `close` also cuts kept-alive connections (a test's server must not outlive it). */
export async function listenLocal(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function startRpcProxy(target: string): Promise<RpcProxy> {
  let fault: ProxyFault = 'none';
  let faultMethods: readonly string[] | null = null;
  let range: number | null = null;
  let refuseUnfiltered = false;
  let resultCap: number | null = null;
  let unsupportedMethods: readonly string[] = [];
  let lagBlocks = 0;
  let logsLagBlocks = 0;
  let receiptsHidden = 0;
  const post = (payload: string) => fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
  const stats: RpcProxy['stats'] = { calls: {}, failed: 0, refusedRanges: 0, cappedResults: 0, logRanges: [], batchSizes: [] };
  const hooks = new Map<string, () => Promise<void>>();

  const server: Server = createServer((req, res) => {
    void (async () => {
      const text = await body(req);
      const parsed = JSON.parse(text) as RpcCall | RpcCall[];
      const calls = Array.isArray(parsed) ? parsed : [parsed];
      if (Array.isArray(parsed)) stats.batchSizes.push(parsed.length);
      for (const c of calls) stats.calls[c.method ?? '?'] = (stats.calls[c.method ?? '?'] ?? 0) + 1;
      if (fault !== 'none' && calls.some((c) => faultMethods === null || faultMethods.includes(c.method ?? ''))) {
        stats.failed += 1;
        if (fault === 'drop') {
          req.socket.destroy();
          return;
        }
        res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream exploded');
        return;
      }
      const withLogs = calls.some((c) => c.method === 'eth_getLogs');
      const behind = withLogs ? logsLagBlocks : lagBlocks;
      const nodeHead = async () => Number(BigInt(((await (await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }))).json()) as { result: string }).result));
      const seenHead = behind > 0 ? Math.max(0, (await nodeHead()) - behind) : null;
      // Each call is answered on its own (a batch's answers are put together in call order).
      const answers: unknown[] = [];
      let status = 200;
      for (const c of calls) {
        const reply = (result: unknown) => ({ jsonrpc: '2.0', id: c.id, result });
        if (unsupportedMethods.includes(c.method ?? '')) {
          answers.push({ jsonrpc: '2.0', id: c.id, error: { code: -32601, message: `the method ${c.method} does not exist/is not available` } });
          continue;
        }
        if (refuseUnfiltered && c.method === 'eth_getLogs' && ((c.params?.[0] ?? {}) as { topics?: unknown[] }).topics?.[2] == null) {
          stats.refusedRanges += 1;
          answers.push({ jsonrpc: '2.0', id: c.id, error: { code: -32005, message: 'query returned more than 10000 results' } });
          continue;
        }
        if (range !== null && c.method === 'eth_getLogs') {
          const filter = (c.params?.[0] ?? {}) as { fromBlock?: unknown; toBlock?: unknown };
          const from = blockOf(filter.fromBlock);
          const to = blockOf(filter.toBlock);
          if (from !== null && to !== null && to - from + 1 > range) {
            stats.refusedRanges += 1;
            answers.push({ jsonrpc: '2.0', id: c.id, error: { code: -32005, message: `query exceeds max block range ${range}` } });
            continue;
          }
          if (from !== null && to !== null) stats.logRanges.push(to - from + 1);
        }
        if (receiptsHidden > 0 && c.method === 'eth_getTransactionReceipt') {
          receiptsHidden -= 1;
          answers.push(reply(null));
          continue;
        }
        let sent: RpcCall = c;
        if (seenHead !== null && c.method === 'eth_getBlockByNumber') {
          const n = c.params?.[0] === 'latest' ? seenHead : blockOf(c.params?.[0]);
          if (n !== null && n > seenHead) {
            answers.push(reply(null));
            continue;
          }
          if (n !== null) sent = { ...c, params: [`0x${n.toString(16)}`, ...(c.params ?? []).slice(1)] };
        }
        if (seenHead !== null && c.method === 'eth_getLogs') {
          const filter = (c.params?.[0] ?? {}) as { fromBlock?: unknown; toBlock?: unknown };
          const from = blockOf(filter.fromBlock) ?? 0;
          if (from > seenHead) {
            answers.push(reply([]));
            continue;
          }
          sent = { ...c, params: [{ ...filter, toBlock: `0x${Math.min(blockOf(filter.toBlock) ?? seenHead, seenHead).toString(16)}` }] };
        }
        if (seenHead !== null && c.method === 'eth_blockNumber') {
          answers.push(reply(`0x${seenHead.toString(16)}`));
          continue;
        }
        const upstream = await post(JSON.stringify(sent));
        status = upstream.status === 200 ? status : upstream.status;
        const text = await upstream.text();
        let answer: unknown;
        try {
          answer = JSON.parse(text);
        } catch {
          answer = text;
        }
        const found = (answer as { result?: unknown })?.result;
        if (resultCap !== null && c.method === 'eth_getLogs' && Array.isArray(found) && found.length > resultCap) {
          stats.cappedResults += 1;
          answer = { jsonrpc: '2.0', id: c.id, error: { code: -32005, message: `query returned more than ${resultCap} results` } };
        }
        answers.push(answer);
      }
      for (const c of calls) {
        const hook = hooks.get(c.method ?? '');
        if (!hook) continue;
        hooks.delete(c.method ?? '');
        await hook();
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(Array.isArray(parsed) ? answers : answers[0]));
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
    });
  });
  const listening = await listenLocal(server);
  return {
    url: listening.url,
    fault(kind, methods) {
      fault = kind;
      faultMethods = methods ?? null;
    },
    lag(blocks) {
      lagBlocks = blocks;
    },
    logsLag(blocks) {
      logsLagBlocks = blocks;
    },
    afterCall(method, hook) {
      hooks.set(method, hook);
    },
    maxLogRange(blocks) {
      range = blocks;
    },
    maxLogResults(logs) {
      resultCap = logs;
    },
    unsupported(methods) {
      unsupportedMethods = methods;
    },
    hideReceipts(calls) {
      receiptsHidden = calls;
    },
    refuseUnfilteredLogs(on) {
      refuseUnfiltered = on;
    },
    stats,
    close: listening.close,
  };
}
