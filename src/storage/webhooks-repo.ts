/**
 * @module storage/webhooks-repo
 * Webhook endpoints and their outbox. A message is one row per endpoint, written when the event
 * happens and sent until the endpoint answers 2xx or it is given up: a restart or another replica
 * goes on with what is due. A replica takes a due row by setting `claimed_until` (PostgreSQL:
 * `for update skip locked`, so two replicas never take the same row at once).
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, WebhookDeliveriesTable, WebhooksTable } from './schema.js';
import type { Dialect } from './db.js';

export type WebhookRow = Selectable<WebhooksTable>;
export type DeliveryRow = Selectable<WebhookDeliveriesTable>;
/** A due delivery with where it goes and how it is signed. */
export type DueDelivery = DeliveryRow & { url: string; secret: string };

export interface WebhookRepository {
  create(row: WebhookRow): Promise<void>;
  get(webhookId: string): Promise<WebhookRow | undefined>;
  /** A user's own endpoints (all of them: `userId` null), oldest first. */
  list(userId: string | null): Promise<WebhookRow[]>;
  countOf(userId: string): Promise<number>;
  /** Removes an endpoint and its outbox. */
  remove(webhookId: string): Promise<void>;
  /** Every endpoint (few: at most 50 a user). */
  all(): Promise<WebhookRow[]>;
  enqueue(rows: DeliveryRow[]): Promise<void>;
  /** Takes up to `limit` due deliveries for `holdMs` (others may take them after). */
  claim(now: number, limit: number, holdMs: number): Promise<DueDelivery[]>;
  /**
   * The outcome of an attempt: delivered, failed for good, or due again (pending). Written only while
   * the claim is still this one (`claimedUntil`): a replica too slow to keep it does not overwrite another's outcome.
   */
  record(
    deliveryId: string,
    claimedUntil: number,
    r: Pick<DeliveryRow, 'status' | 'attempts' | 'next_attempt_at' | 'last_status_code' | 'last_error' | 'finished_at'>,
  ): Promise<void>;
  /** Removes the messages about a session (it was purged), but its session.deleted notice. */
  forgetSession(sessionId: string): Promise<void>;
  /** Removes messages that ended (delivered or given up) before `before`; how many. */
  prune(before: number): Promise<number>;
  /** An endpoint's messages, newest first, before (created_at, id). */
  deliveries(webhookId: string, limit: number, before?: { at: number; id: string }): Promise<DeliveryRow[]>;
}

export function createWebhookRepository(db: Kysely<Database>, dialect: Dialect): WebhookRepository {
  return {
    async create(row) {
      await db.insertInto('webhooks').values(row).execute();
    },
    async get(webhookId) {
      return db.selectFrom('webhooks').selectAll().where('webhook_id', '=', webhookId).executeTakeFirst();
    },
    async list(userId) {
      let q = db.selectFrom('webhooks').selectAll();
      if (userId !== null) q = q.where('user_id', '=', userId);
      return q.orderBy('created_at').orderBy('webhook_id').execute();
    },
    async countOf(userId) {
      const r = await db
        .selectFrom('webhooks')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow();
      return Number(r.n);
    },
    async remove(webhookId) {
      await db.transaction().execute(async (tx) => {
        await tx.deleteFrom('webhook_deliveries').where('webhook_id', '=', webhookId).execute();
        await tx.deleteFrom('webhooks').where('webhook_id', '=', webhookId).execute();
      });
    },
    async all() {
      return db.selectFrom('webhooks').selectAll().execute();
    },
    async enqueue(rows) {
      if (rows.length > 0) await db.insertInto('webhook_deliveries').values(rows).execute();
    },
    async claim(now, limit, holdMs) {
      // Looked for every second on each replica: a read first, so an idle server takes no write lock.
      const any = await db
        .selectFrom('webhook_deliveries')
        .select('delivery_id')
        .where('status', '=', 'pending')
        .where('next_attempt_at', '<=', now)
        .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
        .limit(1)
        .executeTakeFirst();
      if (!any) return [];
      const lock = dialect === 'postgres' ? sql`for update skip locked` : sql``;
      const taken = await sql<DeliveryRow>`
        update webhook_deliveries set claimed_until = ${now + holdMs}
        where delivery_id in (
          select delivery_id from webhook_deliveries
          where status = 'pending' and next_attempt_at <= ${now} and (claimed_until is null or claimed_until < ${now})
          order by next_attempt_at limit ${limit} ${lock})
        returning *`.execute(db);
      if (taken.rows.length === 0) return [];
      const hooks = await db
        .selectFrom('webhooks')
        .select(['webhook_id', 'url', 'secret'])
        .where(
          'webhook_id',
          'in',
          taken.rows.map((r) => r.webhook_id),
        )
        .execute();
      const byId = new Map(hooks.map((h) => [h.webhook_id, h]));
      // Messages of an endpoint deleted meanwhile (queued as it was deleted) go.
      const orphans = taken.rows.filter((r) => !byId.has(r.webhook_id)).map((r) => r.delivery_id);
      if (orphans.length > 0) await db.deleteFrom('webhook_deliveries').where('delivery_id', 'in', orphans).execute();
      return taken.rows.flatMap((r) => {
        const h = byId.get(r.webhook_id);
        return h
          ? [{ ...r, attempts: Number(r.attempts), next_attempt_at: Number(r.next_attempt_at), created_at: Number(r.created_at), url: h.url, secret: h.secret }]
          : [];
      });
    },
    async record(deliveryId, claimedUntil, r) {
      await db
        .updateTable('webhook_deliveries')
        .set({ ...r, claimed_until: null })
        .where('delivery_id', '=', deliveryId)
        .where('claimed_until', '=', claimedUntil)
        .execute();
    },
    async forgetSession(sessionId) {
      await db.deleteFrom('webhook_deliveries').where('session_id', '=', sessionId).where('event_type', '!=', 'session.deleted').execute();
    },
    async prune(before) {
      const r = await db.deleteFrom('webhook_deliveries').where('status', '!=', 'pending').where('finished_at', '<', before).executeTakeFirst();
      return Number(r.numDeletedRows);
    },
    async deliveries(webhookId, limit, before) {
      let q = db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId);
      if (before) {
        q = q.where((eb) => eb.or([eb('created_at', '<', before.at), eb.and([eb('created_at', '=', before.at), eb('delivery_id', '<', before.id)])]));
      }
      const rows = await q.orderBy('created_at', 'desc').orderBy('delivery_id', 'desc').limit(limit).execute();
      return rows.map((r) => ({ ...r, attempts: Number(r.attempts), created_at: Number(r.created_at), next_attempt_at: Number(r.next_attempt_at) }));
    },
  };
}
