import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each test file starts real CLI processes (~200 MB each); two files at a time fit 2 cores.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
    setupFiles: ['test/setup.ts'],
  },
});
