/**
 * @module claude/sandbox
 * What keeps one user's tools away from another user's data, as the CLI enforces it (README,
 * "Tenant isolation"). Two layers, both session-independent so that prewarmed spares carry them:
 * - Claude Code's own sandbox for Bash (bubblewrap on Linux): commands read only the system's
 *   program folders and the session's folder (the CLI lets a command write its cwd, and what it
 *   may write it may read), write only there and in the process's private TMPDIR, see a /proc of
 *   their own, and reach no network unless the operator lists domains. There is no unsandboxed
 *   escape hatch, whatever the permission mode.
 * - The CLI's file-tool limits: Read, Edit and Write (and Grep, Glob, LSP where the CLI has them)
 *   are refused outside the session's folder in every mode; a link is followed before the check.
 * Nothing else is writable to a sandboxed command: no deny list is needed for writes, and none of
 * the server's folders is readable unless an operator's read path holds it (refused at start).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Options, SandboxSettings } from '@anthropic-ai/claude-agent-sdk';

/** `required`: no start without it; `auto`: on where it runs, a loud warning where not; `off`: the operator's choice. */
export type SandboxMode = 'required' | 'auto' | 'off';

/** The folders sandboxed commands may read besides the session's own (what programs need to run). */
export const DEFAULT_READ_PATHS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'];

export interface IsolationPolicy {
  /** Whether Bash runs in the CLI's sandbox. */
  sandbox: boolean;
  /** Domains sandboxed commands may reach (through the CLI's proxy); empty: no network at all. */
  allowedDomains: string[];
  /** The operator listed domains (SANDBOX_NETWORK=a,b): WebFetch may reach those, and only those. */
  fetchDomains: boolean;
  /** Folders sandboxed commands may read besides the session's own. */
  readPaths: string[];
  /**
   * Folders hidden from sandboxed commands even below a read path: the server's data, the CLI's
   * config dir, the workspace root, the server's files, the home folder. (The session's own folder
   * and TMPDIR, below two of them, stay readable: the CLI lets commands write them.)
   */
  hiddenPaths: string[];
  /** Environment variables sandboxed commands do not get (the CLI keeps them): the model's credentials and anything named like a secret. */
  secretEnv: string[];
}

/** Names of environment variables that look like secrets. */
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|PRIVATE/i;

/** The variables of `env` that sandboxed commands must not see: the model's credentials and whatever is named like a secret. */
export function secretEnvNames(env: Record<string, string | undefined>): string[] {
  const names = new Set(['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN']);
  for (const [k, v] of Object.entries(env)) if (v !== undefined && SECRET_NAME.test(k)) names.add(k);
  return [...names].sort();
}

export type SandboxProbe = { ok: true } | { ok: false; reason: string; fix: string };

/** The executable `name` on PATH, or null. */
function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/**
 * Whether the CLI's sandbox can run on this machine: bubblewrap and socat (the CLI's network
 * bridge) are installed, and bubblewrap can make the namespaces the CLI asks for (a container
 * may forbid them). Takes a few milliseconds.
 */
export function probeSandbox(): SandboxProbe {
  if (process.platform !== 'linux')
    return {
      ok: false,
      reason: `this server runs the CLI's sandbox on Linux only (platform ${process.platform})`,
      fix: 'run the server on Linux, or set SANDBOX=off for a single trusted user',
    };
  const missing = ['bwrap', 'socat'].filter((b) => !onPath(b));
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `${missing.join(' and ')} not found on PATH`,
      fix: `apt-get install ${missing.map((b) => (b === 'bwrap' ? 'bubblewrap' : b)).join(' ')}`,
    };
  }
  const r = spawnSync(
    'bwrap',
    ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-pid', '--unshare-net', '--die-with-parent', '--', 'true'],
    { timeout: 10_000, encoding: 'utf8' },
  );
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0];
    return {
      ok: false,
      reason: `bubblewrap cannot make its namespaces here: ${why}`,
      fix: 'in a container, allow user namespaces (README: "Docker"); on a host, check kernel.unprivileged_userns_clone and AppArmor',
    };
  }
  return { ok: true };
}

/** The SDK options that carry the policy: the same for every process, spares included. */
export function isolationOptions(p: IsolationPolicy): Pick<Options, 'sandbox' | 'settings' | 'disallowedTools'> {
  const permissions = {
    // The file tools stay in the session's folder in every mode, a link followed first (measured:
    // Read, Edit and Write, in bypassPermissions too); no allow rule or approval lifts it.
    // (blockFileToolReadsOutsideWorkingDirectories, which the CLI also knows, refuses a prewarmed
    // spare: "a spare is launched before its project is known". These two do not.)
    blockReadsOutsideWorkingDirectories: true,
    blockWritesOutsideWorkingDirectories: true,
  };
  // Auto-memory lives in the CLI's project folder, which two users' folders can share (its name
  // turns every non-alphanumeric character into "-") and which the file-tool limits let through.
  const o: Pick<Options, 'sandbox' | 'settings' | 'disallowedTools'> = { settings: { permissions, autoMemoryEnabled: false } };
  if (p.sandbox) {
    const sandbox: SandboxSettings = {
      enabled: true,
      failIfUnavailable: true,
      allowUnsandboxedCommands: false,
      autoAllowBashIfSandboxed: false,
      // Everything is unreadable but the program folders; the session's folder and TMPDIR, which
      // the CLI lets commands write, stay readable (measured).
      // A deny below an allowed folder still hides it (measured), so an operator's wide read path
      // does not open the server's folders.
      filesystem: { denyRead: ['/', ...p.hiddenPaths], allowRead: p.readPaths },
      // The CLI needs the model's credentials; the commands it runs for a user do not see them (measured: unset there).
      ...(p.secretEnv.length > 0 ? { credentials: { envVars: p.secretEnv.map((name) => ({ name, mode: 'deny' as const })) } } : {}),
      ...(p.allowedDomains.length > 0 ? { network: { allowedDomains: p.allowedDomains } } : {}),
    };
    o.sandbox = sandbox;
  }
  // Fetching runs in the CLI, outside the sandbox: with no list of domains, no fetching either (with
  // one, the PreToolUse hook holds WebFetch to the list: see fetchAllowed).
  if (!p.fetchDomains) o.disallowedTools = ['WebFetch', 'WebSearch'];
  return o;
}

/** What /health shows of the sandbox. */
export interface SandboxState {
  mode: SandboxMode;
  enabled: boolean;
  /** Why it is off (SANDBOX=off, or SANDBOX=auto where it cannot run). */
  reason: string | null;
  network: string;
  allowed_domains: string[];
  read_paths: string[];
}

/**
 * Decides the policy at start. `required` (the default with API keys) refuses to start without a
 * working sandbox, with a one-line reason and the fix; `auto` (the default single-user) turns it
 * on where it runs; `off` is the operator's explicit choice. The file-tool limits hold in all three.
 */
export function decideIsolation(o: {
  mode: SandboxMode | undefined;
  singleUser: boolean;
  domains: string[];
  network: string;
  readPaths: string[] | undefined;
  /** Folders hidden from sandboxed commands (IsolationPolicy.hiddenPaths). */
  hiddenPaths: string[];
  /** Environment variables hidden from sandboxed commands (IsolationPolicy.secretEnv). */
  secretEnv?: string[];
  probe?: () => SandboxProbe;
}): { policy: IsolationPolicy; state: SandboxState; warnings: string[] } {
  const mode: SandboxMode = o.mode ?? (o.singleUser ? 'auto' : 'required');
  const warnings: string[] = [];
  const readPaths = o.readPaths ?? DEFAULT_READ_PATHS;
  let enabled = false;
  let reason: string | null = null;
  if (mode === 'off') {
    reason = 'SANDBOX=off';
    warnings.push(
      "SANDBOX=off: Bash commands run WITHOUT the CLI's sandbox; tool approvals are all that keeps users' commands from each other's files and the server's data",
    );
  } else {
    const p = (o.probe ?? probeSandbox)();
    if (p.ok) enabled = true;
    else if (mode === 'required') {
      throw new Error(
        `refusing to start: the CLI's sandbox cannot run (${p.reason}); fix: ${p.fix}${o.singleUser ? '' : " (SANDBOX=required is the default with API keys: users must not reach each other's files)"}`,
      );
    } else {
      reason = `${p.reason}; fix: ${p.fix}`;
      warnings.push(`SANDBOX=auto: the CLI's sandbox cannot run here (${p.reason}); Bash commands run WITHOUT it. Fix: ${p.fix}`);
    }
  }
  const policy: IsolationPolicy = {
    sandbox: enabled,
    allowedDomains: o.domains,
    fetchDomains: o.network !== 'none' && o.network !== 'model' && o.domains.length > 0,
    readPaths,
    hiddenPaths: o.hiddenPaths,
    secretEnv: o.secretEnv ?? ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN'],
  };
  return { policy, state: { mode, enabled, reason, network: o.network, allowed_domains: o.domains, read_paths: readPaths }, warnings };
}

/** Whether WebFetch may fetch `url` under a list of domains (`*.example.org` also matches example.org's subdomains only). */
export function fetchAllowed(url: unknown, domains: string[]): boolean {
  let host: string;
  try {
    host = new URL(String(url)).hostname.toLowerCase();
  } catch {
    return false;
  }
  return domains.some((d) => (d.startsWith('*.') ? host.endsWith(d.slice(1)) : host === d));
}
