/**
 * Fuzz: every route of the OpenAPI document gets generated invalid and hostile inputs (seeded,
 * bounded in cases and time). Nothing may answer 5xx, and a refused request (4xx) writes no row.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { call, startApp, type TestApp } from '../helper.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);

const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    '../../etc/passwd',
    '..',
    '%2e%2e%2f',
    '%00',
    '\u0000',
    'a\u0000b',
    '/etc',
    '~root',
    '\\\\server\\share',
    "' OR 1=1 --",
    '<script>alert(1)</script>',
    '${jndi:x}',
    'null',
    'true',
    '-1',
    '1e309',
    '',
  ),
  // Lone surrogates, values that look like CLI flags, and integers past every bound (issue 20).
  fc.constantFrom(
    '\ud800',
    'a\udfffb',
    '\udc00\ud800',
    '--dangerously-skip-permissions',
    '-p',
    '--model=x',
    '999999999999999999999',
    '-99999999999999999999',
    '9007199254740993',
  ),
  fc.string({ minLength: 300, maxLength: 2000 }),
  fc.uuid(),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);
/** A path segment as a hostile client sends it: a lone surrogate (no UTF-8 spelling) goes out as the bytes of one (WTF-8). */
function enc(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return encodeURIComponent(v.replace(/[\ud800-\udfff]/g, 'x')) + '%ED%A0%80';
  }
}
const jsonValue = fc.jsonValue({ maxDepth: 3 });
/** Hostile bodies for an operation: its own fields (from the OpenAPI document) and one it does not have. */
const bodyFor = (fields: string[]) =>
  fc.oneof(
    jsonValue,
    fc.dictionary(fc.constantFrom(...fields, 'extra'), fc.oneof(jsonValue, hostileString)),
    hostileString.map((s) => ({ __raw: s })),
  );

/** The property names of an operation's JSON body and the names of its query parameters, as its OpenAPI entry declares them. */
function fieldsOf(doc: any, op: any): { body: string[]; query: string[] } {
  const deref = (sch: any): any =>
    sch?.$ref
      ? deref(
          sch.$ref
            .split('/')
            .slice(1)
            .reduce((o: any, k: string) => o?.[k], doc),
        )
      : sch;
  const schema = deref(op.requestBody?.content?.['application/json']?.schema);
  const props = (sch: any): string[] => [...Object.keys(deref(sch)?.properties ?? {}), ...(deref(sch)?.anyOf ?? deref(sch)?.oneOf ?? []).flatMap(props)];
  return {
    body: [...new Set(props(schema))],
    query: (op.parameters ?? []).filter((x: any) => x.in === 'query').map((x: any) => x.name as string),
  };
}

describe('fuzz: hostile input on every route', () => {
  let t: TestApp;
  let sessionId: string;
  let turnId: string;
  const counts = async () => {
    const db = t.app.internals.storage.db;
    const one = async (table: string) =>
      Number(((await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(db)).rows[0] as { n: number }).n);
    return [await one('sessions'), await one('turns'), await one('permission_requests'), await one('api_keys'), await one('session_rules')];
  };
  beforeAll(async () => {
    // One character of prompt at most: fuzzed prompts are refused before they reach a CLI.
    t = await startApp({ env: { MAX_PROMPT_CHARS: '1', API_KEYS: 'alice:key-alice-0123456789' } });
    const s = await call(t.app, 'POST', '/v1/sessions', {}, { authorization: 'Bearer key-alice-0123456789' });
    sessionId = s.body.session_id;
    turnId = '00000000-0000-4000-8000-000000000000';
  });
  afterAll(async () => t.close());

  it('answers every generated request with a non-5xx status, and refused ones write nothing', async () => {
    const doc = (await call(t.app, 'GET', '/openapi.json')).body;
    const ops = Object.entries<any>(doc.paths).flatMap(([p, methods]) =>
      Object.keys(methods).map((m) => ({ method: m.toUpperCase(), path: p, op: methods[m] })),
    );
    expect(ops.length).toBeGreaterThanOrEqual(20);
    let cases = 0;
    const statuses = new Map<number, number>();
    const started = Date.now();
    const fieldsSeen = new Set<string>();
    for (const { method, path, op } of ops) {
      // Every string and integer field the document declares for this operation, plus one it does not.
      const fields = fieldsOf(doc, op);
      for (const f of [...fields.body.map((x) => `body.${x}`), ...fields.query.map((x) => `query.${x}`)]) fieldsSeen.add(f);
      await fc.assert(
        fc.asyncProperty(
          hostileString,
          hostileString,
          bodyFor(fields.body),
          fc.dictionary(fc.constantFrom(...fields.query, 'x'), hostileString),
          fc.boolean(),
          fc.boolean(),
          async (p1, p2, b, query, useRealIds, authed) => {
            const url =
              path
                .replace('{session_id}', enc(useRealIds ? sessionId : p1))
                .replace('{turn_id}', enc(useRealIds ? turnId : p2))
                .replace('{request_id}', enc(p2)) +
              '?' +
              new URLSearchParams(query).toString();
            const headers: Record<string, string> = authed ? { authorization: 'Bearer key-alice-0123456789' } : {};
            const payload = b && typeof b === 'object' && '__raw' in (b as object) ? String((b as { __raw: string }).__raw) : b;
            const before = await counts();
            const res = await t.app.inject({
              method: method as any,
              url,
              headers: { ...headers, ...(method === 'GET' || method === 'DELETE' ? {} : { 'content-type': 'application/json' }) },
              ...(method === 'GET' || method === 'DELETE' ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
            });
            cases++;
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            expect(res.statusCode, `${method} ${url} -> ${res.body.slice(0, 200)}`).toBeLessThan(500);
            if (res.statusCode >= 400 && res.headers['content-type']?.toString().includes('json')) {
              const err = res.json();
              expect(typeof err.error?.code, `${method} ${url} -> ${res.statusCode} ${res.body.slice(0, 200)}`).toBe('string');
              expect(await counts(), `${method} ${url} refused but wrote`).toEqual(before);
            }
          },
        ),
        { seed: SEED, numRuns: RUNS, interruptAfterTimeLimit: 15_000, endOnFailure: true },
      );
    }
    console.log(
      `fuzz: ${ops.length} operations, ${fieldsSeen.size} declared fields, ${cases} cases in ${Date.now() - started} ms, seed ${SEED}; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    // The fields come from the document: a route's new field is fuzzed without editing this test.
    for (const f of [
      'body.prompt',
      'body.session_name',
      'body.model',
      'body.system_prompt',
      'body.up_to_message_id',
      'body.behavior',
      'query.limit',
      'query.offset',
      'query.purge',
      'query.after',
      'query.q',
    ])
      expect(fieldsSeen).toContain(f);
    expect(cases).toBeGreaterThan(1000);
  }, 600_000);
});
