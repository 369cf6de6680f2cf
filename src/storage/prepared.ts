/**
 * @module storage/prepared
 * Queries that run on every turn, built and compiled by Kysely once: later runs only bind new
 * values. Kysely otherwise builds and compiles a query on each call, which on this path costs
 * more CPU than the database does. Works on both dialects (the template is compiled by the
 * database's own compiler). For queries whose shape does not change with their values: plain
 * comparisons and assignments, no `in` lists. Runs on the root connection (not inside a
 * transaction's), and binds every key given, an undefined value as NULL.
 */
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { Database } from './schema.js';

const MARK = '\u0000param:';

export function prepared<P extends Record<string, unknown>, R>(
  db: Kysely<Database>,
  keys: ReadonlyArray<keyof P & string>,
  build: (p: P) => Compilable<R>,
): (params: P) => Promise<QueryResult<R>> {
  let template: { compiled: CompiledQuery<R>; slots: Array<{ key: string } | { value: unknown }> } | null = null;
  return (params) => {
    if (!template) {
      const marks = Object.fromEntries(keys.map((k) => [k, `${MARK}${k}`])) as P;
      const compiled = build(marks).compile();
      const slots = compiled.parameters.map((v) => (typeof v === 'string' && v.startsWith(MARK) ? { key: v.slice(MARK.length) } : { value: v }));
      const found = new Set(slots.flatMap((s) => ('key' in s ? [s.key] : [])));
      for (const k of keys) if (!found.has(k)) throw new Error(`prepared query: parameter ${k} did not reach the compiled query`);
      template = { compiled, slots };
    }
    const t = template;
    return db.executeQuery<R>({ ...t.compiled, parameters: t.slots.map((s) => ('key' in s ? params[s.key] : s.value)) });
  };
}
