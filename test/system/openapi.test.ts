import { createConfig, lintFromString } from '@redocly/openapi-core';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { call, DIALECT, startApp, useApp } from '../helper.js';

describe('OpenAPI document, docs page and health', () => {
  const t = useApp();

  it('documents every route with an operationId, tags and responses', async () => {
    const r = await call(t.app, 'GET', '/openapi.json');
    expect(r.status).toBe(200);
    const doc = r.body;
    const expected = [
      'get /health',
      'post /v1/sessions',
      'get /v1/sessions',
      'get /v1/sessions/{session_id}',
      'patch /v1/sessions/{session_id}',
      'delete /v1/sessions/{session_id}',
      'post /v1/sessions/import',
      'post /v1/sessions/{session_id}/fork',
      'post /v1/sessions/{session_id}/turns',
      'get /v1/sessions/{session_id}/turns',
      'get /v1/sessions/{session_id}/turns/{turn_id}',
      'get /v1/sessions/{session_id}/messages',
      'post /v1/query',
      'post /v1/sessions/stream',
      'post /v1/sessions/{session_id}/turns/stream',
      'post /v1/query/stream',
      'delete /v1/sessions/{session_id}/turns/{turn_id}',
      'get /v1/sessions/{session_id}/turns/{turn_id}/events',
      'get /v1/sessions/{session_id}/events',
      'post /v1/sessions/{session_id}/interrupt',
      'get /metrics',
      'get /openapi.json',
      'get /docs',
      'get /',
    ];
    const have = Object.entries(doc.paths).flatMap(([p, ops]: [string, any]) => Object.keys(ops).map((m) => `${m} ${p}`));
    for (const e of expected) expect(have).toContain(e);
    for (const [p, ops] of Object.entries<any>(doc.paths)) {
      for (const [m, op] of Object.entries<any>(ops)) {
        expect(op.operationId, `${m} ${p}`).toBeTruthy();
        expect(op.tags?.length, `${m} ${p}`).toBeGreaterThan(0);
        // Errors too (the docs page alone has none to tell).
        expect(Object.keys(op.responses).length, `${m} ${p}`).toBeGreaterThan(p === '/docs' ? 0 : 1);
      }
    }
    expect(doc.components.schemas.Session).toBeTruthy();
    expect(doc.components.schemas.Turn).toBeTruthy();
    // What needs no key says so; everything under /v1 needs one.
    for (const [p, ops] of Object.entries<any>(doc.paths)) {
      for (const op of Object.values<any>(ops)) expect(op.security, p).toEqual(p.startsWith('/v1/') ? undefined : []);
    }
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/v1/sessions/{session_id}/events'].get.parameters.map((x: any) => `${x.in} ${x.name}`)).toContain('header last-event-id');
    // A parameter or body field with a default may be left out: the document does not require it.
    const defaulted: string[] = [];
    for (const [p, ops] of Object.entries<any>(doc.paths)) {
      for (const [m, op] of Object.entries<any>(ops)) {
        for (const x of op.parameters ?? []) if (x.schema?.default !== undefined) defaulted.push(`${m} ${p} ${x.name} required=${x.required}`);
        const body = op.requestBody?.content?.['application/json']?.schema;
        for (const [k, v] of Object.entries<any>(body?.properties ?? {}))
          if (v.default !== undefined) defaulted.push(`${m} ${p} ${k} required=${(body.required ?? []).includes(k)}`);
      }
    }
    expect(defaulted).toContain('post /v1/sessions/{session_id}/turns wait required=false');
    expect(defaulted).toContain('get /v1/sessions limit required=false');
    expect(defaulted).toContain('delete /v1/sessions/{session_id} purge required=false');
    expect(defaulted.filter((d) => d.endsWith('required=true'))).toEqual([]);
    const codes = doc.components.schemas.Error.properties.error.properties.code.anyOf.map((x: any) => x.const ?? x.enum?.[0]);
    expect(codes.sort()).toEqual([...ERROR_CODES].sort());
  });

  it('is a document code generators read right: it lints clean, and no operation mixes a JSON answer with an event stream', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).body;
    // Redocly's recommended rules (what `redocly lint` runs), warnings included.
    const problems = await lintFromString({ source: doc, absoluteRef: '/openapi.json', config: await createConfig({ extends: ['recommended'] }) });
    expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`)).toEqual([]);
    const parsed = JSON.parse(doc);
    expect(parsed.servers).toEqual([{ url: '/', description: expect.any(String) }]);
    expect(parsed.info.license).toEqual({ name: 'MIT', identifier: 'MIT' });
    // One kind of success per operation: JSON (one shape for all its 2xx), or only server-sent events.
    const kinds: Record<string, string> = {};
    for (const [p, ops] of Object.entries<any>(parsed.paths)) {
      for (const [m, op] of Object.entries<any>(ops)) {
        const ok = Object.entries<any>(op.responses).filter(([code]) => code.startsWith('2'));
        const types = new Set(ok.flatMap(([, r]) => Object.keys(r.content ?? {})));
        expect(types.size, `${m} ${p}: ${[...types].join(', ')}`).toBeLessThanOrEqual(1);
        const shapes = new Set(ok.map(([, r]) => JSON.stringify(r.content?.['application/json']?.schema ?? null)));
        if (types.has('application/json')) expect(shapes.size, `${m} ${p}`).toBe(1);
        kinds[op.operationId] = [...types][0] ?? 'none';
      }
    }
    expect(kinds).toMatchObject({
      createSession: 'application/json',
      startTurn: 'application/json',
      query: 'application/json',
      createSessionStream: 'text/event-stream',
      streamTurn: 'text/event-stream',
      queryStream: 'text/event-stream',
      turnEvents: 'text/event-stream',
      sessionEvents: 'text/event-stream',
    });
  });

  it('serves the docs page', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(r.statusCode).toBe(200);
    expect(r.body).toMatch(/swagger/i);
  });

  it('verifies storage in /health', async () => {
    const r = await call(t.app, 'GET', '/health');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ok', model_backend: 'offline', sdk_version: '0.3.332' });
    expect(r.body.cli_version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(r.body.storage.config_dir).toEqual({ path: t.config.claudeConfigDir, exists: true, writable: true });
    expect(r.body.storage.workspace_root.writable).toBe(true);
    expect(r.body.storage.database).toMatchObject({ dialect: DIALECT, reachable: true });
    // Single-user: the local user's folder is where sessions run by default.
    expect(r.body.storage.projects_dir.path).toBe(`${t.config.claudeConfigDir}/projects/${`${t.dirs.workspace}/local`.replace(/[^a-zA-Z0-9]/g, '-')}`);
    expect(r.body.storage.projects_dir.exists).toBe(false);
    // Not there yet: the CLI creates it, under a folder that takes new files.
    expect(r.body.storage.projects_dir.writable).toBe(true);
    await call(t.app, 'POST', '/v1/sessions', { prompt: 'hi' });
    expect((await call(t.app, 'GET', '/health')).body.storage.projects_dir.exists).toBe(true);
  });

  it('reports a database it cannot reach as degraded (503)', async () => {
    const other = await startApp();
    try {
      await other.app.internals.storage.close();
      const r = await call(other.app, 'GET', '/health');
      expect(r.status).toBe(503);
      expect(r.body.status).toBe('degraded');
      expect(r.body.storage.database.reachable).toBe(false);
    } finally {
      await other.close().catch(() => {});
    }
  });
});

describe('the streaming operations', () => {
  const t = useApp({ listen: true });
  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${t.base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  /** The events of a finished SSE answer, in order. */
  const eventsOf = async (r: Response) => {
    expect([r.status, r.headers.get('content-type')]).toEqual([200, 'text/event-stream; charset=utf-8']);
    return (await r.text())
      .split('\n\n')
      .filter((b) => b.includes('event: '))
      .map((b) => ({ event: /^event: (.*)$/m.exec(b)![1]!, data: JSON.parse(/^data: (.*)$/m.exec(b)![1]!) }));
  };

  it('createSessionStream, streamTurn and queryStream answer only with events, whatever Accept says; the JSON operations still stream with Accept', async () => {
    const made = await eventsOf(await post('/v1/sessions/stream', { prompt: 'Remember: my favorite color is blue' }));
    expect(made[0]!.event).toBe('turn');
    const sid = made[0]!.data.session_id as string;
    expect(made.at(-1)).toMatchObject({ event: 'done', data: { status: 'succeeded', session_id: sid } });
    const next = await eventsOf(await post(`/v1/sessions/${sid}/turns/stream`, { prompt: 'What is my favorite color?' }, { accept: 'application/json' }));
    expect(next.at(-1)).toMatchObject({ event: 'done', data: { status: 'succeeded' } });
    expect(next.at(-1)!.data.result).toMatch(/blue/);
    const q = await eventsOf(await post('/v1/query/stream', { query: 'And again?', session_id: sid }));
    expect(q.at(-1)).toMatchObject({ event: 'done', data: { session_id: sid, status: 'succeeded' } });
    // The negotiation on the JSON paths is unchanged for existing clients.
    const negotiated = await eventsOf(await post(`/v1/sessions/${sid}/turns`, { prompt: 'hi' }, { accept: 'text/event-stream' }));
    expect(negotiated.at(-1)!.event).toBe('done');
    const json = await post(`/v1/sessions/${sid}/turns`, { prompt: 'hi' });
    expect([json.status, ((await json.json()) as { status: string }).status]).toEqual([200, 'succeeded']);
  });

  it('a streamed create without a prompt is 400 and makes no session; a bad body is the usual 400', async () => {
    const before = (await call(t.app, 'GET', '/v1/sessions?limit=200')).body.sessions.length;
    const r = await post('/v1/sessions/stream', { session_name: 'no prompt' });
    expect([r.status, ((await r.json()) as { error: { code: string } }).error.code]).toEqual([400, 'INVALID_REQUEST']);
    expect((await call(t.app, 'GET', '/v1/sessions?limit=200')).body.sessions.length).toBe(before);
    const bad = await post('/v1/sessions/00000000-0000-4000-8000-000000000000/turns/stream', { prompt: 7 });
    expect(bad.status).toBe(400);
    const missing = await post('/v1/sessions/00000000-0000-4000-8000-000000000000/turns/stream', { prompt: 'x' });
    expect([missing.status, ((await missing.json()) as { error: { code: string } }).error.code]).toEqual([404, 'SESSION_NOT_FOUND']);
  });
});
