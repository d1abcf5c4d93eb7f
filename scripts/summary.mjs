// Prints vitest's JSON report as one plain line: `vitest: N passed, N failed, N skipped`.
// Errors outside tests (unhandled rejections) fail the run too; they are counted as failed.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
const outsideTests = report.success === false && report.numFailedTests === 0 ? 1 : 0;
console.log(`vitest: ${report.numPassedTests} passed, ${report.numFailedTests + outsideTests} failed, ${skipped} skipped`);
if (report.numTotalTests === 0 || report.success === false) process.exit(1);
