/**
 * @module storage/leases-repo
 * Session leases (PostgreSQL only): which replica runs a session, until when. Times are the
 * database's clock, so replicas with skewed clocks still agree on who holds what.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/** The database's clock in ms. */
export const dbNow = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

export interface LeaseRepository {
  /** Takes a free or expired lease, or renews one's own; true when `replicaId` holds it now. */
  acquire(sessionId: string, replicaId: string, leaseMs: number): Promise<boolean>;
  /** Renews the given leases of a replica; returns those it still held. */
  renew(replicaId: string, sessionIds: string[], leaseMs: number): Promise<string[]>;
  release(replicaId: string, sessionIds: string[]): Promise<void>;
  /** Moves every lease of `from` to `to`, renewed; returns the sessions. */
  transfer(from: string, to: string, leaseMs: number): Promise<string[]>;
  /** The replica whose lease on the session has not expired (null: none). */
  holder(sessionId: string): Promise<string | null>;
  /** Announces to every listening replica (NOTIFY). */
  notify(channel: string, payload: string): Promise<void>;
  /** The cluster's value of `name`: `value` when none was set yet (it is now), else the one set first. */
  claimSetting(name: string, value: string): Promise<string>;
}

export function createLeaseRepository(db: Kysely<Database>): LeaseRepository {
  return {
    async holder(sessionId) {
      const r = await sql<{ replica_id: string }>`
        select replica_id from session_leases where session_id = ${sessionId} and expires_at > ${dbNow}`.execute(db);
      return r.rows[0]?.replica_id ?? null;
    },
    async acquire(sessionId, replicaId, leaseMs) {
      const r = await sql<{ replica_id: string }>`
        insert into session_leases (session_id, replica_id, expires_at)
        values (${sessionId}, ${replicaId}, ${dbNow} + ${leaseMs})
        on conflict (session_id) do update set replica_id = excluded.replica_id, expires_at = excluded.expires_at
        where session_leases.replica_id = excluded.replica_id or session_leases.expires_at < ${dbNow}
        returning replica_id`.execute(db);
      return r.rows.length === 1;
    },
    async renew(replicaId, sessionIds, leaseMs) {
      if (sessionIds.length === 0) return [];
      const rows = await db
        .updateTable('session_leases')
        .set({ expires_at: sql<number>`${dbNow} + ${leaseMs}` })
        .where('replica_id', '=', replicaId)
        .where('session_id', 'in', sessionIds)
        .returning('session_id')
        .execute();
      return rows.map((r) => r.session_id);
    },
    async release(replicaId, sessionIds) {
      if (sessionIds.length === 0) return;
      await db.deleteFrom('session_leases').where('replica_id', '=', replicaId).where('session_id', 'in', sessionIds).execute();
    },
    async transfer(from, to, leaseMs) {
      const rows = await db
        .updateTable('session_leases')
        .set({ replica_id: to, expires_at: sql<number>`${dbNow} + ${leaseMs}` })
        .where('replica_id', '=', from)
        .returning('session_id')
        .execute();
      return rows.map((r) => r.session_id);
    },
    async claimSetting(name, value) {
      await db
        .insertInto('cluster_settings')
        .values({ name, value })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      const row = await db.selectFrom('cluster_settings').select('value').where('name', '=', name).executeTakeFirstOrThrow();
      return row.value;
    },
    async notify(channel, payload) {
      await sql`select pg_notify(${channel}, ${payload})`.execute(db);
    },
  };
}
