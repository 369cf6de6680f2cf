/**
 * @module workspace
 * Every session runs in a folder inside its owner's own folder of WORKSPACE_ROOT:
 * `WORKSPACE_ROOT/<user folder>/<project>`, so that no two users' sessions share a working
 * directory (the CLI's sandbox and file-tool limits are drawn around that folder). A `project` is
 * a path relative to the user's folder; it is refused when it could lead outside (`..`, absolute
 * paths, NUL and control characters, percent-encodings, a symlink pointing elsewhere), then
 * created and resolved with realpath, so the stored cwd is the real absolute path the CLI will see.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';

/** Projects of one folder (a user's, or the whole root for sessions made before user folders). */
export interface Workspace {
  /** The real absolute path of this folder. */
  readonly root: string;
  /** Validates `project`, creates its folder, returns its normalized form and real cwd. */
  resolve(project: string | undefined): { project: string; cwd: string };
  /** Validates `project` and resolves it like `resolve`, but creates nothing: null when its folder does not exist. */
  find(project: string): { project: string; cwd: string } | null;
  /** Validates `project` and returns its normalized form (`a//b/` is `a/b`, `./.` is `.`), touching nothing. */
  normalize(project: string): string;
  /** Checks that a stored cwd still resolves to itself inside this folder (no symlink swapped in since). */
  assertStillInside(cwd: string): void;
  /** The project of an absolute cwd, or null when it lies outside this folder. */
  projectOf(cwd: string): string | null;
}

/** WORKSPACE_ROOT and the users' folders in it. */
export interface Workspaces extends Workspace {
  /** The user's own folder (created on first use); its projects are relative to it. */
  forUser(userId: string): Workspace;
  /** Whether `cwd` lies inside the user's own folder (sessions made before user folders do not). */
  ownedBy(cwd: string, userId: string): boolean;
}

const bad = (message: string) => new AppError('INVALID_PROJECT', message);

/** A user id that is its own folder name: lowercase letters, digits, `_` and `-`, not too long. */
const PLAIN_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/**
 * The name of a user's folder. A plain id is its own name (`alice`); any other id (capitals,
 * `@`, `/`, dots, anything) becomes a readable part plus a hash of the whole id after a dot
 * (`Alice@Corp` -> `alice-corp.1f3a…`). Plain names have no dot, so the two kinds never meet, and
 * two different ids never get one folder (short of a 64-bit hash collision).
 */
export function userFolderName(userId: string): string {
  if (PLAIN_ID.test(userId)) return userId;
  const slug =
    userId
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'user';
  const hash = createHash('sha256').update(userId, 'utf8').digest('hex').slice(0, 16);
  return `${slug}.${hash}`;
}

function folder(rootDir: string): Workspace {
  const root = fs.realpathSync.native(rootDir);
  const inside = (p: string) => p === root || p.startsWith(root + path.sep);

  function normalize(raw: string): string {
    if (raw.length > 1024) throw bad('project is longer than 1024 characters');
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(raw)) throw bad('project contains a control character');
    if (raw.includes('\\')) throw bad('project must use "/" as separator');
    // A lone surrogate has no spelling on disk: the folder made would not be the project shown.
    if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(raw))
      throw bad('project contains a lone UTF-16 surrogate (not valid Unicode text)');
    if (/%[0-9a-fA-F]{2}/.test(raw)) throw bad('project must not contain percent-encoded characters');
    if (path.isAbsolute(raw) || raw.startsWith('~')) throw bad('project must be a path relative to your workspace folder');
    const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
    if (segments.some((s) => s === '..')) throw bad('project must not contain ".." segments');
    if (segments.some((s) => Buffer.byteLength(s) > 255)) throw bad('a folder name in project is longer than 255 bytes');
    return segments.length === 0 ? '.' : segments.join('/');
  }

  function locate(project: string, create: boolean): { project: string; cwd: string } | null {
    const normalized = normalize(project);
    const target = normalized === '.' ? root : path.join(root, ...normalized.split('/'));
    // Refuse before creating anything if an existing part of the path is a link leading out.
    let existing = target;
    while (!fs.existsSync(existing)) existing = path.dirname(existing);
    if (!inside(fs.realpathSync.native(existing))) throw bad('project leads outside your workspace folder');
    if (existing !== target) {
      if (!create) return null;
      try {
        fs.mkdirSync(target, { recursive: true });
      } catch (err) {
        throw bad(`project folder cannot be created: ${(err as Error).message}`);
      }
    }
    const real = fs.realpathSync.native(target);
    if (!inside(real)) throw bad('project leads outside your workspace folder');
    if (!fs.statSync(real).isDirectory()) throw bad('project is not a folder');
    return { project: normalized, cwd: real };
  }

  return {
    root,
    normalize,
    resolve(project) {
      return locate(project ?? '.', true)!;
    },
    find(project) {
      return locate(project, false);
    },
    assertStillInside(cwd) {
      let real: string;
      try {
        real = fs.realpathSync.native(cwd);
      } catch {
        throw new AppError('INVALID_PROJECT', `the session's folder ${cwd} no longer exists`);
      }
      if (real !== cwd || !inside(real)) throw new AppError('INVALID_PROJECT', `the session's folder ${cwd} now leads outside its workspace folder`);
    },
    projectOf(cwd) {
      if (!inside(cwd)) return null;
      const rel = path.relative(root, cwd);
      return rel === '' ? '.' : rel.split(path.sep).join('/');
    },
  };
}

export function createWorkspace(rootDir: string): Workspaces {
  fs.mkdirSync(rootDir, { recursive: true });
  const whole = folder(rootDir);
  const users = new Map<string, Workspace>();

  function forUser(userId: string): Workspace {
    const known = users.get(userId);
    if (known && fs.existsSync(known.root)) return known;
    const dir = path.join(whole.root, userFolderName(userId));
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw bad(`your workspace folder cannot be created: ${(err as Error).message}`);
    }
    // A user's folder is a plain folder of the root: a link standing in its place leads elsewhere.
    const st = fs.lstatSync(dir);
    if (!st.isDirectory() || st.isSymbolicLink()) throw bad(`your workspace folder ${dir} is not a plain folder; an operator must move what stands there`);
    const ws = folder(dir);
    if (ws.root !== dir) throw bad(`your workspace folder ${dir} does not resolve to itself`);
    if (users.size > 10_000) users.clear();
    users.set(userId, ws);
    return ws;
  }

  return {
    ...whole,
    forUser,
    ownedBy(cwd, userId) {
      const own = path.join(whole.root, userFolderName(userId));
      return cwd === own || cwd.startsWith(own + path.sep);
    },
  };
}
