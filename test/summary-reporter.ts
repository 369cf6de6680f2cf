/**
 * A Vitest reporter that closes the run with one plain line, `Tests: N passed, N failed`
 * (plus skipped when any), after Vitest's own summary, so any CI reader can count tests. A test that
 * was meant to run but never did (its setup failed) counts as failed; skipped means skipped on purpose
 * (`skipIf`, a `-t` filter).
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>) {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        // Meant to run but never did (its file's or suite's setup failed): a failure, not a skip.
        else if (t.options.mode === 'run' || t.options.mode === 'only') failed++;
        else skipped++;
      }
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) failed++;
    }
    failed += unhandledErrors.length;
    console.log(`\nTests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  }
}
