/**
 * The import rules of docs/architecture.md, checked by dependency-cruiser against the real
 * tree (.dependency-cruiser.cjs); and the checker itself is shown to fail on a tree that breaks
 * the rules, so this test cannot pass by checking nothing.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');
const CLI = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

function cruise(cwd: string, dirs: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...dirs, '--config', CONFIG, '--output-type', 'err'], {
    cwd,
    encoding: 'utf8',
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('import rules', () => {
  test('runner/src, lib and lambda have no circle and no import up a layer', () => {
    const r = cruise(ROOT, ['runner/src', 'lib', 'lambda']);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /no dependency violations found \(\d{2,} modules/);
  });

  describe('a tree that breaks them fails', () => {
    let dir: string;
    const write = (file: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), text);
    };
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-deps-'));
      write('runner/src/commands/a.ts', "import { b } from './b';\nexport const a = () => b;\n");
      write('runner/src/commands/b.ts', "import { a } from './a';\nexport const b = () => a;\n");
      write('runner/src/storage/s.ts', "import { e } from '../engines/postgres/e';\nexport const s = e;\n");
      write('runner/src/engines/postgres/e.ts', 'export const e = 1;\n');
      write('runner/src/engines/mysql/m.ts', "import { e } from '../postgres/e';\nexport const m = e;\n");
      write('lib/core/c.ts', "import { x } from '../aws/x';\nexport const c = x;\n");
      write('lib/aws/x.ts', 'export const x = 1;\n');
      write('runner/src/commands/c.ts', "import { e } from '../engines/postgres/e';\nexport const c = e;\n");
      write('runner/src/stray.ts', "import { e } from './engines/postgres/e';\nexport const t = e;\n");
      write('lambda/verify/l.ts', "import { x } from '../../lib/aws/x';\nexport const l = x;\n");
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    test('each rule reports its violation', () => {
      const r = cruise(dir, ['runner/src', 'lib', 'lambda']);
      assert.notEqual(r.status, 0, r.out);
      assert.match(r.out, /no-circular: runner\/src\/commands\/(a|b)\.ts/);
      assert.match(r.out, /layer-storage: runner\/src\/storage\/s\.ts → runner\/src\/engines\/postgres\/e\.ts/);
      assert.match(
        r.out,
        /engine-to-engine: runner\/src\/engines\/mysql\/m\.ts → runner\/src\/engines\/postgres\/e\.ts/,
      );
      assert.match(r.out, /core-imports-nothing: lib\/core\/c\.ts → lib\/aws\/x\.ts/);
      assert.match(
        r.out,
        /commands-through-drivers: runner\/src\/commands\/c\.ts → runner\/src\/engines\/postgres\/e\.ts/,
      );
      assert.match(r.out, /in-a-layer: runner\/src\/stray\.ts/);
      assert.match(r.out, /lambda-only-core: lambda\/verify\/l\.ts → lib\/aws\/x\.ts/);
    });
  });
});
