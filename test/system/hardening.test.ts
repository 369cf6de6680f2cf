/**
 * What a hostile review found (issue 20), item by item, on both dialects: NUL in client text,
 * flag-like values that reach the CLI's arguments, and a request body that never ends.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadText, storeText } from '../../src/storage/text.js';
import { call, cliProcesses, listen, readSse, runApproving, startApp, waitFor, waitForTurn, type TestApp, useApp } from '../helper.js';

describe('NUL in client text is refused with 400 naming the field, on every route and both dialects', () => {
  let t: TestApp;
  let s: any;
  beforeAll(async () => {
    t = await startApp();
    s = (await call(t.app, 'POST', '/v1/sessions', { session_name: 'plain', prompt: 'hello' })).body;
  });
  afterAll(async () => t.close());

  const count = async () => (await call(t.app, 'GET', '/v1/sessions?limit=200')).body.sessions.length;

  it('create, turn (waiting, ?wait=false and streamed), patch and the list filter', async () => {
    const before = await count();
    const cases: Array<[string, string, unknown, string]> = [
      ['POST', '/v1/sessions', { session_name: 'a\u0000b' }, 'body.session_name'],
      ['POST', '/v1/sessions', { prompt: 'a\u0000b' }, 'body.prompt'],
      ['POST', '/v1/sessions', { system_prompt: 'x\u0000' }, 'body.system_prompt'],
      ['POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'a\u0000b' }, 'body.prompt'],
      ['POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '\u0000' }, 'body.prompt'],
      ['PATCH', `/v1/sessions/${s.session_id}`, { tag: 'a\u0000b' }, 'body.tag'],
      ['PATCH', `/v1/sessions/${s.session_id}`, { session_name: 'a\u0000b' }, 'body.session_name'],
      ['POST', '/v1/query', { session_id: s.session_id, query: 'a\u0000b' }, 'body.query'],
      ['GET', '/v1/sessions?q=%00', undefined, 'query.q'],
    ];
    for (const [method, url, body, field] of cases) {
      const r = await call(t.app, method as 'GET', url, body);
      expect([r.status, r.body?.error?.code], `${method} ${url}`).toEqual([400, 'INVALID_REQUEST']);
      expect(r.body.error.message).toContain(`${field} contains a NUL character`);
    }
    // Nothing was written.
    expect(await count()).toBe(before);
    const turns = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns;
    expect(turns).toHaveLength(1);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}`)).body).toMatchObject({ session_name: 'plain', tag: null });
  });
});

describe("NUL in the CLI's own output is stored losslessly, on both dialects", () => {
  const t = useApp({ env: { IS_SANDBOX: '1', ALLOWED_PERMISSION_MODES: 'default,bypassPermissions' } });

  it("a tool's output with NUL: the turn succeeds, and its result reads back as the CLI gave it", async () => {
    const r = await call(t.app, 'POST', '/v1/sessions', {
      permission_mode: 'bypassPermissions',
      prompt: "[[bash:printf 'a\\000b'; printf '\\356\\200\\200lead']]",
    });
    expect(r.status).toBe(201);
    expect(r.body.turn.status).toBe('succeeded');
    const shown = (await call(t.app, 'GET', `/v1/sessions/${r.body.session_id}/turns/${r.body.turn.turn_id}`)).body;
    expect(shown.result).toBe(r.body.turn.result);
    // The event log (JSON) keeps the CLI's result message as it was.
    expect(shown.result).toContain('a\u0000b');
    const resultEvent = await waitFor(async () => {
      const events = await t.app.internals.storage.db.selectFrom('events').select('data').where('session_id', '=', r.body.session_id).execute();
      return events.map((e) => JSON.parse(e.data)).find((d) => d?.type === 'result');
    });
    expect(resultEvent.result).toBe(shown.result);
    expect(storeText(loadText(storeText('a\u0000b')))).toBe(storeText('a\u0000b'));
    for (const v of ['a\u0000b', '\uE000x', '\uE000"y"', 'plain', '']) expect(loadText(storeText(v))).toBe(v);
  });
});

describe('a CLI that answers nothing (stopped with SIGSTOP mid-turn)', () => {
  const t = useApp({ env: { INTERRUPT_GRACE_MS: '1000' } });

  /** Starts a long turn on a new session and stops its CLI; returns the session and the turn. */
  async function stuck() {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:30000]] a long answer' })).body;
    await waitForTurn(t.app, s.session_id, turn.turn_id, 'running', 20_000);
    // This session's CLI: the one with the session's own TMPDIR.
    const tmp = path.join(t.dirs.dataDir, 'tmp', createHash('sha256').update(s.session_id).digest('hex').slice(0, 12));
    const mine = cliProcesses(t.config.claudeConfigDir).filter((p) => fs.readFileSync(`/proc/${p}/environ`, 'latin1').includes(`TMPDIR=${tmp}\0`));
    expect(mine).toHaveLength(1);
    for (const p of mine) process.kill(p, 'SIGSTOP');
    return { s, turn };
  }

  it('interrupt answers within the grace, the turn ends interrupted, and the queued turn runs with the history', async () => {
    const { s, turn } = await stuck();
    const queued = call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?', if_busy: 'queue' });
    const t0 = Date.now();
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/interrupt`);
    expect(r.status).toBe(202);
    expect(Date.now() - t0).toBeLessThan(4_000);
    const end = await waitFor(async () => {
      const x = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns/${turn.turn_id}`)).body;
      return x.status !== 'running' ? x : null;
    }, 10_000);
    expect(end.status).toBe('interrupted');
    const next = await queued;
    expect(next.body.status).toBe('succeeded');
    expect(next.body.result).toMatch(/blue/);
  });

  it('if_busy "interrupt" does not hang either', async () => {
    const { s } = await stuck();
    const t0 = Date.now();
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?', if_busy: 'interrupt' });
    expect(r.body.status).toBe('succeeded');
    expect(r.body.result).toMatch(/blue/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});

describe('a value that looks like a flag never reaches the CLI', () => {
  const t = useApp();

  it('a model starting with "-" is a 400, and no session is made', async () => {
    for (const model of ['--dangerously-skip-permissions', '-p', '-']) {
      const r = await call(t.app, 'POST', '/v1/sessions', { model, prompt: 'hi' });
      expect([r.status, r.body.error.code], model).toEqual([400, 'INVALID_REQUEST']);
    }
    expect((await call(t.app, 'GET', '/v1/sessions')).body.sessions).toEqual([]);
    expect((await call(t.app, 'POST', '/v1/sessions', { model: 'claude-sonnet-4-5' })).status).toBe(201);
  });
});

describe('a request body that never ends', () => {
  const t = useApp({ env: { REQUEST_TIMEOUT_MS: '1000', SSE_HEARTBEAT_MS: '200' }, listen: true });

  it('is answered 408 and dropped within REQUEST_TIMEOUT_MS, while an event stream lives on past it', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'hello' })).body;
    // An event stream opened now is still served after the timeout.
    const stream = readSse(`${t.base}/v1/sessions/${s.session_id}/events`, { ms: 2_500 });
    const port = Number(new URL(t.base).port);
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const t0 = Date.now();
    sock.write(`POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"ses\r\n`);
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString()));
    await new Promise((r) => sock.once('close', r));
    const took = Date.now() - t0;
    expect(got).toMatch(/^HTTP\/1\.1 408/);
    expect(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)).error.code).toBe('REQUEST_TIMEOUT');
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(2_500);
    const seen = await stream;
    expect(seen.status).toBe(200);
    // Heartbeats kept coming for the whole 2.5 s, well past the request timeout.
    expect(seen.events.filter((e) => e.comment !== undefined).length).toBeGreaterThanOrEqual(8);
  });
});

describe('delete while turns run and wait, and small things', () => {
  const t = useApp({ listen: true });

  it('deleting a session interrupts its running turn and cancels the queued ones: none of them runs', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'hello' })).body;
    const running = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:20000]] long' })).body;
    const queued = [];
    for (let i = 0; i < 3; i++)
      queued.push((await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `queued ${i}`, if_busy: 'queue' })).body);
    expect(queued.map((q) => q.status)).toEqual(['queued', 'queued', 'queued']);
    const d = await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}`);
    expect(d.body.status).toBe('deleted');
    const end = await waitFor(async () => {
      const x = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns/${running.turn_id}`)).body;
      return x.status !== 'running' ? x : null;
    }, 10_000);
    expect(end.status).toBe('interrupted');
    await new Promise((r) => setTimeout(r, 500));
    const turns = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns;
    expect(turns.filter((x: any) => x.prompt.startsWith('queued')).map((x: any) => x.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
  });

  it('a fork taken mid-turn is taken from the last finished turn: no prompt without its answer', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my color is green' })).body;
    const running = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:4000]] still thinking' })).body;
    const prompts = async (id: string) =>
      (await call(t.app, 'GET', `/v1/sessions/${id}/messages?limit=500`)).body.messages
        .filter((m: any) => m.type === 'user')
        .map((m: any) => (typeof m.message.content === 'string' ? m.message.content : m.message.content.map((b: any) => b.text ?? '').join('')));
    // The running prompt is in the transcript before the fork is taken.
    await waitFor(async () => (await prompts(s.session_id)).includes('[[slow:4000]] still thinking'));
    const f = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/fork`, {});
    expect(f.status).toBe(201);
    expect(await prompts(f.body.session_id)).toEqual(['Remember: my color is green']);
    const msgs = (await call(t.app, 'GET', `/v1/sessions/${f.body.session_id}/messages?limit=500`)).body.messages;
    expect(msgs.at(-1).type).toBe('assistant');
    // The fork goes on from there; the original turn ends as it would have.
    expect((await call(t.app, 'POST', `/v1/sessions/${f.body.session_id}/turns`, { prompt: 'What is my color?' })).body.result).toMatch(/green/);
    const end = await waitFor(async () => {
      const x = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns/${running.turn_id}`)).body;
      return x.status !== 'running' ? x : null;
    }, 15_000);
    expect(end.status).toBe('succeeded');
  });

  it('a fork taken mid-turn finds the running prompt even when an earlier turn sent the same one', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my color is green' })).body;
    const same = '[[slow:1500]] go on';
    for (const prompt of [same, 'Remember: my pet is cat'])
      expect((await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt })).body.status).toBe('succeeded');
    const running = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: same })).body;
    const userTexts = async (id: string) =>
      (await call(t.app, 'GET', `/v1/sessions/${id}/messages?limit=500`)).body.messages
        .filter((m: any) => m.type === 'user')
        .map((m: any) => (typeof m.message.content === 'string' ? m.message.content : m.message.content.map((b: any) => b.text ?? '').join('')));
    // Before and after the CLI has written the running prompt, the fork holds every finished turn and not the running one.
    const early = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/fork`, {})).body;
    await waitFor(async () => (await userTexts(s.session_id)).filter((x: string) => x === same).length === 2);
    const late = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/fork`, {})).body;
    for (const f of [early, late]) expect(await userTexts(f.session_id)).toEqual(['Remember: my color is green', same, 'Remember: my pet is cat']);
    await waitForTurn(t.app, s.session_id, running.turn_id, 'succeeded', 15_000);
  });

  it('a huge offset, a lone surrogate in a project, and a malformed request get our JSON 400', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const r = await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages?offset=999999999999999999999`);
    expect([r.status, r.body.error.code]).toEqual([400, 'INVALID_REQUEST']);
    const p = await call(t.app, 'POST', '/v1/sessions', '{"project":"a\\ud800b"}');
    expect([p.status, p.body.error.code]).toEqual([400, 'INVALID_PROJECT']);
    const sock = net.connect(Number(new URL(t.base).port), '127.0.0.1');
    await new Promise((res) => sock.once('connect', res));
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString()));
    sock.write('GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n');
    await new Promise((res) => sock.once('close', res));
    expect(got).toMatch(/^HTTP\/1\.1 400/);
    const body = JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4));
    expect(body.error.code).toBe('INVALID_REQUEST');
    expect(body.error.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  // Purge (item 5): nothing of the conversation is kept; a plain delete keeps it until a purge.
  const db = () => t.app.internals.storage.db;
  const rowsOf = async (sessionId: string) => {
    const counts: Record<string, number> = {};
    for (const table of ['events', 'turns', 'permission_requests', 'session_rules', 'transcript_entries'] as const) {
      counts[table] = (await db().selectFrom(table).select('session_id').where('session_id', '=', sessionId).execute()).length;
    }
    return counts;
  };
  /** Files under `dir` whose bytes contain `word`. */
  const filesWith = (dir: string, word: string): string[] => {
    const out: string[] = [];
    // Other sessions' CLIs make and remove temporary folders meanwhile (a CLI's fswatch probe): what is gone
    // by the time it is read holds nothing.
    const gone = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';
    const walk = (d: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(d, { withFileTypes: true });
      } catch (err) {
        if (gone(err)) return;
        throw err;
      }
      for (const e of entries) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) {
          try {
            if (fs.readFileSync(p).includes(word)) out.push(p);
          } catch (err) {
            if (!gone(err)) throw err;
          }
        }
      }
    };
    if (fs.existsSync(dir)) walk(dir);
    return out;
  };

  it('a purge during a running turn stops it, then removes events, turns, approvals, rules, the transcript and TMPDIR', async () => {
    const word = `PURPLE${Date.now()}`;
    const s = (
      await call(t.app, 'POST', '/v1/sessions', { session_name: `name ${word}`, system_prompt: `system ${word}`, prompt: `remember: my word is ${word}` })
    ).body;
    await call(t.app, 'PATCH', `/v1/sessions/${s.session_id}`, { tag: `tag-${word}` });
    // An approved Bash call (a permission row, an approval event) that leaves a file in the session's TMPDIR.
    const bash = await runApproving(t, s.session_id, `[[bash:echo ${word} > "$TMPDIR/note-${word}"; cat "$TMPDIR/note-${word}"]]`);
    expect(bash.status).toBe('succeeded');
    expect(bash.result).toContain(word);
    const before = await rowsOf(s.session_id);
    expect(before.events).toBeGreaterThan(5);
    expect(before.turns).toBe(2);
    expect(before.permission_requests).toBe(1);
    const tmpNotes = filesWith(path.join(t.config.dataDir, 'tmp'), word);
    expect(tmpNotes.length).toBe(1);
    const running = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `[[slow:30000]] still about ${word}` })).body;
    await waitForTurn(t.app, s.session_id, running.turn_id, 'running');

    const started = Date.now();
    const p = await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}?purge=true`);
    expect(p.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(t.config.interruptGraceMs + 10_000);
    expect(p.body).toMatchObject({
      status: 'deleted',
      session_name: null,
      first_prompt: null,
      tag: null,
      running_turn_id: null,
      transcript: { exists: false },
    });

    expect(await rowsOf(s.session_id)).toEqual({ events: 0, turns: 0, permission_requests: 0, session_rules: 0, transcript_entries: 0 });
    const row = await db().selectFrom('sessions').selectAll().where('session_id', '=', s.session_id).executeTakeFirst();
    expect(JSON.stringify(row)).not.toContain(word);
    expect(fs.existsSync(s.transcript.path)).toBe(false);
    expect(filesWith(t.config.claudeConfigDir, word)).toEqual([]);
    // Under SQLite the database file and its WAL keep no copy of the purged text either.
    if (t.app.internals.storage.dialect === 'sqlite') expect(filesWith(t.config.dataDir, word).filter((f) => f.includes('server.db'))).toEqual([]);
    await waitFor(() => filesWith(path.join(t.config.dataDir, 'tmp'), word).length === 0, 5_000);
    // Nothing comes back later either (a closing process, a write batch in flight).
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await rowsOf(s.session_id)).toEqual({ events: 0, turns: 0, permission_requests: 0, session_rules: 0, transcript_entries: 0 });
    expect(fs.existsSync(s.transcript.path)).toBe(false);

    // What the API shows: a tombstone, no turns, no messages, no events.
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns).toEqual([]);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns/${running.turn_id}`)).status).toBe(404);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages`)).body.messages).toEqual([]);
    const replay = await readSse(`${t.base}/v1/sessions/${s.session_id}/events?after=0`, { ms: 1_500 });
    expect(replay.events.filter((e) => e.event !== '')).toEqual([]);
    const gone = (await call(t.app, 'GET', '/v1/sessions?status=deleted&limit=200')).body.sessions.find((x: any) => x.session_id === s.session_id);
    expect(gone).toMatchObject({ status: 'deleted', first_prompt: null });
    // A second purge is harmless.
    expect((await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}?purge=true`)).status).toBe(200);
  });

  it('a plain delete keeps turns, events and the transcript; a purge later removes them', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'kept until purged' })).body;
    expect((await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}`)).body.status).toBe('deleted');
    const kept = await rowsOf(s.session_id);
    expect(kept.turns).toBe(1);
    expect(kept.events).toBeGreaterThan(0);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns[0].prompt).toBe('kept until purged');
    expect(fs.existsSync(s.transcript.path)).toBe(true);
    expect((await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}?purge=true`)).status).toBe(200);
    expect(await rowsOf(s.session_id)).toMatchObject({ events: 0, turns: 0 });
    expect(fs.existsSync(s.transcript.path)).toBe(false);
  });
});

describe('the event log keeps whole messages, not token-level partials, once a turn has ended', () => {
  let t: TestApp;
  let base: string;
  beforeAll(async () => {
    t = await startApp({ env: { PARTIAL_EVENTS_KEEP_MS: '3000' } });
    await t.app.internals.logUpkeep.stop(); // passes are run by the test
    base = await listen(t.app);
  });
  afterAll(async () => t.close());

  const stored = async (sessionId: string) => {
    const rows = await t.app.internals.storage.db
      .selectFrom('events')
      .select(['seq', 'type', 'data', 'transient'])
      .where('session_id', '=', sessionId)
      .orderBy('seq')
      .execute();
    const partialRows = rows.filter((r) => Number(r.transient) === 1);
    // A single process's log stores a run of a turn's partials as one row ('partials': [[seq, time, data], ...]).
    const partials = partialRows.reduce((n, r) => n + (r.type === 'partials' ? (JSON.parse(r.data) as unknown[]).length : 1), 0);
    return { rows, partials, partialRows: partialRows.length, bytes: rows.reduce((n, r) => n + Buffer.byteLength(r.data), 0) };
  };

  it('a long answer: partials stay for PARTIAL_EVENTS_KEEP_MS, then go; stored bytes end under 2x the transcript; replay and numbering hold', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: '[[words:3000]] a long answer please' })).body;
    expect(turn.status).toBe('succeeded');
    expect(turn.result.split(' ').length).toBe(3000);
    await waitFor(async () => (await stored(s.session_id)).rows.some((r) => r.type === 'done'));
    // Within the window: a client catching up still gets every partial.
    await t.app.internals.logUpkeep.run();
    const early = await stored(s.session_id);
    expect(early.partials).toBeGreaterThanOrEqual(3000);
    // Read back from any position, even one inside a stored run of partials: the rest, each once, in order.
    const whole = (await readSse(`${base}/v1/sessions/${s.session_id}/turns/${turn.turn_id}/events?after=0`)).events.filter((e) => e.id !== null);
    expect(whole.filter((e) => e.event === 'message' && e.data?.type === 'stream_event').length).toBe(early.partials);
    for (const at of [whole[3]!.id!, whole[1500]!.id!, whole.at(-3)!.id!]) {
      const rest = (await readSse(`${base}/v1/sessions/${s.session_id}/turns/${turn.turn_id}/events?after=${at}`)).events.filter((e) => e.id !== null);
      expect(rest.map((e) => e.id)).toEqual(whole.filter((e) => e.id! > at).map((e) => e.id));
    }
    await new Promise((r) => setTimeout(r, 3_100));
    const removed = await t.app.internals.logUpkeep.run();
    expect(removed.partials).toBe(early.partialRows);
    const late = await stored(s.session_id);
    expect(late.partials).toBe(0);
    expect(late.rows.length).toBe(early.rows.length - early.partialRows);
    const transcriptBytes = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}`)).body.transcript.bytes;
    expect(late.bytes).toBeLessThanOrEqual(2 * transcriptBytes);
    expect(early.bytes).toBeGreaterThan(5 * transcriptBytes);
    // The replay of the ended turn: whole messages, the full answer, in order, ending with done.
    const replay = await readSse(`${base}/v1/sessions/${s.session_id}/turns/${turn.turn_id}/events?after=0`);
    const evs = replay.events.filter((e) => e.id !== null);
    expect(evs.at(-1)!.event).toBe('done');
    // The answer is stored once in the log (its assistant message) and once in the turn row; the result
    // message, turn and done read it back from the row.
    expect(evs.at(-1)!.data.result).toBe(turn.result);
    expect(evs.filter((e) => e.event === 'turn').at(-1)!.data).toMatchObject({ status: 'succeeded', result: turn.result });
    expect(evs.find((e) => e.event === 'message' && e.data?.type === 'result')!.data).toMatchObject({ subtype: 'success', result: turn.result });
    expect(evs.some((e) => JSON.stringify(e.data).includes('$result'))).toBe(false);
    expect(late.rows.filter((r) => r.data.includes(turn.result)).map((r) => JSON.parse(r.data).type)).toEqual(['assistant']);
    expect(removed.folded).toBe(1);
    const ids = evs.map((e) => e.id!);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const assistant = evs.filter((e) => e.event === 'message' && e.data?.type === 'assistant');
    expect(
      assistant
        .flatMap((e) => e.data.message.content)
        .filter((c: any) => c.type === 'text')
        .map((c: any) => c.text)
        .join(''),
    ).toBe(turn.result);
    // The numbering goes on above the removed events.
    const next = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'and again' })).body;
    await waitFor(async () => (await stored(s.session_id)).rows.filter((r) => r.type === 'done').length === 2);
    const again = (await stored(s.session_id)).rows;
    expect(again.find((r) => r.type === 'turn' && JSON.parse(r.data).turn_id === next.turn_id)!.seq).toBeGreaterThan(late.rows.at(-1)!.seq);
  });

  it("a tool input that spells the log's own result mark gets no result put into it", async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: '[[tool:Glob {"pattern":"*.md","$result":"turn"}]] x' })).body;
    expect(turn.status).toBe('succeeded');
    const replay = await readSse(`${base}/v1/sessions/${s.session_id}/turns/${turn.turn_id}/events?after=0`);
    const assistant = replay.events.filter((e) => e.event === 'message' && e.data?.type === 'assistant');
    expect(assistant.length).toBeGreaterThan(0);
    for (const e of assistant) expect(Object.keys(e.data)).not.toContain('result');
    const call1 = assistant.flatMap((e) => e.data.message.content).find((c: any) => c.type === 'tool_use');
    expect(call1.input).toEqual({ pattern: '*.md', $result: 'turn' });
  });
});

describe('EVENT_RETENTION_DAYS', () => {
  let t: TestApp;
  let base: string;
  beforeAll(async () => {
    t = await startApp({ env: { EVENT_RETENTION_DAYS: '0.00002' } }); // 1.7 s
    await t.app.internals.logUpkeep.stop();
    base = await listen(t.app);
  });
  afterAll(async () => t.close());

  it("removes events past it, keeping each session's last (its numbering goes on), its turns and its transcript", async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is teal' })).body;
    const db = t.app.internals.storage.db;
    const rows = () => db.selectFrom('events').select(['seq', 'type']).where('session_id', '=', s.session_id).orderBy('seq').execute();
    await waitFor(async () => (await rows()).some((r) => r.type === 'done'));
    const before = await rows();
    await new Promise((r) => setTimeout(r, 2_000));
    const removed = await t.app.internals.logUpkeep.run();
    expect(removed.expired).toBe(before.length - 1);
    expect((await rows()).map((r) => Number(r.seq))).toEqual([Number(before.at(-1)!.seq)]);
    const next = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' })).body;
    expect(next.result).toMatch(/teal/);
    await waitFor(async () => (await rows()).filter((r) => r.type === 'done').length === 2);
    expect(Number((await rows())[1]!.seq)).toBe(Number(before.at(-1)!.seq) + 1);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns).toHaveLength(2);
    // Once the first turn's last event (its done) is gone too, its stream is its end, read from its
    // row (events without ids), and the stream ends rather than waiting for events that never come.
    await new Promise((r) => setTimeout(r, 2_000));
    await t.app.internals.logUpkeep.run();
    const first = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns[0];
    const ended = await readSse(`${base}/v1/sessions/${s.session_id}/turns/${first.turn_id}/events`, { ms: 15_000 });
    expect(ended.ended).toBe(true);
    expect(ended.events.filter((e) => e.event).map((e) => [e.event, e.id])).toEqual([
      ['turn', null],
      ['done', null],
    ]);
    expect(ended.events.at(-1)!.data).toMatchObject({ turn_id: first.turn_id, status: 'succeeded', result: first.result });
  });
});
