/**
 * Two replicas over one PostgreSQL, each with its own CLAUDE_CONFIG_DIR (no shared disk) and the
 * same WORKSPACE_ROOT path, transcripts shared through the database. A session runs on the
 * replica holding its lease; whatever the other replica receives (turns, streams, interrupts,
 * decisions) reaches it through the database.
 */
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  cliProcesses,
  dbEnv,
  exited,
  listen,
  makeDirs,
  readSse,
  runApproving,
  startApp,
  startServer,
  streamedText,
  terminalSession,
  waitFor,
  waitForTurn,
  ENDED,
  type TestApp,
} from '../helper.js';
import { transcriptPath } from '../../src/claude/paths.js';
import { createEventRepository } from '../../src/storage/events-repo.js';

/** The user prompts of a session's messages (as GET .../messages answers them), in order. */
function userPrompts(messages: Array<{ type: string; message?: { content?: unknown } }>): string[] {
  return messages
    .filter((m) => m.type === 'user')
    .map((m) => {
      const c = m.message?.content;
      return typeof c === 'string'
        ? c
        : Array.isArray(c)
          ? c
              .filter((b: { type?: string }) => b.type === 'text')
              .map((b: { text?: string }) => b.text ?? '')
              .join('')
          : '';
    })
    .filter((t) => t && !t.trimStart().startsWith('<system-reminder>'));
}

async function leaseRows(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return Number((await c.query('select count(*) as n from session_leases')).rows[0].n);
  } finally {
    await c.end();
  }
}

// PostgreSQL only (vitest.config.ts); test/replicas/one-replica.test.ts is SQLite's side.
describe('two replicas over one PostgreSQL', () => {
  let A: TestApp;
  let B: TestApp;
  let baseB = '';
  let blue = '';
  beforeAll(async () => {
    const a = makeDirs();
    const b = makeDirs();
    // 12 s: with every connection cut (the deaf test), a replica under a full suite's load must still get
    // its lease renewed in time (2 s, 4 s and 8 s each failed there once: REPLICA_LOST while A reconnected).
    const env = { ...(await dbEnv(a)), TRANSCRIPT_STORE: 'database', REPLICA_LEASE_MS: '12000', WEBHOOK_ALLOW_PRIVATE: '1' };
    A = await startApp({ dirs: a, env });
    B = await startApp({ dirs: { ...b, workspace: a.workspace }, env });
    await listen(A.app);
    baseB = await listen(B.app);
    const s = (await call(A.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    expect(s.turn.status).toBe('succeeded');
    blue = s.session_id;
  });
  afterAll(async () => {
    await A?.close().catch(() => {});
    await B?.close().catch(() => {});
  });

  it('10 queued turns sent alternately to A and B: all 10 kept, in order', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await call(i % 2 ? B.app : A.app, 'POST', `/v1/sessions/${blue}/turns?wait=false`, { prompt: `[[slow:50]] step ${i}`, if_busy: 'queue' });
      expect(r.status).toBe(202);
      ids.push(r.body.turn_id);
    }
    const ended = await waitFor(
      async () => {
        const rows = await Promise.all(ids.map(async (id) => (await call(B.app, 'GET', `/v1/sessions/${blue}/turns/${id}`)).body));
        return rows.every((t) => t.status === 'succeeded') ? rows : null;
      },
      60_000,
      200,
    );
    expect(ended).toBeTruthy();
    // Read on B from the shared transcript: every prompt once, in the order they were sent.
    const msgs = (await call(B.app, 'GET', `/v1/sessions/${blue}/messages?limit=500`)).body.messages;
    const steps = userPrompts(msgs).filter((p) => /step \d/.test(p));
    expect(steps).toEqual(ids.map((_, i) => `[[slow:50]] step ${i}`));
  });

  it('SSE on B follows, live, a turn running on A; and replays after Last-Event-ID', async () => {
    const s = (await call(A.app, 'POST', '/v1/sessions', { prompt: 'hello' })).body;
    const turn = (await call(A.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:1500]] tell me about streams' })).body;
    let statusAtFirstMessage: Promise<string> | null = null;
    const live = await readSse(`${baseB}/v1/sessions/${s.session_id}/turns/${turn.turn_id}/events`, {
      until: (evs) => {
        if (!statusAtFirstMessage && evs.some((e) => e.event === 'message')) {
          statusAtFirstMessage = call(B.app, 'GET', `/v1/sessions/${s.session_id}/turns/${turn.turn_id}`).then((r) => r.body.status);
        }
        return evs.some((e) => e.event === 'done');
      },
    });
    expect(live.status).toBe(200);
    // The first message reached B while the turn still ran on A: followed live, not replayed at the end.
    // (Assigned in the callback above, which the compiler does not follow.)
    expect(await (statusAtFirstMessage as Promise<string> | null)).toBe('running');
    const evs = live.events.filter((e) => e.event);
    expect(evs.at(-1)).toMatchObject({ event: 'done', data: { status: 'succeeded' } });
    expect(streamedText(evs).length).toBeGreaterThan(0);
    const ids = evs.map((e) => e.id!);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(ids.length);
    // Replay from the middle, on B.
    const mid = ids[Math.floor(ids.length / 2)]!;
    const again = await readSse(`${baseB}/v1/sessions/${s.session_id}/turns/${turn.turn_id}/events`, {
      headers: { 'last-event-id': String(mid) },
      until: (e) => e.some((x) => x.event === 'done'),
    });
    expect(again.events.filter((e) => e.event).map((e) => e.id)).toEqual(ids.filter((i) => i > mid));
  });

  it('an interrupt sent to B stops the turn running on A; the session goes on with its history', async () => {
    const turn = (await call(A.app, 'POST', `/v1/sessions/${blue}/turns?wait=false`, { prompt: '[[slow:30000]] a long job' })).body;
    expect((await waitForTurn(B.app, blue, turn.turn_id, 'running', 20_000)).status).toBe('running');
    const t0 = Date.now();
    const r = await call(B.app, 'POST', `/v1/sessions/${blue}/interrupt`);
    expect(r.status).toBe(202);
    expect(r.body.turn_id).toBe(turn.turn_id);
    expect((await waitForTurn(B.app, blue, turn.turn_id, ENDED, 10_000)).status).toBe('interrupted');
    expect(Date.now() - t0).toBeLessThan(3_000);
    const next = await call(B.app, 'POST', `/v1/sessions/${blue}/turns`, { prompt: 'What is my favorite color?' });
    expect(next.status).toBe(200);
    expect(next.body.result).toMatch(/blue/);
  });

  it('if_busy reject, interrupt and a cancel sent to B act on the session A runs', async () => {
    const s = (await call(A.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is green' })).body;
    const slow = (await call(A.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:30000]] a long job' })).body;
    await waitForTurn(B.app, s.session_id, slow.turn_id, 'running', 20_000);
    const refused = await call(B.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'not now' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('SESSION_BUSY');
    // Queued on B behind the slow turn, then cancelled on B: it never runs.
    const queued = (await call(B.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: 'never run', if_busy: 'queue' })).body;
    expect(queued.status).toBe('queued');
    const cancelled = await call(B.app, 'DELETE', `/v1/sessions/${s.session_id}/turns/${queued.turn_id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    // if_busy interrupt on B: A's turn stops, the new one runs (on A) and answers B.
    const r = await call(B.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?', if_busy: 'interrupt' });
    expect(r.status).toBe(200);
    expect(r.body.result).toMatch(/green/);
    expect((await call(B.app, 'GET', `/v1/sessions/${s.session_id}/turns/${slow.turn_id}`)).body.status).toBe('interrupted');
    const list = (await call(A.app, 'GET', `/v1/sessions/${s.session_id}/turns?limit=50`)).body;
    expect(list.turns.map((t: { status: string }) => t.status)).toEqual(['succeeded', 'interrupted', 'cancelled', 'succeeded']);
  });

  it("a turn's queued event is written only while the turn is still queued, under the lock its running event is numbered under", async () => {
    // A turn queued on B may be taken up by A's actor before B writes its `queued` event: checked where
    // events are numbered, that event is then left out, so the log never says running before queued.
    const repo = createEventRepository(A.app.internals.storage.db);
    const s = (await call(A.app, 'POST', '/v1/sessions', {})).body;
    const slow = (await call(A.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:30000]] a long job' })).body;
    await waitForTurn(B.app, s.session_id, slow.turn_id, 'running', 20_000);
    const queued = (await call(B.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: 'later', if_busy: 'queue' })).body;
    expect(queued.status).toBe('queued');
    const event = (turnId: string, status: string) => ({
      session_id: s.session_id,
      turn_id: turnId,
      type: 'turn',
      data: JSON.stringify({ turn_id: turnId, status }),
      created_at: Date.now(),
      transient: 0,
    });
    // Still queued: written, numbered next.
    const before = await repo.maxSeq(s.session_id);
    const [first] = await repo.appendNumbered(s.session_id, [event(queued.turn_id, 'queued')], [true]);
    expect(first?.seq).toBe(before + 1);
    // Taken (here: cancelled) meanwhile: left out; an unflagged event of the same batch is numbered on.
    expect((await call(B.app, 'DELETE', `/v1/sessions/${s.session_id}/turns/${queued.turn_id}`)).status).toBe(200);
    const out = await repo.appendNumbered(s.session_id, [event(queued.turn_id, 'queued'), event(slow.turn_id, 'running')], [true, false]);
    expect(out[0]).toBeNull();
    expect(out[1]?.seq).toBeGreaterThan(first!.seq);
    const log = await repo.after(s.session_id, before, { limit: 100 });
    expect(log.filter((e) => e.turn_id === queued.turn_id && e.type === 'turn').map((e) => JSON.parse(e.data).status)).toEqual(['queued', 'cancelled']);
    await call(A.app, 'POST', `/v1/sessions/${s.session_id}/interrupt`);
  });

  it('a tool call on A is approved on B: the call runs and the turn ends', async () => {
    const s = (await call(A.app, 'POST', '/v1/sessions', { permission_mode: 'default' })).body;
    const marker = path.join(s.cwd, 'approved-on-b');
    const turn = (await call(A.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `[[bash:touch ${marker}]]` })).body;
    const pending = await waitFor(async () => (await call(B.app, 'GET', `/v1/sessions/${s.session_id}/permissions`)).body.requests?.[0], 20_000);
    expect(pending).toMatchObject({ tool_name: 'Bash', turn_id: turn.turn_id });
    expect(fs.existsSync(marker)).toBe(false);
    const decided = await call(B.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${pending.request_id}`, { behavior: 'allow' });
    expect(decided.status).toBe(200);
    const done = await waitFor(async () => {
      const t = (await call(B.app, 'GET', `/v1/sessions/${s.session_id}/turns/${turn.turn_id}`)).body;
      return t.status === 'succeeded' ? t : null;
    }, 20_000);
    expect(done).toBeTruthy();
    expect(fs.existsSync(marker)).toBe(true);
  });

  it('a turn waited for on B, run on A, answers B with its result', async () => {
    const r = await call(B.app, 'POST', `/v1/sessions/${blue}/turns`, { prompt: 'What is my favorite color?' });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('succeeded');
    expect(r.body.result).toMatch(/blue/);
  });

  it('a terminal session imported on B is resumed on A', async () => {
    // (B: the SDK's session functions read CLAUDE_CONFIG_DIR from the process, bound by the app built last.)
    const id = await terminalSession(B, path.join(B.dirs.workspace, 'local', 'term-shared'), 'Remember: my favorite color is purple');
    const r = await call(B.app, 'POST', '/v1/sessions/import', { project: 'term-shared' });
    expect(r.body.imported).toBe(1);
    const turn = await call(A.app, 'POST', `/v1/sessions/${id}/turns`, { prompt: 'What is my favorite color?' });
    expect(turn.status).toBe(200);
    expect(turn.body.result).toMatch(/purple/);
  });

  it('a decision made while the replicas cannot hear each other still reaches the turn; they reconnect', async () => {
    const url = A.config.databaseUrl!;
    const s = (await call(A.app, 'POST', '/v1/sessions', { permission_mode: 'default' })).body;
    const marker = path.join(s.cwd, 'decided-while-deaf');
    const turn = (await call(A.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `[[bash:touch ${marker}]]` })).body;
    const pending = await waitFor(async () => (await call(B.app, 'GET', `/v1/sessions/${s.session_id}/permissions`)).body.requests?.[0], 20_000);
    expect(pending).toBeTruthy();
    // Cut every connection both replicas have to the database (their LISTEN ones and their pools',
    // as a database restart would), and decide at once: A never gets that notice.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const cut = await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`);
      expect(cut.rowCount).toBeGreaterThanOrEqual(2);
      // A connection cut under a request answers 503 with Retry-After, as the database restarting would; a client retries.
      const decided = await waitFor(
        async () => {
          const r = await call(B.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${pending.request_id}`, { behavior: 'allow' });
          if (r.status === 503) {
            expect(r.body.error.code).toBe('UNAVAILABLE');
            expect(r.headers['retry-after']).toBe('1');
            return null;
          }
          return r;
        },
        10_000,
        200,
      );
      expect(decided?.status).toBe(200);
      let last: any = null;
      await waitFor(async () => (last = (await call(B.app, 'GET', `/v1/sessions/${s.session_id}/turns/${turn.turn_id}`)).body).status === 'succeeded', 20_000);
      expect({ status: last?.status, error: last?.error }).toEqual({ status: 'succeeded', error: null });
      expect(fs.existsSync(marker)).toBe(true);
      // Both listen again, and follow each other again: a turn waited for on B runs on A.
      const listening = await waitFor(
        async () =>
          Number((await c.query(`select count(*) as n from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%'`)).rows[0].n) === 2,
        10_000,
        100,
      );
      expect(listening).toBe(true);
      const r = await call(B.app, 'POST', `/v1/sessions/${blue}/turns`, { prompt: 'What is my favorite color?' });
      expect(r.body.result).toMatch(/blue/);
    } finally {
      await c.end();
    }
  });

  it('deleting a session on the replica running its turn interrupts it there; it is not handed to another replica', async () => {
    const s = (await call(A.app, 'POST', '/v1/sessions', { prompt: 'hello' })).body;
    const turn = (await call(A.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:9500]] finishing up' })).body;
    await waitForTurn(A.app, s.session_id, turn.turn_id, 'running', 20_000);
    expect((await call(A.app, 'DELETE', `/v1/sessions/${s.session_id}`)).status).toBe(200);
    // Longer than the lease (8 s): B's sweep must not take the running turn for a dead replica's.
    const end = await waitFor(
      async () => {
        const t = (await call(B.app, 'GET', `/v1/sessions/${s.session_id}/turns/${turn.turn_id}`)).body;
        return t.status !== 'running' ? t : null;
      },
      20_000,
      100,
    );
    // Delete interrupts the running turn (issue 20): it ends interrupted, not taken over (REPLICA_LOST).
    expect([end.status, end.error?.code]).toEqual(['interrupted', 'INTERRUPTED']);
  });

  it("a purge sent to B stops the turn A runs, and removes the rows, the store and both disks' copies", async () => {
    const s = (await call(A.app, 'POST', '/v1/sessions', { prompt: 'to be purged' })).body;
    // A turn on B leaves a copy of the transcript on B's disk too.
    expect((await call(B.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'from B' })).body.status).toBe('succeeded');
    const onA = transcriptPath(A.config.claudeConfigDir, s.cwd, s.session_id);
    const onB = transcriptPath(B.config.claudeConfigDir, s.cwd, s.session_id);
    const turn = (await call(A.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:30000]] long' })).body;
    await waitForTurn(A.app, s.session_id, turn.turn_id, 'running', 20_000);
    expect(fs.existsSync(onA) || fs.existsSync(onB)).toBe(true);
    const p = await call(B.app, 'DELETE', `/v1/sessions/${s.session_id}?purge=true`);
    expect(p.status).toBe(200);
    const db = A.app.internals.storage.db;
    const left = async () => {
      let n = 0;
      for (const table of ['events', 'turns', 'permission_requests', 'transcript_entries'] as const) {
        n += (await db.selectFrom(table).select('session_id').where('session_id', '=', s.session_id).execute()).length;
      }
      return n;
    };
    expect(await left()).toBe(0);
    expect(await waitFor(() => !fs.existsSync(onA) && !fs.existsSync(onB), 15_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await left()).toBe(0);
    expect(fs.existsSync(onA) || fs.existsSync(onB)).toBe(false);
  });

  it("a session's files are one on both replicas: written on B, changed by the turn A runs, listed and rewound on B", async () => {
    const s = (await call(A.app, 'POST', '/v1/sessions', { prompt: 'hello' })).body;
    expect(s.turn.status).toBe('succeeded');
    const url = (p: string) => `/v1/sessions/${s.session_id}/files/content?path=${encodeURIComponent(p)}`;
    const read = async (app: TestApp['app'], p: string) => {
      const r = await app.inject({ method: 'GET', url: url(p) });
      return r.statusCode === 200 ? r.body : r.statusCode;
    };
    const up = await B.app.inject({ method: 'PUT', url: url('doc.txt'), payload: 'one\ntwo\n', headers: { 'content-type': 'text/plain' } });
    expect(up.statusCode).toBe(201);
    expect(await read(A.app, 'doc.txt')).toBe('one\ntwo\n');
    // Sent to B, run on A (it holds the session's lease), approved on B.
    const r = await runApproving(B, s.session_id, "[[bash:sed -i 's/two/TWO/' doc.txt && echo made > new.txt]]");
    expect(r.status).toBe('succeeded');
    expect(A.app.internals.runner.liveSessions()).toContain(s.session_id);
    expect(B.app.internals.runner.liveSessions()).not.toContain(s.session_id);
    // Only what the turn did: A knew B's upload had changed the folder since its last snapshot.
    const changes = (await call(B.app, 'GET', `/v1/sessions/${s.session_id}/turns/${r.turn_id}/changes`)).body;
    expect(changes.files.map((f: { path: string; kind: string }) => [f.path, f.kind])).toEqual([
      ['doc.txt', 'modified'],
      ['new.txt', 'created'],
    ]);
    expect(changes.files[0].diff).toContain('-two\n+TWO');
    expect(await read(B.app, 'new.txt')).toBe('made\n');
    const back = await call(B.app, 'POST', `/v1/sessions/${s.session_id}/rewind`, { turn_id: r.turn_id });
    expect(back.status).toBe(200);
    expect([await read(A.app, 'doc.txt'), await read(A.app, 'new.txt')]).toEqual(['one\ntwo\n', 404]);
    // The next turn on A starts from the rewound state.
    const next = await runApproving(A, s.session_id, '[[bash:echo three >> doc.txt]]');
    const after = (await call(A.app, 'GET', `/v1/sessions/${s.session_id}/turns/${next.turn_id}/changes`)).body;
    expect(after.files.map((f: { path: string; diff: string }) => [f.path, f.diff.includes('+three')])).toEqual([['doc.txt', true]]);
  });

  it('webhooks: each message is sent by one replica, once, whichever replica ran the turn', async () => {
    const got: string[] = [];
    const rx = http.createServer((req, res) => {
      got.push(String(req.headers['webhook-id']));
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(rx.address() as AddressInfo).port}/`;
      const hook = (await call(B.app, 'POST', '/v1/webhooks', { url, events: ['turn.finished'] })).body;
      const s = (await call(A.app, 'POST', '/v1/sessions', { prompt: 'one' })).body;
      for (let i = 0; i < 9; i++)
        expect((await call(i % 2 ? A.app : B.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `n ${i}` })).status).toBe(200);
      expect(await waitFor(() => got.length >= 10, 15_000)).toBe(true);
      await new Promise((r) => setTimeout(r, 1_500)); // both dispatchers looked again meanwhile
      expect(got.length).toBe(10);
      expect(new Set(got).size).toBe(10);
      const log = (await call(A.app, 'GET', `/v1/webhooks/${hook.webhook_id}/deliveries`)).body.deliveries;
      expect(log.map((d: { status: string; attempts: number }) => [d.status, d.attempts])).toEqual(Array(10).fill(['delivered', 1]));
      await call(A.app, 'DELETE', `/v1/webhooks/${hook.webhook_id}`);
    } finally {
      rx.closeAllConnections();
      rx.close();
    }
  });

  it('a replica whose WORKSPACE_ROOT is not the shared volume does not start (the reason names the fix); WORKSPACE_SHARED=0 lets it', async () => {
    const c = makeDirs();
    const env = { DATABASE_URL: A.config.databaseUrl!, TRANSCRIPT_STORE: 'database' };
    await expect(startApp({ dirs: c, env })).rejects.toThrow(/WORKSPACE_ROOT \(.*\) is not the volume the other replicas use .*WORKSPACE_SHARED=0/);
    expect(fs.existsSync(path.join(c.workspace, '.volume-id'))).toBe(false);
    fs.writeFileSync(path.join(c.workspace, '.volume-id'), 'some-other-volume\n');
    await expect(startApp({ dirs: c, env })).rejects.toThrow(/is another volume than the other replicas' \(its \.volume-id is some-other-volume/);
    const C = await startApp({ dirs: c, env: { ...env, WORKSPACE_SHARED: '0' } });
    await C.close();
    // The shared volume's own id, written by the first replica, is what B found too.
    expect(fs.readFileSync(path.join(A.config.workspaceRoot, '.volume-id'), 'utf8').trim()).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('/health shows each replica, that it hears the others, and the leases it holds', async () => {
    const a = (await call(A.app, 'GET', '/health')).body;
    const b = (await call(B.app, 'GET', '/health')).body;
    expect(a.status).toBe('ok');
    expect(a.replica).toMatchObject({ shared: true, listening: true });
    expect(b.replica).toMatchObject({ shared: true, listening: true });
    expect(a.replica.id).not.toBe(b.replica.id);
    // A ran every session of this file: it holds their leases while their processes are warm.
    expect(a.replica.leases).toBeGreaterThan(0);
    expect(b.replica.leases).toBe(0);
    // The same figures for Prometheus.
    const metrics = (await A.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(Number(/^css_replica_leases (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^css_replica_listening 1$/m);
  });

  it('the lease of a session with nothing live is given back', async () => {
    const url = A.config.databaseUrl!;
    expect(await leaseRows(url)).toBeGreaterThan(0);
    // Let the warm processes go: the leases follow within a heartbeat or two.
    for (const id of A.app.internals.runner.liveSessions()) A.app.internals.runner.release(id);
    for (const id of B.app.internals.runner.liveSessions()) B.app.internals.runner.release(id);
    expect(await waitFor(async () => (await leaseRows(url)) === 0, 10_000, 100)).toBe(true);
  });
});

describe('a replica killed mid-turn', () => {
  const children: ChildProcess[] = [];
  let B: TestApp | null = null;
  let aConfigDir = '';
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    // The killed replica's CLI outlives it, as measured: end it here.
    for (const pid of cliProcesses(aConfigDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await B?.close().catch(() => {});
  });

  it('B fails its turn within the lease time and runs the queued next turn with the history intact', async () => {
    const a = makeDirs();
    const b = makeDirs();
    aConfigDir = a.configDir;
    const shared = { ...(await dbEnv(a)), TRANSCRIPT_STORE: 'database', REPLICA_LEASE_MS: '3000' };
    const srv = await startServer({ ...shared, DATA_DIR: a.dataDir, WORKSPACE_ROOT: a.workspace, CLAUDE_CONFIG_DIR: a.configDir });
    children.push(srv.child);
    B = await startApp({ dirs: { ...b, workspace: a.workspace }, env: shared });
    const post = (url: string, body: unknown) =>
      fetch(`${srv.base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json());
    const s = await post('/v1/sessions', { prompt: 'Remember: my favorite color is blue' });
    expect(s.turn.status).toBe('succeeded');
    const doomed = await post(`/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:60000]] a long job' });
    const next = await post(`/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: 'What is my favorite color?', if_busy: 'queue' });
    expect(next.status).toBe('queued');
    expect((await waitForTurn(B.app, s.session_id, doomed.turn_id, 'running', 20_000)).status).toBe('running');

    srv.child.kill('SIGKILL');
    await exited(srv.child);
    const t0 = Date.now();
    const failed = await waitFor(
      async () => {
        const t = (await call(B!.app, 'GET', `/v1/sessions/${s.session_id}/turns/${doomed.turn_id}`)).body;
        return t.status === 'failed' ? t : null;
      },
      15_000,
      100,
    );
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'REPLICA_LOST' } });
    // Lease 3 s, heartbeat every second: the takeover comes within about 4 s.
    expect(Date.now() - t0).toBeLessThan(6_000);
    const after = await waitFor(
      async () => {
        const t = (await call(B!.app, 'GET', `/v1/sessions/${s.session_id}/turns/${next.turn_id}`)).body;
        return t.status === 'succeeded' ? t : null;
      },
      30_000,
      100,
    );
    expect(after).toBeTruthy();
    expect(after.result).toMatch(/blue/);
    // The session keeps working on B.
    const more = await call(B.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(more.body.result).toMatch(/blue/);
  });
});
