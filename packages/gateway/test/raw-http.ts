// Reading an answer of a request sent with node:http (the fuzz suites send raw requests to
// control every header and byte): status, headers as one string each, the text and its JSON.
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export function readAnswer(res: IncomingMessage): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const text = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status: res.statusCode ?? 0, headers, text, json });
    });
  });
}

/** `raw` bytes written to the server at `baseUrl` on a fresh connection, and everything it answers until it closes the connection. */
export function rawExchange(baseUrl: string, raw: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const { port, hostname } = new URL(baseUrl);
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => socket.write(raw));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

/** The status line, headers and body text of an answer `rawExchange` read. */
export function rawAnswerParts(answer: string): { statusLine: string; headers: Headers; text: string } {
  const headEnd = answer.indexOf('\r\n\r\n');
  const lines = answer.slice(0, headEnd).split('\r\n');
  const headers = new Headers(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
  return { statusLine: lines[0] ?? '', headers, text: answer.slice(headEnd + 4) };
}
