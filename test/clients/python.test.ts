/**
 * The Python client (clients/python, standard library only) against this server: its own
 * unittest suite, run with the machine's python3; and the FastAPI example compiles.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helper.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

// Runs on one dialect (vitest.config.ts): the client's behaviour does not depend on the server's storage.
describe('the Python client', () => {
  const t = useApp({
    env: { API_KEYS: 'alice:key-alice-0123456789,bob:key-bob-0123456789', USER_MAX_CONCURRENT_TURNS: '2' },
    listen: true,
  });

  it('passes its unittest suite against the real server: the blue flow, a stream cut mid-way and resumed, an approval, an interrupt, errors', async () => {
    const r = await run('python3', ['-m', 'unittest', 'discover', '-s', 'clients/python/tests', '-v'], {
      cwd: ROOT,
      env: { ...process.env, CSS_BASE_URL: t.base, CSS_KEY_ALICE: 'key-alice-0123456789', CSS_KEY_BOB: 'key-bob-0123456789', PYTHONDONTWRITEBYTECODE: '1' },
      timeout: 170_000,
    }).catch((err: { stdout?: string; stderr?: string; message: string }) => ({ stdout: err.stdout ?? '', stderr: `${err.stderr ?? ''}\n${err.message}` }));
    expect(r.stderr, r.stderr).toMatch(/Ran 6 tests in [\d.]+s\n\nOK\s*$/);
  }, 180_000);

  it('the FastAPI example and the package compile (python3 -m py_compile)', async () => {
    await run('python3', ['-m', 'py_compile', 'examples/fastapi_app.py', 'clients/python/claude_session_client/client.py'], {
      cwd: ROOT,
      env: { ...process.env, PYTHONPYCACHEPREFIX: path.join(t.dirs.root, 'pycache') },
    });
  });
});
