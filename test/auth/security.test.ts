import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { childEnv } from '../../src/claude/runner/index.js';
import {
  call,
  dbEnv,
  exited,
  folderEnv,
  freePort,
  makeDirs,
  offlineModel,
  runServerUntilExit,
  spawnServer,
  startApp,
  testConfig,
  waitFor,
  useApp,
} from '../helper.js';

const ALICE = { authorization: 'Bearer key-alice-0123456789' };
const BOB = { authorization: 'Bearer key-bob-0123456789' };
const keysEnv = { API_KEYS: 'alice:key-alice-0123456789,bob:key-bob-0123456789,root:key-root-0123456789', ADMIN_USERS: 'root' };

describe('API keys', () => {
  const t = useApp({ env: keysEnv });

  it('GET /v1/me names the caller and the permission modes this server accepts', async () => {
    expect((await call(t.app, 'GET', '/v1/me')).status).toBe(401);
    const alice = await call(t.app, 'GET', '/v1/me', undefined, ALICE);
    // The default ALLOWED_PERMISSION_MODES; bypass is refused as root without IS_SANDBOX (and not allowed here anyway).
    expect(alice.body).toEqual({ user_id: 'alice', admin: false, permission_modes: ['default', 'plan', 'dontAsk'] });
    expect((await call(t.app, 'GET', '/v1/me', undefined, { authorization: 'Bearer key-root-0123456789' })).body.admin).toBe(true);
    const wide = await startApp({ env: { ALLOWED_PERMISSION_MODES: 'default,acceptEdits,bypassPermissions' } });
    try {
      const modes = (await call(wide.app, 'GET', '/v1/me')).body.permission_modes;
      expect(modes).toEqual(process.getuid?.() === 0 ? ['default', 'acceptEdits'] : ['default', 'acceptEdits', 'bypassPermissions']);
    } finally {
      await wide.close();
    }
  });

  it('no key or a wrong key is a 401 JSON error; public paths need none', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope-nope-nope' }, { authorization: 'Basic abc' }, { authorization: 'Bearer ' }] as Record<
      string,
      string
    >[]) {
      const r = await call(t.app, 'GET', '/v1/sessions', undefined, headers);
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('UNAUTHORIZED');
    }
    expect((await call(t.app, 'POST', '/v1/sessions', { prompt: 'x' })).status).toBe(401);
    expect((await call(t.app, 'GET', '/health')).status).toBe(200);
    expect((await call(t.app, 'GET', '/openapi.json')).status).toBe(200);
    expect((await call(t.app, 'GET', '/v1/sessions', undefined, ALICE)).status).toBe(200);
    // The router decodes %76 to "v": a percent-encoded path reaches the same route, and needs a key too.
    for (const url of ['/%761/sessions', '/v1/%73essions', '/%76%31/sessions']) {
      const r = await call(t.app, 'POST', url, {});
      expect([r.status, r.body.error.code], url).toEqual([401, 'UNAUTHORIZED']);
    }
    expect((await call(t.app, 'GET', '/v1/sessions', undefined, ALICE)).body.sessions).toEqual([]);
  });

  it("server secrets never reach a CLI's environment", () => {
    const set = { API_KEYS: 'x:secret-key-1', DATABASE_URL: 'postgres://u:p@h/db', ADMIN_USERS: 'x', IS_SANDBOX: 'yes' };
    const saved = Object.fromEntries(Object.keys(set).map((k) => [k, process.env[k]]));
    Object.assign(process.env, set);
    try {
      const env = childEnv({ configDir: '/c', tmpDir: '/t', model: { backend: 'offline', baseUrl: 'http://127.0.0.1:1' }, sandboxOptIn: false });
      for (const k of ['API_KEYS', 'DATABASE_URL', 'ADMIN_USERS', 'IS_SANDBOX']) expect(env[k], k).toBeUndefined();
      expect(env).toMatchObject({
        CLAUDE_CONFIG_DIR: '/c',
        TMPDIR: '/t',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        ANTHROPIC_BASE_URL: 'http://127.0.0.1:1',
      });
      expect(childEnv({ configDir: '/c', tmpDir: '/t', model: { backend: 'offline' }, sandboxOptIn: true }).IS_SANDBOX).toBe('1');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('keys made with the keys command work, are listed without the key, and stop working when revoked', async () => {
    const db = await dbEnv(t.dirs);
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/auth/keys-cli.ts', ...args], {
        env: { ...process.env, DATA_DIR: t.dirs.dataDir, WORKSPACE_ROOT: t.dirs.workspace, CLAUDE_CONFIG_DIR: t.dirs.configDir, ...db },
      });
    const made = JSON.parse((await run(['create', '--user', 'carol', '--label', 'laptop'])).stdout);
    expect(made.key).toMatch(/^css_/);
    const carol = { authorization: `Bearer ${made.key}` };
    const s = await call(t.app, 'POST', '/v1/sessions', {}, carol);
    expect(s.status).toBe(201);
    expect(s.body.user_id).toBe('carol');
    const listed = (await run(['list'])).stdout;
    expect(listed).toContain(made.key_id);
    expect(listed).not.toContain(made.key);
    // Stored hashed: the key itself is nowhere in the database.
    const stored = JSON.stringify(await t.app.internals.storage.db.selectFrom('api_keys').selectAll().execute());
    expect(stored).not.toContain(made.key);
    expect(stored).toContain(made.key_id);
    await run(['revoke', made.key_id]);
    expect((await call(t.app, 'GET', '/v1/sessions', undefined, carol)).status).toBe(401);
    await expect(run(['create'])).rejects.toThrow();
  });
});

describe('who may start the server', () => {
  /** Runs the server process as `npm start` does, until it exits by itself. */
  const startAlone = runServerUntilExit;
  it('warns at start when MODEL_BACKEND=anthropic has no credentials', async () => {
    const dirs = makeDirs();
    const port = await freePort();
    // A dead loopback address as the API, and no spare: nothing could leave the machine.
    const child = spawnServer({
      ...(await folderEnv(dirs)),
      PORT: String(port),
      MODEL_BACKEND: 'anthropic',
      ANTHROPIC_API_KEY: '',
      ANTHROPIC_AUTH_TOKEN: '',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      PREWARM_SPARES: '0',
      LOG_LEVEL: 'warn',
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    try {
      expect(await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => null))?.ok, 30_000, 200)).toBe(true);
      const lines = out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.msg)).toContainEqual(expect.stringMatching(/^MODEL_BACKEND=anthropic with no ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN/));
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  });
  it('says in one line what is wrong with the configuration, and exits 1', async () => {
    const bad = await startAlone({ API_KEYS: 'alice:k1' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /^claude-session-server: (invalid configuration|could not start): API_KEYS must be "user:key,user2:key2" .*at least 8 characters\n$/,
    );
    const open = await startAlone({ HOST: '0.0.0.0', API_KEYS: '' });
    expect(open.code).toBe(1);
    expect(open.stderr).toMatch(/^claude-session-server: could not start: refusing to start: .*API_KEYS.*\n$/);
  });
  it('refuses to start on a non-loopback address with no keys', async () => {
    const dirs = makeDirs();
    await expect(buildApp(testConfig(dirs, { ...(await dbEnv(dirs)), HOST: '0.0.0.0' }), { offlineModel: await offlineModel() })).rejects.toThrow(
      /refusing to start.*API_KEYS/,
    );
  });
  it('starts on a non-loopback address with keys, and then every request needs one', async () => {
    const dirs = makeDirs();
    const app = await buildApp(testConfig(dirs, { ...(await dbEnv(dirs)), HOST: '0.0.0.0', ...keysEnv }), { offlineModel: await offlineModel() });
    expect((await call(app, 'GET', '/v1/sessions')).status).toBe(401);
    expect((await call(app, 'GET', '/v1/sessions', undefined, BOB)).status).toBe(200);
    await app.close();
  });
  it('runs single-user as "local" on loopback with no keys', async () => {
    const t = await startApp();
    const s = await call(t.app, 'POST', '/v1/sessions', {});
    expect(s.body.user_id).toBe('local');
    await t.close();
  });
});

describe('per-key request rate', () => {
  const t = useApp({ env: { ...keysEnv, RATE_LIMIT_PER_MINUTE: '5' } });

  it('answers 429 with Retry-After past the limit, for that key only', async () => {
    for (let i = 0; i < 5; i++) expect((await call(t.app, 'GET', '/v1/sessions', undefined, ALICE)).status).toBe(200);
    const r = await call(t.app, 'GET', '/v1/sessions', undefined, ALICE);
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('RATE_LIMITED');
    expect(r.body.error.message).toMatch(/^more than 5 requests a minute \(RATE_LIMIT_PER_MINUTE\); retry in \d+ (seconds?|minutes?)$/);
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    expect((await call(t.app, 'GET', '/v1/sessions', undefined, BOB)).status).toBe(200);
    expect((await call(t.app, 'GET', '/health')).status).toBe(200);
  });
});
