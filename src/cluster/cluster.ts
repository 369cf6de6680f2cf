/**
 * @module cluster/cluster
 * Several replicas over one PostgreSQL, with nothing else shared. A session is run by the
 * replica holding its lease (a row in `session_leases`, renewed by that replica's heartbeat and
 * free for the taking once expired, by the database's clock); replicas tell each other what
 * happened through LISTEN/NOTIFY on one channel. Notifications only wake replicas up: every
 * decision is read back from the database, and a periodic sweep covers any notification lost
 * to a dropped connection.
 *
 * This file is the contract; `postgres.ts` implements it over PostgreSQL, and with SQLite there
 * is one replica: `local.ts` holds every lease and sends nothing.
 */

/** What one replica tells the others (a NOTIFY payload, well under its 8000-byte limit). */
export type ClusterMessage =
  /** A turn was queued on a session this replica may hold: its actor should look. */
  | { k: 'queued'; s: string }
  /** Stop turn `t` of session `s` (sent to the replica running it). */
  | { k: 'interrupt'; s: string; t: string }
  /** New events of session `s` are stored: live subscribers read them. */
  | { k: 'events'; s: string }
  /** The permission request for tool call `tu` of session `s` was decided. */
  | { k: 'settled'; s: string; tu: string }
  /** Turn `t` of session `s` ended (or was cancelled): whoever waits for it reads it. */
  | { k: 'finished'; s: string; t: string }
  /** Session `s` (folder `cwd`) was purged: every replica removes its own copy of the transcript. */
  | { k: 'purged'; s: string; cwd: string }
  /** Replica `r` has removed what it held of purged session `s` (the purging replica waits for the one that ran it). */
  | { k: 'unheld'; s: string; r: string }
  /** A webhook endpoint was made or removed: replicas read the endpoints again. */
  | { k: 'webhooks' };

/** What the cluster asks of the rest of the server at each heartbeat. */
export interface ClusterHooks {
  /** Sessions with something live here (an actor, a warm process): their leases are kept. */
  active(): Set<string>;
  /** Leases another replica took: what runs or stays warm here for them must stop. */
  lost(sessionIds: string[]): void;
  /** Periodically: take up what dead replicas left (their running and queued turns), reconcile. */
  sweep(): Promise<void>;
  /** A lease newly taken (not renewed): what this replica kept of the session is stale. */
  taken(sessionId: string): void;
  /** The listener reconnected: notices may have been lost, so everything waiting looks again. */
  resync(): void;
}

export interface Cluster {
  readonly replicaId: string;
  /** True when other replicas may share the database (PostgreSQL). */
  readonly shared: boolean;
  readonly leaseMs: number;
  /** Takes or renews the lease of a session; true when this replica holds it now. */
  acquire(sessionId: string): Promise<boolean>;
  /** Whether this replica believes it holds the lease (no round trip). */
  holds(sessionId: string): boolean;
  /** The replica whose lease on the session is unexpired now (a round trip; null: none). */
  holder(sessionId: string): Promise<string | null>;
  /** Lets a session's lease go at once (the session was deleted). */
  release(sessionId: string): Promise<void>;
  /** Lets every lease go but those of `keep` (shutting down: others may take the idle sessions). */
  releaseExcept(keep: Set<string>): Promise<void>;
  /** Takes over every lease still held under `replicaId` (this data folder's previous process). */
  inherit(replicaId: string): Promise<void>;
  /** For /health: whether this replica hears the others, and how many leases it holds. */
  state(): { id: string; shared: boolean; listening: boolean; leases: number };
  /** A fact every replica must agree on: `value` when none was set yet (it is now), else the one set first. */
  claim(name: string, value: string): Promise<string>;
  /** Sends a message to the other replicas (not to this one); errors are logged, not thrown. */
  publish(m: ClusterMessage): void;
  /** Receives the other replicas' messages. */
  onMessage(fn: (m: ClusterMessage) => void): void;
  start(hooks: ClusterHooks): Promise<void>;
  stop(): Promise<void>;
}

export const CHANNEL = 'css_cluster';
