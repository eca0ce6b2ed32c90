import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { loadFixture } from '../harness/pg-fixture';
import { waitFor } from '../harness/ports';
import { dbbackup, RunResult } from '../harness/runner';

/** What a hostile run must do: fail with `code` within `seconds`, naming `stage`. */
function failsFast(r: RunResult, elapsedMs: number, stage: RegExp, what: string, exits = [1]): void {
  // wal-fetch (restore_command) exits 128 + 1 for a runtime failure and 128 + 2 for bad usage found
  // once it runs (options it cannot parse still exit 2), so PostgreSQL aborts recovery.
  const codes = /wal-fetch/.test(what) ? exits.flatMap((c) => (c === 1 ? [129] : c === 2 ? [2, 130] : [c])) : exits;
  assert.ok(codes.includes(r.code ?? -1), `${what}: exit ${r.code}, expected ${codes.join(' or ')}\n${r.stderr}`);
  assert.ok(elapsedMs < 30000, `${what}: took ${elapsedMs} ms`);
  const last = r.stderr.trim().split('\n').pop() ?? '';
  assert.match(last, /^dbbackup: /, `${what}: no error message on stderr\n${r.stderr}`);
  assert.match(last, stage, `${what}: the message does not name the stage\n${last}`);
}

async function timed(args: string[], env: Record<string, string | undefined>): Promise<[RunResult, number]> {
  const t = Date.now();
  const r = await dbbackup(args, { env, timeoutMs: 60000 });
  return [r, Date.now() - t];
}

describe('hostile pipelines: a stage that stops reading fails the run fast, naming the stage', () => {
  let pg: LocalPostgres;
  let dir: string;
  let identity: string;
  let store: string;
  let walStore: string;
  let fakes: string;
  const realPath = process.env.PATH ?? '';

  /** A directory of stand-in tools put first on PATH. */
  function fakeBin(name: string, script: string): string {
    const d = fs.mkdtempSync(path.join(fakes, `${name}-`));
    // The stand-in answers the preflight's `--version` as the real tool does (a tool that cannot
    // is the preflight's case, tested in preflight.test.ts) and misbehaves only on data.
    const real = execFileSync('sh', ['-c', `command -v ${name}`])
      .toString()
      .trim();
    const version = `case "$1" in --version) exec ${real} "$@";; esac`;
    fs.writeFileSync(path.join(d, name), `#!/bin/sh\n${version}\n${script}\n`, { mode: 0o755 });
    return `${d}${path.delimiter}${realPath}`;
  }

  beforeAll(async () => {
    pg = await startLocalPostgres();
    await loadFixture(pg, 'shop', 3000);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-hostile-'));
    fakes = path.join(dir, 'fakes');
    fs.mkdirSync(fakes);
    identity = path.join(dir, 'identity.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
    store = `file://${dir}/store`;
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', store, '--encrypt', `age:${recipient}`],
      { env: pg.env },
    );
    assert.equal(b.code, 0, b.stderr);
    // A WAL file in an encrypted, compressed archive for wal-fetch.
    walStore = `file://${dir}/wal`;
    const seg = path.join(dir, '000000010000000000000001');
    fs.writeFileSync(seg, Buffer.alloc(1 << 20, 7));
    const w = await dbbackup(['wal-push', seg, '--to', walStore, '--encrypt', `age:${recipient}`]);
    assert.equal(w.code, 0, w.stderr);
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The read-back commands, each against `db` as its throwaway or new target. */
  function readers(identityArg: string, db: string): [string, string[]][] {
    return [
      ['verify --deep', ['verify', '--from', store, '--latest', '--deep', '--identity', identityArg]],
      ['restore', ['restore', '--from', store, '--latest', '--target', pg.url(`${db}_r`), '--identity', identityArg]],
      ['drill', ['drill', '--from', store, '--target', pg.url(`${db}_d`), '--identity', identityArg]],
      [
        'wal-fetch',
        [
          'wal-fetch',
          '000000010000000000000001',
          path.join(dir, `fetched-${db}`),
          '--from',
          walStore,
          '--identity',
          identityArg,
        ],
      ],
    ];
  }

  async function noDatabases(prefix: string): Promise<void> {
    const left = await pg.sql(`SELECT count(*) FROM pg_database WHERE datname LIKE '${prefix}%'`);
    assert.equal(left, '0', `a database ${prefix}* was left behind`);
  }

  test('the good case works (the stand-ins below are the only difference)', async () => {
    for (const [what, args] of readers(identity, 'good')) {
      const r = await dbbackup(args, { env: pg.env });
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    }
    await pg.sql('DROP DATABASE good_r');
  });

  test('--identity that is a directory: exit 1 (or 2 when refused up front), naming age', async () => {
    for (const [what, args] of readers(dir, 'iddir')) {
      const [r, ms] = await timed(args, pg.env);
      failsFast(r, ms, /age|identity/, what, [1, 2]);
    }
    await noDatabases('iddir');
  });

  test('--identity that is not a key: exit 1 (or 2 when refused up front), naming age', async () => {
    const garbage = path.join(dir, 'garbage.txt');
    fs.writeFileSync(garbage, 'this is not an age identity\n');
    for (const [what, args] of readers(garbage, 'idbad')) {
      const [r, ms] = await timed(args, pg.env);
      failsFast(r, ms, /age|identity/, what, [1, 2]);
    }
    await noDatabases('idbad');
  });

  const standIns: [string, string, RegExp][] = [
    ['zstd killed by SIGKILL (the OOM killer)', 'kill -9 $$', /zstd was killed by SIGKILL/],
    ['zstd that exits 0 without reading', 'exit 0', /zstd/],
    [
      'zstd that fails without reading',
      'echo "zstd: broken install" >&2; exit 1',
      /zstd exited with code 1: zstd: broken install/,
    ],
    ['zstd that reads a little and dies', 'head -c 100 >/dev/null; kill -9 $$', /zstd was killed by SIGKILL/],
    ['age killed by SIGKILL', 'kill -9 $$', /age was killed by SIGKILL/],
  ];
  for (const [what, script, message] of standIns) {
    test(`${what}: every reader exits 1 within seconds, naming it`, async () => {
      const tool = /^age/.test(what) ? 'age' : 'zstd';
      const PATH = fakeBin(tool, script);
      const db = `fake_${tool}_${standIns.findIndex((s) => s[0] === what)}`;
      for (const [reader, args] of readers(identity, db)) {
        const [r, ms] = await timed(args, { ...pg.env, PATH });
        // An archived WAL file is named by its plaintext's sha256: a decoder's failure cannot be
        // told from damage, so wal-fetch may call it damage (3) when the decoder exited with a code.
        const codes = reader === 'wal-fetch' && /exited with code/.test(message.source) ? [1, 3] : [1];
        failsFast(r, ms, message, `${what}, ${reader}`, codes);
      }
      await noDatabases(db);
    });
  }

  test('zstd missing from PATH: exit 1 naming it', async () => {
    // A PATH with everything the readers need except zstd.
    const bin = path.join(dir, 'nozstd');
    fs.mkdirSync(bin);
    for (const t of ['age', 'sh', 'head', 'wc', 'tar']) {
      const p = execFileSync('sh', ['-c', `command -v ${t}`])
        .toString()
        .trim();
      fs.symlinkSync(p, path.join(bin, t));
    }
    for (const [reader, args] of readers(identity, 'nozstd')) {
      const [r, ms] = await timed(args, { ...pg.env, PATH: bin });
      failsFast(r, ms, /zstd is not installed or not on PATH/, `no zstd, ${reader}`, [1, 2]);
    }
    await noDatabases('nozstd');
  });

  test('a stage that hangs without reading: the stall guard stops the run after --stall-timeout', async () => {
    const PATH = fakeBin('zstd', 'exec sleep 600');
    for (const [reader, args] of readers(identity, 'stall')) {
      const [r, ms] = await timed([...args, '--stall-timeout', '2'], { ...pg.env, PATH });
      failsFast(r, ms, /no bytes moved through .*zstd.* for \d+ s/, `stalled zstd, ${reader}`);
      assert.ok(ms < 20000, `${reader}: the stall guard took ${ms} ms`);
    }
    await noDatabases('stall');
    const bad = await dbbackup(
      ['restore', '--from', store, '--latest', '--target', pg.url('x'), '--stall-timeout', 'soon'],
      {
        env: pg.env,
      },
    );
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--stall-timeout is 'soon'; use a whole number/);
  });

  for (const [sig, command] of [
    ['SIGTERM', 'restore'],
    ['SIGINT', 'drill'],
    ['SIGTERM', 'drill'],
  ] as const) {
    test(`${command} interrupted by ${sig} while it restores leaves no database it created`, async () => {
      // A zstd that holds the stream for a while, so the interrupt lands mid-restore.
      const zstd = execFileSync('sh', ['-c', 'command -v zstd']).toString().trim();
      const PATH = fakeBin('zstd', `sleep 3; exec ${zstd} "$@"`);
      const db = `intr_${command}_${sig.toLowerCase()}`;
      const args =
        command === 'restore'
          ? ['restore', '--from', store, '--latest', '--target', pg.url(db), '--identity', identity]
          : ['drill', '--from', store, '--target', pg.url(db), '--identity', identity];
      let pid = 0;
      const run = dbbackup(args, { env: { ...pg.env, PATH }, onSpawn: (p) => (pid = p) });
      const exists = async () => (await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = '${db}'`)) === '1';
      await waitFor(`database ${db}`, exists, 20000, 50);
      process.kill(pid, sig);
      const r = await run;
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`interrupted by ${sig}`));
      await noDatabases(db);
    });
  }
});
