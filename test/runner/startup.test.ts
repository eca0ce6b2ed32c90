// What the bundled runner compiles at start: the cloud SDKs are embedded in dist/runner/dbbackup.js
// and compiled only when a run first requires them (scripts/build.mjs), so `--help` and a file://
// `wal-push` (one process per WAL segment) compile none of them, and an s3:// push compiles the AWS one.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { DBBACKUP, dbbackup } from '../harness/runner';
import { MOTO_ENV } from '../harness/moto';

const SEGMENT = '000000010000000000000003';

// Preloaded into the runner: records the file name of every vm.compileFunction, which is how
// the bundle compiles an embedded SDK group (`<bundle>#aws`, `<bundle>#azure`).
const HOOK = `
const vm = require('node:vm');
const seen = [];
const compile = vm.compileFunction;
vm.compileFunction = function (...args) {
  seen.push(String(args[2]?.filename ?? ''));
  return compile.apply(this, args);
};
process.on('exit', () => require('node:fs').writeFileSync(process.env.DBBACKUP_TEST_COMPILED, JSON.stringify(seen)));
`;

describe('the bundled runner at start', () => {
  let dir: string;
  let segment: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-startup-'));
    fs.writeFileSync(path.join(dir, 'hook.js'), HOOK);
    fs.mkdirSync(path.join(dir, 'pg_wal'));
    segment = path.join(dir, 'pg_wal', SEGMENT);
    fs.writeFileSync(segment, Buffer.alloc(64 * 1024, 7));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Run the bundle; returns its result and the embedded groups it compiled (without the bundle's path). */
  async function compiledBy(args: string[], env: Record<string, string> = {}) {
    const out = path.join(dir, `compiled-${Math.random().toString(36).slice(2)}.json`);
    const r = await dbbackup(args, {
      env: { ...env, NODE_OPTIONS: `--require ${path.join(dir, 'hook.js')}`, DBBACKUP_TEST_COMPILED: out },
    });
    const seen = JSON.parse(fs.readFileSync(out, 'utf8')) as string[];
    return { r, groups: seen.filter((f) => f.startsWith(`${DBBACKUP}#`)).map((f) => f.slice(DBBACKUP.length)) };
  }

  test('the bundle holds no SDK module outside the embedded groups', () => {
    const text = fs.readFileSync(DBBACKUP, 'utf8');
    const inline = text.match(/^\/\/ node_modules\/@(aws-sdk|azure|smithy)\/\S+/gm) ?? [];
    assert.deepEqual(
      inline.slice(0, 5),
      [],
      'an SDK is bundled inline: list its package in DEFERRED (scripts/build.mjs)',
    );
    // and Node's built-ins are one shared namespace each, not a copy of each in every importing file
    const copies = text.match(/__toESM\(require\("node:/g)?.length ?? 0;
    assert.ok(copies < 5, `${copies} copies of built-in modules' namespaces: see sharedBuiltins in scripts/build.mjs`);
    assert.match(text, /^\/\/ deferred-group:aws$/m);
    assert.match(text, /^\/\/ deferred-group:azure$/m);
  });

  test('--help and a file:// wal-push compile no SDK; an s3:// push compiles the AWS SDKs only', async () => {
    const help = await compiledBy(['--help']);
    assert.equal(help.r.code, 0, help.r.stderr);
    assert.deepEqual(help.groups, []);

    const push = await compiledBy(['wal-push', segment, '--to', `file://${dir}/store`]);
    assert.equal(push.r.code, 0, push.r.stderr);
    assert.equal(fs.readdirSync(path.join(dir, 'store', 'wal', '00000001', SEGMENT)).length, 1);
    assert.deepEqual(push.groups, []);

    // Nothing listens on port 9: the push fails once the SDK has been loaded and tried to connect.
    const s3 = await compiledBy(['wal-push', segment, '--to', 's3://startup-test/wal'], {
      ...MOTO_ENV,
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_MAX_ATTEMPTS: '1',
    });
    assert.equal(s3.r.code, 1, s3.r.stderr);
    assert.match(s3.r.stderr, /ECONNREFUSED/);
    assert.deepEqual(s3.groups, ['#aws']);
  });
});
