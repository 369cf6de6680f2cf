/**
 * @module storage/keys-repo
 * API keys made with the keys command. Only a SHA-256 of each key is stored.
 */
import type { Kysely, Selectable } from 'kysely';
import type { ApiKeysTable, Database } from './schema.js';

export type ApiKeyRow = Selectable<ApiKeysTable>;

export interface KeyRepository {
  insert(row: ApiKeyRow): Promise<void>;
  /** The active (not revoked) key with this hash. */
  byHash(hash: string): Promise<ApiKeyRow | undefined>;
  list(): Promise<ApiKeyRow[]>;
  /** Marks a key revoked; false when there is no such active key. */
  revoke(keyId: string, at: number): Promise<boolean>;
  /** Number of active keys. */
  countActive(): Promise<number>;
}

export function createKeyRepository(db: Kysely<Database>): KeyRepository {
  return {
    async insert(row) {
      await db.insertInto('api_keys').values(row).execute();
    },
    async byHash(hash) {
      return db.selectFrom('api_keys').selectAll().where('key_hash', '=', hash).where('revoked_at', 'is', null).executeTakeFirst();
    },
    async list() {
      return db.selectFrom('api_keys').selectAll().orderBy('created_at', 'asc').execute();
    },
    async revoke(keyId, at) {
      const r = await db.updateTable('api_keys').set({ revoked_at: at }).where('key_id', '=', keyId).where('revoked_at', 'is', null).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },
    async countActive() {
      const r = await db
        .selectFrom('api_keys')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(r?.n ?? 0);
    },
  };
}
