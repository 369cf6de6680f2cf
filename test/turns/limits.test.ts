import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, offlineModel, startApp, waitFor, useApp } from '../helper.js';

const ALICE = { authorization: 'Bearer key-alice-0123456789' };
const BOB = { authorization: 'Bearer key-bob-0123456789' };

describe('per-user running turns', () => {
  const t = useApp({ env: { API_KEYS: 'alice:key-alice-0123456789,bob:key-bob-0123456789', USER_MAX_CONCURRENT_TURNS: '1' } });

  it('a user past USER_MAX_CONCURRENT_TURNS gets 429 with Retry-After; other users are not affected', async () => {
    const a1 = (await call(t.app, 'POST', '/v1/sessions', {}, ALICE)).body;
    const a2 = (await call(t.app, 'POST', '/v1/sessions', {}, ALICE)).body;
    const b1 = (await call(t.app, 'POST', '/v1/sessions', {}, BOB)).body;
    const slow = await call(t.app, 'POST', `/v1/sessions/${a1.session_id}/turns?wait=false`, { prompt: '[[slow:1500]] busy' }, ALICE);
    expect(slow.status).toBe(202);
    const refused = await call(t.app, 'POST', `/v1/sessions/${a2.session_id}/turns`, { prompt: 'hi' }, ALICE);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('CAPACITY_EXCEEDED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect((await call(t.app, 'GET', `/v1/sessions/${a2.session_id}/turns`, undefined, ALICE)).body.turns).toEqual([]);
    const bob = await call(t.app, 'POST', `/v1/sessions/${b1.session_id}/turns`, { prompt: 'hi' }, BOB);
    expect(bob.body.status).toBe('succeeded');
    await waitFor(
      async () => (await call(t.app, 'GET', `/v1/sessions/${a1.session_id}/turns/${slow.body.turn_id}`, undefined, ALICE)).body.status === 'succeeded',
      15_000,
    );
    expect((await call(t.app, 'POST', `/v1/sessions/${a2.session_id}/turns`, { prompt: 'hi' }, ALICE)).body.status).toBe('succeeded');
  });
});

describe('per-turn budget', () => {
  const t = useApp({ env: { MAX_TURN_BUDGET_USD: '0.000001' } });

  it("a turn over MAX_TURN_BUDGET_USD ends failed with the SDK's budget error", async () => {
    const r = await call(t.app, 'POST', '/v1/sessions', { prompt: 'hello' });
    expect(r.body.turn.status).toBe('failed');
    expect(r.body.turn.error.code).toBe('BUDGET_EXCEEDED');
  });
});

describe('prompts reach the CLI verbatim', () => {
  const secret = 'ZEBRA-42-SECRET';
  const sentText = (msgs: unknown[]) => JSON.stringify(msgs);

  it('by default: no @file expansion', async () => {
    const t = await startApp();
    const s = (await call(t.app, 'POST', '/v1/sessions', { project: 'files' })).body;
    fs.writeFileSync(path.join(s.cwd, 'notes.txt'), secret);
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'Read @notes.txt please' });
    expect(r.body.status).toBe('succeeded');
    const model = await offlineModel();
    expect(sentText(model.recent[model.recent.length - 1]!)).toContain('Read @notes.txt please');
    expect(sentText(model.recent[model.recent.length - 1]!)).not.toContain(secret);
    await t.close();
  });

  it('with ALLOW_PROMPT_EXPANSION=1 the CLI expands @file', async () => {
    const t = await startApp({ env: { ALLOW_PROMPT_EXPANSION: '1' } });
    const s = (await call(t.app, 'POST', '/v1/sessions', { project: 'files' })).body;
    fs.writeFileSync(path.join(s.cwd, 'notes.txt'), secret);
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'Read @notes.txt please' });
    expect(r.body.status).toBe('succeeded');
    const model = await offlineModel();
    expect(sentText(model.recent[model.recent.length - 1]!)).toContain(secret);
    await t.close();
  });
});
