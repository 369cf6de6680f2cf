/**
 * @module claude/runner
 * Runs turns through the SDK: one CLI process per session, kept warm between turns
 * (`warm-pool`), taken from a prewarmed spare for a new session (`spare-pool`), started with
 * options the server sets explicitly (`query-options`, `child-env`). The runner keeps every
 * live process so that shutdown can end them all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { query, type SpareProcess } from '@anthropic-ai/claude-agent-sdk';
import { AppError } from '../../errors.js';
import { Inbox, LiveSession, type TurnOutcome } from '../live-session.js';
import { COST_STATE_MARK, savedCostInEntries, savedCostInFile } from '../cost.js';
import { projectDirName, transcriptPath } from '../paths.js';
import { assertRealFolder, clearStaleSockets, tmpDirOf } from './child-env.js';
import type { ClaudeRunner, RunnerOptions, TurnSpec } from './types.js';
import { createQueryOptions } from './query-options.js';
import { createWarmPool } from './warm-pool.js';
import { createSparePool } from './spare-pool.js';
import { claimable, MCP_LAUNCHER_SOURCE, optionsKey, outputSchemaOf } from '../agent-options.js';

export type * from './types.js';
export { childEnv, SERVER_ONLY_ENV, sweepTmpDir } from './child-env.js';

export function createClaudeRunner(opts: RunnerOptions): ClaudeRunner {
  fs.mkdirSync(opts.tmpDir, { recursive: true });
  const warm = createWarmPool(opts);
  // The MCP launcher and its servers' homes: in the runner's folder, where no sandboxed command reaches.
  const launcherScript = path.join(opts.tmpDir, 'mcp-launcher.mjs');
  fs.writeFileSync(launcherScript, MCP_LAUNCHER_SOURCE, { mode: 0o644 });
  const launcher = (sessionId: string) => ({ node: process.execPath, script: launcherScript, home: path.join(opts.tmpDir, `mcp-${tmpDirOf('', sessionId)}`) });
  const options = createQueryOptions(opts, (sessionId, pid) => warm.spawned(sessionId, pid), launcher);
  const spares = createSparePool(opts.spares ?? 0, Math.max(opts.warmIdleMs ?? 0, 1_000), (id) => options.host(() => id));
  /** Sessions whose turn is being started (no busy process yet), and interrupts that arrived then. */
  const starting = new Set<string>();
  const wantInterrupt = new Map<string, { code: string; message: string } | undefined>();
  let closing = false;
  const onEnd = (s: LiveSession) => warm.onEnd(s);
  const fingerprint = (spec: TurnSpec) => ({ model: spec.model ?? null, options: optionsKey(spec.options, { outputSchema: spec.outputSchema }) });

  function startCold(spec: TurnSpec): LiveSession {
    assertRealFolder(spec.cwd);
    const inbox = new Inbox();
    const q = query({ prompt: inbox, options: options.cold(spec) });
    const s = warm.adopt(new LiveSession(spec.sessionId, spec.cwd, q, inbox, fingerprint(spec), spec.permissionMode, false, onEnd));
    if (spec.resume) s.cost.startFrom(savedCost(spec.sessionId, spec.cwd));
    return s;
  }

  /** The running cost total a resumed CLI starts from, read from the copy it resumes. */
  async function savedCost(sessionId: string, cwd: string): Promise<number> {
    if (opts.sessionStore) {
      const key = { projectKey: projectDirName(cwd), sessionId };
      // Every entry that can hold the total contains the mark, so the candidates give the same answer as the whole.
      const entries = opts.storedEntriesContaining
        ? await opts.storedEntriesContaining(key, COST_STATE_MARK)
        : ((await opts.sessionStore.load(key)) as Array<Record<string, unknown>> | null);
      return savedCostInEntries(entries, sessionId);
    }
    return (await savedCostInFile(transcriptPath(opts.configDir, cwd, sessionId), sessionId)) ?? 0;
  }

  function startFromSpare(spare: SpareProcess, spec: TurnSpec): LiveSession {
    assertRealFolder(spec.cwd);
    const inbox = new Inbox();
    const q = spare.claim({ prompt: inbox, options: options.claim(spec) });
    spare.claimed.then(
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
    const claimed = warm.adopt(new LiveSession(spec.sessionId, spec.cwd, q, inbox, fingerprint(spec), spec.permissionMode, true, onEnd));
    return claimed;
  }

  /** Runs one prompt (or a deferred call's continuation) in a process, bounded by the turn timeout. */
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
      const turn = s.runTurn(spec.continueDeferred ? null : (spec.content ?? spec.prompt), spec.onMessage ?? (() => {}));
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

  /** The session's process for this turn: the warm one if it still fits, else a spare's or a new one. */
  async function processFor(spec: TurnSpec): Promise<LiveSession> {
    const id = spec.sessionId;
    let s = warm.take(id);
    // A deferred call is taken up by a resumed process, as the SDK documents it; the old one
    // must be gone first (waited for below), or its exit would write to the transcript under the new one.
    const want = fingerprint(spec);
    // With a budget of the agent's, each turn gets a process of its own: the SDK counts a process's whole spend.
    const budgeted = spec.options?.max_budget_usd !== undefined && s !== undefined && s.turns > 0;
    const stale = s && (spec.continueDeferred || !s.alive || budgeted || s.fingerprint.model !== want.model || s.fingerprint.options !== want.options);
    if (s && (stale || !(await s.setMode(spec.permissionMode)))) {
      warm.drop(id, true);
      s = undefined;
    }
    if (s) {
      spares.drop(id);
      return s;
    }
    await opts.beforeStart?.(spec);
    // A spare takes only what a claim can set: other options need a process started with them.
    const spare = spec.resume || !claimable(spec.options, { outputSchema: spec.outputSchema }) ? (spares.drop(id), null) : spares.take(id);
    if (spare) return startFromSpare(spare, spec);
    // The session's previous process (closed for whatever reason) ends first.
    const previous = warm.latest(id);
    if (previous) await Promise.race([previous.ended, new Promise((r) => setTimeout(r, 5_000))]);
    if (closing) throw new AppError('SHUTTING_DOWN', 'the server is shutting down', { retryAfter: 5 });
    // Nothing of the session runs now (unless the previous one outlived the wait): its sockets go.
    if (!warm.latest(id)) await clearStaleSockets(opts.tmpDir, id);
    return startCold(spec);
  }

  async function runTurnNow(spec: TurnSpec): Promise<TurnOutcome> {
    let s = await processFor(spec);
    warm.set(s);
    let outcome = await runOnce(s, spec);
    if (outcome.notClaimed) {
      // The spare could not take this session: the prompt has not run; start cold with it.
      s.close();
      s = startCold(spec);
      warm.set(s);
      outcome = await runOnce(s, spec);
    }
    if (outcome.notFound) {
      warm.drop(spec.sessionId, true);
      throw new AppError('SESSION_NOT_FOUND', `the Claude Code CLI has no conversation with session id ${spec.sessionId} for ${spec.cwd}`);
    }
    if (outcome.status === 'failed' && !s.alive) warm.forget(s);
    if (outcome.status === 'succeeded' && !outcome.deferred && outcome.structuredOutput === undefined && outputSchemaOf(spec.options, spec)) {
      // The CLI gave up asking for an answer that matches the schema (it ends such a turn as a success).
      outcome = {
        ...outcome,
        status: 'failed',
        error: { code: 'STRUCTURED_OUTPUT_INVALID', message: `the model gave no answer that matches the output schema: ${outcome.result ?? ''}`.trim() },
      };
    }
    if (outcome.deferred) {
      // The turn waits for a person; its continuation runs in a resumed process, so this one goes.
      warm.drop(spec.sessionId, true);
      return outcome;
    }
    warm.park(s);
    return outcome;
  }

  return {
    async runTurn(spec) {
      if (closing) throw new AppError('SHUTTING_DOWN', 'the server is shutting down', { retryAfter: 5 });
      starting.add(spec.sessionId);
      try {
        if (spec.prepare) await spec.prepare();
        return await runTurnNow(spec);
      } finally {
        starting.delete(spec.sessionId);
        wantInterrupt.delete(spec.sessionId);
      }
    },

    async interrupt(sessionId, reason) {
      const s = warm.get(sessionId);
      if (s && s.busy) return s.interrupt(reason);
      if (starting.has(sessionId)) {
        // The turn is on its way to the process: stop it as soon as its prompt is sent.
        wantInterrupt.set(sessionId, reason);
        return true;
      }
      return false;
    },

    reserveSpare() {
      return closing ? null : spares.reserve();
    },

    release(sessionId) {
      spares.drop(sessionId);
      const busy = warm.get(sessionId)?.busy ?? false;
      warm.drop(sessionId);
      if (!busy && !starting.has(sessionId)) {
        // The session is gone: its TMPDIR goes once its last process has ended.
        const last = warm.latest(sessionId)?.ended ?? Promise.resolve();
        void last
          .then(async () => {
            // Not if the session started again meanwhile (its new process uses the same TMPDIR).
            if (warm.holds(sessionId) || starting.has(sessionId) || spares.has(sessionId)) return;
            await fs.promises.rm(tmpDirOf(opts.tmpDir, sessionId), { recursive: true, force: true });
          })
          .catch(() => {});
      }
    },

    async ended(sessionId) {
      await warm.latest(sessionId)?.ended;
    },

    discardWarm(sessionId) {
      warm.drop(sessionId);
    },

    liveSessions() {
      return warm.sessions();
    },

    stats() {
      const all = warm.all();
      return {
        warm: all.filter((s) => s.alive).length,
        // A turn on its way to a process counts: shutdown waits for it like for a running one.
        busy: new Set([...all.filter((s) => s.busy).map((s) => s.sessionId), ...starting]).size,
        ...spares.stats(),
      };
    },

    async closeAll(reason = { code: 'SERVER_SHUTDOWN', message: 'the server shut down while this turn was running' }) {
      closing = true;
      spares.close();
      const all = warm.clear();
      for (const s of all) s.close(reason);
      await opts.processes?.killAll(3_000);
      // Their last messages read (the transcript store's last appends are made by then).
      await Promise.race([Promise.all(all.map((s) => s.ended)), new Promise((r) => setTimeout(r, 2_000).unref())]);
    },
  };
}
