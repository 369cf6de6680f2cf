import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, finishTurnApproving, readSse, runApproving, useApp, waitForTurn } from '../helper.js';

const ORIGINAL = 'one\ntwo\nthree\n';

describe('what each turn changed, and rewind (real CLI, offline model)', () => {
  const t = useApp({ listen: true });

  /** Runs a turn to its end, allowing the tool calls it asks for (as a person would). */
  async function turn(sessionId: string, prompt: string) {
    const r = await runApproving(t, sessionId, prompt);
    expect(r.status, JSON.stringify(r)).toBe('succeeded');
    return r;
  }
  const changes = async (sid: string, tid: string) => (await call(t.app, 'GET', `/v1/sessions/${sid}/turns/${tid}/changes`)).body;

  it('a Bash edit and an Edit are both listed with their diffs; a rewind puts back the exact bytes, whatever changed them', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const up = await t.app.inject({
      method: 'PUT',
      url: `/v1/sessions/${s.session_id}/files/content?path=doc.txt`,
      payload: ORIGINAL,
      headers: { 'content-type': 'text/plain' },
    });
    expect(up.statusCode).toBe(201);
    const doc = path.join(s.cwd, 'doc.txt');

    // Bash: an in-place edit (which the SDK's own checkpoints miss) and a new file.
    const bash = await turn(s.session_id, "[[bash:sed -i 's/two/TWO/' doc.txt && echo created > new.txt]]");
    expect(fs.readFileSync(doc, 'utf8')).toBe('one\nTWO\nthree\n');
    const c1 = await changes(s.session_id, bash.turn_id);
    expect(c1.recorded).toBe(true);
    expect(c1.files.map((f: any) => [f.path, f.kind, f.size_before, f.size_after])).toEqual([
      ['doc.txt', 'modified', 14, 14],
      ['new.txt', 'created', null, 8],
    ]);
    expect(c1.files[0].diff).toContain('-two\n+TWO');
    expect(c1.files[1].diff).toContain('+created');

    // Edit (after a Read, as the CLI wants).
    await turn(s.session_id, `[[tool:Read {"file_path":"${doc}"}]]`);
    const edit = await turn(s.session_id, `[[tool:Edit {"file_path":"${doc}","old_string":"three","new_string":"THREE"}]]`);
    expect(fs.readFileSync(doc, 'utf8')).toBe('one\nTWO\nTHREE\n');
    const c2 = await changes(s.session_id, edit.turn_id);
    expect(c2.files.map((f: any) => [f.path, f.kind])).toEqual([['doc.txt', 'modified']]);
    expect(c2.files[0].diff).toContain('-three\n+THREE');

    // A turn that ran no tool changed nothing (and took no snapshot).
    const talk = await turn(s.session_id, '[[say:nothing to change]]');
    expect(await changes(s.session_id, talk.turn_id)).toEqual({ turn_id: talk.turn_id, recorded: true, files: [] });

    // The stream said so as the turns ended.
    const events = (await readSse(`${t.base}/v1/sessions/${s.session_id}/turns/${bash.turn_id}/events`, { ms: 5_000 })).events;
    const fc = events.find((e) => e.event === 'files_changed');
    expect(fc?.data).toMatchObject({
      turn_id: bash.turn_id,
      files: [
        { path: 'doc.txt', kind: 'modified' },
        { path: 'new.txt', kind: 'created' },
      ],
    });
    expect(events.map((e) => e.event).indexOf('files_changed')).toBeLessThan(events.map((e) => e.event).indexOf('done'));

    // Rewind to before the Bash turn: first what it would do, then the bytes exactly as they were.
    const dry = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/rewind`, { turn_id: bash.turn_id, dry_run: true })).body;
    expect(dry.files.map((f: any) => [f.path, f.kind])).toEqual([
      ['doc.txt', 'modified'],
      ['new.txt', 'deleted'],
    ]);
    expect(fs.readFileSync(doc, 'utf8')).toBe('one\nTWO\nTHREE\n');
    const done = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/rewind`, { turn_id: bash.turn_id });
    expect(done.status).toBe(200);
    expect(fs.readFileSync(doc)).toEqual(Buffer.from(ORIGINAL));
    expect(fs.existsSync(path.join(s.cwd, 'new.txt'))).toBe(false);
    // The conversation goes on, and the next turn's changes start from the rewound state.
    const again = await turn(s.session_id, "[[bash:sed -i 's/one/ONE/' doc.txt]]");
    expect((await changes(s.session_id, again.turn_id)).files.map((f: any) => [f.path, f.diff?.includes('-one\n+ONE')])).toEqual([['doc.txt', true]]);
  });

  it('rewind with fork: the files go back and a new session holds the conversation up to that turn (none for the first); the original keeps its own', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { project: 'fork-on-rewind' })).body;
    const one = await turn(s.session_id, '[[bash:echo a > a.txt]] first');
    const two = await turn(s.session_id, '[[bash:echo b > b.txt]] second');
    const prompts = async (sid: string) =>
      ((await call(t.app, 'GET', `/v1/sessions/${sid}/messages?limit=500`)).body.messages as Array<{ type: string; message: { content: unknown } }>)
        .filter((m) => m.type === 'user' && typeof m.message.content === 'string')
        .map((m) => m.message.content as string);
    const sessionsBefore = (await call(t.app, 'GET', '/v1/sessions?limit=200')).body.sessions.length;

    // A dry run makes no fork; a turn of another session makes none either.
    const dry = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/rewind`, { turn_id: two.turn_id, dry_run: true, fork: true })).body;
    expect([dry.session, dry.files.map((f: any) => f.path)]).toEqual([null, ['b.txt']]);
    const other = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const foreign = await call(t.app, 'POST', `/v1/sessions/${other.session_id}/rewind`, { turn_id: two.turn_id, fork: true });
    expect([foreign.status, foreign.body.error.code]).toEqual([404, 'TURN_NOT_FOUND']);
    expect((await call(t.app, 'GET', '/v1/sessions?limit=200')).body.sessions.length).toBe(sessionsBefore + 1);

    const undo = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/rewind`, { turn_id: two.turn_id, fork: true });
    expect(undo.status).toBe(200);
    expect(undo.body.files.map((f: any) => [f.path, f.kind])).toEqual([['b.txt', 'deleted']]);
    const fork = undo.body.session;
    expect(fork).toMatchObject({ cwd: s.cwd, status: 'active', turn_count: 0 });
    expect(fork.session_id).not.toBe(s.session_id);
    expect(fs.existsSync(path.join(s.cwd, 'b.txt'))).toBe(false);
    expect(await prompts(fork.session_id)).toEqual(['[[bash:echo a > a.txt]] first']);
    expect(await prompts(s.session_id)).toEqual(['[[bash:echo a > a.txt]] first', '[[bash:echo b > b.txt]] second']);
    // The fork goes on from there.
    const next = await turn(fork.session_id, '[[bash:echo c > c.txt]] third');
    expect(await prompts(fork.session_id)).toEqual(['[[bash:echo a > a.txt]] first', '[[bash:echo c > c.txt]] third']);
    expect((await changes(fork.session_id, next.turn_id)).files.map((f: any) => [f.path, f.kind])).toEqual([['c.txt', 'created']]);

    // Before the first turn: the folder as it was, and a session with nothing said yet.
    const all = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/rewind`, { turn_id: one.turn_id, fork: true });
    expect(all.body.files.map((f: any) => [f.path, f.kind])).toEqual([
      ['a.txt', 'deleted'],
      ['c.txt', 'deleted'],
    ]);
    expect(fs.readdirSync(s.cwd).filter((f) => f !== '.claude')).toEqual([]);
    const blank = all.body.session;
    expect(blank).toMatchObject({ cwd: s.cwd, turn_count: 0 });
    expect((await call(t.app, 'GET', `/v1/sessions/${blank.session_id}/messages`)).body.messages).toEqual([]);
    const firstOfBlank = await turn(blank.session_id, 'hello again');
    expect(firstOfBlank.result).toBeTruthy();
    expect(await prompts(blank.session_id)).toEqual(['hello again']);
  });

  it('rewind with fork after a prompt of several text blocks and an image: the fork ends after the previous turn, not inside it', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { project: 'fork-blocks' })).body;
    await turn(s.session_id, '[[bash:echo a > a.txt]] first');
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const blocks = [
      { type: 'text', text: 'look at this' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
      { type: 'text', text: '[[bash:echo b > b.txt]]' },
    ];
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: blocks });
    expect(r.status).toBe(202);
    const second = await finishTurnApproving(t, s.session_id, r.body.turn_id);
    expect(second.status).toBe('succeeded');
    const undo = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/rewind`, { turn_id: second.turn_id, fork: true });
    expect(undo.status).toBe(200);
    expect(undo.body.files.map((f: any) => [f.path, f.kind])).toEqual([['b.txt', 'deleted']]);
    const msgs = (await call(t.app, 'GET', `/v1/sessions/${undo.body.session.session_id}/messages?limit=500`)).body.messages as Array<{
      type: string;
      message: { content: unknown };
    }>;
    const last = msgs.filter((m) => m.type !== 'system').at(-1)!;
    // The previous turn's own answer, after its tool result: not a tool call left without its result.
    expect(last.type).toBe('assistant');
    expect(JSON.stringify(last.message.content)).not.toContain('tool_use');
    expect(JSON.stringify(msgs)).not.toContain('look at this');
  });

  it('a rewind while a turn runs is 409; a turn of another session, or none, is 404; a turn without a recorded state is 400', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const first = await turn(s.session_id, 'hello');
    const slow = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:4000]] slow' })).body;
    await waitForTurn(t.app, s.session_id, slow.turn_id, ['running']);
    const busy = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/rewind`, { turn_id: first.turn_id });
    expect([busy.status, busy.body.error.code]).toEqual([409, 'SESSION_BUSY']);
    await waitForTurn(t.app, s.session_id, slow.turn_id);
    const other = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const foreign = await call(t.app, 'POST', `/v1/sessions/${other.session_id}/rewind`, { turn_id: first.turn_id });
    expect([foreign.status, foreign.body.error.code]).toEqual([404, 'TURN_NOT_FOUND']);
    expect((await call(t.app, 'GET', `/v1/sessions/${other.session_id}/turns/${first.turn_id}/changes`)).status).toBe(404);
    const queued = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:3000]] a' })).body;
    const waiting = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: 'b', if_busy: 'queue' })).body;
    await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}/turns/${waiting.turn_id}`);
    const never = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/rewind`, { turn_id: waiting.turn_id });
    expect([never.status, never.body.error.code]).toEqual([400, 'INVALID_REQUEST']);
    await waitForTurn(t.app, s.session_id, queued.turn_id);
  });
});
