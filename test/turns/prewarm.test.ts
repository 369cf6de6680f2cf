import { afterAll, describe, expect, it } from 'vitest';
import { call, cliProcesses, makeDirs, startApp, transcriptPrompts, waitFor, type TestApp } from '../helper.js';

describe('prewarmed spare processes', () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => {});
  });

  it('a new session claims a spare (its id chosen up front), runs in its own folder, and resumes after a restart', async () => {
    const dirs = makeDirs();
    const t = await startApp({ dirs, env: { PREWARM_SPARES: '1' } });
    apps.push(t);
    expect(await waitFor(() => t.app.internals.runner.stats().spares === 1, 20_000)).toBe(true);
    const spare = cliProcesses(t.config.claudeConfigDir);
    expect(spare).toHaveLength(1);

    const s = (await call(t.app, 'POST', '/v1/sessions', { project: 'spare proj', prompt: 'Remember: my favorite color is blue' })).body;
    expect(s.turn.status).toBe('succeeded');
    expect(s.cwd).toBe(`${dirs.workspace}/local/spare proj`);
    expect(s.transcript.exists).toBe(true);
    expect(s.transcript.path).toContain(s.session_id);
    // The spare's process answered: no other process ran the turn, and a new spare is made.
    expect(cliProcesses(t.config.claudeConfigDir)).toContain(spare[0]);
    expect(await waitFor(() => t.app.internals.runner.stats().spares === 1, 20_000)).toBe(true);

    const again = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(again.body.result).toMatch(/blue/);
    expect((await t.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/css_spare_claims_total\{outcome="claimed"\} 1/);
    await t.close();

    const t2 = await startApp({ dirs });
    apps.push(t2);
    const resumed = await call(t2.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(resumed.body.status).toBe('succeeded');
    expect(resumed.body.result).toMatch(/blue/);
    expect(transcriptPrompts(s.transcript.path)).toEqual(['Remember: my favorite color is blue', 'What is my favorite color?', 'What is my favorite color?']);
    await t2.close();
  });

  it('a refused claim falls back to a cold start without losing the prompt', async () => {
    // The spare is parked without bypass rights: a bypassPermissions claim is refused by the CLI.
    const t = await startApp({ env: { PREWARM_SPARES: '1', IS_SANDBOX: '1', ALLOWED_PERMISSION_MODES: 'default,bypassPermissions' } });
    apps.push(t);
    expect(await waitFor(() => t.app.internals.runner.stats().spares === 1, 20_000)).toBe(true);
    const s = (await call(t.app, 'POST', '/v1/sessions', { permission_mode: 'bypassPermissions', prompt: 'Remember: my favorite color is green' })).body;
    expect(s.turn.status).toBe('succeeded');
    expect(s.turn.result).toMatch(/green/);
    expect(transcriptPrompts(s.transcript.path)).toEqual(['Remember: my favorite color is green']);
    const again = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(again.body.result).toMatch(/green/);
    const m = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(m).toMatch(/css_spare_claims_total\{outcome="refused"\} 1/);
    expect(m).not.toMatch(/css_spare_claims_total\{outcome="claimed"\}/);
    await t.close();
  });
});
