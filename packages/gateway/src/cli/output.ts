// Command output: `--json` prints exactly one JSON object on stdout and nothing else;
// otherwise short human lines. Failures are one line on stderr and a non-zero exit.
export class UsageError extends Error {}

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
