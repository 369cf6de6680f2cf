import { configDefaults, defineConfig } from 'vitest/config';

// The whole suite runs once per storage dialect, as Kysely's own suite does. Narrow it with
// TEST_DIALECTS=sqlite (or postgres); PostgreSQL is reached at TEST_PG_URL (default
// postgres://postgres@127.0.0.1:5432/postgres), or else at an embedded one that
// test/global-setup.ts starts for the run; one fresh database per test app.
const dialects = (process.env.TEST_DIALECTS ?? 'sqlite,postgres')
  .split(',')
  .map((d) => d.trim())
  .filter(Boolean);

// Suites that are about one dialect run only under it, and suites whose behaviour does not depend on
// storage (the clients, the web page, the soak's counts of this process's own resources) run once:
// under SQLite when it is among the dialects, else under the first. TEST_SHARED_SUITES=0 leaves
// those out (CI: its PostgreSQL run, since its Node 24 run has them under SQLite). Nothing is
// reported skipped.
const DIALECT_ONLY: Record<string, string[]> = {
  sqlite: ['test/replicas/one-replica.test.ts'],
  postgres: ['test/replicas/replicas.test.ts', 'test/replicas/shared-transcripts.test.ts'],
};
const STORAGE_FREE = ['test/clients/**', 'test/ui/**', 'test/system/soak.test.ts'];
const home = dialects.includes('sqlite') ? 'sqlite' : dialects[0];
const shared = process.env.TEST_SHARED_SUITES !== '0';
const excluded = (d: string) => [
  ...Object.entries(DIALECT_ONLY).flatMap(([other, files]) => (other === d ? [] : files)),
  ...(d === home && shared ? [] : STORAGE_FREE),
];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each test file starts real CLI processes (~200 MB each); two files at a time fit 2 cores.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
    setupFiles: ['test/setup.ts'],
    globalSetup: ['test/global-setup.ts'],
    projects: dialects.map((d) => ({
      extends: true,
      test: { name: d, env: { TEST_DIALECT: d }, exclude: [...configDefaults.exclude, ...excluded(d)] },
    })),
  },
});
