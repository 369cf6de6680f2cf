/**
 * The TypeScript client (clients/typescript: types generated from the document, a small layer on
 * top) against this server, and the document it is generated from kept current.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ApiError, Client, type TurnEvent } from '../../clients/typescript/src/index.js';
import { useApp, waitFor } from '../helper.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ALICE = 'key-alice-0123456789';

/** A fetch whose first streamed turn's body breaks after `bytes` bytes, as a dropped connection would. */
function cuttingFetch(bytes: number) {
  const state = { cuts: 0, resumed: [] as string[] };
  const f: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : input.toString();
    if (init?.method === 'GET' && url.includes('/events')) state.resumed.push(new Headers(init.headers).get('last-event-id') ?? '');
    const res = await fetch(input, init);
    if (!url.endsWith('/turns/stream') || state.cuts > 0 || !res.body) return res;
    state.cuts++;
    const reader = res.body.getReader();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        const { value, done } = await reader.read();
        if (done) return c.close();
        if (sent + value.length > bytes) {
          c.enqueue(value.slice(0, bytes - sent));
          await reader.cancel();
          return c.error(new TypeError('terminated'));
        }
        sent += value.length;
        c.enqueue(value);
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  return { fetch: f, state };
}

// Runs on one dialect (vitest.config.ts): the client's behaviour does not depend on the server's storage.
describe('the TypeScript client', () => {
  const t = useApp({ env: { API_KEYS: `alice:${ALICE},bob:key-bob-0123456789`, USER_MAX_CONCURRENT_TURNS: '2' }, listen: true });
  const client = () => new Client({ baseUrl: t.base, apiKey: ALICE });

  it('is generated from the document the server serves (clients/openapi.json is current: npm run openapi writes it)', async () => {
    const live = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<unknown>();
    const committed: unknown = JSON.parse(fs.readFileSync(path.join(ROOT, 'clients/openapi.json'), 'utf8'));
    expect(committed).toEqual(live);
    expect(fs.readFileSync(path.join(ROOT, 'clients/typescript/src/generated.ts'), 'utf8')).toMatch(/export type CreateSessionResponse = Session & /);
  });

  it('a client generated from the live document compiles (the generator, then tsc, on a copy of the client)', async () => {
    const dir = path.join(t.dirs.root, 'ts-client');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'openapi.json'), (await t.app.inject({ method: 'GET', url: '/openapi.json' })).body);
    fs.copyFileSync(path.join(ROOT, 'clients/typescript/src/index.ts'), path.join(dir, 'index.ts'));
    const tsconfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'clients/typescript/tsconfig.json'), 'utf8')) as { compilerOptions: object };
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { ...tsconfig.compilerOptions, rootDir: '.', noEmit: true }, include: ['*.ts'] }),
    );
    const run = promisify(execFile);
    await run(process.execPath, [path.join(ROOT, 'clients/typescript/scripts/generate.mjs'), path.join(dir, 'openapi.json'), path.join(dir, 'generated.ts')]);
    const tsc = await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(dir, 'tsconfig.json')]).catch(
      (e: { stdout?: string }) => ({ stdout: `failed: ${e.stdout ?? ''}` }),
    );
    expect(tsc.stdout).toBe('');
    expect(fs.readFileSync(path.join(dir, 'generated.ts'), 'utf8')).toMatch(
      /createSessionStream: \{ method: 'POST', path: "\/v1\/sessions\/stream", stream: true \}/,
    );
  });

  it('the blue flow, and a session list that pages', async () => {
    const c = client();
    const s = await c.sessions.create({ prompt: 'Remember: my favorite color is blue' });
    expect(s.turn?.status).toBe('succeeded');
    const t2 = await c.turns.run(s.session_id, { prompt: 'What is my favorite color?' });
    expect(t2.result).toMatch(/blue/);
    expect((await c.query({ query: 'What is my favorite color?', session_id: s.session_id })).result).toMatch(/blue/);
    const ids: string[] = [];
    for await (const x of c.sessions.all({ limit: 1 })) ids.push(x.session_id);
    expect(ids).toContain(s.session_id);
  });

  it('a streamed turn cut mid-way resumes with Last-Event-ID: no event lost or repeated', async () => {
    const cut = cuttingFetch(6_000);
    const c = new Client({ baseUrl: t.base, apiKey: ALICE, fetch: cut.fetch });
    const s = await c.sessions.create();
    const events: TurnEvent[] = [];
    for await (const e of c.turns.stream(s.session_id, { prompt: '[[words:400]] a long answer' })) events.push(e);
    expect(cut.state.cuts).toBe(1);
    expect(cut.state.resumed.length).toBeGreaterThan(0);
    expect(cut.state.resumed[0]).toMatch(/^\d+$/);
    expect(events[0]!.event).toBe('turn');
    expect(events.at(-1)).toMatchObject({ event: 'done', data: { status: 'succeeded' } });
    const ids = events.map((e) => e.id).filter((x): x is number => x !== null);
    expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
    const turnId = (events[0]!.data as { turn_id: string }).turn_id;
    const replay: number[] = [];
    for await (const e of client().turns.events(s.session_id, turnId)) if (e.id !== null) replay.push(e.id);
    expect(ids).toEqual(replay);
  });

  it('approvals as an async iterator; interrupt', async () => {
    const c = client();
    const s = await c.sessions.create();
    const turn = await c.turns.start(s.session_id, { prompt: '[[bash:echo approved-by-ts]]' });
    for await (const req of c.permissionRequests(s.session_id)) {
      expect([req.tool_name, req.turn_id]).toEqual(['Bash', turn.turn_id]);
      await c.permissions.approve(s.session_id, req.request_id);
      break;
    }
    const done = await c.turns.wait(s.session_id, turn.turn_id);
    expect([done.status, done.result]).toEqual(['succeeded', expect.stringContaining('approved-by-ts')]);

    const slow = await c.turns.start(s.session_id, { prompt: '[[slow:20000]] long' });
    await waitFor(async () => (await c.turns.get(s.session_id, slow.turn_id)).status === 'running', 20_000);
    await c.turns.interrupt(s.session_id);
    expect((await c.turns.wait(s.session_id, slow.turn_id)).status).toBe('interrupted');
  });

  it('errors are one class with status, code and request id: 401, 404, 409, 429', async () => {
    const c = client();
    const err = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        if (e instanceof ApiError) return e;
        throw e;
      }
      throw new Error('no error');
    };
    const missing = await err(c.sessions.get('00000000-0000-4000-8000-000000000000'));
    expect([missing.status, missing.code]).toEqual([404, 'SESSION_NOT_FOUND']);
    expect(missing.requestId).toBeTruthy();
    expect((await err(new Client({ baseUrl: t.base, apiKey: 'wrong' }).sessions.list())).code).toBe('UNAUTHORIZED');
    const a = await c.sessions.create();
    const b = await c.sessions.create();
    const third = await c.sessions.create();
    const ta = await c.turns.start(a.session_id, { prompt: '[[slow:20000]] one' });
    const busy = await err(c.turns.run(a.session_id, { prompt: 'again' }));
    expect([busy.status, busy.code]).toEqual([409, 'SESSION_BUSY']);
    // Past the user's concurrent turns (2 here): 429 with Retry-After, before any other check.
    const tb = await c.turns.start(b.session_id, { prompt: '[[slow:20000]] two' });
    try {
      const full = await err(c.turns.run(third.session_id, { prompt: 'three' }));
      expect([full.status, full.code]).toEqual([429, 'CAPACITY_EXCEEDED']);
      expect(full.retryAfter).toBeGreaterThan(0);
    } finally {
      for (const [sid, tid] of [
        [a.session_id, ta.turn_id],
        [b.session_id, tb.turn_id],
      ] as const) {
        await c.turns.interrupt(sid).catch(() => {});
        await c.turns.wait(sid, tid);
      }
    }
  });
});
