/**
 * @module storage/migrations
 * Schema migrations, written once with Kysely's schema builder so that the same steps run
 * on SQLite and PostgreSQL. Append new migrations; never edit one that has shipped.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';

const migrations: Record<string, Migration> = {
  '0001_sessions_and_turns': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('sessions')
        .addColumn('session_id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(200)', (c) => c.notNull())
        .addColumn('session_name', 'text')
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('cwd', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_active', 'bigint', (c) => c.notNull())
        .addColumn('turn_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('total_cost_usd', 'double precision', (c) => c.notNull().defaultTo(0))
        .addColumn('input_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('output_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('first_prompt', 'text')
        .addColumn('tag', 'text')
        .addColumn('permission_mode', 'varchar(32)', (c) => c.notNull())
        .addColumn('model', 'text')
        .addColumn('system_prompt', 'text')
        .addColumn('started', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      // The list query: a user's sessions by newest activity, paged by (last_active, session_id).
      await db.schema.createIndex('sessions_user_activity').on('sessions').columns(['user_id', 'last_active', 'session_id']).execute();
      await db.schema.createIndex('sessions_user_status_activity').on('sessions').columns(['user_id', 'status', 'last_active', 'session_id']).execute();

      await db.schema
        .createTable('turns')
        .addColumn('turn_id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('session_id', 'varchar(36)', (c) => c.notNull().references('sessions.session_id').onDelete('cascade'))
        .addColumn('user_id', 'varchar(200)', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('prompt', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('error_code', 'varchar(64)')
        .addColumn('error_message', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('finished_at', 'bigint')
        .addColumn('duration_ms', 'integer')
        .addColumn('cost_usd', 'double precision')
        .addColumn('input_tokens', 'bigint')
        .addColumn('output_tokens', 'bigint')
        .execute();
      await db.schema.createIndex('turns_session_seq').on('turns').columns(['session_id', 'seq']).unique().execute();
      // One writer per session, enforced by the database itself: at most one running turn.
      await db.schema.createIndex('turns_one_running_per_session').on('turns').column('session_id').unique().where(sql.ref('status'), '=', 'running').execute();
    },
  },
  '0002_events': {
    async up(db: Kysely<any>) {
      // The event log of every session: numbered per session, replayed by SSE after Last-Event-ID.
      await db.schema
        .createTable('events')
        .addColumn('session_id', 'varchar(36)', (c) => c.notNull().references('sessions.session_id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('turn_id', 'varchar(36)')
        .addColumn('type', 'varchar(32)', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('events_pk', ['session_id', 'seq'])
        .execute();
      await db.schema.createIndex('events_turn').on('events').columns(['turn_id', 'seq']).execute();
      await db.schema.alterTable('turns').addColumn('permission_mode', 'varchar(32)').execute();
      await db.schema.createIndex('turns_status').on('turns').columns(['status', 'session_id', 'seq']).execute();
    },
  },
  '0003_api_keys_and_permissions': {
    async up(db: Kysely<any>) {
      // API keys made with `npm run keys`: only a SHA-256 of the key is kept.
      await db.schema
        .createTable('api_keys')
        .addColumn('key_id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(200)', (c) => c.notNull())
        .addColumn('key_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('label', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();
      // Tool-permission requests: stored, so that a pending one outlives the process.
      await db.schema
        .createTable('permission_requests')
        .addColumn('request_id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('session_id', 'varchar(36)', (c) => c.notNull().references('sessions.session_id').onDelete('cascade'))
        .addColumn('turn_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('user_id', 'varchar(200)', (c) => c.notNull())
        .addColumn('tool_use_id', 'varchar(200)', (c) => c.notNull())
        .addColumn('tool_name', 'varchar(200)', (c) => c.notNull())
        .addColumn('input', 'text', (c) => c.notNull())
        .addColumn('suggestions', 'text', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('scope', 'varchar(16)')
        .addColumn('updated_input', 'text')
        .addColumn('message', 'text')
        .addColumn('decided_by', 'varchar(200)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('decided_at', 'bigint')
        .execute();
      await db.schema.createIndex('permission_requests_session').on('permission_requests').columns(['session_id', 'status']).execute();
      await db.schema.createIndex('permission_requests_tool_use').on('permission_requests').columns(['session_id', 'tool_use_id']).execute();
      // Rules allowed "for the rest of the session" (scope: session), kept across CLI processes.
      await db.schema
        .createTable('session_rules')
        .addColumn('session_id', 'varchar(36)', (c) => c.notNull().references('sessions.session_id').onDelete('cascade'))
        .addColumn('tool_name', 'varchar(200)', (c) => c.notNull())
        .addColumn('rule_content', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('session_rules_pk', ['session_id', 'tool_name', 'rule_content'])
        .execute();
    },
  },
  '0004_replicas_and_transcript_store': {
    async up(db: Kysely<any>) {
      // Which server process runs a turn: after a crash, only its own turns are failed.
      await db.schema.alterTable('turns').addColumn('runner_id', 'varchar(36)').execute();
      // Transcripts mirrored through the SDK's sessionStore, so another replica can resume them.
      await db.schema
        .createTable('transcript_entries')
        .addColumn('project_key', 'varchar(300)', (c) => c.notNull())
        .addColumn('session_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('subpath', 'varchar(300)', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('uuid', 'varchar(64)')
        .addColumn('entry', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('transcript_entries_pk', ['project_key', 'session_id', 'subpath', 'seq'])
        .execute();
      await db.schema
        .createIndex('transcript_entries_uuid')
        .on('transcript_entries')
        .columns(['project_key', 'session_id', 'subpath', 'uuid'])
        .unique()
        .where(sql.ref('uuid'), 'is not', null)
        .execute();
      await db.schema.createIndex('transcript_entries_session').on('transcript_entries').columns(['session_id']).execute();
    },
  },
  '0005_session_leases': {
    async up(db: Kysely<any>) {
      // Which replica runs a session: renewed by its heartbeat, taken over once expired.
      await db.schema
        .createTable('session_leases')
        .addColumn('session_id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('replica_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('session_leases_replica').on('session_leases').columns(['replica_id']).execute();
    },
  },
  '0006_session_search_trigrams': {
    async up(db: Kysely<any>) {
      // PostgreSQL only, and only where pg_trgm can be had: the list's text search (`q`) then uses
      // trigram indexes instead of reading every session of the user. Elsewhere it scans, correctly.
      const pgVersion = await sql<{ v: string }>`select version() as v`.execute(db).catch(() => null);
      if (!pgVersion || !/PostgreSQL/i.test(pgVersion.rows[0]?.v ?? '')) return;
      const can = await sql<{ ok: boolean }>`
        select exists (select 1 from pg_extension where extname = 'pg_trgm')
            or (exists (select 1 from pg_available_extensions where name = 'pg_trgm')
                and (select rolsuper from pg_roles where rolname = current_user)) as ok`.execute(db);
      if (!can.rows[0]?.ok) return;
      await sql`create extension if not exists pg_trgm`.execute(db);
      await sql`create index sessions_name_trgm on sessions using gin (lower(coalesce(session_name, '')) gin_trgm_ops)`.execute(db);
      await sql`create index sessions_prompt_trgm on sessions using gin (lower(coalesce(first_prompt, '')) gin_trgm_ops)`.execute(db);
    },
  },
  '0007_event_compaction': {
    async up(db: Kysely<any>) {
      // Partials are marked as they are written; the maintenance sweep finds them (and events past
      // their retention) by time, through these indexes.
      await db.schema
        .alterTable('events')
        .addColumn('transient', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('events_transient_created').on('events').column('created_at').where(sql.ref('transient'), '=', 1).execute();
      await db.schema.createIndex('events_created').on('events').column('created_at').execute();
    },
  },
  '0008_event_result_folding': {
    async up(db: Kysely<any>) {
      await db.schema.createIndex('events_fold_created').on('events').column('created_at').where(sql.ref('transient'), '=', 3).execute();
    },
  },
  '0009_agents': {
    async up(db: Kysely<any>) {
      // Agents: a named configuration a user's sessions start from. Every change is a new version;
      // old versions stay readable, and a session keeps the version it was made with.
      await db.schema
        .createTable('agents')
        .addColumn('agent_id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(200)', (c) => c.notNull())
        .addColumn('shared', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('latest_version', 'integer', (c) => c.notNull())
        .addColumn('archived_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('agents_user_updated').on('agents').columns(['user_id', 'updated_at', 'agent_id']).execute();
      await db.schema.createIndex('agents_shared_updated').on('agents').columns(['shared', 'updated_at', 'agent_id']).execute();
      await db.schema
        .createTable('agent_versions')
        .addColumn('agent_id', 'varchar(36)', (c) => c.notNull().references('agents.agent_id').onDelete('cascade'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        // JSON text: the options, secret values included (never returned).
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('created_by', 'varchar(200)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('agent_versions_pk', ['agent_id', 'version'])
        .execute();
      // A session's agent (if any), and the options it runs with: the agent version's merged with the session's own.
      await db.schema.alterTable('sessions').addColumn('agent_id', 'varchar(36)').execute();
      await db.schema.alterTable('sessions').addColumn('agent_version', 'integer').execute();
      await db.schema.alterTable('sessions').addColumn('options', 'text').execute();
      // A prompt with attachments (its content blocks, JSON), a turn's own output schema, and its structured result.
      await db.schema.alterTable('turns').addColumn('content', 'text').execute();
      await db.schema.alterTable('turns').addColumn('output_schema', 'text').execute();
      await db.schema.alterTable('turns').addColumn('structured_output', 'text').execute();
      // What the attachments are (type, media type, size), shown without reading the content.
      await db.schema.alterTable('turns').addColumn('attachments', 'text').execute();
      // Until now a session's system_prompt was appended to Claude Code's own: it becomes append_system_prompt.
      const rows = (await db.selectFrom('sessions').select(['session_id', 'system_prompt']).where('system_prompt', 'is not', null).execute()) as Array<{
        session_id: string;
        system_prompt: string;
      }>;
      for (const r of rows) {
        await db
          .updateTable('sessions')
          .set({ options: JSON.stringify({ append_system_prompt: r.system_prompt }), system_prompt: null })
          .where('session_id', '=', r.session_id)
          .execute();
      }
    },
  },
  '0010_turn_snapshots': {
    async up(db: Kysely<any>) {
      // The folder's state before and after a turn (tree ids of its shadow repository): what the turn changed, and where a rewind goes.
      await db.schema.alterTable('turns').addColumn('snapshot_before', 'varchar(64)').execute();
      await db.schema.alterTable('turns').addColumn('snapshot_after', 'varchar(64)').execute();
    },
  },
  '0011_cluster_settings': {
    async up(db: Kysely<any>) {
      // Facts every replica must agree on, set once by the first (the id of the WORKSPACE_ROOT volume).
      await db.schema
        .createTable('cluster_settings')
        .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0012_webhooks': {
    async up(db: Kysely<any>) {
      // Endpoints told of what happens, and an outbox of what each is to be told (retried until delivered).
      await db.schema
        .createTable('webhooks')
        .addColumn('webhook_id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('user_id', 'varchar(200)', (c) => c.notNull())
        .addColumn('all_users', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('events', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhooks_user').on('webhooks').columns(['user_id']).execute();
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('delivery_id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('webhook_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('session_id', 'varchar(36)')
        .addColumn('event_type', 'varchar(64)', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('claimed_until', 'bigint')
        .addColumn('last_status_code', 'integer')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('finished_at', 'bigint')
        .execute();
      await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
      await db.schema.createIndex('webhook_deliveries_webhook').on('webhook_deliveries').columns(['webhook_id', 'created_at']).execute();
      await db.schema.createIndex('webhook_deliveries_session').on('webhook_deliveries').columns(['session_id']).execute();
    },
  },
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema up to date; throws if a migration fails. */
export async function migrateToLatest(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${String((error as Error | undefined)?.message ?? error)}`, { cause: error });
  }
}
