// Kysely builds and compiles every query anew, which costs more than running our small
// statements. The hot statements are compiled once per shape and run again as the same SQL
// with new parameters: still Kysely's SQL for the dialect at hand, one code path for both
// databases. The first compile proves the parameters are exactly the given values, in order;
// a shape where they are not is simply compiled every time.
import { CompiledQuery, type Compilable, type QueryResult } from 'kysely';

interface Executor {
  executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
}

/**
 * SQL text kept at most, in characters. A shape named by a list's length (a scan pass's orders,
 * the destinations a delivery pass leaves out) is one text per length, each as long as its list:
 * the texts of every length up to N grow as N². Once they reach this, a new shape is compiled
 * every time instead of kept for ever. (The scan's and the API's shapes take about 2 million.)
 */
export const MAX_CACHED_SQL_CHARS = 8_000_000;

export class CompiledCache {
  private readonly sqlByShape = new Map<string, string | null>();
  private cachedChars = 0;

  async run<R>(q: Executor, shape: string, params: readonly unknown[], build: () => Compilable<R>): Promise<QueryResult<R>> {
    const sql = this.sqlByShape.get(shape);
    if (typeof sql === 'string') return q.executeQuery(CompiledQuery.raw(sql, [...params]) as CompiledQuery<R>);
    const compiled = build().compile();
    if (sql === undefined && this.cachedChars + compiled.sql.length <= MAX_CACHED_SQL_CHARS) {
      const reusable = sameValues(compiled.parameters, params);
      this.sqlByShape.set(shape, reusable ? compiled.sql : null);
      if (reusable) this.cachedChars += compiled.sql.length;
    }
    return q.executeQuery(compiled);
  }

  /** Shapes compiled once and reused, and shapes whose parameters were not the given values in order (compiled every time): for the tests. */
  shapes(): { reused: string[]; refused: string[] } {
    const all = [...this.sqlByShape];
    return { reused: all.filter(([, sql]) => sql !== null).map(([k]) => k).sort(), refused: all.filter(([, sql]) => sql === null).map(([k]) => k).sort() };
  }
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}
