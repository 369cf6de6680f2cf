/**
 * @module auth/keys
 * Who a bearer key belongs to. Keys come from API_KEYS (`user:key,...`) and from the keys
 * command (stored hashed). A presented key is hashed once and compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyRepository } from '../storage/keys-repo.js';
import { AppError } from '../errors.js';
import type { Caller } from './access.js';

export const hashKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/** A new random key: `css_` and 32 random bytes. */
export const newKey = (): string => `css_${randomBytes(32).toString('base64url')}`;

const USER_ID = /^[A-Za-z0-9._@-]{1,200}$/;

/** Parses API_KEYS (`user:key,user2:key2`); throws on a malformed entry. */
export function parseApiKeys(spec: string | undefined): Array<{ userId: string; hash: Buffer }> {
  if (!spec) return [];
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const i = entry.indexOf(':');
      const userId = entry.slice(0, i);
      const key = entry.slice(i + 1);
      if (i <= 0 || !USER_ID.test(userId) || key.length < 8) {
        throw new Error('API_KEYS must be "user:key,user2:key2" with user ids of letters, digits, ".", "_", "@", "-" and keys of at least 8 characters');
      }
      return { userId, hash: hashKey(key) };
    });
}

export interface KeyAuth {
  /** Resolves the caller of a bearer key, or throws UNAUTHORIZED. */
  authenticate(authorization: string | undefined): Promise<Caller>;
  /** Whether any key exists (in the environment or the database). */
  anyKeys(): Promise<boolean>;
}

export function createKeyAuth(opts: { apiKeys: string | undefined; adminUsers: string[]; keys: KeyRepository }): KeyAuth {
  const env = parseApiKeys(opts.apiKeys);
  const admins = new Set(opts.adminUsers);
  const unauthorized = (why: string) => new AppError('UNAUTHORIZED', why);
  return {
    async authenticate(authorization) {
      const m = /^Bearer\s+(\S{8,512})\s*$/i.exec(authorization ?? '');
      if (!m)
        throw unauthorized(
          authorization ? 'the Authorization header must be "Bearer <api key>"' : 'an API key is required: send "Authorization: Bearer <api key>"',
        );
      const h = hashKey(m[1]!);
      // Every environment key is compared, in constant time, whether or not one matched before.
      let user: string | null = null;
      for (const k of env) if (timingSafeEqual(k.hash, h) && user === null) user = k.userId;
      if (user !== null) return { userId: user, admin: admins.has(user) };
      const row = await opts.keys.byHash(h.toString('hex'));
      if (row && timingSafeEqual(Buffer.from(row.key_hash, 'hex'), h)) return { userId: row.user_id, admin: row.admin === 1 || admins.has(row.user_id) };
      throw unauthorized('the API key is not valid (unknown or revoked)');
    },
    async anyKeys() {
      return env.length > 0 || (await opts.keys.countActive()) > 0;
    },
  };
}
