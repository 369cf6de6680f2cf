/**
 * @module turns/engine/deps
 * What the engine is given, and the context its modules share.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ClaudeRunner } from '../../claude/runner/index.js';
import type { SessionRepository, SessionRow } from '../../storage/sessions-repo.js';
import type { TurnRepository } from '../../storage/turns-repo.js';
import type { EventLog } from '../../events/log.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { Cluster } from '../../cluster/cluster.js';
import type { Admission } from './admission.js';
import type { EngineState } from './state.js';
import type { TurnBounds } from './bounds.js';
import type { TurnWaiters } from './waiters.js';
import type { FolderStates } from '../../workspace/snapshots.js';

/** What the engine asks of tool approvals: a deferred tool call waits for its request to be settled. */
export interface ApprovalWaits {
  /** Resolves once the session's request for this tool call is decided (here or on another replica). */
  settled(sessionId: string, toolUseId: string): Promise<unknown>;
  /** Denies what the session has pending; how many were. */
  denyPending(sessionId: string, by: string): Promise<number>;
  /** Turns an allowed request into a denial (interrupted after the decision, before the call ran). */
  revoke(sessionId: string, toolUseId: string, by: string): Promise<void>;
  /** Takes over the pending requests of a session whose replica is gone. */
  adopt(sessionId: string): Promise<Array<{ turn_id: string; tool_use_id: string }>>;
  /** Every waiting request looks again (a decision's notice may have been lost). */
  recheckAll(): Promise<void>;
}

export interface TurnEngineDeps {
  sessions: SessionRepository;
  turns: TurnRepository;
  events: EventLog;
  runner: ClaudeRunner;
  metrics: Metrics;
  log: FastifyBaseLogger;
  limits: {
    /** Turns running at once in this process (MAX_CONCURRENT_TURNS); the rest wait for a slot. */
    maxConcurrent: number;
    /** Turns that may wait (queued) in this process at most; 429 beyond. */
    maxQueued: number;
    /** Per-user cap on turns running or waiting here; 429 beyond (and a turn waits for a slot at it). */
    userMaxConcurrent?: number | undefined;
  };
  /** Whether the session's transcript exists (on this disk or in the transcript store). */
  transcriptExists(session: SessionRow): Promise<boolean>;
  /** This server process, recorded on the turns it runs. */
  runnerId: string;
  approvals: ApprovalWaits;
  /** The replicas' leases and messages (with SQLite, a cluster of one). */
  cluster: Cluster;
  /**
   * The turn running in each session, written by the engine and read by the tool-approval hook
   * (created before both, so neither needs the other).
   */
  runningTurns?: Map<string, string>;
  /** Before a session is resumed in a new process (the transcript store copies a local-only transcript). */
  prepareResume?(session: SessionRow): Promise<void>;
  /** Snapshots of session folders: what each turn changed (absent: not kept). */
  snapshots?: FolderStates;
  /** After a session's first turn wrote its transcript. */
  onStarted?(session: SessionRow): Promise<void>;
}

/** The engine's deps and its shared parts, handed to each of its modules. */
export interface EngineContext extends TurnEngineDeps {
  admission: Admission;
  state: EngineState;
  bounds: TurnBounds;
  waiters: TurnWaiters;
}
