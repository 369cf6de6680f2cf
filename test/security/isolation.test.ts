/**
 * Hostile tests of tenant isolation through the real CLI and its sandbox: Bob, approving every
 * call of his own, tries each way to Alice's data, the CLI's transcripts, the server's database
 * and the server process. Every attempt must fail, and the test shows the tool's own refusal.
 * Then: nothing Bob may do in his own folder broke.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProcessRegistry } from '../../src/claude/processes.js';
import { call, cliProcesses, finishTurnApproving, offlineModel, runApproving, startApp, waitFor, type TestApp, useApp } from '../helper.js';

const KEYS = 'alice:key-alice-0123456789,bob:key-bob-0123456789';
const as = (user: 'alice' | 'bob') => ({ authorization: `Bearer key-${user}-0123456789` });
// The refusals the CLI and the sandbox give: a hidden path, the file-tool limits, a read-only or
// forbidden write, a tool this CLI version lacks, and an Edit of a file that could never be read.
const REFUSED =
  /No such file or directory|outside the working directories|blocks (reads|writes) outside|Reads outside the working directories are blocked|Permission denied|Read-only file system|Operation not permitted|No such tool available/i;
/** Edit and Write of an existing file the CLI could never read are refused for that first. */
const NOT_READ = /has not been read yet|outside the working directories|blocks (reads|writes) outside/i;

/** Runs a turn as `user` and approves every tool call it asks for; returns the finished turn. */
const turnApproving = (t: TestApp, user: 'alice' | 'bob', sessionId: string, prompt: string, mode?: string) =>
  runApproving(t, sessionId, prompt, { headers: as(user), mode });
const finishApproving = (t: TestApp, user: 'alice' | 'bob', sessionId: string, turnId: string) => finishTurnApproving(t, sessionId, turnId, as(user));

/** Where a process runs, or null once it has ended. */
function cwdOf(pid: number): string | null {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}

const tool = (name: string, input: Record<string, unknown>) => `[[tool:${name} ${JSON.stringify(input)}]]`;
const bash = (command: string) => `[[bash:${command}]]`;

describe("one user's tools cannot reach another user's data", () => {
  let t: TestApp;
  // A word only Alice knows; Bob's commands spell it split (ZEB""RA...) so that his own files never hold it.
  const tail = randomBytes(4).toString('hex');
  const WORD = `ZEBRA${tail}`;
  const SPLIT = `ZEB""RA${tail}`;
  let alice: any;
  let bob: any;
  let aliceFile: string;

  /** Bob's attempt: the turn succeeds as a conversation, the tool's answer is a refusal, and the word is nowhere in it. */
  async function attempt(prompt: string, opts: { mode?: string; refusal?: RegExp } = {}): Promise<string> {
    const turn = await turnApproving(t, 'bob', bob.session_id, prompt, opts.mode);
    const text = JSON.stringify(turn.result ?? turn.error);
    expect(text).not.toContain(WORD);
    expect(text, `the refusal shown to Bob for ${prompt}`).toMatch(opts.refusal ?? REFUSED);
    return text;
  }

  beforeAll(async () => {
    // A secret of the server's own environment (the runner passes the environment on to the CLI).
    process.env.CSS_TEST_SECRET_TOKEN = 'server-secret-value';
    t = await startApp({ env: { API_KEYS: KEYS, IS_SANDBOX: '1', ALLOWED_PERMISSION_MODES: 'default,acceptEdits,bypassPermissions' } });
    alice = (await call(t.app, 'POST', '/v1/sessions', { project: 'vault', prompt: `Remember: my secret word is ${WORD}` }, as('alice'))).body;
    expect(alice.turn.status).toBe('succeeded');
    aliceFile = path.join(alice.cwd, 'secret.txt');
    const wrote = await turnApproving(t, 'alice', alice.session_id, tool('Write', { file_path: aliceFile, content: `${WORD}\n` }));
    expect(wrote.status).toBe('succeeded');
    expect(fs.readFileSync(aliceFile, 'utf8')).toContain(WORD);
    bob = (await call(t.app, 'POST', '/v1/sessions', { project: 'work' }, as('bob'))).body;
    expect((await call(t.app, 'GET', '/health')).body.sandbox).toMatchObject({ mode: 'required', enabled: true, allowed_domains: [] });
  });
  afterAll(async () => t.close());

  it('gives each user a folder of their own, and sessions of two users never share one', () => {
    expect(alice.cwd).toBe(path.join(t.dirs.workspace, 'alice', 'vault'));
    expect(bob.cwd).toBe(path.join(t.dirs.workspace, 'bob', 'work'));
    expect(alice.project).toBe('vault');
  });

  it("Read, Edit and Write of Alice's file are refused, by absolute path, through .. and through the search tools", async () => {
    await attempt(tool('Read', { file_path: aliceFile }));
    await attempt(tool('Read', { file_path: `${bob.cwd}/../../alice/vault/secret.txt` }));
    await attempt(tool('Edit', { file_path: aliceFile, old_string: WORD, new_string: 'owned' }), { refusal: NOT_READ });
    await attempt(tool('Write', { file_path: path.join(alice.cwd, 'planted.txt'), content: 'from bob' }));
    // This CLI version has no Grep or Glob tool (it says so); where a version has them, the same limit binds them.
    await attempt(tool('Grep', { pattern: 'ZEBRA', path: alice.cwd }));
    await attempt(tool('Glob', { pattern: '**/*.txt', path: t.dirs.workspace }));
    expect(fs.readFileSync(aliceFile, 'utf8')).toBe(`${WORD}\n`);
    expect(fs.existsSync(path.join(alice.cwd, 'planted.txt'))).toBe(false);
  });

  it("Read of Alice's transcript and of the server's database is refused", async () => {
    await attempt(tool('Read', { file_path: alice.transcript.path }));
    // A text file of DATA_DIR (the database itself is binary, which Read refuses on its own).
    await attempt(tool('Read', { file_path: path.join(t.dirs.dataDir, 'runner-id') }));
  });

  it("Bash can neither read nor write Alice's folder, the transcripts or the database", async () => {
    await attempt(bash(`cat ${aliceFile}`));
    await attempt(bash(`ls ${path.dirname(alice.cwd)}`));
    await attempt(bash(`grep -rl "${SPLIT}" ${t.dirs.configDir}`));
    // Of DATA_DIR, a command sees only the way to its own session's TMPDIR: no database, no other session's TMPDIR.
    const data = await turnApproving(
      t,
      'bob',
      bob.session_id,
      bash(`ls -a ${t.dirs.dataDir} ${t.dirs.dataDir}/tmp; grep -rals "${SPLIT}" ${t.dirs.dataDir}; echo end`),
    );
    expect(data.result).toMatch(/end/);
    expect(data.result).not.toMatch(/server\.db|runner-id|pids/);
    expect(data.result).not.toContain(WORD);
    const own = data.result
      .split(`${t.dirs.dataDir}/tmp:`)[1]
      .split('\n')
      .map((l: string) => l.trim())
      .filter((l: string) => l && l !== '.' && l !== '..' && l !== 'end');
    expect(own).toHaveLength(1);
    expect(fs.readdirSync(path.join(t.dirs.dataDir, 'tmp')).length).toBeGreaterThan(1);
    await attempt(bash(`echo from-bob > ${alice.cwd}/planted-by-bash.txt`));
    // A hidden folder is an empty in-memory one in the sandbox: a write there "succeeds" and is gone with the command.
    await turnApproving(t, 'bob', bob.session_id, bash(`cp /etc/hostname ${t.dirs.dataDir}/copied; cp /etc/hostname ${t.dirs.configDir}/copied`));
    expect(fs.existsSync(path.join(t.dirs.configDir, 'copied'))).toBe(false);
    expect(fs.existsSync(path.join(alice.cwd, 'planted-by-bash.txt'))).toBe(false);
    expect(fs.existsSync(path.join(t.dirs.dataDir, 'copied'))).toBe(false);
  });

  it("a link in Bob's folder to Alice's file or to the server's folders opens no way through", async () => {
    // Making the links may succeed; reading through them must not.
    const made = await turnApproving(
      t,
      'bob',
      bob.session_id,
      bash(`ln -s ${aliceFile} to-alice && ln -s ${t.dirs.dataDir} to-data && ln -s ${t.dirs.configDir} to-config && echo linked`),
    );
    expect(made.result).toMatch(/linked/);
    await attempt(bash('cat to-alice'));
    await attempt(bash('ls to-data/ to-config/projects/'));
    await attempt(tool('Read', { file_path: path.join(bob.cwd, 'to-alice') }));
    await attempt(tool('Edit', { file_path: path.join(bob.cwd, 'to-alice'), old_string: WORD, new_string: 'owned' }), { refusal: NOT_READ });
    await attempt(tool('Write', { file_path: path.join(bob.cwd, 'to-alice'), content: 'overwritten' }), { refusal: NOT_READ });
    // A new file through a link to her folder: refused by the write limit itself.
    const dir = await turnApproving(t, 'bob', bob.session_id, bash(`ln -s ${alice.cwd} to-alice-dir && echo linked`));
    expect(dir.result).toMatch(/linked/);
    await attempt(tool('Write', { file_path: path.join(bob.cwd, 'to-alice-dir', 'new.txt'), content: 'from bob' }), {
      refusal: /outside the working directories|blocks writes outside|a link in it leads/i,
    });
    expect(fs.existsSync(path.join(alice.cwd, 'new.txt'))).toBe(false);
    expect(fs.readFileSync(aliceFile, 'utf8')).toBe(`${WORD}\n`);
  });

  it("the server process is out of sight: /proc/<pid>/environ and cwd, and a search of the whole disk for Alice's word", async () => {
    await attempt(bash(`ls -la /proc/${process.pid}/cwd`));
    await attempt(bash(`cat /proc/${process.pid}/environ`));
    const procs = await turnApproving(t, 'bob', bob.session_id, bash(`grep -al "${SPLIT}" /proc/*/environ /proc/*/cmdline; echo searched-proc`));
    expect(procs.result).toMatch(/searched-proc/);
    expect(procs.result).not.toContain(WORD);
    const found = await turnApproving(
      t,
      'bob',
      bob.session_id,
      bash(`find / -name secret.txt 2>/dev/null; grep -rls "${SPLIT}" /tmp /var /root /home /srv /mnt /work ${t.dirs.root} 2>/dev/null; echo searched-disk`),
    );
    expect(found.result).toMatch(/searched-disk/);
    expect(found.result).not.toContain(WORD);
    expect(found.result).not.toContain(aliceFile);
  });

  it('sandboxed commands reach no network: not a local service, not the model, not this server', async () => {
    const model = new URL((await offlineModel()).url);
    // A service listening on loopback for this test (as PostgreSQL would).
    const service = net.createServer((c) => c.end('hello')).listen(0, '127.0.0.1');
    await new Promise((r) => service.once('listening', r));
    const port = (service.address() as net.AddressInfo).port;
    try {
      const out = await turnApproving(
        t,
        'bob',
        bob.session_id,
        bash(`for p in ${port} ${model.port}; do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && echo open-$p || echo closed-$p; done`),
      );
      expect(out.result).toMatch(new RegExp(`closed-${port}\\s+closed-${model.port}`));
      expect(out.result).not.toMatch(/open-/);
    } finally {
      service.close();
    }
    await attempt(tool('WebFetch', { url: `${model.origin}/`, prompt: 'read it' }));
  });

  it('bypassPermissions lifts none of it, nor does asking Bash to leave its sandbox', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { project: 'bypass', permission_mode: 'bypassPermissions' }, as('bob'))).body;
    const run = async (prompt: string) => {
      const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt }, as('bob'))).body;
      expect(turn.status).toBe('succeeded');
      expect(turn.result).not.toContain(WORD);
      expect(turn.result).toMatch(REFUSED);
    };
    await run(tool('Bash', { command: `cat ${aliceFile}`, dangerouslyDisableSandbox: true, description: 'try' }));
    await run(tool('Read', { file_path: aliceFile }));
    await run(tool('Write', { file_path: path.join(alice.cwd, 'bypass.txt'), content: 'x' }));
    expect(fs.existsSync(path.join(alice.cwd, 'bypass.txt'))).toBe(false);
  });

  it("a session of Bob's cannot be made in Alice's folder, nor through a link Bob planted", async () => {
    for (const project of ['../alice/vault', '../alice', '/workspace/alice']) {
      expect((await call(t.app, 'POST', '/v1/sessions', { project }, as('bob'))).status).toBe(400);
    }
    // Bob's session at the top of his folder may plant a link there; a project through it is refused.
    const top = (await call(t.app, 'POST', '/v1/sessions', {}, as('bob'))).body;
    expect(top.cwd).toBe(path.join(t.dirs.workspace, 'bob'));
    const made = await turnApproving(t, 'bob', top.session_id, bash(`ln -s ${alice.cwd} alice-vault && echo linked`));
    expect(made.result).toMatch(/linked/);
    const r = await call(t.app, 'POST', '/v1/sessions', { project: 'alice-vault' }, as('bob'));
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_PROJECT');
  });

  it("the model's credentials and the server's secrets are not in a command's environment", async () => {
    const out = await turnApproving(t, 'bob', bob.session_id, bash('echo "key=[$ANTHROPIC_API_KEY] secret=[$CSS_TEST_SECRET_TOKEN] home=[$HOME]"'));
    expect(out.result).toMatch(/key=\[\] secret=\[\] home=\[\/\S+\]/);
  });

  it('in his own folder, Bob works as before: Bash creates, edits and runs files; Write, Edit and Read work', async () => {
    const run = await turnApproving(
      t,
      'bob',
      bob.session_id,
      bash(`printf 'echo ran-$((6*7))\\n' > job.sh && sed -i 's/ran-/done-/' job.sh && bash job.sh && ls`),
    );
    expect(run.result).toMatch(/done-42/);
    expect(fs.readFileSync(path.join(bob.cwd, 'job.sh'), 'utf8')).toContain('done-');
    const notes = path.join(bob.cwd, 'notes.md');
    expect((await turnApproving(t, 'bob', bob.session_id, tool('Write', { file_path: notes, content: 'first draft\n' }))).status).toBe('succeeded');
    expect((await turnApproving(t, 'bob', bob.session_id, tool('Edit', { file_path: notes, old_string: 'first', new_string: 'second' }))).status).toBe(
      'succeeded',
    );
    expect(fs.readFileSync(notes, 'utf8')).toBe('second draft\n');
    const read = await turnApproving(t, 'bob', bob.session_id, tool('Read', { file_path: notes }));
    expect(read.result).toMatch(/second draft/);
    const tmp = await turnApproving(t, 'bob', bob.session_id, bash('echo scratch > "$TMPDIR/x" && cat "$TMPDIR/x" && python3 -c "print(6*7)"'));
    expect(tmp.result).toMatch(/scratch\s+42/);
  });

  it('the conversation goes on with the sandbox on: blue is recalled', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' }, as('bob'))).body;
    const again = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' }, as('bob'));
    expect(again.body.result).toMatch(/blue/);
  });
});

describe('a prewarmed spare carries the same isolation into the session that claims it', () => {
  const t = useApp({ env: { API_KEYS: KEYS, PREWARM_SPARES: '1' } });

  it("a session started on a spare reads its own folder and nobody else's", async () => {
    expect(await waitFor(() => t.app.internals.runner.stats().spares === 1, 30_000)).toBe(true);
    expect(cliProcesses(t.config.claudeConfigDir)).toHaveLength(1);
    // Alice's folder and file, made on disk (a session of hers would take the spare).
    const other = path.join(t.dirs.workspace, 'alice', 'p', 'alice.txt');
    fs.mkdirSync(path.dirname(other), { recursive: true });
    fs.writeFileSync(other, 'ALICE-ONLY');
    const b = (
      await call(t.app, 'POST', '/v1/sessions?wait=false', { project: 'p', prompt: `[[bash:cat ${other}; echo mine > mine.txt && cat mine.txt]]` }, as('bob'))
    ).body;
    const turn = await finishApproving(t, 'bob', b.session_id, b.turn.turn_id);
    expect(turn.result).not.toContain('ALICE-ONLY');
    expect(turn.result).toMatch(/No such file or directory/);
    expect(turn.result).toMatch(/mine/);
    const read = await turnApproving(t, 'bob', b.session_id, tool('Read', { file_path: other }));
    expect(read.result).not.toContain('ALICE-ONLY');
    expect(read.result).toMatch(/outside/);
    expect(fs.readFileSync(path.join(b.cwd, 'mine.txt'), 'utf8')).toBe('mine\n');
    expect((await t.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/css_spare_claims_total\{outcome="claimed"\} 1/);
  });
});

describe('a session folder swapped for a link after the turn was accepted', () => {
  let t: TestApp;
  beforeAll(async () => {
    // No warm process: every turn starts one (a warm one stays in the folder it started in).
    t = await startApp({ env: { API_KEYS: KEYS, WARM_IDLE_MS: '0' } });
  });
  afterAll(async () => t.close());

  it("a queued turn does not start in Alice's folder", async () => {
    const aliceDir = path.join(t.dirs.workspace, 'alice', 'vault');
    fs.mkdirSync(aliceDir, { recursive: true });
    fs.writeFileSync(path.join(aliceDir, 'secret.txt'), 'ALICE-ONLY');
    const s = (await call(t.app, 'POST', '/v1/sessions', { project: 'swapped', prompt: 'hello' }, as('bob'))).body;
    const first = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:1500]] one' }, as('bob'))).body;
    const queued = (
      await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[bash:cat secret.txt]]', if_busy: 'queue' }, as('bob'))
    ).body;
    expect(queued.status).toBe('queued');
    // Once the first turn's CLI runs in the folder (a CLI started after the swap would be refused, as the queued one is)...
    expect(await waitFor(() => cliProcesses(t.config.claudeConfigDir).some((pid) => cwdOf(pid) === s.cwd), 20_000, 20)).toBe(true);
    // ...the folder is swapped (as a command of Bob's at the top of his folder could do).
    fs.renameSync(s.cwd, `${s.cwd}.old`);
    fs.symlinkSync(aliceDir, s.cwd);
    expect((await finishTurnApproving(t, s.session_id, first.turn_id, as('bob'))).status).toBe('succeeded');
    const end = await finishTurnApproving(t, s.session_id, queued.turn_id, as('bob'));
    expect(end.status).toBe('failed');
    expect(end.error.code).toBe('INVALID_PROJECT');
    expect(end.error.message).toMatch(/swapped now leads (outside|to)/);
    expect(JSON.stringify(end)).not.toContain('ALICE-ONLY');
    expect(fs.readdirSync(aliceDir)).toEqual(['secret.txt']);
  });

  it('a CLI that starts in another folder than asked is ended before it runs anything', async () => {
    const target = path.join(t.dirs.root, 'elsewhere');
    const link = path.join(t.dirs.root, 'link-to-elsewhere');
    fs.mkdirSync(target);
    fs.symlinkSync(target, link);
    const wrong: string[][] = [];
    const registry = createProcessRegistry(path.join(t.dirs.root, 'pids-test'), undefined, (asked, actual) => wrong.push([asked, actual]));
    const child = registry.spawn({
      command: 'sleep',
      args: ['30'],
      cwd: link,
      env: { PATH: process.env.PATH },
      signal: new AbortController().signal,
    }) as unknown as import('node:child_process').ChildProcess;
    const code = await new Promise((r) => child.once('exit', (c, sig) => r(sig ?? c)));
    expect(code).toBe('SIGKILL');
    expect(wrong).toEqual([[link, target]]);
  });
});
