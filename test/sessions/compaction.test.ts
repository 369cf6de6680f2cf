/**
 * Messages after the CLI compacted a conversation (issue 20, item 9): the SDK's
 * getSessionMessages returns only what follows the last compaction; the API serves the whole
 * history, paged, with each compaction marked. With PostgreSQL the same is read from the
 * transcript store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, DIALECT, startApp, type TestApp } from '../helper.js';

const text = (m: any): string => {
  const c = m.message?.content;
  if (typeof c === 'string') return c;
  return Array.isArray(c)
    ? c
        .filter((b: any) => b.type === 'text')
        .map((b: any) => b.text)
        .join('')
    : '';
};

// The transcript store needs PostgreSQL: under SQLite, the local transcript only.
for (const store of DIALECT === 'postgres' ? ['local', 'database'] : ['local']) {
  describe(`the whole history across compactions (transcript ${store})`, () => {
    let t: TestApp;
    let id = '';
    beforeAll(async () => {
      // /compact is a slash command: prompt expansion must be on for the CLI to run it.
      t = await startApp({ env: { ALLOW_PROMPT_EXPANSION: '1', TRANSCRIPT_STORE: store } });
      const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my color is red' })).body;
      id = s.session_id;
      for (const prompt of ['Remember: my pet is cat', '/compact', 'Remember: my car is blue', '/compact', 'Remember: my tree is oak']) {
        const r = (await call(t.app, 'POST', `/v1/sessions/${id}/turns`, { prompt })).body;
        expect(r.status, `${prompt}: ${JSON.stringify(r.error)}`).toBe('succeeded');
      }
    });
    afterAll(async () => t.close());

    it('serves every prompt in order, with both compactions marked where they happened', async () => {
      const page = (await call(t.app, 'GET', `/v1/sessions/${id}/messages?limit=500`)).body;
      expect(page.next_offset).toBeNull();
      const marks = page.messages.filter((m: any) => m.type === 'system');
      expect(marks).toHaveLength(2);
      for (const m of marks) expect(m.message).toMatchObject({ subtype: 'compact_boundary' });
      const seq = page.messages.map((m: any) => (m.type === 'system' ? '|compacted|' : text(m))).filter((x: string) => /Remember: my|compacted/.test(x));
      expect(seq).toEqual([
        'Remember: my color is red',
        'Remember: my pet is cat',
        '|compacted|',
        'Remember: my car is blue',
        '|compacted|',
        'Remember: my tree is oak',
      ]);
      // Each message once.
      const uuids = page.messages.map((m: any) => m.uuid);
      expect(new Set(uuids).size).toBe(uuids.length);
    });

    it('a prompt that only names a compaction is served as it is (no compaction happened)', async () => {
      const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'compact_boundary' })).body;
      const r = await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages`);
      expect(r.status).toBe(200);
      expect(r.body.messages.map((m: any) => m.type)).toEqual(['user', 'assistant']);
      expect(text(r.body.messages[0])).toBe('compact_boundary');
    });

    it('pages through the same history with limit and offset', async () => {
      const whole = (await call(t.app, 'GET', `/v1/sessions/${id}/messages?limit=500`)).body.messages;
      const paged: any[] = [];
      let offset: number | null = 0;
      while (offset !== null) {
        const p: any = (await call(t.app, 'GET', `/v1/sessions/${id}/messages?limit=3&offset=${offset}`)).body;
        paged.push(...p.messages);
        offset = p.next_offset;
      }
      expect(paged.map((m) => m.uuid)).toEqual(whole.map((m: any) => m.uuid));
    });
  });
}
