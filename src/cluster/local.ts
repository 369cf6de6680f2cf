/**
 * @module cluster/local
 * The cluster of one (SQLite, or PostgreSQL with one replica configured as such): every lease is
 * this replica's and there is no one to tell anything.
 */
import type { Cluster } from './cluster.js';

/** One replica: every lease is this one's, nothing is sent. */
export function createLocalCluster(replicaId: string): Cluster {
  return {
    replicaId,
    shared: false,
    leaseMs: 0,
    acquire: async () => true,
    holds: () => true,
    holder: () => Promise.resolve(replicaId),
    release: async () => {},
    releaseExcept: async () => {},
    inherit: async () => {},
    state: () => ({ id: replicaId, shared: false, listening: true, leases: 0 }),
    claim: async (_name, value) => value,
    publish: () => {},
    onMessage: () => {},
    start: async () => {},
    stop: async () => {},
  };
}
