/**
 * No source line longer than 120 characters (the width Biome formats to; long string literals,
 * which the formatter cannot break, are split with `+`). CHECKED lists the paths held to it: a
 * folder means every source file under it, a file itself. Widen it as the rest of the tree is
 * brought to the width, until it is the whole tree.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from '@jest/globals';

const ROOT = path.resolve(__dirname, '..');
const MAX = 120;
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;

/** The paths held to the width, relative to the repository root. */
const CHECKED: readonly string[] = [
  'lib/core',
  'lambda',
  'runner/src/storage',
  'runner/src/pipeline',
  'runner/src/report',
  'runner/src/archive',
  'runner/src/local',
  'runner/src/catalog.ts',
  'runner/src/config.ts',
  'runner/src/main.ts',
  'runner/src/preflight.ts',
  'runner/src/log.ts',
  'runner/src/metrics.ts',
  'runner/src/errors.ts',
  'runner/src/chain-tiers.ts',
  'runner/src/demo.ts',
  'scripts',
  'test/line-length.test.ts',
];

function sourceFiles(rel: string, root = ROOT): string[] {
  const full = path.join(root, rel);
  if (!fs.statSync(full).isDirectory()) return [rel];
  return fs
    .readdirSync(full, { withFileTypes: true })
    .filter((e) => e.name !== 'node_modules' && (e.isDirectory() || SOURCE.test(e.name)))
    .flatMap((e) => sourceFiles(path.join(rel, e.name), root));
}

/** Every line of the files under `paths` longer than MAX, as `file:line (length)`. */
function longLines(paths: readonly string[], root = ROOT): string[] {
  const out: string[] = [];
  for (const file of paths.flatMap((p) => sourceFiles(p, root))) {
    fs.readFileSync(path.join(root, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        // Characters, not UTF-16 units: '…' and 'ø' are one column each.
        const width = [...line].length;
        if (width > MAX) out.push(`${file}:${i + 1} (${width})`);
      });
  }
  return out;
}

describe('line length', () => {
  test(`no line of the CHECKED paths is longer than ${MAX} characters`, () => {
    const files = CHECKED.flatMap((p) => sourceFiles(p));
    assert.ok(files.length > 50, `only ${files.length} files found: is CHECKED right?`);
    assert.deepEqual(longLines(CHECKED), [], 'break these lines (long strings: split with + or template pieces)');
  });

  test('the check finds a long line (so it cannot pass by reading nothing)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'line-length-'));
    try {
      fs.writeFileSync(path.join(dir, 'ok.ts'), `const a = '${'x'.repeat(MAX - 13)}';\n`);
      fs.writeFileSync(path.join(dir, 'long.ts'), `// fine\nconst a = '${'x'.repeat(MAX - 12)}';\n`);
      assert.deepEqual(longLines(['.'], dir), ['long.ts:2 (121)']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
