// JSON with object keys sorted recursively, so that two bodies can be compared ignoring key order
// (idempotent order creation, PROTOCOL §7). Written out by hand rather than by rebuilding sorted
// objects for JSON.stringify: JS objects list integer-like keys ("9", "10") first whatever the
// insertion order, and assigning a "__proto__" key would change the prototype instead.

/** Serialises like JSON.stringify, with every object's keys in code-unit order. */
export function canonicalJson(value: unknown): string {
  const out = serialise(value, new Set());
  // Matches JSON.stringify's own refusals in spirit: there is no JSON text for these.
  if (out === undefined) throw new TypeError('value has no JSON representation');
  return out;
}

function serialise(value: unknown, seen: Set<object>): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'bigint':
      throw new TypeError('a bigint has no JSON representation; format it as a decimal string');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (seen.has(obj)) throw new TypeError('cannot serialise a circular structure');
  seen.add(obj);
  let out: string;
  if (Array.isArray(obj)) {
    out = `[${obj.map((v: unknown) => serialise(v, seen) ?? 'null').join(',')}]`;
  } else {
    const record = obj as Record<string, unknown>;
    const parts: string[] = [];
    // Default sort compares UTF-16 code units, which is deterministic and locale-independent.
    for (const key of Object.keys(record).sort()) {
      const v = serialise(record[key], seen);
      if (v !== undefined) parts.push(`${JSON.stringify(key)}:${v}`);
    }
    out = `{${parts.join(',')}}`;
  }
  seen.delete(obj);
  return out;
}
