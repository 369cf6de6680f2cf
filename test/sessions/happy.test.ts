import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSessionInfo, listSessions } from '@anthropic-ai/claude-agent-sdk';
import { call, startApp, transcriptPrompts, type TestApp } from '../helper.js';

describe('session metadata', () => {
  let t: TestApp;
  let blue: any;
  beforeAll(async () => {
    t = await startApp();
    blue = (await call(t.app, 'POST', '/v1/sessions', { session_name: 'Colors', project: 'proj', prompt: 'Remember: my favorite color is blue' })).body;
  });
  afterAll(async () => t.close());

  it('takes ids in capitals as the same ids (Swift, for one, prints UUIDs so)', async () => {
    const up = blue.session_id.toUpperCase();
    const got = await call(t.app, 'GET', `/v1/sessions/${up}`);
    expect([got.status, got.body.session_id]).toEqual([200, blue.session_id]);
    const turn = await call(t.app, 'POST', `/v1/sessions/${up}/turns`, { prompt: 'What is my favorite color?' });
    expect(turn.body.result).toMatch(/blue/);
    const one = await call(t.app, 'GET', `/v1/sessions/${up}/turns/${turn.body.turn_id.toUpperCase()}`);
    expect([one.status, one.body.turn_id]).toEqual([200, turn.body.turn_id]);
    const q = await call(t.app, 'POST', '/v1/query', { session_id: up, query: 'What is my favorite color?' });
    expect([q.status, q.body.session_id]).toEqual([200, blue.session_id]);
    expect(q.body.result).toMatch(/blue/);
  });

  it('creates without a prompt and without a model call; the first turn creates the transcript', async () => {
    const r = await call(t.app, 'POST', '/v1/sessions', { session_name: 'empty' });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      status: 'active',
      project: '.',
      turn_count: 0,
      running_turn_id: null,
      permission_mode: 'default',
      first_prompt: null,
      turn: null,
    });
    expect(r.body.transcript.exists).toBe(false);
    const msgs = await call(t.app, 'GET', `/v1/sessions/${r.body.session_id}/messages`);
    expect(msgs.body.messages).toEqual([]);
    const turn = await call(t.app, 'POST', `/v1/sessions/${r.body.session_id}/turns`, { prompt: 'hello there' });
    expect(turn.body.status).toBe('succeeded');
    const after = (await call(t.app, 'GET', `/v1/sessions/${r.body.session_id}`)).body;
    expect(after.transcript.exists).toBe(true);
    expect(after.first_prompt).toBe('hello there');
    // The CLI used our id: its transcript is named after it, and the title we chose is there.
    const info = await getSessionInfo(r.body.session_id, { dir: after.cwd });
    expect(info?.customTitle).toBe('empty');
  });

  it('lists newest activity first, filters by status, project and q, and pages with a cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call(t.app, 'POST', '/v1/sessions', { session_name: `page-${i}`, project: 'paging' })).body.session_id);
    const all = await call(t.app, 'GET', '/v1/sessions?project=paging');
    expect(all.body.sessions.map((s: any) => s.session_id)).toEqual([...ids].reverse());

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await call(t.app, 'GET', `/v1/sessions?project=paging&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.body.sessions.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.sessions.map((s: any) => s.session_id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    const q = await call(t.app, 'GET', '/v1/sessions?q=PAGE-3');
    expect(q.body.sessions.map((s: any) => s.session_id)).toEqual([ids[3]]);
    const byPrompt = await call(t.app, 'GET', '/v1/sessions?q=favorite%20color');
    expect(byPrompt.body.sessions.map((s: any) => s.session_id)).toContain(blue.session_id);
    const pct = await call(t.app, 'GET', '/v1/sessions?q=%25');
    expect(pct.body.sessions).toEqual([]);

    // Activity moves a session to the front.
    await call(t.app, 'POST', `/v1/sessions/${ids[0]}/turns`, { prompt: 'hi' });
    const again = await call(t.app, 'GET', '/v1/sessions?project=paging&limit=1');
    expect(again.body.sessions[0].session_id).toBe(ids[0]);
  });

  it('renames and tags in the database and in the transcript', async () => {
    const r = await call(t.app, 'PATCH', `/v1/sessions/${blue.session_id}`, { session_name: 'Renamed', tag: 'important' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ session_name: 'Renamed', tag: 'important' });
    const info = await getSessionInfo(blue.session_id, { dir: blue.cwd });
    expect(info?.customTitle).toBe('Renamed');
    expect(info?.tag).toBe('important');
    const cleared = await call(t.app, 'PATCH', `/v1/sessions/${blue.session_id}`, { tag: null });
    expect(cleared.body.tag).toBeNull();
    expect((await getSessionInfo(blue.session_id, { dir: blue.cwd }))?.tag).toBeUndefined();
  });

  it('archives and unarchives, visible to the SDK too', async () => {
    const a = await call(t.app, 'PATCH', `/v1/sessions/${blue.session_id}`, { status: 'archived' });
    expect(a.body.status).toBe('archived');
    const sdk = (await listSessions({ dir: blue.cwd })).find((s) => s.sessionId === blue.session_id);
    expect(sdk?.archived).toBe(true);
    const archived = await call(t.app, 'GET', '/v1/sessions?status=archived');
    expect(archived.body.sessions.map((s: any) => s.session_id)).toContain(blue.session_id);
    const active = await call(t.app, 'GET', '/v1/sessions?status=active');
    expect(active.body.sessions.map((s: any) => s.session_id)).not.toContain(blue.session_id);
    const u = await call(t.app, 'PATCH', `/v1/sessions/${blue.session_id}`, { status: 'active' });
    expect(u.body.status).toBe('active');
    expect((await listSessions({ dir: blue.cwd })).find((s) => s.sessionId === blue.session_id)?.archived).toBe(false);
  });

  it('reads the transcript in pages', async () => {
    await call(t.app, 'POST', `/v1/sessions/${blue.session_id}/turns`, { prompt: 'What is my favorite color?' });
    const all = await call(t.app, 'GET', `/v1/sessions/${blue.session_id}/messages`);
    expect(all.status).toBe(200);
    const n = all.body.messages.length;
    expect(n).toBeGreaterThanOrEqual(4);
    expect(all.body.next_offset).toBeNull();
    const p1 = await call(t.app, 'GET', `/v1/sessions/${blue.session_id}/messages?limit=2`);
    expect(p1.body.messages).toEqual(all.body.messages.slice(0, 2));
    expect(p1.body.next_offset).toBe(2);
    const p2 = await call(t.app, 'GET', `/v1/sessions/${blue.session_id}/messages?limit=2&offset=2`);
    expect(p2.body.messages).toEqual(all.body.messages.slice(2, 4));
    const last = all.body.messages[n - 1];
    expect(last.type).toBe('assistant');
    expect(JSON.stringify(last.message)).toMatch(/blue/);
  });

  it('forks the whole session, and up to a message', async () => {
    const whole = await call(t.app, 'POST', `/v1/sessions/${blue.session_id}/fork`, { session_name: 'copy' });
    expect(whole.status).toBe(201);
    expect(whole.body.session_id).not.toBe(blue.session_id);
    expect(whole.body).toMatchObject({ session_name: 'copy', cwd: blue.cwd, project: blue.project, turn_count: 0 });
    expect(whole.body.transcript.exists).toBe(true);
    const recall = await call(t.app, 'POST', `/v1/sessions/${whole.body.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(recall.body.result).toMatch(/blue/);

    // Up to the first assistant answer: the fork knows blue but not the later question.
    const msgs = (await call(t.app, 'GET', `/v1/sessions/${blue.session_id}/messages`)).body.messages;
    const firstAnswer = msgs.find((m: any) => m.type === 'assistant');
    const part = await call(t.app, 'POST', `/v1/sessions/${blue.session_id}/fork`, { up_to_message_id: firstAnswer.uuid });
    expect(part.status).toBe(201);
    expect(part.body.session_name).toMatch(/\(fork\)$/);
    const prompts = transcriptPrompts(part.body.transcript.path);
    expect(prompts).toEqual(['Remember: my favorite color is blue']);
    const forkMsgs = (await call(t.app, 'GET', `/v1/sessions/${part.body.session_id}/messages`)).body.messages;
    expect(forkMsgs.length).toBe(2);
  });

  it('fork of a session that has had no turn is a 409', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/fork`, {});
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('TRANSCRIPT_MISSING');
    expect(r.body.error.message).toContain(s.transcript.path);
  });

  it('soft-deletes (hidden from lists, transcript kept), and purges the transcript', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'to be deleted' })).body;
    const d = await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}`);
    expect(d.status).toBe(200);
    expect(d.body.status).toBe('deleted');
    expect(fs.existsSync(s.transcript.path)).toBe(true);
    const listed = await call(t.app, 'GET', '/v1/sessions?limit=200');
    expect(listed.body.sessions.map((x: any) => x.session_id)).not.toContain(s.session_id);
    const deleted = await call(t.app, 'GET', '/v1/sessions?status=deleted');
    expect(deleted.body.sessions.map((x: any) => x.session_id)).toContain(s.session_id);
    const turn = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'hi' });
    expect(turn.status).toBe(409);
    expect(turn.body.error.code).toBe('SESSION_DELETED');

    const p = await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}?purge=true`);
    expect(p.status).toBe(200);
    expect(fs.existsSync(s.transcript.path)).toBe(false);
    expect(p.body.transcript.exists).toBe(false);
  });
});
