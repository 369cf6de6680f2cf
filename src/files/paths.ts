/**
 * @module files/paths
 * A path a client names inside a session's folder, resolved so that it can only lead inside it:
 * relative, without `..`, NUL or control characters; then followed through links with realpath,
 * and refused when the real path lies outside the folder (a link that leads elsewhere).
 */
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors.js';

export interface Resolved {
  /** The path as the API shows it: relative to the session's folder, `/`-separated ('' is the folder itself). */
  rel: string;
  /** The absolute path (not followed through links). */
  abs: string;
}

const invalid = (message: string) => new AppError('INVALID_REQUEST', `query.path: ${message}`, { details: { field: 'query.path' } });

/** Checks and normalizes a relative path (`a//b/./c` is `a/b/c`); touches nothing. */
export function normalizeRel(p: string): string {
  if (p.startsWith('/')) throw invalid("must be relative to the session's folder, not absolute");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) throw invalid('has a control character');
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw invalid('may not contain ".."');
  return parts.join('/');
}

/** Whether `real` is `root` or lies below it. */
export const inside = (root: string, real: string) => real === root || real.startsWith(root.endsWith('/') ? root : `${root}/`);

/**
 * Resolves `p` in the folder `root` (a real path). For a path that exists, its real path must lie
 * inside; for one that does not (`mustExist: false`), the real path of its nearest existing
 * ancestor must. Throws 400 for a path that leads outside, 404 for a missing one when it must exist.
 */
export async function resolveIn(root: string, p: string, opts: { mustExist: boolean }): Promise<Resolved & { real: string | null }> {
  const rel = normalizeRel(p);
  const abs = rel === '' ? root : path.join(root, rel);
  let real: string | null = null;
  try {
    real = await fs.promises.realpath(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw invalid(`cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  if (real !== null) {
    if (!inside(root, real)) throw invalid(`"${rel}" leads outside the session's folder`);
    return { rel, abs, real };
  }
  // A dangling link is not followed anywhere: it is refused like one that leads outside.
  const link = await fs.promises.lstat(abs).catch(() => null);
  if (link) throw invalid(`"${rel}" is a link that leads nowhere inside the session's folder`);
  if (opts.mustExist) throw new AppError('NOT_FOUND', `no file or folder "${rel}" in the session's folder`);
  // The nearest ancestor that exists must be inside (no link in the way leads elsewhere).
  let up = path.dirname(abs);
  for (;;) {
    const r = await fs.promises.realpath(up).catch(() => null);
    if (r !== null) {
      if (!inside(root, r)) throw invalid(`"${rel}" leads outside the session's folder`);
      break;
    }
    if (up === root || up === path.dirname(up)) break;
    up = path.dirname(up);
  }
  return { rel, abs, real: null };
}
