// Reading a Prometheus exposition page in tests.

/** The samples of an exposition page: `name{labels}` → value (comments left out). */
export function samples(page: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of page.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    const value = line.slice(at + 1);
    out.set(line.slice(0, at), value === '+Inf' ? Infinity : value === '-Inf' ? -Infinity : Number(value));
  }
  return out;
}
