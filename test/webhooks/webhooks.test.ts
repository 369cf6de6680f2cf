/**
 * Webhooks against a receiver on loopback: signed the Standard Webhooks way, at least once,
 * retried while the receiver is down and across a restart of the server, refused (when made
 * and when sent) for private addresses without WEBHOOK_ALLOW_PRIVATE.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { call, makeDirs, runApproving, startApp, useApp, waitFor, type TestApp } from '../helper.js';
import { retryDelay } from '../../src/webhooks/service.js';

const keysEnv = { API_KEYS: 'alice:key-alice-0123456789,bob:key-bob-0123456789,root:key-root-0123456789', ADMIN_USERS: 'root' };
const ALICE = { authorization: 'Bearer key-alice-0123456789' };
const BOB = { authorization: 'Bearer key-bob-0123456789' };
const ROOT = { authorization: 'Bearer key-root-0123456789' };

/** Standard Webhooks verification, written from the specification (not the server's code). */
function verify(secret: string, m: Received): boolean {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${m.id}.${m.timestamp}.${m.body}`).digest();
  return m.signature.split(' ').some((s) => {
    const [v, sig] = s.split(',');
    const got = Buffer.from(sig ?? '', 'base64');
    return v === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
  });
}

interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  json: { type: string; timestamp: string; data: any };
}

/** A receiver on loopback that can go down and come back on the same port, or answer 500 for a while. */
async function receiver() {
  const got: Received[] = [];
  let failNext = 0;
  const handler: http.RequestListener = (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(500).end('not now');
        return;
      }
      got.push({
        id: String(req.headers['webhook-id']),
        timestamp: String(req.headers['webhook-timestamp']),
        signature: String(req.headers['webhook-signature']),
        body,
        json: JSON.parse(body),
      });
      res.writeHead(204).end();
    });
  };
  let server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    failNext: (n: number) => (failNext = n),
    async down() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
    async up() {
      server = http.createServer(handler);
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    close: () => {
      server.closeAllConnections();
      server.close();
    },
    /** What arrived, one per message id (a retry may repeat one: at least once). */
    unique: () => [...new Map(got.map((m) => [m.id, m])).values()],
  };
}

describe('webhooks: the resource', () => {
  const t = useApp({ env: keysEnv });

  it('made, read, listed and deleted by their owner only; the secret is shown once; bad input and private addresses are refused', async () => {
    for (const [url, why] of [
      ['http://127.0.0.1:9/hook', /loopback, private or link-local .*WEBHOOK_ALLOW_PRIVATE/],
      ['http://localhost:9/hook', /loopback, private or link-local/],
      ['http://10.1.2.3/hook', /loopback, private or link-local/],
      ['http://169.254.169.254/latest', /loopback, private or link-local/],
      ['http://[::1]:9/hook', /loopback, private or link-local/],
      ['ftp://93.184.216.34/x', /http or https/],
      ['not a url', /not a URL/],
      ['https://user:pw@93.184.216.34/x', /credentials/],
    ] as const) {
      const r = await call(t.app, 'POST', '/v1/webhooks', { url, events: ['turn.finished'] }, ALICE);
      expect([url, r.status, r.body.error.code]).toEqual([url, 400, 'INVALID_REQUEST']);
      expect(r.body.error.message).toMatch(why);
    }
    expect((await call(t.app, 'POST', '/v1/webhooks', { url: 'https://93.184.216.34/x', events: [] }, ALICE)).status).toBe(400);
    expect((await call(t.app, 'POST', '/v1/webhooks', { url: 'https://93.184.216.34/x', events: ['turn.started'] }, ALICE)).status).toBe(400);
    const notAdmin = await call(t.app, 'POST', '/v1/webhooks', { url: 'https://93.184.216.34/x', events: ['turn.finished'], all_users: true }, ALICE);
    expect([notAdmin.status, notAdmin.body.error.details]).toEqual([400, { field: 'body.all_users' }]);
    expect((await call(t.app, 'GET', '/v1/webhooks', undefined, ALICE)).body.webhooks).toEqual([]);

    const made = await call(
      t.app,
      'POST',
      '/v1/webhooks',
      { url: 'https://93.184.216.34/x', events: ['turn.finished', 'turn.finished'], description: 'ci' },
      ALICE,
    );
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ user_id: 'alice', all_users: false, url: 'https://93.184.216.34/x', events: ['turn.finished'], description: 'ci' });
    expect(made.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const id = made.body.webhook_id;
    const got = await call(t.app, 'GET', `/v1/webhooks/${id}`, undefined, ALICE);
    expect(got.body.secret).toBeUndefined();
    expect(JSON.stringify((await call(t.app, 'GET', '/v1/webhooks', undefined, ALICE)).body)).not.toContain(made.body.secret);
    for (const [method, url] of [
      ['GET', `/v1/webhooks/${id}`],
      ['GET', `/v1/webhooks/${id}/deliveries`],
      ['DELETE', `/v1/webhooks/${id}`],
    ] as const) {
      const r = await call(t.app, method, url, undefined, BOB);
      expect([url, r.status, r.body.error.code]).toEqual([url, 404, 'WEBHOOK_NOT_FOUND']);
    }
    expect((await call(t.app, 'GET', '/v1/webhooks', undefined, BOB)).body.webhooks).toEqual([]);
    const everyone = await call(t.app, 'POST', '/v1/webhooks', { url: 'https://93.184.216.34/y', events: ['session.created'], all_users: true }, ROOT);
    expect(everyone.body.all_users).toBe(true);
    expect((await call(t.app, 'GET', '/v1/webhooks', undefined, ROOT)).body.webhooks.map((w: any) => w.user_id).sort()).toEqual(['alice', 'root']);
    expect((await call(t.app, 'GET', `/v1/webhooks/${id}/deliveries?limit=0`, undefined, ALICE)).status).toBe(400);
    expect((await call(t.app, 'GET', `/v1/webhooks/${id}/deliveries?cursor=nope`, undefined, ALICE)).status).toBe(400);
    expect((await call(t.app, 'DELETE', `/v1/webhooks/${id}`, undefined, ALICE)).status).toBe(200);
    expect((await call(t.app, 'GET', `/v1/webhooks/${id}`, undefined, ALICE)).status).toBe(404);
    await call(t.app, 'DELETE', `/v1/webhooks/${everyone.body.webhook_id}`, undefined, ROOT);
  });
});

describe('webhooks: the retry schedule', () => {
  it('doubles from WEBHOOK_RETRY_BASE_MS, at most 8 h apart: with the defaults 16 attempts, the last one at the end of the day', () => {
    expect([1, 2, 3, 4].map((n) => retryDelay(n, 5_000))).toEqual([5_000, 10_000, 20_000, 40_000]);
    expect(retryDelay(30, 5_000)).toBe(8 * 3600_000);
    let at = 0;
    let attempts = 1;
    while (at < 86_400_000) at = Math.min(at + retryDelay(attempts++, 5_000), 86_400_000);
    expect([attempts, at]).toEqual([16, 86_400_000]); // the 16th attempt at the end of the day
  });
});

describe('webhooks: delivery', () => {
  const apps: TestApp[] = [];
  const receivers: Array<{ close(): void }> = [];
  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => {});
    for (const r of receivers) r.close();
  });

  it('20 turns: every turn.finished arrives signed, once after dropping repeats, also those that ended while the receiver was down and across a restart', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const dirs = makeDirs();
    const env = { ...keysEnv, WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_RETRY_BASE_MS: '100' };
    let A = await startApp({ dirs, env });
    apps.push(A);
    const hook = (
      await call(A.app, 'POST', '/v1/webhooks', { url: rx.url, events: ['turn.finished', 'session.created', 'session.deleted', 'permission.requested'] }, ALICE)
    ).body;
    // Bob's events are not Alice's webhook's business.
    await call(A.app, 'POST', '/v1/sessions', { prompt: 'bob here' }, BOB);
    const s = (await call(A.app, 'POST', '/v1/sessions', {}, ALICE)).body;
    const turnIds: string[] = [];
    const turn = async (app: TestApp, i: number) => {
      const r = await call(app.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `turn ${i}` }, ALICE);
      expect(r.body.status).toBe('succeeded');
      turnIds.push(r.body.turn_id);
    };
    for (let i = 0; i < 8; i++) await turn(A, i);
    expect(await waitFor(() => rx.unique().filter((m) => m.json.type === 'turn.finished').length >= 8, 10_000)).toBe(true);

    // The receiver goes down; six turns end meanwhile; the server is restarted before it comes back.
    await rx.down();
    for (let i = 8; i < 14; i++) await turn(A, i);
    await new Promise((r) => setTimeout(r, 500)); // a few failed attempts each
    await A.close();
    rx.failNext(2); // its first answers after coming back are errors: those are retried too
    await rx.up();
    A = await startApp({ dirs, env });
    apps.push(A);
    for (let i = 14; i < 20; i++) await turn(A, i);

    const finished = () => rx.unique().filter((m) => m.json.type === 'turn.finished');
    expect(await waitFor(() => finished().length >= 20, 30_000, 100)).toBe(true);
    const byId = (a: string, b: string) => a.localeCompare(b);
    expect(
      finished()
        .map((m) => m.json.data.turn_id as string)
        .sort(byId),
    ).toEqual([...turnIds].sort(byId));
    expect(finished().every((m) => m.json.data.status === 'succeeded' && m.json.data.session_id === s.session_id)).toBe(true);
    for (const m of rx.got) {
      expect(verify(hook.secret, m)).toBe(true);
      expect(Math.abs(Date.now() / 1000 - Number(m.timestamp))).toBeLessThan(120);
    }
    // A wrong secret does not verify; neither does a changed body.
    const one = rx.got[0]!;
    expect(verify('whsec_' + Buffer.from('not the secret, not at all').toString('base64'), one)).toBe(false);
    expect(verify(hook.secret, { ...one, body: one.body.replace('turn', 'tvrn') })).toBe(false);
    expect(
      rx
        .unique()
        .filter((m) => m.json.type === 'session.created')
        .map((m) => m.json.data.session_id),
    ).toEqual([s.session_id]);

    // The delivery log: all delivered; those sent while the receiver was away took several attempts.
    const log = (await call(A.app, 'GET', `/v1/webhooks/${hook.webhook_id}/deliveries?limit=200`, undefined, ALICE)).body.deliveries;
    expect(log.length).toBe(21);
    expect(log.every((d: any) => d.status === 'delivered' && d.finished_at !== null)).toBe(true);
    expect(log.filter((d: any) => d.attempts > 1).length).toBeGreaterThanOrEqual(6);
    const page = (await call(A.app, 'GET', `/v1/webhooks/${hook.webhook_id}/deliveries?limit=5`, undefined, ALICE)).body;
    const next = (await call(A.app, 'GET', `/v1/webhooks/${hook.webhook_id}/deliveries?limit=5&cursor=${page.next_cursor}`, undefined, ALICE)).body;
    expect([...page.deliveries, ...next.deliveries].map((d: any) => d.delivery_id)).toEqual(log.slice(0, 10).map((d: any) => d.delivery_id));

    // A tool call waiting for a person, and a deleted session.
    const approved = await runApproving(A, s.session_id, '[[bash:echo hi]]', { headers: ALICE });
    expect(approved.status).toBe('succeeded');
    await call(A.app, 'DELETE', `/v1/sessions/${s.session_id}`, undefined, ALICE);
    expect(await waitFor(() => rx.unique().some((m) => m.json.type === 'session.deleted'), 10_000)).toBe(true);
    const asked = rx.unique().find((m) => m.json.type === 'permission.requested')!;
    expect(asked.json.data).toMatchObject({ session_id: s.session_id, turn_id: approved.turn_id, tool_name: 'Bash' });
    expect(rx.unique().find((m) => m.json.type === 'session.deleted')!.json.data).toMatchObject({ session_id: s.session_id, status: 'deleted' });
  });

  it('an endpoint allowed when made is checked again when sent: without WEBHOOK_ALLOW_PRIVATE a loopback name is not reached', async () => {
    const rx = await receiver();
    receivers.push(rx);
    const dirs = makeDirs();
    let A = await startApp({ dirs, env: { ...keysEnv, WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_RETRY_BASE_MS: '100' } });
    apps.push(A);
    const byName = rx.url.replace('127.0.0.1', 'localhost');
    const hooks: Array<{ webhook_id: string }> = [];
    for (const url of [rx.url, byName]) hooks.push((await call(A.app, 'POST', '/v1/webhooks', { url, events: ['session.created'] }, ALICE)).body);
    // The delivery log keeps what ended for 7 days: an 8-day-old delivered message goes at the next start, a newer one stays.
    const day = 86_400_000;
    const row = (id: string, finishedDaysAgo: number) => ({
      delivery_id: id,
      webhook_id: hooks[0]!.webhook_id,
      event_type: 'session.created',
      payload: '{}',
      status: 'delivered' as const,
      attempts: 1,
      next_attempt_at: Date.now() - finishedDaysAgo * day,
      claimed_until: null,
      last_status_code: 204,
      last_error: null,
      created_at: Date.now() - finishedDaysAgo * day,
      finished_at: Date.now() - finishedDaysAgo * day,
    });
    const oldId = '00000000-0000-4000-8000-000000000001';
    const recentId = '00000000-0000-4000-8000-000000000002';
    await A.app.internals.storage.db
      .insertInto('webhook_deliveries')
      .values([row(oldId, 8), row(recentId, 6)])
      .execute();
    await A.close();
    // Retried for 3 s here (a day by default), then given up.
    A = await startApp({ dirs, env: { ...keysEnv, WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_RETRY_FOR_MS: '3000' } });
    apps.push(A);
    await call(A.app, 'POST', '/v1/sessions', {}, ALICE);
    for (const h of hooks) {
      const last = await waitFor(async () => {
        const list = (await call(A.app, 'GET', `/v1/webhooks/${h.webhook_id}/deliveries`, undefined, ALICE)).body.deliveries as any[];
        const d = list.find((x) => x.delivery_id !== oldId && x.delivery_id !== recentId);
        return d && d.status !== 'pending' ? d : null;
      }, 15_000);
      expect(last).toMatchObject({ status: 'failed', last_status_code: null, next_attempt_at: null });
      expect(last.attempts).toBeGreaterThanOrEqual(4);
      // The last attempt was at the end of the period, not before it.
      expect(Date.parse(last.finished_at) - Date.parse(last.created_at)).toBeGreaterThanOrEqual(3000);
      expect(last.last_error).toMatch(/loopback, private or link-local address \(WEBHOOK_ALLOW_PRIVATE is off\)/);
    }
    expect(rx.got).toEqual([]);
    const kept = (await call(A.app, 'GET', `/v1/webhooks/${hooks[0]!.webhook_id}/deliveries?limit=200`, undefined, ALICE)).body.deliveries.map(
      (d: { delivery_id: string }) => d.delivery_id,
    );
    expect(kept).toContain(recentId);
    expect(kept).not.toContain(oldId);
  });
});
