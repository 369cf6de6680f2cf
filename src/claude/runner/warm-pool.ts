/**
 * @module claude/runner/warm-pool
 * Sessions' CLI processes between turns. A process stays open after a turn (streaming-input
 * mode) for `warmIdleMs`; past `maxWarm` the least recently used idle ones are closed. Each
 * session's latest process is kept until it has ended, however it was closed: a new one for the
 * session starts only after it, since its exit writes to the transcript (its last messages and
 * the cost total the new one starts from).
 */
import type { LiveSession } from '../live-session.js';
import type { RunnerOptions } from './types.js';

export interface WarmPool {
  /** The session's live process (warm or running a turn), its idle timer stopped. */
  take(sessionId: string): LiveSession | undefined;
  /** The session's live process, left as it is. */
  get(sessionId: string): LiveSession | undefined;
  /** A process (new, or kept) now serves the session. */
  set(s: LiveSession): void;
  /** Closes the session's process (if idle, or `evenBusy`) and forgets it. */
  drop(sessionId: string, evenBusy?: boolean): void;
  /** Forgets a process that has died (nothing to close). */
  forget(s: LiveSession): void;
  /** A new process of the session: armed to be ended at once and given the interrupt grace. */
  adopt(s: LiveSession): LiveSession;
  /** Called when a process ends. */
  onEnd(s: LiveSession): void;
  /** The session's latest process, until it has ended. */
  latest(sessionId: string): LiveSession | undefined;
  /** The process's pid, learned when it was spawned. */
  spawned(sessionId: string, pid: number): void;
  /** After a turn: keep the process for warmIdleMs, and close the least recently used past maxWarm. */
  park(s: LiveSession): void;
  /** Whether the session has a live process, or one still ending. */
  holds(sessionId: string): boolean;
  sessions(): string[];
  all(): LiveSession[];
  /** Forgets every process and stops every idle timer (shutdown); the processes are returned to close. */
  clear(): LiveSession[];
}

export function createWarmPool(opts: Pick<RunnerOptions, 'warmIdleMs' | 'maxWarm' | 'interruptGraceMs' | 'processes' | 'onEvent'>): WarmPool {
  const warmIdleMs = opts.warmIdleMs ?? 0;
  const maxWarm = opts.maxWarm ?? 0;
  const live = new Map<string, LiveSession>();
  const idleTimers = new Map<string, NodeJS.Timeout>();
  const latest = new Map<string, LiveSession>();
  /** Each session's latest CLI process id (to end one that answers nothing). */
  const pidOf = new Map<string, number>();

  const stopTimer = (sessionId: string) => {
    clearTimeout(idleTimers.get(sessionId));
    idleTimers.delete(sessionId);
  };

  const pool: WarmPool = {
    take(sessionId) {
      clearTimeout(idleTimers.get(sessionId));
      return live.get(sessionId);
    },
    get: (sessionId) => live.get(sessionId),
    set(s) {
      live.set(s.sessionId, s);
    },
    drop(sessionId, evenBusy = false) {
      const s = live.get(sessionId);
      if (!s || (s.busy && !evenBusy)) return;
      clearTimeout(idleTimers.get(sessionId));
      s.close();
      live.delete(sessionId);
    },
    forget(s) {
      if (live.get(s.sessionId) === s) live.delete(s.sessionId);
    },
    adopt(s) {
      s.interruptGraceMs = opts.interruptGraceMs ?? 5_000;
      s.kill = () => {
        const pid = pidOf.get(s.sessionId);
        if (pid) opts.processes?.kill(pid);
      };
      latest.set(s.sessionId, s);
      return s;
    },
    onEnd(s) {
      if (live.get(s.sessionId) === s) live.delete(s.sessionId);
      if (latest.get(s.sessionId) === s) {
        latest.delete(s.sessionId);
        pidOf.delete(s.sessionId);
      }
      stopTimer(s.sessionId);
    },
    latest: (sessionId) => latest.get(sessionId),
    spawned(sessionId, pid) {
      pidOf.set(sessionId, pid);
    },
    park(s) {
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
    },
    holds: (sessionId) => live.has(sessionId) || latest.has(sessionId),
    sessions: () => [...live.keys()],
    all: () => [...live.values()],
    clear() {
      for (const t of idleTimers.values()) clearTimeout(t);
      const all = [...live.values()];
      live.clear();
      return all;
    },
  };
  return pool;
}
