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
    expect(Object.keys(doc.paths['/v1/sessions'].post.responses['200'].content)).toEqual(['text/event-stream']);
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
