// Kysely builds and compiles every query anew, which costs more than running our small
// statements. The hot statements are compiled once per shape and run again as the same SQL
// with new parameters: still Kysely's SQL for the dialect at hand, one code path for both
// databases. The first compile proves the parameters are exactly the given values, in order;
// a shape where they are not is simply compiled every time.
import { CompiledQuery, type Compilable, type QueryResult } from 'kysely';

interface Executor {
  executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
}

export class CompiledCache {
  private readonly sqlByShape = new Map<string, string | null>();

  async run<R>(q: Executor, shape: string, params: readonly unknown[], build: () => Compilable<R>): Promise<QueryResult<R>> {
    const sql = this.sqlByShape.get(shape);
    if (typeof sql === 'string') return q.executeQuery(CompiledQuery.raw(sql, [...params]) as CompiledQuery<R>);
    const compiled = build().compile();
    if (sql === undefined) this.sqlByShape.set(shape, sameValues(compiled.parameters, params) ? compiled.sql : null);
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
