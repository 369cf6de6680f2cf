/**
 * @module claude/runner
 * Runs turns through the SDK. Every option the server depends on is set explicitly (cwd,
 * permission mode, isolation from host settings, verbatim prompts, a private TMPDIR, the model
 * endpoint). A session's CLI process stays open after a turn (warm, streaming-input mode) for
 * `warmIdleMs`; the least recently used ones are closed past `maxWarm`. New sessions can take a
 * prewarmed spare whose session id was chosen up front. The runner keeps every live process so
 * that shutdown can end them all.
 * Over 400 lines for now: its split into the warm pool, the spare pool and query options is
 * issue 14, step 1 (still open).
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { prewarm, query, type CanUseTool, type HookJSONOutput, type Options, type PreToolUseHookInput, type SDKMessage, type SpareProcess } from '@anthropic-ai/claude-agent-sdk';
import { AppError } from '../errors.js';
import type { PermissionMode } from './permission-mode.js';
import { Inbox, LiveSession, type TurnOutcome } from './live-session.js';
import type { ProcessRegistry } from './processes.js';
import { COST_STATE_MARK, savedCostInEntries, savedCostInFile } from './cost.js';
import { projectDirName, transcriptPath } from './paths.js';
import { assertRealFolder, childEnv, sessionTmpDir, tmpDirOf } from './child-env.js';

export type { TurnOutcome } from './live-session.js';
export { childEnv, SERVER_ONLY_ENV, sweepTmpDir } from './child-env.js';
export type { PreToolUseHookInput } from '@anthropic-ai/claude-agent-sdk';

/** How the CLI reaches a model. */
export interface ModelEndpoint {
  backend: 'anthropic' | 'offline';
  baseUrl?: string | undefined;
  apiKey?: string | undefined;
  authToken?: string | undefined;
}

export interface RunnerOptions {
  configDir: string;
  /**
   * Folder of the CLI processes' private TMPDIRs (resume copies land there; swept at start). Each
   * session gets one of its own below it, the same for all its processes (a deferred tool call
   * resumes only in the TMPDIR it was deferred in, measured): its sandboxed commands may write
   * their TMPDIR, and no other session's must be there to read.
   */
  tmpDir: string;
  /** The isolation policy's SDK options (sandbox, file-tool limits), the same for every process. */
  isolation?: Pick<Options, 'sandbox' | 'settings' | 'disallowedTools'>;
  model: ModelEndpoint;
  /** Operator opt-in: IS_SANDBOX=1 for the CLI, which allows bypassPermissions as root. */
  sandboxOptIn: boolean;
  turnTimeoutMs: number;
  /** How long a session's process stays open after a turn; 0 closes it at once. */
  warmIdleMs?: number;
  /** Most warm processes kept; least recently used idle ones are closed first. */
  maxWarm?: number;
  /** Prewarmed spare processes kept ready for new sessions. */
  spares?: number;
  /** How long an interrupt waits for the CLI before its process is ended (INTERRUPT_GRACE_MS). */
  interruptGraceMs?: number;
  /** Mirrors transcripts for other replicas (the SDK's sessionStore). */
  sessionStore?: Options['sessionStore'];
  /** The store's entries of a transcript whose text contains `text`, in order (the transcript is not loaded whole). */
  storedEntriesContaining?: (key: { projectKey: string; sessionId: string }, text: string) => Promise<Array<Record<string, unknown>>>;
  /** Most a turn may spend (SDK maxBudgetUsd). */
  maxBudgetUsd?: number | undefined;
  /** false: prompts get @file expansion and slash commands (default: verbatim). */
  verbatimPrompts?: boolean;
  /** Starts CLI processes in their own process group and records them. */
  processes?: ProcessRegistry;
  /** Decides tool-permission requests of a session (SDK `canUseTool`). */
  canUseTool?: (sessionId: string) => CanUseTool | undefined;
  /** The PreToolUse hook of every session (tool approvals); answers the SDK's hook output shape. */
  onPreToolUse?: (sessionId: string, input: PreToolUseHookInput) => Promise<object>;
  /**
   * Checked before a session's process starts (cold, or claiming a spare), every time: whatever
   * queued, deferred or resumed the turn, it runs only where the session may run. Throws to refuse.
   */
  beforeStart?: (spec: TurnSpec) => void | Promise<void>;
  /** Called with each line the CLI writes on stderr. */
  onStderr?: (line: string) => void;
  onEvent?: (e: RunnerEvent) => void;
}

export type RunnerEvent =
  | { type: 'spare_claimed'; sessionId: string }
  | { type: 'spare_claim_refused'; sessionId: string; reason: string }
  | { type: 'warm_closed'; sessionId: string; why: 'idle' | 'lru' };

export interface TurnSpec {
  sessionId: string;
  /** The session's owner (for the runner's beforeStart check). */
  userId?: string;
  cwd: string;
  prompt: string;
  /** false for the first turn of a session (the CLI creates it with this id). */
  resume: boolean;
  permissionMode: PermissionMode;
  model?: string | null | undefined;
  systemPrompt?: string | null | undefined;
  /** Title for a new session. */
  title?: string | null | undefined;
  /** Receives every SDK message of the turn as it arrives (awaited: messages stay in order). */
  onMessage?: (m: SDKMessage) => unknown;
  /** Resume the session with no prompt: its last turn deferred a tool call, which now runs. */
  continueDeferred?: boolean;
}

export interface RunnerStats {
  /** Live session processes (warm or running a turn). */
  warm: number;
  /** Processes running a turn right now. */
  busy: number;
  /** Spare processes parked and ready (unreserved). */
  spares: number;
  /** Spares reserved by a new session that has not run its first turn yet. */
  reserved: number;
}

export interface ClaudeRunner {
  /** Runs a turn to its end. Throws AppError SESSION_NOT_FOUND when the CLI does not know a resumed id. */
  runTurn(spec: TurnSpec): Promise<TurnOutcome>;
  /** Interrupts the running turn of a session; false when none runs here. */
  interrupt(sessionId: string, reason?: { code: string; message: string }): Promise<boolean>;
  /**
   * A session id bound to a parked spare process, for a new session: its first turn claims the
   * spare instead of starting a process. Null when no spare is ready.
   */
  reserveSpare(): string | null;
  /** Closes the process of a session (warm or reserved spare), if any. */
  release(sessionId: string): void;
  /** Resolves once the session's latest process here has ended (at once when it has none). */
  ended(sessionId: string): Promise<void>;
  stats(): RunnerStats;
  /** Closes a session's warm process (not a reserved spare, not one running a turn): its view is stale. */
  discardWarm(sessionId: string): void;
  /** Sessions with a live process here (warm or running a turn). */
  liveSessions(): string[];
  /** Closes every live process; running turns end `interrupted` with `reason`. */
  closeAll(reason?: { code: string; message: string }): Promise<void>;
}

interface Spare {
  sessionId: string;
  spare: SpareProcess;
  ready: boolean;
  reservedAt: number | null;
  timer: NodeJS.Timeout | null;
}

export function createClaudeRunner(opts: RunnerOptions): ClaudeRunner {
  fs.mkdirSync(opts.tmpDir, { recursive: true });
  const baseEnv = childEnv(opts);
  const warmIdleMs = opts.warmIdleMs ?? 0;
  const maxWarm = opts.maxWarm ?? 0;
  const spareTarget = opts.spares ?? 0;
  const live = new Map<string, LiveSession>();
  const idleTimers = new Map<string, NodeJS.Timeout>();
  const spares = new Map<string, Spare>();
  /** Each session's latest CLI process id (to end one that answers nothing). */
  const pidOf = new Map<string, number>();

  /** Gives a session's process the means to be ended at once, and the interrupt grace. */
  function arm(s: LiveSession): LiveSession {
    s.interruptGraceMs = opts.interruptGraceMs ?? 5_000;
    s.kill = () => {
      const pid = pidOf.get(s.sessionId);
      if (pid) opts.processes?.kill(pid);
    };
    return s;
  }
  /** Sessions whose turn is being started (no busy process yet), and interrupts that arrived then. */
  const starting = new Set<string>();
  const wantInterrupt = new Map<string, { code: string; message: string } | undefined>();
  let closing = false;

  /** Options every CLI process gets, whatever the session. */
  function hostOptions(sessionIdForCallbacks: () => string, tmp: string): Options {
    const o: Options = {
      ...opts.isolation,
      settingSources: [],
      verbatimPrompts: opts.verbatimPrompts ?? true,
      includePartialMessages: true,
      env: { ...baseEnv, TMPDIR: tmp },
      stderr: (data) => {
        for (const line of data.split('\n')) if (line.trim()) opts.onStderr?.(line);
      },
    };
    if (opts.maxBudgetUsd !== undefined) o.maxBudgetUsd = opts.maxBudgetUsd;
    if (opts.sessionStore) o.sessionStore = opts.sessionStore;
    if (opts.processes) {
      o.spawnClaudeCodeProcess = (s) => {
        const child = opts.processes!.spawn(s);
        const pid = (child as unknown as { pid?: number }).pid;
        if (pid) pidOf.set(sessionIdForCallbacks(), pid);
        return child;
      };
    }
    if (opts.onPreToolUse) {
      const hook = opts.onPreToolUse;
      o.hooks = { PreToolUse: [{ hooks: [async (input) => (await hook(sessionIdForCallbacks(), input as PreToolUseHookInput)) as HookJSONOutput] }] };
    }
    if (opts.canUseTool) {
      o.canUseTool = (name, input, ctx) => {
        const fn = opts.canUseTool!(sessionIdForCallbacks());
        if (!fn) return Promise.resolve({ behavior: 'deny', message: 'no approver is attached to this session', toolUseID: ctx.toolUseID });
        return fn(name, input, ctx);
      };
    }
    return o;
  }

  /**
   * Each session's latest process until it has ended, however it was closed (idle, LRU, deferred
   * call, release): a new one for the session starts only after it, since its exit writes to the
   * transcript (its last messages and the cost total the new one starts from).
   */
  const latest = new Map<string, LiveSession>();

  function onEnd(s: LiveSession) {
    if (live.get(s.sessionId) === s) live.delete(s.sessionId);
    if (latest.get(s.sessionId) === s) {
      latest.delete(s.sessionId);
      pidOf.delete(s.sessionId);
    }
    clearTimeout(idleTimers.get(s.sessionId));
    idleTimers.delete(s.sessionId);
  }

  function startCold(spec: TurnSpec): LiveSession {
    assertRealFolder(spec.cwd);
    const inbox = new Inbox();
    const o: Options = { ...hostOptions(() => spec.sessionId, sessionTmpDir(opts.tmpDir, spec.sessionId)), cwd: spec.cwd, permissionMode: spec.permissionMode };
    if (spec.permissionMode === 'bypassPermissions') {
      o.allowDangerouslySkipPermissions = true;
      delete o.canUseTool; // never consulted in this mode (the SDK warns when it is set)
    }
    if (spec.resume) o.resume = spec.sessionId;
    else {
      o.sessionId = spec.sessionId;
      if (spec.title) o.title = spec.title;
    }
    if (spec.model) o.model = spec.model;
    if (spec.systemPrompt) o.systemPrompt = { type: 'preset', preset: 'claude_code', append: spec.systemPrompt };
    const q = query({ prompt: inbox, options: o });
    const s = arm(new LiveSession(spec.sessionId, spec.cwd, q, inbox, { model: spec.model ?? null, systemPrompt: spec.systemPrompt ?? null }, spec.permissionMode, false, onEnd));
    if (spec.resume) s.cost.startFrom(savedCost(spec.sessionId, spec.cwd));
    latest.set(spec.sessionId, s);
    return s;
  }

  /** The running cost total a resumed CLI starts from, read from the copy it resumes. */
  async function savedCost(sessionId: string, cwd: string): Promise<number> {
    if (opts.sessionStore) {
      const key = { projectKey: projectDirName(cwd), sessionId };
      // Every entry that can hold the total contains the mark, so the candidates give the same answer as the whole.
      const entries = opts.storedEntriesContaining ? await opts.storedEntriesContaining(key, COST_STATE_MARK) : ((await opts.sessionStore.load(key)) as Array<Record<string, unknown>> | null);
      return savedCostInEntries(entries, sessionId);
    }
    return (await savedCostInFile(transcriptPath(opts.configDir, cwd, sessionId), sessionId)) ?? 0;
  }

  function startFromSpare(s: Spare, spec: TurnSpec): LiveSession {
    assertRealFolder(spec.cwd);
    const inbox = new Inbox();
    const q = s.spare.claim({
      prompt: inbox,
      options: {
        cwd: spec.cwd,
        permissionMode: spec.permissionMode,
        ...(spec.model ? { model: spec.model } : {}),
        ...(spec.systemPrompt ? { appendSystemPrompt: spec.systemPrompt } : {}),
        ...(spec.title ? { title: spec.title } : {}),
      },
    });
    s.spare.claimed.then(
      (c) => {
        // The claim resolves the folder itself: one that is not the session's (a link swapped in) ends the process.
        if (c.cwd !== spec.cwd) {
          claimed.close({ code: 'INVALID_PROJECT', message: `the session's folder ${spec.cwd} led to ${c.cwd} when its process started; it was stopped` });
          return;
        }
        opts.onEvent?.({ type: 'spare_claimed', sessionId: spec.sessionId });
      },
      (e: Error) => opts.onEvent?.({ type: 'spare_claim_refused', sessionId: spec.sessionId, reason: e.message }),
    );
    const claimed = arm(new LiveSession(spec.sessionId, spec.cwd, q, inbox, { model: spec.model ?? null, systemPrompt: spec.systemPrompt ?? null }, spec.permissionMode, true, onEnd));
    latest.set(spec.sessionId, claimed);
    return claimed;
  }

  function refillSpares() {
    if (closing) return;
    let missing = spareTarget - [...spares.values()].filter((s) => s.reservedAt === null).length;
    for (; missing > 0; missing--) {
      const sessionId = randomUUID();
      const entry: Spare = { sessionId, spare: null as unknown as SpareProcess, ready: false, reservedAt: null, timer: null };
      spares.set(sessionId, entry);
      prewarm({ options: { ...hostOptions(() => sessionId, sessionTmpDir(opts.tmpDir, sessionId)), sessionId, permissionMode: 'default' } })
        .then((spare) => {
          entry.spare = spare;
          entry.ready = true;
          if (closing) spare.close();
          // A parked spare that dies is replaced.
          void spare.exited.then(() => {
            if (spares.get(sessionId) === entry) {
              spares.delete(sessionId);
              refillSpares();
            }
          });
        })
        .catch(() => {
          spares.delete(sessionId);
          setTimeout(refillSpares, 5_000).unref();
        });
    }
  }
  refillSpares();

  function dropSpare(sessionId: string) {
    const s = spares.get(sessionId);
    if (!s) return;
    spares.delete(sessionId);
    if (s.timer) clearTimeout(s.timer);
    if (s.ready) s.spare.close();
  }

  /** After a turn: keep the process for warmIdleMs, and close the least recently used past maxWarm. */
  function park(s: LiveSession) {
    if (!s.alive) return;
    if (warmIdleMs <= 0 || maxWarm <= 0) {
      s.close();
      return;
    }
    clearTimeout(idleTimers.get(s.sessionId));
    const t = setTimeout(() => {
      if (!s.busy) {
        opts.onEvent?.({ type: 'warm_closed', sessionId: s.sessionId, why: 'idle' });
        s.close();
      }
    }, warmIdleMs);
    t.unref();
    idleTimers.set(s.sessionId, t);
    const idle = [...live.values()].filter((x) => !x.busy && x.alive).sort((a, b) => a.lastUsed - b.lastUsed);
    let over = live.size - maxWarm;
    for (const x of idle) {
      if (over <= 0) break;
      opts.onEvent?.({ type: 'warm_closed', sessionId: x.sessionId, why: 'lru' });
      x.close();
      live.delete(x.sessionId);
      over--;
    }
  }

  async function runOnce(s: LiveSession, spec: TurnSpec): Promise<TurnOutcome> {
    let kill: NodeJS.Timeout | undefined;
    let over = false;
    const timer = setTimeout(() => {
      void s.interrupt({ code: 'TURN_TIMEOUT', message: `the turn ran longer than ${opts.turnTimeoutMs} ms and was stopped` }).then(() => {
        if (over) return; // the turn ended meanwhile: its process may already serve the next one
        kill = setTimeout(() => s.forceStop({ code: 'TURN_TIMEOUT', message: 'the turn did not stop after an interrupt' }), 5_000);
        kill.unref();
      });
    }, opts.turnTimeoutMs);
    try {
      const turn = s.runTurn(spec.continueDeferred ? null : spec.prompt, spec.onMessage ?? (() => {}));
      starting.delete(spec.sessionId);
      if (wantInterrupt.has(spec.sessionId)) {
        const reason = wantInterrupt.get(spec.sessionId);
        wantInterrupt.delete(spec.sessionId);
        void s.interrupt(reason);
      }
      return await turn;
    } finally {
      over = true;
      clearTimeout(timer);
      clearTimeout(kill);
    }
  }

  async function runTurnNow(spec: TurnSpec): Promise<TurnOutcome> {
    let s = live.get(spec.sessionId);
    clearTimeout(idleTimers.get(spec.sessionId));
    if (s && spec.continueDeferred) {
      // A deferred call is taken up by a resumed process, as the SDK documents it; the old one
      // must be gone first (waited for below), or its exit would write to the transcript under the new one.
      s.close();
      live.delete(spec.sessionId);
      s = undefined;
    }
    if (s && (!s.alive || s.fingerprint.model !== (spec.model ?? null) || s.fingerprint.systemPrompt !== (spec.systemPrompt ?? null))) {
      s.close();
      live.delete(spec.sessionId);
      s = undefined;
    }
    if (s && !(await s.setMode(spec.permissionMode))) {
      s.close();
      live.delete(spec.sessionId);
      s = undefined;
    }
    if (!s) await opts.beforeStart?.(spec);
    const spare = spares.get(spec.sessionId);
    if (!s && spare && spare.ready && !spec.resume) {
      spares.delete(spec.sessionId);
      if (spare.timer) clearTimeout(spare.timer);
      s = startFromSpare(spare, spec);
    } else if (spare) {
      dropSpare(spec.sessionId);
    }
    if (!s) {
      // The session's previous process (closed for whatever reason) ends first.
      const previous = latest.get(spec.sessionId);
      if (previous) await Promise.race([previous.ended, new Promise((r) => setTimeout(r, 5_000))]);
      if (closing) throw new AppError('SHUTTING_DOWN', 'the server is shutting down', { retryAfter: 5 });
      s = startCold(spec);
    }
    live.set(spec.sessionId, s);
    let outcome = await runOnce(s, spec);
    if (outcome.notClaimed) {
      // The spare could not take this session: the prompt has not run; start cold with it.
      s.close();
      s = startCold(spec);
      live.set(spec.sessionId, s);
      outcome = await runOnce(s, spec);
    }
    if (outcome.notFound) {
      s.close();
      live.delete(spec.sessionId);
      throw new AppError('SESSION_NOT_FOUND', `the Claude Code CLI has no conversation with session id ${spec.sessionId} for ${spec.cwd}`);
    }
    if (outcome.status === 'failed' && !s.alive) live.delete(spec.sessionId);
    if (outcome.deferred) {
      // The turn waits for a person; its continuation runs in a resumed process, so this one goes.
      s.close();
      live.delete(spec.sessionId);
      return outcome;
    }
    park(s);
    return outcome;
  }

  return {
    async runTurn(spec) {
      if (closing) throw new AppError('SHUTTING_DOWN', 'the server is shutting down', { retryAfter: 5 });
      starting.add(spec.sessionId);
      try {
        return await runTurnNow(spec);
      } finally {
        starting.delete(spec.sessionId);
        wantInterrupt.delete(spec.sessionId);
      }
    },

    async interrupt(sessionId, reason) {
      const s = live.get(sessionId);
      if (s && s.busy) return s.interrupt(reason);
      if (starting.has(sessionId)) {
        // The turn is on its way to the process: stop it as soon as its prompt is sent.
        wantInterrupt.set(sessionId, reason);
        return true;
      }
      return false;
    },

    reserveSpare() {
      if (closing) return null;
      const s = [...spares.values()].find((x) => x.ready && x.reservedAt === null);
      if (!s) return null;
      s.reservedAt = Date.now();
      // Unclaimed for as long as a warm process would be kept: let it go.
      s.timer = setTimeout(() => dropSpare(s.sessionId), Math.max(warmIdleMs, 1_000));
      s.timer.unref();
      refillSpares();
      return s.sessionId;
    },

    release(sessionId) {
      dropSpare(sessionId);
      const s = live.get(sessionId);
      if (s && !s.busy) {
        s.close();
        live.delete(sessionId);
      }
      if (!s?.busy && !starting.has(sessionId)) {
        // The session is gone: its TMPDIR goes once its last process has ended.
        const last = latest.get(sessionId)?.ended ?? Promise.resolve();
        void last
          .then(async () => {
            // Not if the session started again meanwhile (its new process uses the same TMPDIR).
            if (live.has(sessionId) || starting.has(sessionId) || latest.has(sessionId) || spares.has(sessionId)) return;
            await fs.promises.rm(tmpDirOf(opts.tmpDir, sessionId), { recursive: true, force: true });
          })
          .catch(() => {});
      }
    },

    async ended(sessionId) {
      await latest.get(sessionId)?.ended;
    },

    discardWarm(sessionId) {
      const s = live.get(sessionId);
      if (s && !s.busy) {
        clearTimeout(idleTimers.get(sessionId));
        s.close();
        live.delete(sessionId);
      }
    },

    liveSessions() {
      return [...live.keys()];
    },

    stats() {
      const all = [...live.values()];
      const sp = [...spares.values()];
      return {
        warm: all.filter((s) => s.alive).length,
        // A turn on its way to a process counts: shutdown waits for it like for a running one.
        busy: new Set([...all.filter((s) => s.busy).map((s) => s.sessionId), ...starting]).size,
        spares: sp.filter((s) => s.ready && s.reservedAt === null).length,
        reserved: sp.filter((s) => s.reservedAt !== null).length,
      };
    },

    async closeAll(reason = { code: 'SERVER_SHUTDOWN', message: 'the server shut down while this turn was running' }) {
      closing = true;
      for (const t of idleTimers.values()) clearTimeout(t);
      for (const id of [...spares.keys()]) dropSpare(id);
      const all = [...live.values()];
      live.clear();
      for (const s of all) s.close(reason);
      await opts.processes?.killAll(3_000);
      // Their last messages read (the transcript store's last appends are made by then).
      await Promise.race([Promise.all(all.map((s) => s.ended)), new Promise((r) => setTimeout(r, 2_000).unref())]);
    },
  };
}
