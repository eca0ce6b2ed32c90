// The published package: `npm pack` of the built tree holds the library, the pre-bundled
// runner, Lambda and Dockerfile once each, the LICENSE, and nothing of the demo, the tests or
// the sources; installed from the tarball, its main entry loads and exports the public API
// only (classes and enums, no free functions or constants), and finds its bundled assets.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';

const root = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

interface PackEntry {
  readonly path: string;
  readonly size: number;
}

/** What a user of the CDK entry works with: constructs, props, enums. Nothing else is exported. */
const INTERNAL_NAMES = [
  'parseSourceUrl',
  'parseStorageUrl',
  'renderRunnerEnvironment',
  'RUNNER_OPTIONS',
  'ConfigError',
  'checkChainRetention',
  'allowServicesToUseKey',
  'backupMetric',
  'METRIC_NAMESPACE',
  'TIER_TAG_KEY',
  'RUNNER_CONTAINER_NAME',
];

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('the npm package', () => {
  let files: PackEntry[] = [];
  let work = '';
  let installed = '';

  beforeAll(() => {
    for (const f of ['dist/lib/index.js', 'dist/runner/dbbackup.js', 'dist/lambda/verify/index.js']) {
      assert.ok(fs.existsSync(path.join(root, f)), `${f} is missing: run 'npm run build' before this test`);
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-pack-'));
    const packed = npm(['pack', '--json', '--pack-destination', work], root);
    const out = JSON.parse(packed) as { filename: string; files: PackEntry[] }[];
    files = out[0].files;
    // Install by hand: unpack into node_modules and let the peers resolve to this checkout's.
    installed = path.join(work, 'node_modules', pkg.name);
    fs.mkdirSync(installed, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(work, out[0].filename), '-C', installed, '--strip-components=1']);
    for (const peer of ['aws-cdk-lib', 'constructs']) {
      fs.symlinkSync(path.join(root, 'node_modules', peer), path.join(work, 'node_modules', peer), 'dir');
    }
  });

  afterAll(() => {
    if (work !== '') fs.rmSync(work, { recursive: true, force: true });
  });

  test('holds the library, the bundled runner and Lambda, the Dockerfile once, and the LICENSE', () => {
    const names = files.map((f) => f.path);
    for (const f of ['package.json', 'LICENSE', 'README.md', 'bin/dbbackup', 'dist/lib/index.js', 'dist/lib/index.d.ts',
      'dist/runner/dbbackup.js', 'dist/runner/Dockerfile', 'dist/lambda/verify/index.js']) {
      assert.ok(names.includes(f), `the tarball lacks ${f}`);
    }
    // Every entry point the package declares is in it.
    for (const [entry, target] of Object.entries(pkg.exports as Record<string, string | Record<string, string>>)) {
      const targets = typeof target === 'string' ? [target] : Object.values(target);
      for (const t of targets) {
        assert.ok(names.includes(t.replace(/^\.\//, '')), `exports['${entry}'] → ${t} is not in the tarball`);
      }
    }
    assert.deepEqual(names.filter((n) => path.basename(n) === 'Dockerfile'), ['dist/runner/Dockerfile']);
  });

  test('holds no demo, test, source, build-state or jsii staging files', () => {
    const bad = files
      .map((f) => f.path)
      .filter(
        (n) =>
          /(^|\/)demo\.js$/.test(n) ||
          /^(test|runner|lambda|examples|bench|scripts|lib)\//.test(n) ||
          /\.test\.|\.tsbuildinfo$|\.map$|tsconfig/.test(n) ||
          /^dist\/(jsii|jsii-package)\//.test(n) ||
          (n.endsWith('.ts') && !n.endsWith('.d.ts')),
      );
    assert.deepEqual(bad, []);
  });

  test('the LICENSE is the Apache License 2.0 that package.json names', () => {
    assert.equal(pkg.license, 'Apache-2.0');
    const text = fs.readFileSync(path.join(installed, 'LICENSE'), 'utf8');
    assert.match(text, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(text, /END OF TERMS AND CONDITIONS/);
  });

  test('package.json says where the code lives, what it is about, and bounds every peer', () => {
    assert.match(pkg.repository.url, /^https:\/\/.+\.git$/);
    assert.ok(Array.isArray(pkg.keywords) && pkg.keywords.includes('aws-cdk') && pkg.keywords.includes('cdktf'));
    for (const [name, range] of Object.entries(pkg.peerDependencies as Record<string, string>)) {
      // ^x and ~x stop below the next major (or minor for 0.x); a comparator range needs its own '<'.
      assert.ok(/^[\^~]\d/.test(range) || /<\s*\d/.test(range), `peer ${name} has the unbounded range '${range}'`);
    }
  });

  test('installed from the tarball, the main entry exports the public API only and finds its assets', () => {
    const script = `
      const lib = require(${JSON.stringify(pkg.name)});
      const kinds = {};
      for (const [name, value] of Object.entries(lib)) {
        const isClass = typeof value === 'function' && /^class\\b/.test(Function.prototype.toString.call(value));
        kinds[name] = isClass ? 'class' : typeof value;
      }
      const { Stack, App } = require('aws-cdk-lib');
      const stack = new Stack(new App(), 'S');
      const vault = new lib.BackupVault(stack, 'Vault');
      new lib.BackupVerifier(stack, 'Verifier', { vault, alarmTopic: new lib.AlarmTopic(stack, 'Topic').topic });
      process.stdout.write(JSON.stringify(kinds));
    `;
    const output = execFileSync(process.execPath, ['-e', script], { cwd: work, encoding: 'utf8' });
    const kinds = JSON.parse(output) as Record<string, string>;
    const names = Object.keys(kinds);
    const expected = ['DatabaseBackup', 'BackupVault', 'BackupSource', 'BackupSchedule', 'Retention', 'Engine',
      'ServerVersions'];
    for (const n of expected) {
      assert.ok(names.includes(n), `the main entry lacks ${n}`);
    }
    const notApi = Object.entries(kinds).filter(([, kind]) => kind !== 'class' && kind !== 'object');
    assert.deepEqual(notApi, [], 'the main entry exports only classes and enums');
    assert.deepEqual(names.filter((n) => INTERNAL_NAMES.includes(n)), []);
    // Enums only among the objects: string (or numeric) values, no tables or lists.
    const lib = require(installed) as Record<string, unknown>;
    for (const [name, kind] of Object.entries(kinds)) {
      if (kind !== 'object') continue;
      const values = Object.values(lib[name] as object);
      assert.ok(values.every((v) => typeof v === 'string' || typeof v === 'number'), `${name} is not an enum`);
    }
    assert.ok(names.length < 50, `the main entry exports ${names.length} names`);
  });
});
