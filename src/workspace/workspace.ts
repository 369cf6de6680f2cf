/**
 * @module workspace
 * Every session runs in a folder inside WORKSPACE_ROOT. A `project` is a path relative to the
 * root; it is refused when it could lead outside (`..`, absolute paths, NUL and control
 * characters, percent-encodings, a symlink pointing elsewhere), then created and resolved
 * with realpath, so the stored cwd is the real absolute path the CLI will see.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors.js';

export interface Workspace {
  /** The real absolute path of WORKSPACE_ROOT. */
  readonly root: string;
  /** Validates `project`, creates its folder, returns its normalized form and real cwd. */
  resolve(project: string | undefined): { project: string; cwd: string };
  /** Validates `project` and resolves it like `resolve`, but creates nothing: null when its folder does not exist. */
  find(project: string): { project: string; cwd: string } | null;
  /** Validates `project` and returns its normalized form (`a//b/` is `a/b`, `./.` is `.`), touching nothing. */
  normalize(project: string): string;
  /** Checks that a stored cwd still resolves to itself inside the root (no symlink swapped in since). */
  assertStillInside(cwd: string): void;
  /** The project of an absolute cwd, or null when it lies outside the root. */
  projectOf(cwd: string): string | null;
}

const bad = (message: string) => new AppError('INVALID_PROJECT', message);

export function createWorkspace(rootDir: string): Workspace {
  fs.mkdirSync(rootDir, { recursive: true });
  const root = fs.realpathSync.native(rootDir);
  const inside = (p: string) => p === root || p.startsWith(root + path.sep);

  function normalize(raw: string): string {
    if (raw.length > 1024) throw bad('project is longer than 1024 characters');
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(raw)) throw bad('project contains a control character');
    if (raw.includes('\\')) throw bad('project must use "/" as separator');
    if (/%[0-9a-fA-F]{2}/.test(raw)) throw bad('project must not contain percent-encoded characters');
    if (path.isAbsolute(raw) || raw.startsWith('~')) throw bad('project must be a path relative to the workspace root');
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
    if (!inside(fs.realpathSync.native(existing))) throw bad('project leads outside the workspace root');
    if (existing !== target) {
      if (!create) return null;
      try {
        fs.mkdirSync(target, { recursive: true });
      } catch (err) {
        throw bad(`project folder cannot be created: ${(err as Error).message}`);
      }
    }
    const real = fs.realpathSync.native(target);
    if (!inside(real)) throw bad('project leads outside the workspace root');
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
      if (real !== cwd || !inside(real)) throw new AppError('INVALID_PROJECT', `the session's folder ${cwd} now leads outside the workspace root`);
    },
    projectOf(cwd) {
      if (!inside(cwd)) return null;
      const rel = path.relative(root, cwd);
      return rel === '' ? '.' : rel.split(path.sep).join('/');
    },
  };
}
