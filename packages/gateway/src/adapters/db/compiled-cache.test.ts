import { CompiledQuery, type QueryResult } from 'kysely';
import { describe, expect, it } from 'vitest';
import { CompiledCache, MAX_CACHED_SQL_CHARS } from './compiled-cache.js';

/** An executor that counts what it runs. */
const executor = () => {
  const ran: string[] = [];
  return { ran, executeQuery: async <R>(q: CompiledQuery<R>): Promise<QueryResult<R>> => (ran.push(q.sql), { rows: [] }) };
};
/** A statement `chars` long with one parameter. */
const wide = (chars: number) => () => ({ compile: () => CompiledQuery.raw(`select ?${' '.repeat(chars - 8)}`, [1]) });

describe('CompiledCache', () => {
  it('compiles a shape once and runs it again with new parameters', async () => {
    const cache = new CompiledCache();
    const q = executor();
    let compiles = 0;
    const build = () => ({ compile: () => (compiles++, CompiledQuery.raw('select ?', [1])) });
    await cache.run(q, 's', [1], build);
    await cache.run(q, 's', [2], build);
    expect(compiles).toBe(1);
    expect(cache.shapes().reused).toEqual(['s']);
  });

  it('keeps no more SQL than its budget: shapes named by a growing list\'s length stop being kept, and still run', async () => {
    const cache = new CompiledCache();
    const q = executor();
    // Twice the budget in shapes of 50,000 characters each (a list's texts grow with its length).
    const shapes = (2 * MAX_CACHED_SQL_CHARS) / 50_000;
    for (let n = 1; n <= shapes; n += 1) await cache.run(q, `list:${n}`, [1], wide(50_000));
    expect(q.ran).toHaveLength(shapes);
    expect(cache.shapes().reused).toHaveLength(MAX_CACHED_SQL_CHARS / 50_000);
    // One past the budget still runs, compiled again each time.
    await cache.run(q, `list:${shapes}`, [1], wide(50_000));
    expect(q.ran).toHaveLength(shapes + 1);
  });
});
