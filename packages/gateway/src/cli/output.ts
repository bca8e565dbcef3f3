// Command output: `--json` prints exactly one JSON object on stdout and nothing else;
// otherwise short human lines. Failures are one line on stderr and a non-zero exit.
import { parseArgs } from 'node:util';
import { CONTROL_OR_BIDI_ALL } from '../domain/text.js';

export class UsageError extends Error {}

/** Longest reason printed; a longer one (an echoed value thousands of characters long) is cut in the middle. */
const REASON_MAX = 300;

/**
 * A failure's reason as the one line printed on stderr: control characters and the Unicode
 * format characters that reorder or hide text (bidi overrides and isolates, line separators)
 * are written as \uXXXX escapes, so an echoed value cannot add a line, move the cursor or
 * reverse what follows; and it is cut in the middle when long.
 */
export function reasonLine(message: string): string {
  const escaped = escapedText(message);
  if (escaped.length <= REASON_MAX) return escaped;
  return `${escaped.slice(0, REASON_MAX - 90)} … ${escaped.slice(-80)}`;
}

/**
 * Text that did not come from the gateway (a merchant's order description, a node's error) as a
 * human line may print it: control and bidi formatting characters as \uXXXX escapes, so it cannot
 * add a line, move the cursor, rewrite the operator's terminal or reverse what follows.
 */
export function escapedText(text: string): string {
  return text.replace(CONTROL_OR_BIDI_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface Out {
  json: boolean;
  result(value: Record<string, unknown>, human: () => string[]): void;
}

export function output(json: boolean, write: (s: string) => void = (s) => process.stdout.write(s)): Out {
  return {
    json,
    result(value, human) {
      if (json) write(`${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
      else write(`${human().join('\n')}\n`);
    },
  };
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

/** A command's options (strict; `--json` always known) and exactly `positionals` arguments. */
export function args(argv: string[], options: OptionSpec, positionals = 0) {
  const parsed = parseArgs({ args: argv, options: { json: { type: 'boolean' }, ...options }, allowPositionals: positionals > 0, strict: true, tokens: true });
  // A value option given twice (`--name A --name B`, `--status ACTIVE --status INACTIVE`): node
  // keeps the last one silently, so a slip in a script would change what the operator meant.
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || options[token.name]?.type !== 'string' || options[token.name]?.multiple) continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} is given more than once; give it once`);
    seen.add(token.name);
  }
  if (parsed.positionals.length !== positionals) throw new UsageError(`expected ${positionals} argument(s), got ${parsed.positionals.length}`);
  return { values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals, out: output((parsed.values as Record<string, unknown>).json === true) };
}

/** A command that could not do its work: one line on stderr, exit code 1. */
export function failed(message: string): number {
  process.stderr.write(`sparkpay: ${reasonLine(message)}\n`);
  return 1;
}
