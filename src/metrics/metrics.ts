/**
 * @module metrics
 * Prometheus metrics (prom-client), one registry per app so that tests and several apps in
 * one process do not collide. Gauges read live figures when scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  turnQueued(): void;
  turnStarted(): void;
  turnFinished(status: string, seconds: number): void;
  firstEvent(seconds: number): void;
  /** A prewarmed spare was claimed by a new session, or refused the claim. */
  spareClaim(outcome: 'claimed' | 'refused'): void;
  /** Gauges read from live state at scrape time. */
  observe(
    read: () => {
      running: number;
      waiting: number;
      queued: number;
      warm: number;
      busy: number;
      spares: number;
      sse: number;
      leases: number;
      listening: number;
    },
  ): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const turns = new Counter({ name: 'css_turns_total', help: 'Turns by final status (and queued, started)', labelNames: ['status'], registers: [registry] });
  const duration = new Histogram({
    name: 'css_turn_duration_seconds',
    help: 'Time from a turn starting to run until it ends',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [registry],
  });
  const first = new Histogram({
    name: 'css_turn_first_event_seconds',
    help: 'Time from a turn starting to run until its first SDK message',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const claims = new Counter({
    name: 'css_spare_claims_total',
    help: 'Prewarmed spare processes claimed by new sessions, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  let read: Parameters<Metrics['observe']>[0] = () => ({ running: 0, waiting: 0, queued: 0, warm: 0, busy: 0, spares: 0, sse: 0, leases: 0, listening: 1 });
  const gauge = (name: string, help: string, key: keyof ReturnType<typeof read>) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read()[key]);
      },
    });
  gauge('css_turns_running', 'Turns running now', 'running');
  gauge('css_turns_waiting_for_slot', 'Turns waiting for an admission slot', 'waiting');
  gauge('css_turns_queued', 'Turns queued (waiting for their session or a slot)', 'queued');
  gauge('css_cli_warm_processes', 'Session CLI processes alive (warm or running)', 'warm');
  gauge('css_cli_busy_processes', 'CLI processes running a turn', 'busy');
  gauge('css_cli_spare_processes', 'Prewarmed spare CLI processes ready', 'spares');
  gauge('css_sse_subscribers', 'Open event streams', 'sse');
  gauge('css_replica_leases', 'Sessions whose lease this replica holds (PostgreSQL)', 'leases');
  gauge('css_replica_listening', '1 while this replica hears the others (LISTEN/NOTIFY); always 1 alone', 'listening');
  return {
    registry,
    turnQueued: () => turns.inc({ status: 'queued' }),
    turnStarted: () => turns.inc({ status: 'started' }),
    turnFinished(status, seconds) {
      turns.inc({ status });
      if (status !== 'cancelled') duration.observe(seconds);
    },
    firstEvent: (s) => first.observe(s),
    spareClaim: (outcome) => claims.inc({ outcome }),
    observe(fn) {
      read = fn;
    },
  };
}
