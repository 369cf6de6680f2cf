/**
 * Before any test: what the suite needs on this machine is there, or the run stops at once with
 * one line saying how to get it (`.ci/run` installs all of it on Debian).
 *
 * PostgreSQL: the one at TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) when it
 * answers, else an embedded one started for this run (test/machine.ts) and stopped after it. Its URL
 * reaches the test files as TEST_PG_URL: Vitest runs every globalSetup before it starts the workers,
 * and builds each worker's environment from process.env then (checked with Vitest 4.1). It is also
 * provided as `pgUrl` (`inject('pgUrl')`), Vitest's documented channel.
 */
import type { TestProject } from 'vitest/node';
import { chromiumPath, onPath, postgresAnswers, startEmbeddedPostgres } from './machine.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

// Vitest runs this once for the root project and once for each dialect's project (vitest.config.ts)
// that has files to run; PostgreSQL is looked for (and started) only for the `postgres` one.
export default async function checkMachine(project: TestProject): Promise<(() => Promise<void>) | void> {
  const missing: string[] = [];
  if (!onPath('bwrap') || !onPath('socat')) missing.push('bubblewrap and socat for the CLI sandbox (apt-get install -y bubblewrap socat)');
  if (!onPath('git')) missing.push('git for the snapshots of session folders (apt-get install -y git)');
  if (!onPath('python3')) missing.push('python3 for the Python client tests (apt-get install -y python3)');
  if (!chromiumPath()) missing.push('a Chromium for the browser tests (apt-get install -y chromium, or CHROME_PATH=/path/to/chrome)');
  let teardown: (() => Promise<void>) | undefined;
  if (project.name === 'postgres') {
    const url = process.env.TEST_PG_URL ?? DEFAULT_PG_URL;
    if (await postgresAnswers(url)) {
      process.env.TEST_PG_URL = url;
    } else {
      try {
        const embedded = await startEmbeddedPostgres();
        console.log(`No PostgreSQL at ${url}: using an embedded one for this run at ${embedded.url}`);
        process.env.TEST_PG_URL = embedded.url;
        teardown = embedded.stop;
      } catch (err) {
        missing.push(
          `PostgreSQL at ${url}, and ${(err as Error).message} (apt-get install -y postgresql and start it, or TEST_PG_URL=..., or TEST_DIALECTS=sqlite)`,
        );
      }
    }
    if (process.env.TEST_PG_URL) project.provide('pgUrl', process.env.TEST_PG_URL);
  }
  if (missing.length > 0) {
    await teardown?.();
    throw new Error(`npm test needs ${missing.join('; ')}. On Debian, .ci/run installs and starts all of it.`);
  }
  return teardown;
}
