/**
 * @module storage/transcript-store
 * A transcript store for the SDK's `sessionStore` option, kept in the server's database, so that
 * a replica whose disk never saw a session can still resume it. Appends are idempotent on the
 * entry's `uuid` and serialized per session (a transaction; under PostgreSQL an advisory lock).
 * A read of a transcript waits for this process's appends to it that are still being written: the
 * SDK hands a process's last entries (its cost total) to `append` as the process ends, and a read
 * right after (the next process's start) must see them.
 * The shapes mirror the SDK's SessionStore contract structurally; only `claude/` imports the SDK.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { Dialect } from './db.js';

export interface StoreKey {
  projectKey: string;
  sessionId: string;
  subpath?: string;
}
export interface StoreEntry {
  type: string;
  uuid?: string;
  [k: string]: unknown;
}

export interface TranscriptStore {
  append(key: StoreKey, entries: StoreEntry[]): Promise<void>;
  load(key: StoreKey): Promise<StoreEntry[] | null>;
  /** The entries of a transcript whose stored text contains `text`, in order (none: empty). */
  entriesContaining(key: StoreKey, text: string): Promise<StoreEntry[]>;
  listSessions(projectKey: string): Promise<Array<{ sessionId: string; mtime: number }>>;
  delete(key: StoreKey): Promise<void>;
  listSubkeys(key: { projectKey: string; sessionId: string }): Promise<string[]>;
  /**
   * A purged session: appends to it are dropped from now on (a closing process may still hand
   * over its last entries), those in flight are waited for, and every stored entry is removed.
   */
  purge(sessionId: string): Promise<void>;
  /** Whether any transcript of this session is stored (whatever its project key). */
  has(sessionId: string): Promise<boolean>;
  /** Resolves once the appends being written now are (at shutdown, before the database closes). */
  settled(): Promise<void>;
}

export function createTranscriptStore(db: Kysely<Database>, dialect: Dialect): TranscriptStore {
  const sub = (k: StoreKey) => k.subpath ?? '';
  const keyOf = (k: StoreKey) => `${k.projectKey}/${k.sessionId}/${sub(k)}`;
  /** Sessions purged here: their late appends are dropped (bounded: the oldest are forgotten). */
  const purged = new Set<string>();
  /** Appends being written, per transcript. */
  const writing = new Map<string, Set<Promise<void>>>();

  /** A transcript's entries in order; with `containing`, only those whose stored text contains it. */
  async function entriesOf(key: StoreKey, containing?: string): Promise<StoreEntry[]> {
    const pending = writing.get(keyOf(key));
    if (pending) await Promise.allSettled(pending);
    let q = db
      .selectFrom('transcript_entries')
      .select('entry')
      .where('project_key', '=', key.projectKey)
      .where('session_id', '=', key.sessionId)
      .where('subpath', '=', sub(key))
      .orderBy('seq', 'asc');
    if (containing !== undefined) {
      // LIKE's own wildcards in the text are taken literally.
      const pattern = `%${containing.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      q = q.where(sql<boolean>`entry like ${pattern} escape '\\'`);
    }
    return (await q.execute()).map((r) => JSON.parse(r.entry) as StoreEntry);
  }
  async function write(key: StoreKey, entries: StoreEntry[]): Promise<void> {
    await db.transaction().execute(async (tx) => {
      if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${keyOf(key)}))`.execute(tx);
      const last = await tx
        .selectFrom('transcript_entries')
        .select((eb) => eb.fn.max('seq').as('m'))
        .where('project_key', '=', key.projectKey)
        .where('session_id', '=', key.sessionId)
        .where('subpath', '=', sub(key))
        .executeTakeFirst();
      let seq = Number(last?.m ?? 0);
      const now = Date.now();
      const rows = entries.map((e) => ({
        project_key: key.projectKey,
        session_id: key.sessionId,
        subpath: sub(key),
        seq: ++seq,
        uuid: typeof e.uuid === 'string' ? e.uuid : null,
        entry: JSON.stringify(e),
        created_at: now,
      }));
      for (let i = 0; i < rows.length; i += 500) {
        // A replayed entry (same uuid) is skipped, not duplicated.
        await tx
          .insertInto('transcript_entries')
          .values(rows.slice(i, i + 500))
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
    });
  }

  return {
    async append(key, entries) {
      if (entries.length === 0 || purged.has(key.sessionId)) return;
      const k = keyOf(key);
      const set = writing.get(k) ?? new Set<Promise<void>>();
      writing.set(k, set);
      const done = write(key, entries);
      set.add(done);
      try {
        await done;
      } finally {
        set.delete(done);
        if (set.size === 0 && writing.get(k) === set) writing.delete(k);
      }
    },
    async load(key) {
      const entries = await entriesOf(key);
      return entries.length === 0 ? null : entries;
    },
    // Filtered where the rows are: a long transcript is not shipped whole to find a few entries.
    entriesContaining: (key, text) => entriesOf(key, text),
    async listSessions(projectKey) {
      const rows = await db
        .selectFrom('transcript_entries')
        .select(['session_id', (eb) => eb.fn.max('created_at').as('mtime')])
        .where('project_key', '=', projectKey)
        .where('subpath', '=', '')
        .groupBy('session_id')
        .execute();
      return rows.map((r) => ({ sessionId: r.session_id, mtime: Math.floor(Number(r.mtime)) }));
    },
    async delete(key) {
      let q = db.deleteFrom('transcript_entries').where('project_key', '=', key.projectKey).where('session_id', '=', key.sessionId);
      if (key.subpath) q = q.where('subpath', '=', key.subpath);
      await q.execute();
    },
    async listSubkeys(key) {
      const rows = await db
        .selectFrom('transcript_entries')
        .select('subpath')
        .distinct()
        .where('project_key', '=', key.projectKey)
        .where('session_id', '=', key.sessionId)
        .where('subpath', '!=', '')
        .execute();
      return rows.map((r) => r.subpath);
    },
    async settled() {
      await Promise.allSettled([...writing.values()].flatMap((set) => [...set]));
    },
    async purge(sessionId) {
      purged.add(sessionId);
      if (purged.size > 10_000) purged.delete(purged.values().next().value!);
      await Promise.allSettled([...writing.entries()].filter(([k]) => k.includes(`/${sessionId}/`)).flatMap(([, set]) => [...set]));
      await db.deleteFrom('transcript_entries').where('session_id', '=', sessionId).execute();
    },
    async has(sessionId) {
      return Boolean(await db.selectFrom('transcript_entries').select('seq').where('session_id', '=', sessionId).limit(1).executeTakeFirst());
    },
  };
}
