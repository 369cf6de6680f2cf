import { defineConfig } from 'vitest/config';

// The whole suite runs once per storage dialect, as Kysely's own suite does. Narrow it with
// TEST_DIALECTS=sqlite (or postgres); PostgreSQL is reached at TEST_PG_URL (default
// postgres://postgres@127.0.0.1:5432/postgres), or else at an embedded one that
// test/global-setup.ts starts for the run; one fresh database per test app.
const dialects = (process.env.TEST_DIALECTS ?? 'sqlite,postgres')
  .split(',')
  .map((d) => d.trim())
  .filter(Boolean);

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
    projects: dialects.map((d) => ({ extends: true, test: { name: d, env: { TEST_DIALECT: d } } })),
  },
});
