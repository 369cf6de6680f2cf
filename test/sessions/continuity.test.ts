import { afterAll, describe, expect, it } from 'vitest';
import { call, makeDirs, startApp, type TestApp } from '../helper.js';

describe('continuity across a restart of the server', () => {
  const dirs = makeDirs();
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => {});
  });

  it('remembers blue after the server is stopped and a new one starts on the same folders', async () => {
    const first = await startApp({ dirs });
    apps.push(first);
    const created = await call(first.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue', session_name: 'colors' });
    expect(created.status).toBe(201);
    expect(created.body.turn.status).toBe('succeeded');
    expect(created.body.transcript.exists).toBe(true);
    const id = created.body.session_id;
    await first.close();

    const second = await startApp({ dirs });
    apps.push(second);
    const got = await call(second.app, 'GET', `/v1/sessions/${id}`);
    expect(got.status).toBe(200);
    expect(got.body.session_name).toBe('colors');
    expect(got.body.turn_count).toBe(1);
    const turn = await call(second.app, 'POST', `/v1/sessions/${id}/turns`, { prompt: 'What is my favorite color?' });
    expect(turn.status).toBe(200);
    expect(turn.body.status).toBe('succeeded');
    expect(turn.body.result).toMatch(/blue/i);
    expect(turn.body.usage.input_tokens).toBeGreaterThan(0);
    expect(turn.body.duration_ms).toBeGreaterThan(0);
    const after = await call(second.app, 'GET', `/v1/sessions/${id}`);
    expect(after.body.turn_count).toBe(2);
    await second.close();
  });

  it('does the same through POST /v1/query', async () => {
    const first = await startApp({ dirs });
    apps.push(first);
    const a = await call(first.app, 'POST', '/v1/query', { query: 'Remember: my favorite color is blue' });
    expect(a.status).toBe(200);
    expect(a.body.status).toBe('succeeded');
    const id = a.body.session_id;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await first.close();

    const second = await startApp({ dirs });
    apps.push(second);
    const b = await call(second.app, 'POST', '/v1/query', { session_id: id, query: 'What is my favorite color?' });
    expect(b.status).toBe(200);
    expect(b.body.session_id).toBe(id);
    expect(b.body.result).toMatch(/blue/i);
    // A session that has never heard of blue does not answer blue: the recall comes from resume.
    const c = await call(second.app, 'POST', '/v1/query', { query: 'What is my favorite color?' });
    expect(c.body.result).not.toMatch(/blue/i);
    await second.close();
  });
});
