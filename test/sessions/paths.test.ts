import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectDirName } from '../../src/claude/paths.js';
import { call, useApp } from '../helper.js';

describe('project folder names as the CLI makes them', () => {
  it('replaces every character that is not a letter or digit', () => {
    expect(projectDirName('/tmp/my.proj_x y')).toBe('-tmp-my-proj-x-y');
    expect(projectDirName('/a/b-c')).toBe('-a-b-c');
  });
  it('cuts names past 200 characters and appends a hash of the whole path', () => {
    const long = '/w/' + 'x'.repeat(300);
    const name = projectDirName(long);
    expect(name.length).toBeGreaterThan(200);
    expect(name.slice(0, 200)).toBe(long.replace(/[^a-zA-Z0-9]/g, '-').slice(0, 200));
    expect(projectDirName(long + 'y')).not.toBe(name);
  });
});

describe('sessions in folders with dots, spaces, underscores and very long names', () => {
  const t = useApp();

  const projects = ['my.proj_x y', 'a.b', 'a_b', 'a-b', `deep/${'long.name_with space-'.repeat(12)}`];

  it.each(projects)('finds, lists and resumes a session in %j', async (project) => {
    const created = await call(t.app, 'POST', '/v1/sessions', { project, prompt: `Remember: my favorite color is blue` });
    expect(created.status).toBe(201);
    const s = created.body;
    expect(s.project).toBe(project);
    expect(s.cwd).toBe(path.join(path.join(t.dirs.workspace, 'local'), project));
    // The transcript is where we say it is, written there by the CLI itself.
    expect(s.transcript.exists).toBe(true);
    expect(fs.existsSync(s.transcript.path)).toBe(true);
    expect(s.transcript.bytes).toBeGreaterThan(0);

    const listed = await call(t.app, 'GET', `/v1/sessions?project=${encodeURIComponent(project)}`);
    expect(listed.status).toBe(200);
    expect(listed.body.sessions.map((x: any) => x.session_id)).toEqual([s.session_id]);

    const turn = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(turn.body.result).toMatch(/blue/);

    const msgs = await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages`);
    expect(msgs.status).toBe(200);
    expect(msgs.body.messages.filter((m: any) => m.type === 'assistant').length).toBeGreaterThanOrEqual(2);
  });

  it('keeps colliding folder names apart (a.b, a_b and a-b share one CLI project folder)', async () => {
    const dir = path.join(t.config.claudeConfigDir, 'projects', projectDirName(path.join(path.join(t.dirs.workspace, 'local'), 'a.b')));
    // Three sessions, one per folder, live in the same CLI project folder.
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length).toBe(3);
    for (const project of ['a.b', 'a_b', 'a-b']) {
      const listed = await call(t.app, 'GET', `/v1/sessions?project=${encodeURIComponent(project)}`);
      expect(listed.body.sessions).toHaveLength(1);
      expect(listed.body.sessions[0].cwd).toBe(path.join(path.join(t.dirs.workspace, 'local'), project));
    }
  });

  it('names the long folder exactly as the CLI did', async () => {
    const project = `deep/${'long.name_with space-'.repeat(12)}`;
    const cwd = path.join(path.join(t.dirs.workspace, 'local'), project);
    expect(cwd.length).toBeGreaterThan(200);
    const names = fs.readdirSync(path.join(t.config.claudeConfigDir, 'projects'));
    expect(names).toContain(projectDirName(cwd));
  });
});
