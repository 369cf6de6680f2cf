/**
 * @module webhooks/service
 * Webhooks: endpoints a user registers for events (an admin's may take every user's), an outbox
 * written when an event happens, and a dispatcher on each replica that sends what is due, at
 * least once, retried with exponential backoff until the endpoint answers 2xx or a day has passed.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { AppError } from '../errors.js';
import { addressesOf, isClosedAddress } from '../network.js';
import type { Caller } from '../auth/access.js';
import type { Cluster } from '../cluster/cluster.js';
import { encodeCursor, decodeCursor } from '../storage/cursor.js';
import type { DeliveryRow, WebhookRepository, WebhookRow } from '../storage/webhooks-repo.js';
import { attempt, newSecret, type AttemptResult } from './deliver.js';
import { WEBHOOK_EVENTS, type CreateWebhookBody, type Delivery, type Webhook, type WebhookEvent } from './schemas.js';

export interface WebhookService {
  create(caller: Caller, body: CreateWebhookBody): Promise<Webhook & { secret: string }>;
  list(caller: Caller): Promise<{ webhooks: Webhook[] }>;
  get(caller: Caller, webhookId: string): Promise<Webhook>;
  remove(caller: Caller, webhookId: string): Promise<Webhook>;
  deliveries(
    caller: Caller,
    webhookId: string,
    q: { limit: number; cursor?: string | undefined },
  ): Promise<{ deliveries: Delivery[]; next_cursor: string | null }>;
  /** Whether any endpoint is told of events of this type (from memory: no query on the path of every turn). */
  wants(type: WebhookEvent): Promise<boolean>;
  /** An event of `userId`'s (about `sessionId`): a message for each endpoint told of it (never throws; a failure is logged). */
  emit(type: WebhookEvent, userId: string, data: unknown, sessionId?: string | null): Promise<void>;
  /** The messages about a purged session go (delivered or not). */
  forgetSession(sessionId: string): Promise<void>;
  /** Waits for the messages being queued now (before the database closes). */
  settled(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export interface WebhookSettings {
  /** WEBHOOK_ALLOW_PRIVATE: endpoints on loopback, private or link-local addresses are allowed. */
  allowPrivate: boolean;
  /** The first retry's delay; each next one doubles, at most MAX_RETRY_GAP_MS apart. */
  retryBaseMs: number;
  /** How long a message is retried before it is given up (a day). */
  retryForMs: number;
  /** Most endpoints one user may have. */
  maxPerUser: number;
}

const MAX_RETRY_GAP_MS = 8 * 3600_000;
const ATTEMPT_TIMEOUT_MS = 10_000;
/** A replica holds a message this long while it sends it; after that another may take it up. */
const HOLD_MS = ATTEMPT_TIMEOUT_MS + 20_000;
const BATCH = 16;
const POLL_MS = 1_000;
/** Messages that ended are kept this long in the delivery log, then removed (looked at hourly). */
export const DELIVERY_LOG_KEEP_MS = 7 * 86_400_000;
const PRUNE_EVERY_MS = 3_600_000;
/**
 * The endpoints are read once and kept in memory until one is made or removed (here, or on another
 * replica: it says so through the cluster), and at most this long: with replicas, an endpoint made on
 * another one is seen once its notice arrives (milliseconds), or after a second if the notice was lost.
 */
const ENDPOINTS_KEEP_MS = { alone: 10_000, replicas: 1_000 };

/** The delay before attempt `n + 1`, after `n` failed ones. */
export function retryDelay(n: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, n - 1), MAX_RETRY_GAP_MS);
}

const invalid = (field: string, message: string) => new AppError('INVALID_REQUEST', `${field}: ${message}`, { details: { field } });

function present(row: WebhookRow): Webhook {
  return {
    webhook_id: row.webhook_id,
    user_id: row.user_id,
    all_users: row.all_users === 1,
    url: row.url,
    events: JSON.parse(row.events) as WebhookEvent[],
    description: row.description,
    created_at: new Date(Number(row.created_at)).toISOString(),
  };
}

function presentDelivery(r: DeliveryRow): Delivery {
  const iso = (n: number | null) => (n === null ? null : new Date(Number(n)).toISOString());
  return {
    delivery_id: r.delivery_id,
    event_type: r.event_type as WebhookEvent,
    status: r.status,
    attempts: Number(r.attempts),
    next_attempt_at: r.status === 'pending' ? iso(r.next_attempt_at) : null,
    last_status_code: r.last_status_code,
    last_error: r.last_error,
    created_at: iso(r.created_at)!,
    finished_at: iso(r.finished_at),
  };
}

/** The events an endpoint is told of (none if its stored list is unreadable: one bad row spoils no other). */
function eventsOf(w: WebhookRow): Set<string> {
  try {
    return new Set(JSON.parse(w.events) as string[]);
  } catch {
    return new Set();
  }
}

export function createWebhookService(
  repo: WebhookRepository,
  s: WebhookSettings,
  log: FastifyBaseLogger,
  cluster?: Pick<Cluster, 'publish' | 'onMessage' | 'shared'>,
): WebhookService {
  const keepMs = cluster?.shared ? ENDPOINTS_KEEP_MS.replicas : ENDPOINTS_KEEP_MS.alone;
  let endpoints: { at: number; rows: Promise<Array<WebhookRow & { wants: Set<string> }>> } | null = null;
  const everyEndpoint = () => {
    if (!endpoints || Date.now() - endpoints.at > keepMs) {
      const rows = repo.all().then((all) => all.map((w) => ({ ...w, wants: eventsOf(w) })));
      const entry = { at: Date.now(), rows };
      endpoints = entry;
      rows.catch(() => {
        if (endpoints === entry) endpoints = null;
      });
    }
    return endpoints.rows;
  };
  const endpointsChanged = () => {
    endpoints = null;
    cluster?.publish({ k: 'webhooks' });
  };
  cluster?.onMessage((m) => {
    if (m.k === 'webhooks') endpoints = null;
  });
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = true;
  let prunedAt = 0;
  const inflight = new Set<Promise<void>>();

  async function owned(caller: Caller, webhookId: string): Promise<WebhookRow> {
    const row = await repo.get(webhookId);
    if (!row || (row.user_id !== caller.userId && !caller.admin)) throw new AppError('WEBHOOK_NOT_FOUND', `webhook ${webhookId} not found`);
    return row;
  }

  async function checkUrl(raw: string): Promise<void> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw invalid('body.url', `"${raw}" is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid('body.url', 'must be an http or https URL');
    if (url.username || url.password) throw invalid('body.url', 'must not carry credentials (the signature authenticates the server)');
    if (s.allowPrivate) return;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const addresses = await addressesOf(host);
    if (addresses.length === 0) throw invalid('body.url', `${url.hostname} does not resolve`);
    if (addresses.some(isClosedAddress)) {
      throw invalid('body.url', `${url.hostname} leads to a loopback, private or link-local address (allowed only with WEBHOOK_ALLOW_PRIVATE=1)`);
    }
  }

  /** Sends what is due until nothing is; then waits for the next poll or wake-up. */
  async function drain(): Promise<void> {
    if (Date.now() - prunedAt > PRUNE_EVERY_MS) {
      prunedAt = Date.now();
      const n = await repo.prune(prunedAt - DELIVERY_LOG_KEEP_MS);
      if (n > 0) log.info({ removed: n }, 'webhook delivery log: messages older than 7 days removed');
    }
    while (!stopped) {
      const due = await repo.claim(Date.now(), BATCH, HOLD_MS);
      if (due.length === 0) return;
      // Settled, not all: one failed write must not leave the others running past stop().
      const outcomes = await Promise.allSettled(
        due.map(async (d) => {
          const r: AttemptResult = await attempt(
            { url: d.url, secret: d.secret, id: d.delivery_id, body: d.payload },
            { allowPrivate: s.allowPrivate, timeoutMs: ATTEMPT_TIMEOUT_MS, userAgent: 'claude-session-server webhooks' },
          );
          const attempts = d.attempts + 1;
          const now = Date.now();
          const deadline = d.created_at + s.retryForMs;
          // The last attempt is at the end of the retry period (a day), whatever the doubling gives.
          const next = Math.min(now + retryDelay(attempts, s.retryBaseMs), deadline);
          const giveUp = !r.ok && now >= deadline;
          await repo.record(d.delivery_id, d.claimed_until ?? 0, {
            status: r.ok ? 'delivered' : giveUp ? 'failed' : 'pending',
            attempts,
            next_attempt_at: r.ok || giveUp ? now : next,
            last_status_code: r.status,
            last_error: r.error,
            finished_at: r.ok || giveUp ? now : null,
          });
          if (!r.ok) log.debug({ webhook_id: d.webhook_id, delivery_id: d.delivery_id, attempts, error: r.error }, 'webhook delivery failed');
          if (giveUp) log.warn({ webhook_id: d.webhook_id, delivery_id: d.delivery_id, attempts }, 'webhook message given up after retrying for a day');
        }),
      );
      for (const o of outcomes) if (o.status === 'rejected') log.error({ err: o.reason }, 'could not record a webhook attempt');
    }
  }

  function wake(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .catch((err: unknown) => log.error({ err }, 'webhook dispatch failed'))
      .finally(() => {
        running = null;
        if (again) {
          again = false;
          wake();
        }
      });
  }

  async function queue(type: WebhookEvent, userId: string, data: unknown, sessionId: string | null): Promise<void> {
    try {
      const targets = (await everyEndpoint()).filter((w) => (w.user_id === userId || w.all_users === 1) && w.wants.has(type));
      if (targets.length === 0) return;
      const now = Date.now();
      await repo.enqueue(
        targets.map((w) => {
          const id = randomUUID();
          return {
            delivery_id: id,
            webhook_id: w.webhook_id,
            session_id: sessionId,
            event_type: type,
            payload: JSON.stringify({ type, timestamp: new Date(now).toISOString(), data }),
            status: 'pending' as const,
            attempts: 0,
            next_attempt_at: now,
            claimed_until: null,
            last_status_code: null,
            last_error: null,
            created_at: now,
            finished_at: null,
          };
        }),
      );
      wake();
    } catch (err) {
      log.error({ err, type, user_id: userId }, 'could not queue a webhook message');
    }
  }

  return {
    async create(caller, body) {
      const userId = caller.userId;
      if (body.all_users && !caller.admin) throw invalid('body.all_users', 'may only be set by an admin');
      const events = [...new Set(body.events)];
      await checkUrl(body.url);
      if ((await repo.countOf(userId)) >= s.maxPerUser) throw invalid('body', `a user may have at most ${s.maxPerUser} webhooks; delete one first`);
      const row: WebhookRow = {
        webhook_id: randomUUID(),
        user_id: userId,
        all_users: body.all_users ? 1 : 0,
        url: body.url,
        events: JSON.stringify(events),
        description: body.description ?? null,
        secret: newSecret(),
        created_at: Date.now(),
      };
      await repo.create(row);
      endpointsChanged();
      log.info({ webhook_id: row.webhook_id, user_id: userId, events }, 'webhook created');
      return { ...present(row), secret: row.secret };
    },

    async list(caller) {
      return { webhooks: (await repo.list(caller.admin ? null : caller.userId)).map(present) };
    },

    async get(caller, webhookId) {
      return present(await owned(caller, webhookId));
    },

    async remove(caller, webhookId) {
      const row = await owned(caller, webhookId);
      await repo.remove(webhookId);
      endpointsChanged();
      log.info({ webhook_id: webhookId }, 'webhook deleted');
      return present(row);
    },

    async deliveries(caller, webhookId, q) {
      await owned(caller, webhookId);
      const rows = await repo.deliveries(webhookId, q.limit + 1, q.cursor ? decodeCursor(q.cursor) : undefined);
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      return {
        deliveries: page.map(presentDelivery),
        next_cursor: rows.length > q.limit && last ? encodeCursor(Number(last.created_at), last.delivery_id) : null,
      };
    },

    async wants(type) {
      return (await everyEndpoint()).some((w) => w.wants.has(type));
    },

    emit(type, userId, data, sessionId = null) {
      const p = queue(type, userId, data, sessionId);
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      return p;
    },

    forgetSession: (sessionId) => repo.forgetSession(sessionId),

    async settled() {
      await Promise.allSettled(inflight);
    },

    start() {
      stopped = false;
      // Due retries, and what another replica queued: looked for every second (an indexed query).
      timer = setInterval(wake, POLL_MS);
      timer.unref();
      wake();
    },

    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      await running;
    },
  };
}

export { WEBHOOK_EVENTS };
