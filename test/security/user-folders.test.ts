/**
 * A folder per user, the sandbox's start-up decision, and sessions made before user folders.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userFolderName } from '../../src/workspace/workspace.js';
import { decideIsolation, fetchAllowed, isolationOptions, secretEnvNames } from '../../src/claude/sandbox.js';
import { call, makeDirs, offlineModel, runApproving, runServerUntilExit, startApp, type TestApp } from '../helper.js';

describe('user folder names', () => {
  it('keeps a plain id as it is, and turns any other into a safe name that no other id gets', () => {
    expect(userFolderName('alice')).toBe('alice');
    expect(userFolderName('local')).toBe('local');
    const odd = [
      'Alice',
      'ALICE',
      'alice@corp.example',
      '..',
      '.',
      '../../etc',
      'a/b',
      'a b',
      'a\u0000b',
      '\u00e9l\u00e8ve',
      '-x',
      '',
      'x'.repeat(300),
      'alice.0123456789abcdef',
    ];
    const names = odd.map(userFolderName);
    for (const [i, n] of names.entries()) {
      expect(n, odd[i]).toMatch(/^[a-z0-9][a-z0-9_-]*\.[0-9a-f]{16}$/);
      expect(n.length).toBeLessThanOrEqual(57);
    }
    // Different ids, different folders (a plain id never has a dot, a derived name always has one).
    expect(new Set([...names, 'alice', 'local']).size).toBe(odd.length + 2);
    expect(userFolderName('Alice')).toBe(userFolderName('Alice'));
  });
});

describe('the sandbox decision at start', () => {
  const base = { domains: [], network: 'none', readPaths: undefined, hiddenPaths: ['/srv/data'] };
  const ok = () => ({ ok: true as const });
  const missing = () => ({ ok: false as const, reason: 'bwrap not found on PATH', fix: 'apt-get install bubblewrap' });

  it('is required with keys (no start without it, with the fix), auto single-user (a loud warning), off only when asked', () => {
    expect(() => decideIsolation({ ...base, mode: undefined, singleUser: false, probe: missing })).toThrow(
      /refusing to start: .*bwrap not found on PATH.*fix: apt-get install bubblewrap/,
    );
    const keys = decideIsolation({ ...base, mode: undefined, singleUser: false, probe: ok });
    expect(keys.state).toMatchObject({ mode: 'required', enabled: true, reason: null });
    const auto = decideIsolation({ ...base, mode: undefined, singleUser: true, probe: missing });
    expect(auto.state).toMatchObject({ mode: 'auto', enabled: false });
    expect(auto.warnings.join('\n')).toMatch(/WITHOUT it\. Fix: apt-get install bubblewrap/);
    const off = decideIsolation({
      ...base,
      mode: 'off',
      singleUser: false,
      probe: () => {
        throw new Error('not probed');
      },
    });
    expect(off.state).toMatchObject({ mode: 'off', enabled: false, reason: 'SANDBOX=off' });
    expect(off.warnings.join('\n')).toMatch(/WITHOUT the CLI's sandbox/);
  });

  it('gives the CLI a sandbox with no unsandboxed escape and the file-tool limits, which hold even with the sandbox off', () => {
    const on = isolationOptions(decideIsolation({ ...base, mode: 'required', singleUser: false, probe: ok }).policy);
    expect(on.sandbox).toMatchObject({ enabled: true, failIfUnavailable: true, allowUnsandboxedCommands: false, autoAllowBashIfSandboxed: false });
    expect(on.sandbox!.filesystem!.denyRead).toEqual(['/', '/srv/data']);
    expect(on.sandbox!.network).toBeUndefined();
    expect(on.disallowedTools).toEqual(['WebFetch', 'WebSearch']);
    const off = isolationOptions(decideIsolation({ ...base, mode: 'off', singleUser: true }).policy);
    expect(off.sandbox).toBeUndefined();
    for (const o of [on, off]) {
      expect((o.settings as any).permissions).toEqual({ blockReadsOutsideWorkingDirectories: true, blockWritesOutsideWorkingDirectories: true });
    }
    expect((on.settings as any).autoMemoryEnabled).toBe(false);
    expect(on.sandbox!.credentials!.envVars!.map((e: any) => [e.name, e.mode])).toEqual([
      ['ANTHROPIC_API_KEY', 'deny'],
      ['ANTHROPIC_AUTH_TOKEN', 'deny'],
    ]);
    const listed = isolationOptions(
      decideIsolation({ ...base, domains: ['registry.npmjs.org'], network: 'registry.npmjs.org', mode: 'required', singleUser: false, probe: ok }).policy,
    );
    expect(listed.sandbox!.network).toEqual({ allowedDomains: ['registry.npmjs.org'] });
    expect(listed.disallowedTools).toBeUndefined();
    // `model` lists the model's host for commands, and fetching stays off.
    const model = isolationOptions(
      decideIsolation({ ...base, domains: ['api.anthropic.com'], network: 'model', mode: 'required', singleUser: false, probe: ok }).policy,
    );
    expect(model.disallowedTools).toEqual(['WebFetch', 'WebSearch']);
  });

  it('knows a secret by its name, and holds WebFetch to the listed domains', () => {
    expect(secretEnvNames({ PATH: '/usr/bin', HOME: '/root', AWS_SECRET_ACCESS_KEY: 'x', GITHUB_TOKEN: 'y', PGPASSWORD: 'z', LANG: 'C' })).toEqual([
      'ANTHROPIC_API_KEY',
      'ANTHROPIC_AUTH_TOKEN',
      'AWS_SECRET_ACCESS_KEY',
      'GITHUB_TOKEN',
      'PGPASSWORD',
    ]);
    const list = ['registry.npmjs.org', '*.example.org'];
    expect(fetchAllowed('https://registry.npmjs.org/x', list)).toBe(true);
    expect(fetchAllowed('https://a.example.org/', list)).toBe(true);
    for (const u of ['https://example.org.evil.com/', 'http://127.0.0.1:5432/', 'http://localhost/', 'http://169.254.169.254/', 'not a url', undefined])
      expect(fetchAllowed(u, list), String(u)).toBe(false);
  });

  it('a server with keys and no bubblewrap does not start, and says so in one line with the fix', async () => {
    // A PATH without bwrap (node is started by its absolute path).
    const { code, stderr } = await runServerUntilExit({ PATH: '/nonexistent', API_KEYS: 'alice:key-alice-0123456789', PREWARM_SPARES: '0' });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^claude-session-server: could not start: refusing to start: the CLI's sandbox cannot run \(bwrap and socat not found on PATH\); fix: apt-get install bubblewrap socat .*\n$/,
    );
  });
});

describe('SANDBOX and SANDBOX_NETWORK through the app', () => {
  it('rejects a malformed network list and a read path of "/" at start', async () => {
    await expect(startApp({ env: { SANDBOX_NETWORK: 'example.com,not a domain' } })).rejects.toThrow(/SANDBOX_NETWORK: "not a domain" is not a domain/);
    await expect(startApp({ env: { SANDBOX_READ_PATHS: '/usr,/' } })).rejects.toThrow(/SANDBOX_READ_PATHS: "\/" would let commands read everything/);
    for (const d of ['localhost', '127.0.0.1', '*.localhost', '*']) {
      await expect(startApp({ env: { SANDBOX_NETWORK: `registry.npmjs.org,${d}` } }), d).rejects.toThrow(/names this machine or an address|is not a domain/);
    }
    const dirs = makeDirs();
    await expect(startApp({ dirs: { ...dirs, dataDir: path.join(dirs.workspace, 'data') } })).rejects.toThrow(
      /DATA_DIR .* and WORKSPACE_ROOT .* must not hold one another/,
    );
  });

  it('a domain list is handed to the sandbox; loopback (the database, the model) stays closed all the same', async () => {
    const t = await startApp({
      env: { SANDBOX_NETWORK: 'registry.npmjs.org, *.example.org', IS_SANDBOX: '1', ALLOWED_PERMISSION_MODES: 'default,bypassPermissions' },
    });
    try {
      expect((await call(t.app, 'GET', '/health')).body.sandbox).toMatchObject({
        enabled: true,
        network: 'registry.npmjs.org, *.example.org',
        allowed_domains: ['registry.npmjs.org', '*.example.org'],
      });
      const port = new URL((await offlineModel()).url).port;
      const r = await call(t.app, 'POST', '/v1/sessions', {
        permission_mode: 'bypassPermissions',
        prompt: `[[bash:for p in 5432 ${port}; do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && echo open-$p || echo closed-$p; done]]`,
      });
      // (Whether a listed domain is reached cannot be tried here: this machine has no network beyond loopback.)
      expect(r.body.turn.result).toMatch(new RegExp(`closed-5432\\s+closed-${port}`));
      // WebFetch runs in the server, outside the sandbox: it may reach only the listed domains, in every mode.
      const fetch = await call(t.app, 'POST', `/v1/sessions/${r.body.session_id}/turns`, {
        prompt: `[[tool:WebFetch {"url":"http://127.0.0.1:${port}/","prompt":"read it"}]]`,
      });
      expect(fetch.body.result).toMatch(/WebFetch may only reach the domains this server allows \(SANDBOX_NETWORK\): registry\.npmjs\.org, \*\.example\.org/);
    } finally {
      await t.close();
    }
  });

  it('SANDBOX=off is shown on /health, and then a command does read outside its folder (what the sandbox prevents)', async () => {
    const t = await startApp({ env: { SANDBOX: 'off', IS_SANDBOX: '1', ALLOWED_PERMISSION_MODES: 'default,bypassPermissions' } });
    try {
      const h = (await call(t.app, 'GET', '/health')).body;
      expect(h.sandbox).toMatchObject({ mode: 'off', enabled: false, reason: 'SANDBOX=off', network: 'none' });
      const outside = path.join(t.dirs.root, 'outside.txt');
      fs.writeFileSync(outside, 'READABLE-WITHOUT-SANDBOX');
      // A command that names a path outside its folder is refused by the CLI itself (blockReadsOutsideWorkingDirectories)...
      const r = await call(t.app, 'POST', '/v1/sessions', { permission_mode: 'bypassPermissions', prompt: `[[bash:cat ${outside}]]` });
      expect(r.body.turn.result).toMatch(/Reads outside the working directories are blocked/);
      // ...and one it cannot analyze is asked about, even in bypassPermissions: refused with nobody to ask...
      const hidden = `[[bash:cat "$(echo ${Buffer.from(outside).toString('base64')} | base64 -d)"]]`;
      const asked = await call(t.app, 'POST', `/v1/sessions/${r.body.session_id}/turns`, { prompt: hidden });
      expect(asked.body.result).toMatch(/cannot analyze asks the person/);
      // ...but approved by a person (default mode), with no sandbox it reads the file.
      const plain = (await call(t.app, 'POST', '/v1/sessions', {})).body;
      const approved = await runApproving(t, plain.session_id, hidden);
      expect(approved.result).toMatch(/READABLE-WITHOUT-SANDBOX/);
      // The file tools stay in the session's folder all the same.
      const read = await call(t.app, 'POST', `/v1/sessions/${r.body.session_id}/turns`, { prompt: `[[tool:Read {"file_path":"${outside}"}]]` });
      expect(read.body.result).not.toMatch(/READABLE-WITHOUT-SANDBOX/);
      expect(read.body.result).toMatch(/blockReadsOutsideWorkingDirectories/);
    } finally {
      await t.close();
    }
  });

  it('an operator read path that holds the server folders does not open them', async () => {
    const dirs = makeDirs();
    // Everything this test's server keeps is below dirs.root: list it as readable.
    const t = await startApp({
      dirs,
      env: { SANDBOX_READ_PATHS: `/usr,/bin,/lib,/lib64,/etc,${dirs.root}`, IS_SANDBOX: '1', ALLOWED_PERMISSION_MODES: 'default,bypassPermissions' },
    });
    try {
      fs.writeFileSync(path.join(dirs.root, 'granted.txt'), 'GRANTED');
      const first = await call(t.app, 'POST', '/v1/sessions', { permission_mode: 'bypassPermissions', prompt: 'Remember: my favorite color is blue' });
      const s = first.body;
      // Paths spelled indirectly: a command naming a path outside its folder is refused before the sandbox is asked.
      const b64 = (p: string) => `"$(echo ${Buffer.from(p).toString('base64')} | base64 -d)"`;
      const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, {
        prompt: `[[bash:cat ${b64(`${dirs.root}/granted.txt`)}; ls ${b64(dirs.dataDir)} ${b64(dirs.configDir)} ${b64(dirs.workspace)} 2>&1; echo end]]`,
      });
      expect(r.body.result).toMatch(/GRANTED/);
      expect(r.body.result).not.toMatch(/server\.db|runner-id|projects|pids/);
      expect(r.body.result).toMatch(/end/);
    } finally {
      await t.close();
    }
  });
});

describe('sessions made before user folders', () => {
  /** Moves a session's row to the workspace root, as sessions were made before user folders. */
  async function makeLegacy(t: TestApp, sessionId: string) {
    await t.app.internals.storage.db
      .updateTable('sessions')
      .set({ cwd: fs.realpathSync(t.dirs.workspace), project: '.' })
      .where('session_id', '=', sessionId)
      .execute();
  }

  describe('with several users', () => {
    let t: TestApp;
    const BOB = { authorization: 'Bearer key-bob-0123456789' };
    beforeAll(async () => {
      t = await startApp({ env: { API_KEYS: 'bob:key-bob-0123456789' } });
    });
    afterAll(async () => t.close());

    it('keep their folder and stay readable, but run no turn until an operator moves them (409)', async () => {
      const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'hello' }, BOB)).body;
      await makeLegacy(t, s.session_id);
      const got = await call(t.app, 'GET', `/v1/sessions/${s.session_id}`, undefined, BOB);
      expect(got.body.cwd).toBe(fs.realpathSync(t.dirs.workspace));
      const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'again' }, BOB);
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('SESSION_NOT_ISOLATED');
      expect(r.body.error.message).toMatch(/outside its owner's folder .*\/bob/);
      expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`, undefined, BOB)).body.turns).toHaveLength(1);
    });
  });

  describe('with one user', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startApp();
    });
    afterAll(async () => t.close());

    it('run as before: there is nobody else to keep out', async () => {
      const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
      await makeLegacy(t, s.session_id);
      const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'Remember: my favorite color is blue' });
      expect(r.status).toBe(200);
      const again = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
      expect(again.body.result).toMatch(/blue/);
    });
  });
});
