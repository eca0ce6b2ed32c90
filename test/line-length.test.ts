/**
 * No source line longer than 120 characters (the width Biome formats to; long string literals,
 * which the formatter cannot break, are split with `+`; long patterns are joined from the
 * `.source` of two literals). CHECKED is the whole tree: a folder means every source file
 * under it, a file itself. EXCLUDED is what is not yet held to it.
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
const CHECKED: readonly string[] = ['lib', 'lambda', 'runner/src', 'bench', 'examples', 'scripts', 'test'];

/**
 * Paths under CHECKED not held to the width: none. (No pattern had to stay over the width: each
 * long one is two literals' `.source`.) A path added here must exist (see the test below).
 */
const EXCLUDED: readonly string[] = [];

const excluded = (rel: string): boolean => EXCLUDED.some((e) => rel === e || rel.startsWith(`${e}/`));

function sourceFiles(rel: string, root = ROOT, skip: (rel: string) => boolean = () => false): string[] {
  if (skip(rel)) return [];
  const full = path.join(root, rel);
  if (!fs.statSync(full).isDirectory()) return [rel];
  return fs
    .readdirSync(full, { withFileTypes: true })
    .filter((e) => e.name !== 'node_modules' && (e.isDirectory() || SOURCE.test(e.name)))
    .flatMap((e) => sourceFiles(path.join(rel, e.name), root, skip));
}

/** Every line of the files under `paths` longer than MAX, as `file:line (length)`. */
function longLines(paths: readonly string[], root = ROOT, skip: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const file of paths.flatMap((p) => sourceFiles(p, root, skip))) {
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
    const files = CHECKED.flatMap((p) => sourceFiles(p, ROOT, excluded));
    assert.ok(files.length > 250, `only ${files.length} files found: is CHECKED right?`);
    assert.deepEqual(
      longLines(CHECKED, ROOT, excluded),
      [],
      'break these lines (long strings: split with + or template pieces)',
    );
  });

  test('every EXCLUDED path exists (a stale entry would hide nothing and linger)', () => {
    assert.deepEqual(
      EXCLUDED.filter((e) => !fs.existsSync(path.join(ROOT, e))),
      [],
    );
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
