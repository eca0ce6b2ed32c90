import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Compare `value` (JSON-serializable) with the stored snapshot `test/__snapshots__/NAME.json`.
 * A missing snapshot is written (and the test fails in CI, where CI=true, so a snapshot is
 * never silently created there); `UPDATE_SNAPSHOTS=1` rewrites it on purpose.
 */
export function matchSnapshot(name: string, value: unknown): void {
  const file = path.join(__dirname, '..', '__snapshots__', `${name}.json`);
  const actual = JSON.stringify(value, null, 2) + '\n';
  if (process.env.UPDATE_SNAPSHOTS === '1' || !fs.existsSync(file)) {
    if (process.env.CI === 'true' && process.env.UPDATE_SNAPSHOTS !== '1') {
      assert.fail(`snapshot ${file} is missing; run the tests locally and commit it`);
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `snapshot ${name} differs; if the change is intended, run UPDATE_SNAPSHOTS=1 npm test and review the diff`);
}
