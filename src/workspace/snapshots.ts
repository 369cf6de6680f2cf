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
import { createHash, randomBytes } from 'node:crypto';
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
  /**
   * The folder's state as of its last snapshot, unless something marked it changed since
   * (`forget`); else a snapshot taken now. Kept beside the shadow repository, so every process
   * sharing the volume (replicas) reads the same.
   */
  state(cwd: string): Promise<string>;
  /** The folder was changed by something else than a snapshotted turn: its next `state` takes a snapshot. */
  forget(cwd: string): Promise<void>;
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
/** In a folder's shadow repository: the tree id of its last snapshot, removed when the folder is changed otherwise. */
const STATE_FILE = 'css-state';
/** Beside it: a token rewritten whenever the folder is changed by other means (see `forget`). */
const CHANGED_FILE = 'css-changed';

export function createSnapshots(workspaceRoot: string): Snapshots {
  const store = path.join(workspaceRoot, '.snapshots');
  const available = spawnSync('git', ['--version'], { env: GIT_ENV, timeout: 5_000 }).status === 0;
  const queues = new Map<string, Promise<unknown>>();

  const gitDirs = new Map<string, string>();
  const gitDirOf = (cwd: string) => {
    let dir = gitDirs.get(cwd);
    if (dir === undefined) {
      dir = path.join(store, `${createHash('sha256').update(cwd).digest('hex').slice(0, 24)}.git`);
      if (gitDirs.size >= 10_000) gitDirs.clear();
      gitDirs.set(cwd, dir);
    }
    return dir;
  };

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

  /** The tree id of the folder's last snapshot, while nothing else is known to have changed it. */
  const stateFile = (cwd: string) => path.join(gitDirOf(cwd), STATE_FILE);

  /**
   * Marks a change made by other means than a snapshot: a new token, read by every snapshot before
   * and after it runs. A snapshot during which the folder was marked changed (here or on another
   * replica sharing the volume) does not claim to be the folder's state.
   */
  const changedFile = (cwd: string) => path.join(gitDirOf(cwd), CHANGED_FILE);
  const changeToken = (cwd: string) => fs.promises.readFile(changedFile(cwd), 'utf8').catch(() => '');

  async function takeNow(cwd: string): Promise<string> {
    await init(cwd);
    const token = await changeToken(cwd);
    await gitLocked(cwd, ['add', '--all', '--force', '--', '.']);
    const tree = (await gitLocked(cwd, ['write-tree'])).toString().trim();
    if ((await changeToken(cwd)) !== token) return tree;
    // Written whole, then renamed: a reader (here or on another replica) sees the old state or the new one.
    const tmp = `${stateFile(cwd)}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await fs.promises.writeFile(tmp, `${tree}\n`);
    await fs.promises.rename(tmp, stateFile(cwd));
    // Marked changed meanwhile (after the check above): the state written no longer stands.
    if ((await changeToken(cwd)) !== token) await fs.promises.rm(stateFile(cwd), { force: true });
    return tree;
  }

  /**
   * A git command that writes the folder's index, tried again while another process holds its lock
   * (replicas sharing the volume each serialize their own operations, not each other's).
   */
  async function gitLocked(cwd: string, args: string[], opts: { input?: string } = {}): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await git(cwd, args, opts);
      } catch (err) {
        if (!/index\.lock/.test((err as Error).message)) throw err;
        if (attempt >= 40) {
          // Never removed here: another replica's git may hold it for long on a big folder, and clocks differ.
          throw new Error(
            `${(err as Error).message}: ${path.join(gitDirOf(cwd), 'index.lock')} is held; if no server is snapshotting this folder (one died mid-snapshot), remove it`,
            { cause: err },
          );
        }
        await new Promise((r) => setTimeout(r, 25 + attempt * 25));
      }
    }
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
    state(cwd) {
      need();
      return serial(cwd, async () => {
        // Read without blocking: WORKSPACE_ROOT may be a network volume shared by replicas.
        const known = await fs.promises.readFile(stateFile(cwd), 'utf8').catch(() => '');
        return /^[0-9a-f]{40,64}\n$/.test(known) ? known.trim() : takeNow(cwd);
      });
    },
    forget(cwd) {
      if (!available) return Promise.resolve();
      return serial(cwd, async () => {
        // Never snapshotted: no state to forget (its first snapshot comes after this change).
        if (!fs.existsSync(path.join(gitDirOf(cwd), 'HEAD'))) return;
        await fs.promises.writeFile(changedFile(cwd), randomBytes(8).toString('hex'));
        await fs.promises.rm(stateFile(cwd), { force: true });
      });
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
        // Until the restored state is snapshotted, the last one no longer stands (a failure half-way leaves it
        // unknown), and a snapshot running meanwhile elsewhere must not claim to be it.
        await fs.promises.writeFile(changedFile(cwd), randomBytes(8).toString('hex'));
        await fs.promises.rm(stateFile(cwd), { force: true });
        for (const c of since.filter((x) => x.kind === 'created')) await fs.promises.rm(path.join(cwd, c.path), { force: true });
        const back = since.filter((x) => x.kind !== 'created').map((x) => x.path);
        // Paths go over stdin (any name, no argument limits); the index then matches the folder again.
        if (back.length > 0) await gitLocked(cwd, ['checkout', tree, '--pathspec-from-file=-', '--pathspec-file-nul'], { input: back.join('\0') });
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
 * The state of each folder before and after a turn, for the turn engine. A turn does not pay for a
 * snapshot before it starts while the folder's last snapshot still stands (`Snapshots.state`): a
 * turn that ran no tool that can change files leaves the state as it was; one that did takes a
 * snapshot when it ends. A folder changed by other means (the files API, on any replica) is marked,
 * and snapshotted again at its next turn.
 */
export interface FolderStates {
  /** The folder's state before a turn (a tree id), or null when snapshots cannot be taken. */
  before(cwd: string): Promise<string | null> | null;
  /** After a turn that started from `before`: its changes (snapshotted only when `touched`). */
  after(cwd: string, before: string, touched: boolean): Promise<{ tree: string; changes: FileChange[] }>;
  /** The folder was changed by something else than a turn: its next turn snapshots it first. */
  forget(cwd: string): Promise<void>;
}

export function createFolderStates(snapshots: Snapshots, onError: (err: unknown) => void): FolderStates {
  return {
    before(cwd) {
      if (!snapshots.available) return null;
      return snapshots.state(cwd).catch((err: unknown) => {
        onError(err);
        return null;
      });
    },
    async after(cwd, before, touched) {
      if (!touched) return { tree: before, changes: [] };
      const tree = await snapshots.take(cwd);
      return { tree, changes: await snapshots.changes(cwd, before, tree) };
    },
    forget(cwd) {
      return snapshots.forget(cwd);
    },
  };
}
