/**
 * @module workspace/snapshots
 * Snapshots of a session's folder, so that what a turn changed can be listed, diffed and undone
 * whatever changed it (Edit and Write, but also a Bash `sed -i`, which the SDK's own file
 * checkpoints do not see). Each folder has a shadow git repository outside it
 * (`WORKSPACE_ROOT/.snapshots/<hash>.git`, beside the users' folders, where no session's commands
 * can reach): a snapshot is `git add -A` + `write-tree` against the folder, so only files that
 * changed are stored (by content), and git's index keeps a big folder's snapshot to a stat of each file.
 * The user's own git repositories inside the folder are not entered (git records them as links).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { AppError } from '../errors.js';

export interface FileChange {
  path: string;
  kind: 'created' | 'modified' | 'deleted';
  size_before: number | null;
  size_after: number | null;
}

export interface Snapshots {
  /** Whether git can be run here (else every call throws UNAVAILABLE). */
  readonly available: boolean;
  /** The folder's state now (a tree id); one snapshot of a folder runs at a time. */
  take(cwd: string): Promise<string>;
  /** What changed from tree `a` to tree `b`. */
  changes(cwd: string, a: string, b: string): Promise<FileChange[]>;
  /** The unified diff of one path from `a` to `b` (null: binary, or larger than `maxBytes` on either side). */
  diff(cwd: string, a: string, b: string, file: string, maxBytes: number): Promise<string | null>;
  /** Makes the folder's files what they were in `tree`; answers what it changed (from the state now). */
  restore(cwd: string, tree: string, dryRun: boolean): Promise<FileChange[]>;
}

/** A git that sees nothing of the machine's or a user's configuration. */
const GIT_ENV = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: '/nonexistent',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  LC_ALL: 'C',
};
const MAX_OUTPUT = 256 * 1024 * 1024;

export function createSnapshots(workspaceRoot: string): Snapshots {
  const store = path.join(workspaceRoot, '.snapshots');
  const available = spawnSync('git', ['--version'], { env: GIT_ENV, timeout: 5_000 }).status === 0;
  const queues = new Map<string, Promise<unknown>>();

  const gitDirOf = (cwd: string) => path.join(store, `${createHash('sha256').update(cwd).digest('hex').slice(0, 24)}.git`);

  function git(cwd: string, args: string[], opts: { input?: string; encoding?: 'buffer' } = {}): Promise<Buffer> {
    const env = { ...GIT_ENV, GIT_DIR: gitDirOf(cwd), GIT_WORK_TREE: cwd };
    return new Promise((resolve, reject) => {
      const child = execFile(
        'git',
        ['-c', 'core.autocrlf=false', '-c', 'core.quotepath=off', '-c', 'core.safecrlf=false', '-c', 'advice.addEmbeddedRepo=false', ...args],
        { cwd, env, encoding: 'buffer', maxBuffer: MAX_OUTPUT },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`git ${args[0]}: ${stderr.toString().trim() || err.message}`));
          else resolve(stdout);
        },
      );
      if (opts.input !== undefined) child.stdin!.end(opts.input);
    });
  }

  /** One git operation at a time per folder (they share its index). */
  function serial<T>(cwd: string, fn: () => Promise<T>): Promise<T> {
    const prev = queues.get(cwd) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    queues.set(cwd, tail);
    void tail.then(() => {
      if (queues.get(cwd) === tail) queues.delete(cwd);
    });
    return next;
  }

  function need(): void {
    if (!available) throw new AppError('UNAVAILABLE', 'file snapshots need git, which this server cannot run (install git)');
  }

  async function init(cwd: string): Promise<void> {
    const dir = gitDirOf(cwd);
    if (fs.existsSync(path.join(dir, 'HEAD'))) return;
    await fs.promises.mkdir(store, { recursive: true, mode: 0o700 });
    await new Promise<void>((resolve, reject) =>
      execFile('git', ['init', '--quiet', '--bare', dir], { env: GIT_ENV }, (err) => (err ? reject(new Error(`git init: ${err.message}`)) : resolve())),
    );
    // The folder the repository belongs to, for people looking at the store.
    await fs.promises.writeFile(path.join(dir, 'description'), `snapshots of ${cwd}\n`);
  }

  async function takeNow(cwd: string): Promise<string> {
    await init(cwd);
    await git(cwd, ['add', '--all', '--force', '--', '.']);
    return (await git(cwd, ['write-tree'])).toString().trim();
  }

  async function changesOf(cwd: string, a: string, b: string): Promise<FileChange[]> {
    if (a === b) return [];
    const out = (await git(cwd, ['diff-tree', '-r', '-z', '--no-renames', '--name-status', a, b])).toString('utf8');
    const parts = out.split('\0').filter((x) => x !== '');
    const list: Array<{ path: string; kind: FileChange['kind'] }> = [];
    for (let i = 0; i + 1 < parts.length; i += 2) {
      const status = parts[i]!;
      const p = parts[i + 1]!;
      list.push({ path: p, kind: status.startsWith('A') ? 'created' : status.startsWith('D') ? 'deleted' : 'modified' });
    }
    // Sizes from the trees (one listing of each, not one process per file).
    const sizes = async (tree: string) => {
      const m = new Map<string, number>();
      const ls = (await git(cwd, ['ls-tree', '-r', '-l', '-z', tree])).toString('utf8');
      for (const line of ls.split('\0')) {
        const tab = line.indexOf('\t');
        if (tab < 0) continue;
        const size = line.slice(0, tab).trim().split(/\s+/)[3];
        m.set(line.slice(tab + 1), size === '-' || size === undefined ? 0 : Number(size));
      }
      return m;
    };
    const [before, after] = await Promise.all([sizes(a), sizes(b)]);
    return list.map((c) => ({ ...c, size_before: before.get(c.path) ?? null, size_after: after.get(c.path) ?? null }));
  }

  return {
    available,
    take(cwd) {
      need();
      return serial(cwd, () => takeNow(cwd));
    },
    changes(cwd, a, b) {
      need();
      return serial(cwd, () => changesOf(cwd, a, b));
    },
    diff(cwd, a, b, file, maxBytes) {
      need();
      return serial(cwd, async () => {
        const size = async (tree: string) => {
          const r = await git(cwd, ['ls-tree', '-l', tree, '--', file]).catch(() => Buffer.alloc(0));
          const n = r.toString().trim().split(/\s+/)[3];
          return n && n !== '-' ? Number(n) : 0;
        };
        if ((await size(a)) > maxBytes || (await size(b)) > maxBytes) return null;
        const d = (await git(cwd, ['diff-tree', '-p', '--no-renames', '--no-color', a, b, '--', file])).toString('utf8');
        return /^Binary files /m.test(d) ? null : d.replace(/^diff --git [^\n]*\n(index [^\n]*\n)?/, '');
      });
    },
    restore(cwd, tree, dryRun) {
      need();
      return serial(cwd, async () => {
        const now = await takeNow(cwd);
        // What changed since `tree`, undone: created since -> removed; modified or deleted since -> its old content.
        const since = await changesOf(cwd, tree, now);
        const undo: FileChange[] = since.map((c) => ({
          path: c.path,
          kind: c.kind === 'created' ? 'deleted' : c.kind === 'deleted' ? 'created' : 'modified',
          size_before: c.size_after,
          size_after: c.size_before,
        }));
        if (dryRun || since.length === 0) return undo;
        for (const c of since.filter((x) => x.kind === 'created')) await fs.promises.rm(path.join(cwd, c.path), { force: true });
        const back = since.filter((x) => x.kind !== 'created').map((x) => x.path);
        // Paths go over stdin (any name, no argument limits); the index then matches the folder again.
        if (back.length > 0) await git(cwd, ['checkout', tree, '--pathspec-from-file=-', '--pathspec-file-nul'], { input: back.join('\0') });
        await pruneEmptyFolders(
          cwd,
          since.filter((x) => x.kind === 'created').map((x) => path.dirname(x.path)),
        );
        await takeNow(cwd);
        return undo;
      });
    },
  };
}

/** Folders left empty by removing the files a turn created (deepest first), not the folder itself. */
async function pruneEmptyFolders(cwd: string, dirs: string[]): Promise<void> {
  const all = new Set<string>();
  for (let d of dirs) {
    while (d !== '.' && d !== '') {
      all.add(d);
      d = path.dirname(d);
    }
  }
  for (const d of [...all].sort((x, y) => y.length - x.length)) {
    await fs.promises.rmdir(path.join(cwd, d)).catch(() => {});
  }
}

/**
 * The state of each folder as of its last snapshot, kept in memory so that a turn does not pay for
 * a snapshot before it starts: a turn that ran no tool that can change files leaves the state as it
 * was; one that did takes a snapshot when it ends (before the next turn of the folder takes the
 * state). A folder changed by other means (the files API, a rewind) is marked, and snapshotted again
 * at its next turn. A server that starts knows no state: a folder's first turn takes one.
 */
export interface FolderStates {
  /** The folder's state before a turn (a tree id, at once when known), or null when snapshots cannot be taken. */
  before(cwd: string): string | null | Promise<string | null>;
  /** After a turn that started from `before`: its changes (snapshotted only when `touched`). */
  after(cwd: string, before: string, touched: boolean): Promise<{ tree: string; changes: FileChange[] }>;
  /** The folder was changed by something else than a turn: its next turn snapshots it first. */
  forget(cwd: string): void;
}

export function createFolderStates(snapshots: Snapshots, onError: (err: unknown) => void): FolderStates {
  const known = new Map<string, string>();
  const pending = new Map<string, Promise<unknown>>();
  /** Runs `fn` for the folder after whatever runs for it now; the state is read once it is done. */
  const track = <T>(cwd: string, p: Promise<T>): Promise<T> => {
    pending.set(cwd, p);
    void p
      .finally(() => {
        if (pending.get(cwd) === p) pending.delete(cwd);
      })
      .catch(() => {});
    return p;
  };
  return {
    before(cwd) {
      if (!snapshots.available) return null;
      const wait = pending.get(cwd);
      if (!wait) {
        const k = known.get(cwd);
        if (k) return k;
      }
      return track(
        cwd,
        (async () => {
          await wait?.catch(() => {});
          const k = known.get(cwd);
          if (k) return k;
          const tree = await snapshots.take(cwd);
          known.set(cwd, tree);
          return tree;
        })().catch((err: unknown) => {
          onError(err);
          return null;
        }),
      );
    },
    after(cwd, before, touched) {
      // (Not known again from `before`: the folder may have been changed meanwhile by other means.)
      if (!touched) return Promise.resolve({ tree: before, changes: [] });
      return track(
        cwd,
        (async () => {
          const tree = await snapshots.take(cwd);
          known.set(cwd, tree);
          return { tree, changes: await snapshots.changes(cwd, before, tree) };
        })(),
      );
    },
    forget(cwd) {
      known.delete(cwd);
    },
  };
}
