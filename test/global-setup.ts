/**
 * Before any test: what the suite needs on this machine is there, or the run stops at once with
 * one line saying how to get it (`.ci/run` installs all of it on Debian).
 */
import pg from 'pg';
import { chromiumPath, onPath } from './machine.js';

export default async function checkMachine(): Promise<void> {
  const missing: string[] = [];
  if (!onPath('bwrap') || !onPath('socat')) missing.push('bubblewrap and socat for the CLI sandbox (apt-get install -y bubblewrap socat)');
  if (!chromiumPath()) missing.push("a Chromium for the browser tests (apt-get install -y chromium, or CHROME_PATH=/path/to/chrome)");
  const dialects = (process.env.TEST_DIALECTS ?? 'sqlite,postgres').split(',').map((d) => d.trim());
  if (dialects.includes('postgres')) {
    const url = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
    try {
      await c.connect();
    } catch {
      missing.push(`PostgreSQL at ${url} (apt-get install -y postgresql and start it, or TEST_DIALECTS=sqlite)`);
    } finally {
      await c.end().catch(() => {});
    }
  }
  if (missing.length > 0) throw new Error(`npm test needs ${missing.join('; ')}. On Debian, .ci/run installs and starts all of it.`);
}
