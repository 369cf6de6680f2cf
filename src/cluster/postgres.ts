/**
 * @module cluster/postgres
 * Replicas over one PostgreSQL: leases are rows renewed by a heartbeat (a replica that cannot
 * renew in time stops running its sessions first), and messages go through LISTEN/NOTIFY on one
 * channel, by a listener that reconnects with backoff and makes everyone look again after.
 */
import pg from 'pg';
import type { FastifyBaseLogger } from 'fastify';
import type { LeaseRepository } from '../storage/leases-repo.js';
import { retryOnConnectionLoss } from '../storage/db.js';
import { CHANNEL, type Cluster, type ClusterHooks, type ClusterMessage } from './cluster.js';

export function createPgCluster(o: { leases: LeaseRepository; databaseUrl: string; replicaId: string; leaseMs: number; log: FastifyBaseLogger }): Cluster {
  const { leases, replicaId, leaseMs, log } = o;
  /** Leases this replica holds: when each was last renewed, and last asked for. */
  const held = new Map<string, { renewedAt: number; usedAt: number }>();
  const handlers: Array<(m: ClusterMessage) => void> = [];
  let listener: pg.Client | null = null;
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  let hooks: ClusterHooks | null = null;
  /** When every held lease was last renewed together (the fence: past 2/3 of a lease, this replica stops). */
  let lastRenewal = Date.now();

  function deliver(m: ClusterMessage) {
    for (const h of handlers) {
      try {
        h(m);
      } catch (err) {
        log.error({ err }, 'cluster message handler failed');
      }
    }
  }

  /** Connects the listener, retrying with backoff until it works or the cluster stops. */
  async function listen(attempt = 0): Promise<void> {
    if (stopped) return;
    const client = new pg.Client({ connectionString: o.databaseUrl, keepAlive: true });
    client.on('notification', (n) => {
      if (n.channel !== CHANNEL || !n.payload) return;
      let m: (ClusterMessage & { from?: string }) | null = null;
      try {
        m = JSON.parse(n.payload) as ClusterMessage & { from?: string };
      } catch {
        return;
      }
      if (m.from !== replicaId) deliver(m);
    });
    client.on('error', (err) => {
      if (listener !== client) return;
      listener = null;
      log.warn({ err }, 'cluster listener connection lost; reconnecting');
      client.end().catch(() => {});
      void listen(1);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      client.end().catch(() => {});
      if (stopped) return;
      const wait = Math.min(5_000, 250 * 2 ** Math.min(attempt, 5));
      log.warn({ err, retry_ms: wait }, 'cluster listener could not connect; retrying');
      await new Promise((r) => setTimeout(r, wait).unref());
      return listen(attempt + 1);
    }
    listener = client;
    // Notices sent while it was away are lost: everyone waiting here looks again.
    if (attempt > 0) hooks?.resync();
  }

  async function renew(): Promise<void> {
    if (!hooks) return;
    const mine = [...held.keys()];
    const before = Date.now();
    let kept: Set<string>;
    try {
      kept = new Set(await retryOnConnectionLoss(() => leases.renew(replicaId, mine, leaseMs), 3));
    } catch (err) {
      // Not renewed: past 2/3 of a lease another replica may soon take these sessions, so this one
      // stops running them first (a fence against two replicas running one session).
      if (mine.length > 0 && Date.now() - lastRenewal > (leaseMs * 2) / 3) {
        log.error({ err, sessions: mine.length }, 'could not renew leases in time; stopping the sessions held here');
        held.clear();
        hooks.lost(mine);
      } else log.warn({ err }, 'could not renew leases; retrying');
      return;
    }
    lastRenewal = before;
    for (const id of kept) {
      const h = held.get(id);
      if (h) h.renewedAt = before;
    }
    const lost = mine.filter((id) => !kept.has(id));
    for (const id of lost) held.delete(id);
    if (lost.length > 0) {
      log.warn({ sessions: lost.length }, 'leases taken over by another replica');
      hooks.lost(lost);
    }
    // Leases of sessions with nothing live here any more go back (not one taken a moment ago).
    const active = hooks.active();
    const idle = [...held.entries()].filter(([id, h]) => !active.has(id) && Date.now() - h.usedAt > leaseMs / 3).map(([id]) => id);
    if (idle.length > 0) {
      for (const id of idle) held.delete(id);
      await leases.release(replicaId, idle);
    }
  }

  /** Runs `fn` every `ms` unless its previous run is still going. */
  function every(ms: number, fn: () => Promise<void>, what: string, slot: { p: Promise<void> | null }) {
    const t = setInterval(() => {
      if (slot.p || stopped) return;
      slot.p = fn()
        .catch((err) => log.error({ err }, `cluster ${what} failed`))
        .finally(() => {
          slot.p = null;
        });
    }, ms);
    t.unref();
    timers.push(t);
  }
  const renewSlot = { p: null as Promise<void> | null };
  const sweepSlot = { p: null as Promise<void> | null };

  const cluster: Cluster = {
    replicaId,
    shared: true,
    leaseMs,

    claim: (name, value) => leases.claimSetting(name, value),

    async acquire(sessionId) {
      const now = Date.now();
      const h = held.get(sessionId);
      // Renewed a moment ago (well within the lease): no round trip.
      if (h && now - h.renewedAt < leaseMs / 3) {
        h.usedAt = now;
        return true;
      }
      // A lost connection is retried: a turn whose approval just came in must not fail for it.
      const ok = await retryOnConnectionLoss(() => leases.acquire(sessionId, replicaId, leaseMs));
      if (ok) {
        held.set(sessionId, { renewedAt: now, usedAt: now });
        // Newly taken: whatever this replica kept of the session from an earlier hold is stale.
        if (!h) hooks?.taken(sessionId);
      } else held.delete(sessionId);
      return ok;
    },

    state: () => ({ id: replicaId, shared: true, listening: listener !== null || !hooks, leases: held.size }),

    holder: (sessionId) => leases.holder(sessionId),
    holds(sessionId) {
      return held.has(sessionId);
    },

    async release(sessionId) {
      held.delete(sessionId);
      await leases.release(replicaId, [sessionId]);
    },

    async releaseExcept(keep) {
      const idle = [...held.keys()].filter((id) => !keep.has(id));
      for (const id of idle) held.delete(id);
      await leases.release(replicaId, idle);
    },

    async inherit(previous) {
      const now = Date.now();
      for (const id of await leases.transfer(previous, replicaId, leaseMs)) held.set(id, { renewedAt: now, usedAt: now });
    },

    publish(m) {
      if (stopped) return;
      leases.notify(CHANNEL, JSON.stringify({ ...m, from: replicaId })).catch((err) => log.warn({ err, kind: m.k }, 'could not notify the other replicas'));
    },

    onMessage(fn) {
      handlers.push(fn);
    },

    async start(h) {
      hooks = h;
      await listen();
      const period = Math.max(100, Math.floor(leaseMs / 3));
      // Renewal on its own timer: a long sweep never delays it.
      every(period, renew, 'lease renewal', renewSlot);
      every(period, () => hooks!.sweep(), 'sweep', sweepSlot);
    },

    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
      await renewSlot.p;
      await sweepSlot.p;
      // Leases go back at once: another replica can take the sessions up without waiting.
      const mine = [...held.keys()];
      held.clear();
      await leases.release(replicaId, mine).catch(() => {});
      const l = listener;
      listener = null;
      await l?.end().catch(() => {});
    },
  };
  return cluster;
}
