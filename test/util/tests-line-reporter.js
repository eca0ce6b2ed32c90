// After jest's summary, one plain line for CI: `tests: N passed, N failed[, N skipped]`.
// Skipped and todo tests count as skipped, never as passed; a test file that fails to run at all
// (a syntax error, a failing import, a failing beforeAll outside any test) counts as one failed.
// jest always adds its summary reporter after the configured ones, so the line is written when
// the process exits: it is the last line of the run.
class TestsLineReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    this.line = `tests: ${results.numPassedTests} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
    if (!this.waiting) {
      this.waiting = true;
      process.once('exit', () => process.stdout.write(`${this.line}\n`));
    }
  }
}
module.exports = TestsLineReporter;
