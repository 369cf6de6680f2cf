/**
 * @module files/service
 * The files of a session's folder, for its owner: list a folder (paged by name), read a file
 * (streamed, with a byte range and an ETag), write one (streamed to a temporary file, then renamed
 * over, with If-Match against lost updates and a size limit), delete, and stream a folder as a
 * tar.gz. Every path goes through `paths.ts`: nothing outside the folder is reached, links included.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import * as tar from 'tar';
import { AppError } from '../errors.js';
import { ownedSession, type Caller } from '../auth/access.js';
import type { SessionRepository, SessionRow } from '../storage/sessions-repo.js';
import type { TurnRepository } from '../storage/turns-repo.js';
import type { FileChange, FolderStates, Snapshots } from '../workspace/snapshots.js';
import { inside, normalizeRel, resolveIn } from './paths.js';
import { contentTypeOf } from './content-type.js';

export interface FileEntry {
  name: string;
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  /** Bytes (null for a folder). */
  size: number | null;
  mtime: string;
  /** The file's ETag (files only). */
  etag: string | null;
}

export interface FileRead {
  stream: Readable;
  size: number;
  /** Bytes sent: the whole file, or the range asked for. */
  length: number;
  range: { start: number; end: number } | null;
  etag: string;
  mtime: Date;
  contentType: string;
  name: string;
}

export interface FileService {
  /** MAX_FILE_BYTES: the largest file a write takes. */
  readonly maxFileBytes: number;
  list(
    caller: Caller,
    sessionId: string,
    q: { path: string; limit: number; cursor?: string | undefined },
  ): Promise<{ path: string; entries: FileEntry[]; next_cursor: string | null }>;
  /** A file to send; `range` is the Range header (null: the whole file). 416 for a range outside the file. */
  read(caller: Caller, sessionId: string, p: string, range: string | undefined): Promise<FileRead>;
  /** The ETag a read would carry (for a 304), without opening the file. */
  etagOf(caller: Caller, sessionId: string, p: string): Promise<string | null>;
  write(
    caller: Caller,
    sessionId: string,
    p: string,
    body: Readable,
    cond: { ifMatch?: string | undefined; ifNoneMatch?: string | undefined },
  ): Promise<{ entry: FileEntry; created: boolean }>;
  remove(caller: Caller, sessionId: string, p: string, recursive: boolean): Promise<{ path: string; type: FileEntry['type'] }>;
  archive(caller: Caller, sessionId: string, p: string): Promise<{ stream: Readable; name: string }>;
  /** What a turn changed in the folder, with unified diffs of text files up to `maxDiffBytes` (0: none). */
  changes(caller: Caller, sessionId: string, turnId: string, maxDiffBytes: number): Promise<TurnChanges>;
  /** Makes the folder's files what they were before the turn; 409 while a turn of the session runs. */
  rewind(caller: Caller, sessionId: string, turnId: string, dryRun: boolean): Promise<{ turn_id: string; dry_run: boolean; files: FileChange[] }>;
}

export interface TurnChanges {
  turn_id: string;
  /** false: the turn's folder states were not recorded (before this server kept them, or git is missing). */
  recorded: boolean;
  files: Array<FileChange & { diff: string | null }>;
}

/** A strong ETag: the file's inode, size and modification time in nanoseconds. */
export function etagOf(st: fs.BigIntStats): string {
  return `"${st.ino.toString(36)}-${st.size.toString(36)}-${st.mtimeNs.toString(36)}"`;
}

const typeOf = (st: fs.Stats | fs.BigIntStats | fs.Dirent): FileEntry['type'] =>
  st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other';

/** The single byte range of a Range header (null: none, or one this server serves whole: several ranges). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) {
    if (header.trim().startsWith('bytes=') && !header.includes(',')) throw unsatisfiable(size);
    return null;
  }
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw unsatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) throw unsatisfiable(size);
  return { start, end };
}
const unsatisfiable = (size: number) =>
  new AppError('RANGE_NOT_SATISFIABLE', `the range is outside the file (${size} bytes)`, { details: { content_range: `bytes */${size}` } });

/** Whether an If-Match / If-None-Match header names this ETag (or `*`). */
const names = (header: string, etag: string | null) =>
  header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);

export function createFileService(deps: {
  sessions: SessionRepository;
  turns: TurnRepository;
  maxFileBytes: number;
  snapshots: Snapshots;
  /** The folders' states the turns start from: a folder changed here is snapshotted again at its next turn. */
  states: FolderStates;
}): FileService {
  const { sessions } = deps;

  async function turnOf(sessionId: string, turnId: string) {
    const t = await deps.turns.get(turnId);
    if (!t || t.session_id !== sessionId) throw new AppError('TURN_NOT_FOUND', `no turn ${turnId} in session ${sessionId}`);
    return t;
  }

  /** The session's folder, still the real folder it was (no link swapped in since). */
  async function folderOf(caller: Caller, sessionId: string, writing: boolean): Promise<{ row: SessionRow; root: string }> {
    const row = await ownedSession(sessions, caller, sessionId);
    if (writing && row.status === 'deleted') throw new AppError('SESSION_DELETED', `session ${sessionId} is deleted`);
    const real = await fs.promises.realpath(row.cwd).catch(() => null);
    if (real === null) throw new AppError('NOT_FOUND', `the folder of session ${sessionId} does not exist`);
    if (real !== row.cwd) throw new AppError('INVALID_PROJECT', `the folder of session ${sessionId} now leads to ${real}; it is not served`);
    return { row, root: real };
  }

  async function entry(root: string, abs: string): Promise<FileEntry> {
    const st = await fs.promises.lstat(abs, { bigint: true });
    const rel = path.relative(root, abs).split(path.sep).join('/');
    return {
      name: path.basename(abs),
      path: rel,
      type: typeOf(st),
      size: st.isDirectory() ? null : Number(st.size),
      mtime: new Date(Number(st.mtimeMs)).toISOString(),
      etag: st.isFile() ? etagOf(st) : null,
    };
  }

  return {
    maxFileBytes: deps.maxFileBytes,
    async list(caller, sessionId, q) {
      const { root } = await folderOf(caller, sessionId, false);
      const r = await resolveIn(root, q.path, { mustExist: true });
      const st = await fs.promises.stat(r.real!);
      if (!st.isDirectory()) throw new AppError('INVALID_REQUEST', `query.path: "${r.rel}" is a file, not a folder`, { details: { field: 'query.path' } });
      const after = q.cursor === undefined ? null : Buffer.from(q.cursor, 'base64url').toString('utf8');
      // Names only first: a folder of many files is sorted without a stat of each.
      const all = (await fs.promises.readdir(r.real!)).sort();
      let from = 0;
      if (after !== null) {
        let lo = 0;
        let hi = all.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (all[mid]! <= after) lo = mid + 1;
          else hi = mid;
        }
        from = lo;
      }
      const page = all.slice(from, from + q.limit);
      const entries = (await Promise.all(page.map((n) => entry(root, path.join(r.real!, n)).catch(() => null)))).filter((e): e is FileEntry => e !== null);
      const more = from + q.limit < all.length;
      return { path: r.rel, entries, next_cursor: more ? Buffer.from(page[page.length - 1]!, 'utf8').toString('base64url') : null };
    },

    async etagOf(caller, sessionId, p) {
      const { root } = await folderOf(caller, sessionId, false);
      const r = await resolveIn(root, p, { mustExist: true });
      const st = await fs.promises.stat(r.real!, { bigint: true });
      return st.isFile() ? etagOf(st) : null;
    },

    async read(caller, sessionId, p, rangeHeader) {
      const { root } = await folderOf(caller, sessionId, false);
      const r = await resolveIn(root, p, { mustExist: true });
      // Opened by its real path, without following a link swapped in since it was resolved.
      const fh = await fs.promises.open(r.real!, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const st = await fh.stat({ bigint: true });
        if (!st.isFile()) throw new AppError('INVALID_REQUEST', `query.path: "${r.rel}" is not a file`, { details: { field: 'query.path' } });
        const size = Number(st.size);
        const range = parseRange(rangeHeader, size);
        const stream = fh.createReadStream({ start: range?.start ?? 0, ...(range ? { end: range.end } : {}), autoClose: true });
        return {
          stream,
          size,
          length: range ? range.end - range.start + 1 : size,
          range,
          etag: etagOf(st),
          mtime: new Date(Number(st.mtimeMs)),
          contentType: contentTypeOf(r.rel),
          name: path.basename(r.rel),
        };
      } catch (err) {
        await fh.close();
        throw err;
      }
    },

    async write(caller, sessionId, p, body, cond) {
      // A client gone before the body is read (even during the checks below) ends the write: noted now,
      // since the request's events fire once.
      let lost: Error | null = null;
      const onLost = (err?: Error) => {
        lost ??= err ?? new AppError('INVALID_REQUEST', 'the upload ended before its last byte');
      };
      body.once('error', onLost);
      body.once('aborted', () => onLost());
      const { root } = await folderOf(caller, sessionId, true);
      const r = await resolveIn(root, p, { mustExist: false });
      if (r.rel === '')
        throw new AppError('INVALID_REQUEST', "query.path: names the session's folder itself, not a file", { details: { field: 'query.path' } });
      if (r.real !== null && !(await fs.promises.stat(r.real)).isFile()) {
        throw new AppError('INVALID_REQUEST', `query.path: "${r.rel}" is a folder`, { details: { field: 'query.path' } });
      }
      const target = r.real ?? r.abs;
      const dir = path.dirname(target);
      await fs.promises.mkdir(dir, { recursive: true });
      // The folder made (or found) must still be inside: no link put in its way meanwhile.
      if (!inside(root, await fs.promises.realpath(dir))) throw new AppError('INVALID_REQUEST', `query.path: "${r.rel}" leads outside the session's folder`);
      const tmp = path.join(dir, `.${path.basename(target)}.upload-${randomBytes(6).toString('hex')}`);
      let bytes = 0;
      const limit = deps.maxFileBytes;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          bytes += chunk.length;
          if (bytes > limit) cb(new AppError('PAYLOAD_TOO_LARGE', `the file is larger than ${limit} bytes (MAX_FILE_BYTES)`));
          else cb(null, chunk);
        },
      });
      // The body is piped, not handed to pipeline(): a failed write (too large, disk full) must not
      // destroy the request, or the answer could never be sent (light-my-request's requests never
      // end on Node 24). It is unpiped and drained instead; the route closes the connection.
      // pipe() passes on neither an error nor an early close of the request: a client that goes away
      // mid-upload must end the write (else it waits forever, with its file open).
      const gone = (err?: Error) => {
        if (!counter.writableEnded && !counter.destroyed) counter.destroy(err ?? new AppError('INVALID_REQUEST', 'the upload ended before its last byte'));
      };
      body.once('error', gone);
      body.once('close', () => gone());
      body.once('aborted', () => gone());
      const readable = body as Readable & { readableAborted?: boolean };
      if (lost || readable.destroyed || readable.readableAborted) gone(lost ?? undefined);
      else body.pipe(counter);
      try {
        await pipeline(counter, fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
        // The condition is checked last, just before the file is replaced: an update made meanwhile is not lost.
        const current = await fs.promises.stat(target, { bigint: true }).catch(() => null);
        const etag = current ? etagOf(current) : null;
        if (cond.ifMatch !== undefined && !(etag !== null && names(cond.ifMatch, etag))) {
          throw new AppError('PRECONDITION_FAILED', `If-Match: the file is ${etag ? `at ${etag}` : 'not there'}; read it again and apply your change to it`, {
            details: { etag },
          });
        }
        if (cond.ifNoneMatch !== undefined && etag !== null && names(cond.ifNoneMatch, etag)) {
          throw new AppError('PRECONDITION_FAILED', `If-None-Match: the file exists (${etag})`, { details: { etag } });
        }
        await fs.promises.rename(tmp, target);
        await deps.states.forget(root);
        return { entry: await entry(root, target), created: current === null };
      } catch (err) {
        body.unpipe(counter);
        body.resume();
        await fs.promises.rm(tmp, { force: true });
        if (err instanceof AppError) throw err;
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new AppError('PAYLOAD_TOO_LARGE', 'the disk is full');
        throw err;
      }
    },

    async remove(caller, sessionId, p, recursive) {
      const { root } = await folderOf(caller, sessionId, true);
      const rel = normalizeRel(p);
      if (rel === '') throw new AppError('INVALID_REQUEST', "query.path: the session's folder itself is not deleted", { details: { field: 'query.path' } });
      // The folder it is in must be inside; the entry itself is removed as it is (a link, never what it leads to).
      const parent = await resolveIn(root, path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel), { mustExist: true });
      const r = { rel, abs: path.join(parent.real!, path.posix.basename(rel)) };
      const st = await fs.promises.lstat(r.abs).catch(() => null);
      if (!st) throw new AppError('NOT_FOUND', `no file or folder "${r.rel}" in the session's folder`);
      const type = typeOf(st);
      if (type === 'directory') {
        if (recursive) await fs.promises.rm(r.abs, { recursive: true, force: true });
        else {
          try {
            await fs.promises.rmdir(r.abs);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY') {
              throw new AppError('INVALID_REQUEST', `query.path: the folder "${r.rel}" is not empty (recursive=true deletes it with its content)`, {
                details: { field: 'query.recursive' },
              });
            }
            throw err;
          }
        }
      } else await fs.promises.unlink(r.abs);
      await deps.states.forget(root);
      return { path: r.rel, type };
    },

    async archive(caller, sessionId, p) {
      const { row, root } = await folderOf(caller, sessionId, false);
      const r = await resolveIn(root, p, { mustExist: true });
      if (!(await fs.promises.stat(r.real!)).isDirectory()) {
        throw new AppError('INVALID_REQUEST', `query.path: "${r.rel}" is a file, not a folder`, { details: { field: 'query.path' } });
      }
      // Links are stored as links (never followed), so the archive holds nothing from outside the folder.
      const stream = tar.create({ gzip: true, cwd: root, portable: true, follow: false }, [r.rel === '' ? '.' : r.rel]) as unknown as Readable;
      const base = r.rel === '' ? path.basename(row.cwd) || 'session' : path.basename(r.rel);
      return { stream, name: `${base}.tar.gz` };
    },

    async changes(caller, sessionId, turnId, maxDiffBytes) {
      const { root } = await folderOf(caller, sessionId, false);
      const t = await turnOf(sessionId, turnId);
      if (!t.snapshot_before || !t.snapshot_after) return { turn_id: turnId, recorded: false, files: [] };
      const list = await deps.snapshots.changes(root, t.snapshot_before, t.snapshot_after);
      const files = [];
      for (const c of list) {
        const diff = maxDiffBytes > 0 ? await deps.snapshots.diff(root, t.snapshot_before, t.snapshot_after, c.path, maxDiffBytes) : null;
        files.push({ ...c, diff });
      }
      return { turn_id: turnId, recorded: true, files };
    },

    async rewind(caller, sessionId, turnId, dryRun) {
      const { root } = await folderOf(caller, sessionId, true);
      const t = await turnOf(sessionId, turnId);
      if (!t.snapshot_before) {
        throw new AppError(
          'INVALID_REQUEST',
          `turn ${turnId} has no recorded state of the folder to go back to (it ran before this server kept them, or never started)`,
          {
            details: { field: 'body.turn_id' },
          },
        );
      }
      const running = (await deps.turns.runningBySession([sessionId])).get(sessionId);
      if (running) throw new AppError('SESSION_BUSY', `session ${sessionId} is running turn ${running}; rewind when it ends, or interrupt it first`);
      const files = await deps.snapshots.restore(root, t.snapshot_before, dryRun);
      return { turn_id: turnId, dry_run: dryRun, files };
    },
  };
}
