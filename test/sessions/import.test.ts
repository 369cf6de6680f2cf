import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBinaryPath } from '../../src/claude/paths.js';
import { call, offlineModel, startApp, type TestApp } from '../helper.js';

/** Runs the Claude Code binary itself, as a person would from a terminal in `cwd`. */
async function terminalSession(t: TestApp, cwd: string, prompt: string): Promise<string> {
  const id = randomUUID();
  const model = await offlineModel();
  fs.mkdirSync(cwd, { recursive: true });
  await promisify(execFile)(cliBinaryPath(), ['-p', prompt, '--session-id', id, '--permission-mode', 'default'], {
    cwd,
    timeout: 60_000,
    env: {
      ...process.env,
      CLAUDE_CONFIG_DIR: t.config.claudeConfigDir,
      ANTHROPIC_BASE_URL: model.url,
      ANTHROPIC_API_KEY: 'offline-model',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    },
  });
  return id;
}

describe('import of sessions started from a terminal', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(async () => t.close());

  it('adopts a terminal session of one project, idempotently, and resumes it', async () => {
    const id = await terminalSession(t, path.join(t.dirs.workspace, 'term.proj'), 'Remember: my favorite color is green');
    const first = await call(t.app, 'POST', '/v1/sessions/import', { project: 'term.proj' });
    expect(first.status).toBe(200);
    expect(first.body.imported).toBe(1);
    expect(first.body.already_known).toBe(0);
    expect(first.body.sessions[0].session_id).toBe(id);
    expect(first.body.sessions[0].first_prompt).toMatch(/green/);

    const again = await call(t.app, 'POST', '/v1/sessions/import', { project: 'term.proj' });
    expect(again.body).toMatchObject({ imported: 0, already_known: 1 });

    const listed = await call(t.app, 'GET', '/v1/sessions?project=term.proj');
    expect(listed.body.sessions.map((s: any) => s.session_id)).toEqual([id]);

    const turn = await call(t.app, 'POST', `/v1/sessions/${id}/turns`, { prompt: 'What is my favorite color?' });
    expect(turn.status).toBe(200);
    expect(turn.body.result).toMatch(/green/);
  });

  it('adopts sessions of every workspace folder when no project is given, and none from outside', async () => {
    const inside = await terminalSession(t, path.join(t.dirs.workspace, 'other dir'), 'Remember: my favorite fruit is a pear');
    const outside = await terminalSession(t, path.join(t.dirs.root, 'not-in-workspace'), 'hello from outside');
    const r = await call(t.app, 'POST', '/v1/sessions/import', {});
    expect(r.status).toBe(200);
    const ids = r.body.sessions.map((s: any) => s.session_id);
    expect(ids).toContain(inside);
    expect(ids).not.toContain(outside);
    expect(r.body.already_known).toBeGreaterThanOrEqual(1); // the one from the first test
    const got = await call(t.app, 'GET', `/v1/sessions/${outside}`);
    expect(got.status).toBe(404);
  });
});
