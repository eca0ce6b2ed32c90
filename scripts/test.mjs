// Runs the suite (or the test files whose paths contain one of the arguments) on jest, as
// `npm test` does after the build: `node scripts/test.mjs runner/` runs test/runner/*.
// TEST_CONCURRENCY sets jest's workers (jest.config.js: 2). Other jest options pass through.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const jest = createRequire(import.meta.url).resolve('jest/bin/jest');
const workers = process.env.TEST_CONCURRENCY ? [`--maxWorkers=${process.env.TEST_CONCURRENCY}`] : [];
const args = [jest, '--ci', ...workers, ...process.argv.slice(2)];
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
child.on('close', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
