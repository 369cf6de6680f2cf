/**
 * @module storage/db
 * Opens the database named by the configuration: a SQLite file in DATA_DIR by default, or
 * PostgreSQL when DATABASE_URL is set. Both are reached through the same Kysely interface.
 */
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, SqliteDialect, sql, type SqliteDatabase } from 'kysely';
import type { Database } from './schema.js';
import { migrateToLatest } from './migrations.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Storage {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Where the data lives, for /health (file path, or the PostgreSQL URL without password). */
  readonly location: string;
  /** Round trip to the database; throws when it is unreachable. */
  ping(): Promise<void>;
  /** After a purge: SQLite writes the WAL back and truncates it, so no old copy of a page stays there (PostgreSQL: nothing). */
  forgetDeleted(): Promise<void>;
  close(): Promise<void>;
}

/** Opens the database and runs migrations. */
export async function openStorage(opts: {
  dataDir: string;
  databaseUrl?: string | undefined;
  log?: { warn(obj: object, msg: string): void };
}): Promise<Storage> {
  if (opts.databaseUrl) {
    // BIGINT (int8) columns hold millisecond times and counters: read them as numbers.
    pg.types.setTypeParser(20, (v) => Number(v));
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 10 });
    // An idle connection the server drops (a restart, a failover, an administrator) is replaced on the
    // next query; unheard, its error would end the process.
    pool.on('error', (err) => opts.log?.warn({ err }, 'a database connection was closed by the server'));
    // The same for a connection that is in use when it is dropped (its query fails on its own).
    pool.on('connect', (client) => client.on('error', (err) => opts.log?.warn({ err }, 'a database connection in use was closed by the server')));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    await migrateToLatest(db);
    const u = new URL(opts.databaseUrl);
    u.password = '';
    return {
      db,
      dialect: 'postgres',
      location: u.toString(),
      ping: async () => {
        await sql`select 1`.execute(db);
      },
      forgetDeleted: async () => {},
      close: () => db.destroy(),
    };
  }
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const file = path.join(opts.dataDir, 'server.db');
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  // Deleted rows (a purge, compacted events) are overwritten with zeros, overflow pages included
  // (FAST leaves those: a long answer's text stayed in the file after its purge).
  sqlite.pragma('secure_delete = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  await migrateToLatest(db);
  return {
    db,
    dialect: 'sqlite',
    location: file,
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    forgetDeleted: async () => void sqlite.pragma('wal_checkpoint(TRUNCATE)'),
    close: () => db.destroy(),
  };
}

/**
 * better-sqlite3 with its statements kept: Kysely prepares every query it runs, and the same few
 * statements make up a turn, so each is prepared once (bounded; the oldest go first).
 */
const MAX_CACHED_PARAMS = 200;

function withStatementCache(sqlite: SQLite.Database, max = 300): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    prepare(sqlText: string) {
      let st = cache.get(sqlText);
      if (st) {
        // Most recently used last: the first key is the one to drop.
        cache.delete(sqlText);
        cache.set(sqlText, st);
        return st;
      }
      st = sqlite.prepare(sqlText);
      // Statements with long value lists (event batches, `in` lists) vary with their length: kept up to
      // a bound (a turn's event batches come in a few lengths, and preparing one costs more than running it).
      if ((sqlText.match(/\?/g)?.length ?? 0) > MAX_CACHED_PARAMS) return st;
      cache.set(sqlText, st);
      if (cache.size > max) cache.delete(cache.keys().next().value!);
      return st;
    },
    close() {
      cache.clear();
      sqlite.close();
    },
  };
}

/**
 * True when `err` says the database connection was lost (a restart, a failover, an administrator):
 * the request may succeed if sent again, so it is a 503, not a 500.
 */
export function isConnectionLoss(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  return (
    ['57P01', '57P02', '57P03', '08000', '08003', '08006', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE'].includes(e?.code ?? '') ||
    /Connection terminated|connection .*closed|Client has encountered a connection error/i.test(e?.message ?? '')
  );
}

/**
 * Runs `fn`, and again (up to `attempts` times, 100 ms, 200 ms, ... apart) while it fails
 * because a connection was lost: a pool hands out a new connection on the next try, so a
 * database restart or a cut connection costs a moment instead of the work in hand.
 */
export async function retryOnConnectionLoss<T>(fn: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !isConnectionLoss(err)) throw err;
      await new Promise((r) => setTimeout(r, 100 * 2 ** (i - 1)));
    }
  }
}

/** True when `err` is a unique-constraint violation on either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === '23505' || /UNIQUE constraint failed/.test(e?.message ?? '');
}
