import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { call, useApp, waitFor } from '../helper.js';
import type { App } from '../../src/types.js';

const keysEnv = { API_KEYS: 'alice:key-alice-0123456789,bob:key-bob-0123456789' };
const ALICE = { authorization: 'Bearer key-alice-0123456789' };
const BOB = { authorization: 'Bearer key-bob-0123456789' };

const files = (sid: string, rest = '') => `/v1/sessions/${sid}/files${rest}`;
const q = (p: string) => `?path=${encodeURIComponent(p)}`;

async function put(app: App, sid: string, p: string, body: Buffer | string, headers: Record<string, string> = {}) {
  const r = await app.inject({
    method: 'PUT',
    url: files(sid, `/content${q(p)}`),
    payload: body,
    headers: { 'content-type': 'application/octet-stream', ...ALICE, ...headers },
  });
  return { status: r.statusCode, body: r.json(), headers: r.headers };
}
async function get(app: App, url: string, headers: Record<string, string> = {}) {
  const r = await app.inject({ method: 'GET', url, headers: { ...ALICE, ...headers } });
  return { status: r.statusCode, raw: r.rawPayload, headers: r.headers, json: () => r.json() };
}

/** Entries of a tar.gz, with the content of its files. */
async function untar(gz: Buffer): Promise<Map<string, { type: string; body: string; linkpath?: string }>> {
  const out = new Map<string, { type: string; body: string; linkpath?: string }>();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'css-untar-'));
  const file = path.join(dir, 'a.tar');
  fs.writeFileSync(file, gunzipSync(gz));
  await tar.t({
    file,
    onReadEntry: (e) => {
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () => out.set(e.path.replace(/^\.\//, ''), { type: e.type, body: Buffer.concat(chunks).toString(), linkpath: e.linkpath }));
    },
  });
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

describe("the files of a session's folder", () => {
  const t = useApp({ env: { ...keysEnv, MAX_FILE_BYTES: '100000' }, listen: true });
  const session = async () => (await call(t.app, 'POST', '/v1/sessions', { project: `files-${Math.random().toString(36).slice(2)}` }, ALICE)).body;

  it('upload, read back with its ETag and byte ranges, update with If-Match, list (paged), delete', async () => {
    const s = await session();
    const made = await put(t.app, s.session_id, 'notes/todo.txt', 'hello files\nsecond line\n');
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: 'todo.txt', path: 'notes/todo.txt', type: 'file', size: 24 });
    expect(fs.readFileSync(path.join(s.cwd, 'notes/todo.txt'), 'utf8')).toBe('hello files\nsecond line\n');
    const etag = made.headers.etag as string;
    expect(etag).toBe(made.body.etag);

    const r = await get(t.app, files(s.session_id, `/content${q('notes/todo.txt')}`));
    expect([r.status, r.raw.toString(), r.headers.etag, r.headers['content-type']]).toEqual([
      200,
      'hello files\nsecond line\n',
      etag,
      'text/plain; charset=utf-8',
    ]);
    expect(r.headers['content-security-policy']).toContain('sandbox');
    expect((await get(t.app, files(s.session_id, `/content${q('notes/todo.txt')}`), { 'if-none-match': etag })).status).toBe(304);
    const part = await get(t.app, files(s.session_id, `/content${q('notes/todo.txt')}`), { range: 'bytes=6-10' });
    expect([part.status, part.raw.toString(), part.headers['content-range']]).toEqual([206, 'files', 'bytes 6-10/24']);
    const tail = await get(t.app, files(s.session_id, `/content${q('notes/todo.txt')}`), { range: 'bytes=-5' });
    expect(tail.raw.toString()).toBe('line\n');
    const outside = await get(t.app, files(s.session_id, `/content${q('notes/todo.txt')}`), { range: 'bytes=500-600' });
    expect([outside.status, outside.headers['content-range'], outside.json().error.code]).toEqual([416, 'bytes */24', 'RANGE_NOT_SATISFIABLE']);

    // A stale If-Match is refused and changes nothing; the current one goes through.
    const stale = await put(t.app, s.session_id, 'notes/todo.txt', 'lost update', { 'if-match': '"nope"' });
    expect([stale.status, stale.body.error.code]).toEqual([412, 'PRECONDITION_FAILED']);
    expect(fs.readFileSync(path.join(s.cwd, 'notes/todo.txt'), 'utf8')).toBe('hello files\nsecond line\n');
    const updated = await put(t.app, s.session_id, 'notes/todo.txt', '{"json": "is just bytes here"}', {
      'if-match': etag,
      'content-type': 'application/json',
    });
    expect(updated.status).toBe(200);
    expect(fs.readFileSync(path.join(s.cwd, 'notes/todo.txt'), 'utf8')).toBe('{"json": "is just bytes here"}');
    expect((await put(t.app, s.session_id, 'notes/todo.txt', 'x', { 'if-none-match': '*' })).status).toBe(412);

    for (const n of ['b.txt', 'a.txt', 'c.txt']) await put(t.app, s.session_id, `notes/${n}`, n);
    const page1 = (await get(t.app, files(s.session_id, `${q('notes')}&limit=2`))).json();
    expect(page1.entries.map((e: any) => e.name)).toEqual(['a.txt', 'b.txt']);
    const page2 = (await get(t.app, files(s.session_id, `${q('notes')}&limit=2&cursor=${page1.next_cursor}`))).json();
    expect([page2.entries.map((e: any) => e.name), page2.next_cursor]).toEqual([['c.txt', 'todo.txt'], null]);
    expect((await get(t.app, files(s.session_id))).json().entries).toEqual([expect.objectContaining({ name: 'notes', type: 'directory', size: null })]);

    const notEmpty = await call(t.app, 'DELETE', files(s.session_id, `/content${q('notes')}`), undefined, ALICE);
    expect(notEmpty.status).toBe(400);
    expect((await call(t.app, 'DELETE', files(s.session_id, `/content${q('notes/a.txt')}`), undefined, ALICE)).body).toEqual({
      path: 'notes/a.txt',
      type: 'file',
    });
    expect(fs.existsSync(path.join(s.cwd, 'notes/a.txt'))).toBe(false);
    expect((await call(t.app, 'DELETE', files(s.session_id, `/content${q('notes')}&recursive=true`), undefined, ALICE)).status).toBe(200);
    expect(fs.existsSync(path.join(s.cwd, 'notes'))).toBe(false);
    expect((await get(t.app, files(s.session_id, `/content${q('notes/b.txt')}`))).status).toBe(404);
  });

  it('traversal, absolute paths and links that lead outside are refused, for every operation; nothing outside is read or written', async () => {
    const s = await session();
    const secret = fs.mkdtempSync(path.join(os.tmpdir(), 'css-outside-'));
    fs.writeFileSync(path.join(secret, 'secret.txt'), 'outside secret');
    fs.symlinkSync(path.join(secret, 'secret.txt'), path.join(s.cwd, 'link-to-secret'));
    fs.symlinkSync(secret, path.join(s.cwd, 'dir-link'));
    fs.writeFileSync(path.join(s.cwd, 'inside.txt'), 'inside');
    fs.symlinkSync('inside.txt', path.join(s.cwd, 'link-inside'));
    for (const p of ['../x', '/etc/passwd', 'a/../../x', 'link-to-secret', 'dir-link/secret.txt', 'dir-link', 'nul\u0000.txt']) {
      const read = await get(t.app, files(s.session_id, `/content${q(p)}`));
      expect([p, read.status]).toEqual([p, 400]);
      expect(read.raw.toString()).not.toContain('outside secret');
      expect([p, (await get(t.app, files(s.session_id, q(p)))).status]).toEqual([p, 400]);
      expect([p, (await get(t.app, files(s.session_id, `/archive${q(p)}`))).status]).toEqual([p, 400]);
    }
    for (const p of ['../x.txt', '/tmp/x.txt', 'dir-link/new.txt', 'link-to-secret']) {
      expect([p, (await put(t.app, s.session_id, p, 'written')).status]).toEqual([p, 400]);
    }
    expect(fs.readdirSync(secret)).toEqual(['secret.txt']);
    expect(fs.readFileSync(path.join(secret, 'secret.txt'), 'utf8')).toBe('outside secret');
    // A link inside the folder is followed; deleting a link removes the link, never its target.
    expect((await get(t.app, files(s.session_id, `/content${q('link-inside')}`))).raw.toString()).toBe('inside');
    expect((await call(t.app, 'DELETE', files(s.session_id, `/content${q('link-to-secret')}`), undefined, ALICE)).body).toEqual({
      path: 'link-to-secret',
      type: 'symlink',
    });
    expect(fs.existsSync(path.join(secret, 'secret.txt'))).toBe(true);
    expect((await call(t.app, 'DELETE', files(s.session_id, `/content${q('../x')}`), undefined, ALICE)).status).toBe(400);
    fs.rmSync(secret, { recursive: true, force: true });
  });

  it('an oversized upload is 413 and leaves nothing; another user gets 404; a deleted session takes no writes', async () => {
    const s = await session();
    // Over real HTTP (the body is the request's own stream): a file under the limit lands whole, one over it is refused.
    const url = (p: string) => `${t.base}${files(s.session_id, `/content${q(p)}`)}`;
    const ok = await fetch(url('over-http.bin'), {
      method: 'PUT',
      headers: { ...ALICE, 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(90_000, 3),
    });
    expect(ok.status).toBe(201);
    expect(fs.statSync(path.join(s.cwd, 'over-http.bin')).size).toBe(90_000);
    const over = await fetch(url('too-big.bin'), {
      method: 'PUT',
      headers: { ...ALICE, 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(150_000, 3),
    });
    expect(over.status).toBe(413);
    // Without a length up front (chunked): refused once the count passes the limit, the rest unread.
    const chunks = Array.from({ length: 15 }, () => new Uint8Array(10_000).fill(5));
    const chunked = await fetch(url('chunked.bin'), {
      method: 'PUT',
      headers: { ...ALICE, 'content-type': 'application/octet-stream' },
      body: new ReadableStream({ pull: (c) => (chunks.length ? c.enqueue(chunks.shift()) : c.close()) }),
      duplex: 'half',
    } as RequestInit);
    expect([chunked.status, ((await chunked.json()) as { error: { code: string } }).error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    // Clients that go away mid-upload: each write ends, its temporary file goes, no descriptor stays open
    // (ten aborted uploads; a little slack for the process's other sockets).
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 10; i++) {
      const sock = net.connect(Number(new URL(t.base).port), '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write(
        `PUT ${files(s.session_id, `/content${q('aborted.bin')}`)} HTTP/1.1\r\nhost: x\r\nauthorization: ${ALICE.authorization}\r\n` +
          'content-type: application/octet-stream\r\ncontent-length: 90000\r\n\r\n',
      );
      sock.write(Buffer.alloc(1000, 1));
      await new Promise((r) => setTimeout(r, 100));
      sock.destroy();
    }
    expect(
      await waitFor(() => fs.readdirSync(s.cwd).filter((f) => f.includes('.upload-') || f === 'aborted.bin').length === 0 && fds() < before + 5, 5_000),
    ).toBe(true);
    fs.rmSync(path.join(s.cwd, 'over-http.bin'));
    const big = await put(t.app, s.session_id, 'big.bin', Buffer.alloc(150_000, 7));
    expect([big.status, big.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(fs.readdirSync(s.cwd)).toEqual([]);
    await put(t.app, s.session_id, 'mine.txt', 'alice only');
    for (const url of [files(s.session_id), files(s.session_id, `/content${q('mine.txt')}`), files(s.session_id, '/archive')]) {
      const r = await t.app.inject({ method: 'GET', url, headers: BOB });
      expect([url, r.statusCode, r.json().error.code]).toEqual([url, 404, 'SESSION_NOT_FOUND']);
    }
    const bobPut = await t.app.inject({
      method: 'PUT',
      url: files(s.session_id, `/content${q('mine.txt')}`),
      payload: 'bob',
      headers: { ...BOB, 'content-type': 'text/plain' },
    });
    expect(bobPut.statusCode).toBe(404);
    expect(fs.readFileSync(path.join(s.cwd, 'mine.txt'), 'utf8')).toBe('alice only');
    await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}`, undefined, ALICE);
    expect((await put(t.app, s.session_id, 'after.txt', 'x')).status).toBe(409);
  });

  it('a folder downloads as a tar.gz of its files; links are stored as links, not what they lead to', async () => {
    const s = await session();
    await put(t.app, s.session_id, 'src/main.py', 'print("hi")\n');
    await put(t.app, s.session_id, 'src/lib/util.py', 'X = 1\n');
    await put(t.app, s.session_id, 'README.md', '# readme\n');
    fs.symlinkSync('/etc/hostname', path.join(s.cwd, 'src', 'host-link'));
    const whole = await get(t.app, files(s.session_id, '/archive'));
    expect([whole.status, whole.headers['content-type']]).toEqual([200, 'application/gzip']);
    const entries = await untar(whole.raw);
    expect(entries.get('src/main.py')?.body).toBe('print("hi")\n');
    expect(entries.get('src/lib/util.py')?.body).toBe('X = 1\n');
    expect(entries.get('README.md')?.body).toBe('# readme\n');
    expect(entries.get('src/host-link')).toMatchObject({ type: 'SymbolicLink', linkpath: '/etc/hostname', body: '' });
    const sub = await untar((await get(t.app, files(s.session_id, `/archive${q('src/lib')}`))).raw);
    expect([...sub.keys()].filter((k) => !k.endsWith('/'))).toEqual(['src/lib/util.py']);
  });
});
