/**
 * @module auth/keys-cli
 * `npm run keys -- create --user alice [--admin] [--label text]`, `list`, `revoke <key_id>`.
 * Works on the server's own storage (DATA_DIR or DATABASE_URL), so keys made here are accepted
 * by a running server within a second. A key is shown once, when it is made.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { openStorage } from '../storage/db.js';
import { createKeyRepository } from '../storage/keys-repo.js';
import { hashKey, newKey } from './keys.js';

const USAGE = 'usage: npm run keys -- create --user <id> [--admin] [--label <text>] | list | revoke <key_id>';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { user: { type: 'string' }, admin: { type: 'boolean' }, label: { type: 'string' } },
  });
  const [command, arg] = positionals;
  const config = loadConfig();
  const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  const keys = createKeyRepository(storage.db);
  try {
    if (command === 'create') {
      if (!values.user || !/^[A-Za-z0-9._@-]{1,200}$/.test(values.user)) {
        console.error('create needs --user <id> (letters, digits, ".", "_", "@", "-")');
        return 2;
      }
      const key = newKey();
      const keyId = randomUUID();
      await keys.insert({
        key_id: keyId,
        user_id: values.user,
        key_hash: hashKey(key).toString('hex'),
        admin: values.admin ? 1 : 0,
        label: values.label ?? null,
        created_at: Date.now(),
        revoked_at: null,
      });
      console.log(JSON.stringify({ key_id: keyId, user_id: values.user, admin: Boolean(values.admin), key }));
      console.error('Keep the key now: it is stored hashed and cannot be shown again.');
      return 0;
    }
    if (command === 'list') {
      for (const k of await keys.list()) {
        console.log(
          JSON.stringify({
            key_id: k.key_id,
            user_id: k.user_id,
            admin: k.admin === 1,
            label: k.label,
            created_at: new Date(Number(k.created_at)).toISOString(),
            revoked_at: k.revoked_at ? new Date(Number(k.revoked_at)).toISOString() : null,
          }),
        );
      }
      return 0;
    }
    if (command === 'revoke' && arg) {
      if (await keys.revoke(arg, Date.now())) {
        console.log(JSON.stringify({ key_id: arg, revoked: true }));
        return 0;
      }
      console.error(`no active key ${arg}`);
      return 1;
    }
    console.error(USAGE);
    return 2;
  } finally {
    await storage.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
