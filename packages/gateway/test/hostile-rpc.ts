// A rewriting JSON-RPC proxy for the hostile-RPC suites (the chain reader's and the settlement
// relayer's): in front of a plain RPC proxy in front of anvil, it hands each request to a
// rewrite that may answer it honestly (pass through), lie, drop the connection or never answer.
import { createServer, type Server } from 'node:http';
import { listenLocal, startRpcProxy, type RpcProxy } from './rpc-proxy.js';

export interface RpcCall {
  jsonrpc?: string;
  id?: unknown;
  method?: string;
  params?: unknown[];
}

export interface Exchange {
  /** The calls of the request (one, or a JSON-RPC batch). */
  calls: RpcCall[];
  batch: boolean;
  /** The first (usually the only) call. */
  call: RpcCall;
  /** The honest answer (through the inner proxy to anvil): the node acts on the call. */
  forward(): Promise<{ status: number; text: string }>;
}

/** A rewritten answer, or 'drop' (the connection is destroyed), or 'hang' (no answer at all), or null (pass through). */
export type Reply = { status?: number; body: string; contentType?: string; delayMs?: number } | 'drop' | 'hang' | null;
export type Rewrite = (x: Exchange) => Promise<Reply>;

export interface HostileProxy {
  readonly url: string;
  readonly inner: RpcProxy;
  /** Rewrites answers from now on; null: honest pass-through. */
  set(rewrite: Rewrite | null): void;
  /** Requests whose answer was rewritten since the last reset. */
  tampered: number;
  close(): Promise<void>;
}

/** `passBatches`: JSON-RPC batches are never rewritten (a suite that lies to single calls only). */
export async function startHostileProxy(target: string, options: { passBatches?: boolean } = {}): Promise<HostileProxy> {
  const inner = await startRpcProxy(target);
  let rewrite: Rewrite | null = null;
  const state = { tampered: 0 };
  const hanging = new Set<() => void>();
  const post = async (body: string) => {
    const r = await fetch(inner.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: r.status, text: await r.text() };
  };
  /**
   * The chain reader sends eth_getLogs (and eth_getBlockReceipts, eth_getTransactionReceipt) in a batch with the block reads
   * that say how far the answering node went: each call of such a batch meets the rewrite as if it had been sent
   * alone, and the answers are put back together. A transport-level lie (HTTP status, a body
   * that is not JSON, a dropped or hanging connection) of any call is the whole batch's.
   */
  const perCall = async (r: Rewrite, calls: RpcCall[]): Promise<Reply> => {
    const parts: unknown[] = [];
    let changed = false;
    let delayMs = 0;
    for (const call of calls) {
      const forward = () => post(JSON.stringify(call));
      const reply = await r({ calls: [call], batch: false, call, forward });
      if (reply === 'drop' || reply === 'hang') return reply;
      const { status, text, contentType } = reply === null ? { ...(await forward()), contentType: undefined } : { status: reply.status ?? 200, text: reply.body, contentType: reply.contentType };
      if (reply !== null) changed = true;
      delayMs = Math.max(delayMs, reply?.delayMs ?? 0);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (status !== 200 || (contentType ?? 'application/json') !== 'application/json' || json === undefined) return { status, body: text, contentType };
      parts.push(json);
    }
    return changed ? { body: JSON.stringify(parts), delayMs } : null;
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const parsed = JSON.parse(text) as RpcCall | RpcCall[];
      const forward = () => post(text);
      const calls = Array.isArray(parsed) ? parsed : [parsed];
      const reply = !rewrite || (options.passBatches && Array.isArray(parsed))
        ? null
        : Array.isArray(parsed) && parsed.some((c) => c.method === 'eth_getLogs' || c.method === 'eth_getBlockReceipts' || c.method === 'eth_getTransactionReceipt')
          ? await perCall(rewrite, parsed)
          : await rewrite({ calls, batch: Array.isArray(parsed), call: calls[0] ?? {}, forward });
      if (reply === 'drop') {
        state.tampered += 1;
        req.socket.destroy();
        return;
      }
      if (reply === 'hang') {
        state.tampered += 1;
        await new Promise<void>((resolve) => {
          hanging.add(resolve);
          req.socket.once('close', resolve);
        });
        req.socket.destroy();
        return;
      }
      if (reply === null) {
        const honest = await forward();
        res.writeHead(honest.status, { 'content-type': 'application/json' }).end(honest.text);
        return;
      }
      state.tampered += 1;
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
      res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'application/json' }).end(reply.body);
    })().catch(() => {
      // The inner proxy dropped the connection (its 'drop' fault): so does this one.
      req.socket.destroy();
    });
  });
  const listening = await listenLocal(server);
  return {
    url: listening.url,
    inner,
    set(r) {
      rewrite = r;
    },
    get tampered() {
      return state.tampered;
    },
    set tampered(n: number) {
      state.tampered = n;
    },
    async close() {
      for (const release of hanging) release();
      await listening.close();
      await inner.close();
    },
  };
}

/** A JSON-RPC answer whose result is `result`, for `call`. */
export const answer = (call: RpcCall, result: unknown) => JSON.stringify({ jsonrpc: '2.0', id: call.id, result });

/** Lies about the transport or the JSON-RPC envelope, for any method. */
export type TransportLie = 'http500' | 'drop' | 'nonJson' | 'truncated' | 'emptyBody' | 'rpcError' | 'rpcErrorRange' | 'wrongId' | 'noJsonrpc' | 'slow';

export async function transportReply(t: TransportLie, x: Exchange): Promise<Reply> {
  const { call } = x;
  switch (t) {
    case 'http500':
      return { status: 500, body: 'upstream exploded', contentType: 'text/plain' };
    case 'drop':
      return 'drop';
    case 'nonJson':
      return { body: '<html><body>502 Bad Gateway</body></html>', contentType: 'text/html' };
    case 'truncated': {
      const honest = await x.forward();
      return { body: honest.text.slice(0, Math.max(1, Math.floor(honest.text.length / 2))) };
    }
    case 'emptyBody':
      return { body: '' };
    case 'rpcError':
      return { body: JSON.stringify({ jsonrpc: '2.0', id: call.id, error: { code: -32603, message: 'internal error' } }) };
    case 'rpcErrorRange':
      // Worded as a provider's "too many results": the chain reader splits the range on it, down to single blocks.
      return { body: JSON.stringify({ jsonrpc: '2.0', id: call.id, error: { code: -32005, message: 'query returned more than 10000 results' } }) };
    case 'wrongId': {
      const honest = JSON.parse((await x.forward()).text) as Record<string, unknown>;
      return { body: JSON.stringify({ ...honest, id: 987654 }) };
    }
    case 'noJsonrpc': {
      const honest = JSON.parse((await x.forward()).text) as Record<string, unknown>;
      delete honest.jsonrpc;
      return { body: JSON.stringify(honest) };
    }
    case 'slow':
      return { body: (await x.forward()).text, delayMs: 150 };
  }
}
