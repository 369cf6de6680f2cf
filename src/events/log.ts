/**
 * @module events/log
 * The event log of each session: the contract both implementations keep. Every event gets the
 * session's next number and is announced to live subscribers at once; `local.ts` (one process)
 * writes in small batches and serves unwritten events from memory, `shared.ts` (several
 * replicas over PostgreSQL) numbers events where they are written.
 */
export type EventType = 'turn' | 'message' | 'permission_request' | 'permission_resolved' | 'error' | 'files_changed' | 'done';

export interface SessionEvent {
  seq: number;
  session_id: string;
  turn_id: string | null;
  type: EventType;
  readonly data: unknown;
  /** The data's JSON text, when the event was read back from the database. */
  raw?: string;
  created_at: number;
}

export interface EventLog {
  /**
   * Numbers, announces and queues an event for writing. `data` is stored as it is when written
   * (a little later): callers hand it over and do not change it afterwards. Returns the event itself when the
   * session's numbering is already known (the common case), else a promise of it.
   */
  append(sessionId: string, turnId: string | null, type: EventType, data: unknown): SessionEvent | Promise<SessionEvent>;
  /**
   * Appends a queued turn's `turn` event unless the turn has left the queue meanwhile (taken up by
   * another replica's actor): false then, and nothing is appended. Over PostgreSQL the turn's status
   * is read under the session's numbering lock, the lock its `running` event is numbered under
   * after the claim, so a log never says running before queued. One process: always appended (the
   * engine's actor waits for it, turns/engine/state.ts `announcing`).
   */
  appendQueued(sessionId: string, turnId: string, data: unknown): Promise<boolean>;
  /** The number of a turn's `done` event (written or not yet), null while the turn has none. */
  doneSeq(sessionId: string, turnId: string): Promise<number | null>;
  /** The number of the session's newest event (written or not yet); 0 when it has none. */
  lastSeq(sessionId: string): Promise<number>;
  /**
   * Events after `afterSeq` (of one turn, when given), oldest first: written or not yet. `limit` bounds
   * the rows read: a row of packed partials gives all of its events after the position, so a page
   * may hold more events than `limit`, never fewer while more are stored.
   */
  after(sessionId: string, afterSeq: number, opts?: { turnId?: string | undefined; limit?: number }): Promise<SessionEvent[]>;
  /**
   * Live events of a session; returns the unsubscribe function. `null` means "events were
   * stored elsewhere (another replica): read them with `after()`".
   */
  subscribe(sessionId: string, fn: (e: SessionEvent | null) => void): () => void;
  /** Tells the session's live subscribers that another replica stored events. */
  poke(sessionId: string): void;
  /** Tells every live subscriber to read the log again (notices from other replicas may have been lost). */
  pokeAll(): void;
  /**
   * True when live events arrive complete and in order (one writer per log), so a subscriber
   * may send them as they come; false when it must read them back in order with `after()`.
   */
  readonly direct: boolean;
  /** Writes everything still in memory (before the database closes). */
  flush(): Promise<void>;
  /**
   * Before a purge: drops the session's events not yet written and waits for a write in flight,
   * so nothing of it reaches the database after its rows are deleted.
   */
  drop(sessionId: string): Promise<void>;
  /** Number of live subscriptions. */
  readonly subscribers: number;
}

/** Where the log reads an ended turn's result back from (the turns table). */
export type TurnResults = (turnIds: string[]) => Promise<Map<string, string | null>>;
