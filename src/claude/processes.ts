/**
 * @module claude/processes
 * How CLI processes are started and found again. Each CLI runs in its own process group (so
 * its tool children end with it) and leaves a pid file under DATA_DIR while it lives. A
 * server killed with SIGKILL cannot close its CLIs, which would keep running their turn and
 * writing the transcript. Two lines against that: each CLI is started through util-linux's
 * `setpriv --pdeathsig KILL`, so the kernel kills it when the server dies (its sandboxed tools
 * go with it: bubblewrap runs them with --die-with-parent); and the next start reads the pid
 * files and ends whatever survived before any turn runs (one writer per session, also across a
 * restart).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import type { SpawnOptions, SpawnedProcess } from '@anthropic-ai/claude-agent-sdk';

export interface ProcessRegistry {
  /** The `spawnClaudeCodeProcess` option for the SDK. */
  spawn(opts: SpawnOptions): SpawnedProcess;
  /** Pids of CLI processes this server started that are still alive. */
  readonly pids: number[];
  /** Ends every CLI process group started by this server (SIGTERM, then SIGKILL after `graceMs`). */
  killAll(graceMs?: number): Promise<void>;
  /** Ends one CLI's process group at once (SIGKILL): a CLI that answers nothing (stopped, stuck). */
  kill(pid: number): void;
  /** Whether the kernel ends each CLI when the server dies (see `deathSignalWrapper`). */
  readonly diesWithServer: boolean;
}

/** Whether a process runs (a zombie has ended). */
export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** True when `pid` is a CLI process that uses `configDir` (not some other process that reused the pid). */
function isOurCli(pid: number, configDir: string): boolean {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`);
    return env.includes(Buffer.from(`CLAUDE_CONFIG_DIR=${configDir}\0`));
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    // No such group: every process of it has ended (a CLI leads its own group, so while it lives
    // the group does); its pid alone may already be another process's, and is left alone.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const end = Date.now() + ms;
  let left = pids.filter(isAlive);
  while (left.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter(isAlive);
  }
  return left;
}

/**
 * Ends processes that CLIs of this config dir left behind when they ended (seen: the sandbox's
 * network bridge, socat, still listening long after its CLI was gone): reparented to init (ppid 1),
 * with `CLAUDE_CONFIG_DIR=configDir` in their environment. A live CLI's helpers have the CLI as
 * parent, so they are never touched. Returns how many were ended.
 */
export function reapStrays(configDir: string): number {
  if (process.platform !== 'linux') return 0;
  const needle = Buffer.from(`CLAUDE_CONFIG_DIR=${configDir}\0`);
  let n = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (!/^PPid:\s+1$/m.test(fs.readFileSync(`/proc/${name}/status`, 'utf8'))) continue;
      if (!fs.readFileSync(`/proc/${name}/environ`).includes(needle)) continue;
      process.kill(Number(name), 'SIGKILL');
      n++;
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return n;
}

/**
 * Ends CLI processes recorded by an earlier run of a server on the same DATA_DIR, and what CLIs
 * left behind (reapStrays). Returns how many CLIs were still running.
 */
export async function reapOrphans(pidDir: string, configDir: string): Promise<number> {
  fs.mkdirSync(pidDir, { recursive: true });
  const found: number[] = [];
  const leaderless: number[] = [];
  for (const name of fs.readdirSync(pidDir)) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 1 && isAlive(pid) && isOurCli(pid, configDir)) found.push(pid);
    // The CLI is gone (killed with its server) but its group may live on: tools it started outside the
    // sandbox, MCP servers. Its group id cannot be reused while any of them lives.
    else if (Number.isInteger(pid) && pid > 1 && groupHasOurs(pid, configDir)) leaderless.push(pid);
    fs.rmSync(path.join(pidDir, name), { force: true });
  }
  for (const pgid of leaderless) killGroup(pgid, 'SIGKILL');
  for (const pid of found) killGroup(pid, 'SIGTERM');
  const left = await waitGone(found, 3_000);
  for (const pid of left) killGroup(pid, 'SIGKILL');
  await waitGone(left, 2_000);
  reapStrays(configDir);
  return found.length;
}

/**
 * The spawn wrapper that makes the kernel kill a CLI when the server dies (PR_SET_PDEATHSIG, kept
 * across the exec of the CLI), or null where there is none (not Linux, no util-linux setpriv).
 * The signal follows the thread that started the child: here always the main thread, which lives
 * as long as the server.
 */
export function deathSignalWrapper(): string[] | null {
  if (process.platform !== 'linux') return null;
  for (const exe of ['/usr/bin/setpriv', '/bin/setpriv']) {
    if (!fs.existsSync(exe)) continue;
    const args = ['--pdeathsig', 'KILL', '--'];
    if (spawnSync(exe, [...args, 'true'], { timeout: 5_000 }).status === 0) return [exe, ...args];
  }
  return null;
}

/** Whether a live process of group `pgid` has `CLAUDE_CONFIG_DIR=configDir` in its environment. */
function groupHasOurs(pgid: number, configDir: string): boolean {
  if (process.platform !== 'linux') return false;
  const needle = Buffer.from(`CLAUDE_CONFIG_DIR=${configDir}\0`);
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid || fields[0] === 'Z') continue;
      if (fs.readFileSync(`/proc/${name}/environ`).includes(needle)) return true;
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return false;
}

/**
 * The live CLIs of every registry of this process. Whatever way the process ends (a clean close, the
 * forced exit after the grace, a process.exit anywhere), each CLI's whole group goes with it: the
 * kernel's death signal reaches the CLI alone, and a helper of its (the sandbox's socat) would be
 * left to init.
 */
const registries = new Set<Set<number>>();
process.once('exit', () => {
  for (const live of registries) for (const pid of live) killGroup(pid, 'SIGKILL');
});

export function createProcessRegistry(
  pidDir: string,
  onStderr?: (line: string) => void,
  onWrongCwd?: (asked: string, actual: string) => void,
  configDir?: string,
): ProcessRegistry {
  fs.mkdirSync(pidDir, { recursive: true });
  const live = new Set<number>();
  const wrapper = deathSignalWrapper();
  let closed = false;
  registries.add(live);
  return {
    diesWithServer: wrapper !== null,
    spawn(opts) {
      // Once closing has begun no CLI starts (a spare being refilled, a turn's process): one started
      // after the last sweep would outlive the server.
      if (closed) throw new Error('the server is shutting down: no new CLI process');
      // Through the wrapper the pid is still the CLI's: setpriv sets the signal, then execs it.
      const [command, args] = wrapper ? [wrapper[0]!, [...wrapper.slice(1), opts.command, ...opts.args]] : [opts.command, opts.args];
      const child = spawn(command, args, {
        cwd: opts.cwd,
        env: opts.env,
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true, // its own process group: the CLI and its tools end together
      });
      // The SDK listens for 'exit' once per control request of a long-lived process.
      child.setMaxListeners(1000);
      const pid = child.pid;
      if (pid && opts.cwd && process.platform === 'linux') {
        // The folder was checked just before, by path; a link swapped in since would put the CLI
        // (and its sandbox) in another folder. Its working directory is fixed once it runs, so
        // this look at it is final: a CLI that is not where it was asked to be ends before it reads anything.
        let actual: string | null = null;
        try {
          actual = fs.readlinkSync(`/proc/${pid}/cwd`);
        } catch {
          actual = null;
        }
        if (actual !== null && actual !== opts.cwd) {
          killGroup(pid, 'SIGKILL');
          onWrongCwd?.(opts.cwd, actual);
        }
      }
      if (pid) {
        live.add(pid);
        try {
          fs.writeFileSync(path.join(pidDir, String(pid)), `${Date.now()}\n`);
        } catch {
          // the registry is a safety net; a failed write must not fail the turn
        }
        child.once('exit', () => {
          live.delete(pid);
          fs.rmSync(path.join(pidDir, String(pid)), { force: true });
          // Tools the CLI left behind in its group go with it.
          killGroup(pid, 'SIGKILL');
        });
      }
      opts.signal?.addEventListener('abort', () => {
        if (child.exitCode === null) child.kill('SIGTERM');
      });
      let partial = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (d: string) => {
        const lines = (partial + d).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) onStderr?.(line);
      });
      return child;
    },
    get pids() {
      return [...live].filter(isAlive);
    },
    kill(pid) {
      if (live.has(pid)) killGroup(pid, 'SIGKILL');
    },
    async killAll(graceMs = 2_000) {
      closed = true;
      const pids = [...live];
      for (const pid of pids) killGroup(pid, 'SIGTERM');
      const left = await waitGone(pids, graceMs);
      for (const pid of left) killGroup(pid, 'SIGKILL');
      await waitGone(left, 2_000);
      // A helper's own children (socat forks one per connection) reach init only once their parent
      // is gone: sweep until a pass finds nothing (bounded).
      if (configDir) for (let i = 0; i < 10 && reapStrays(configDir) > 0; i++) await new Promise((r) => setTimeout(r, 50));
      if (live.size === 0) registries.delete(live);
    },
  };
}
