// `dbbackup runbook` over a crafted manifest: anyone who can write a store can write a manifest
// (only kms: ones are MACed; the plain digest is recomputed here, as an attacker would). Every
// printed shell line, run by bash with stand-ins that record their arguments, must run only the
// commands the runbook means, each value arriving as one argument: no `$(...)`, `;`, quote or
// newline from a manifest or a URL may run anything. Against a real PostgreSQL 15 backup.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { manifestDigest } from '../../lib/core/manifest';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { loadFixture } from '../harness/pg-fixture';
import { dbbackup } from '../harness/runner';

const EVIL = `x$(touch pwned-dollar)\`touch pwned-tick\`;touch pwned-semi'";touch pwned-q\n\`\`\`\ntouch pwned-nl\n`;

/** Each shell line of the page's ```sh blocks. */
function shellLines(markdown: string): string[] {
  return [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1].split('\n').filter((l) => l !== ''));
}

describe('dbbackup runbook: a crafted manifest injects no shell', () => {
  let pg: LocalPostgres;
  let dir: string;
  let storeDir: string;
  let id: string;

  beforeAll(async () => {
    pg = await startLocalPostgres();
    await loadFixture(pg, 'shop', 20);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-hostile-runbook-'));
    // A store whose own path holds shell syntax (a directory may be called that).
    storeDir = path.join(dir, 'st $(touch pwned-url);x');
    const b = await dbbackup(
      ['backup', '--engine', 'postgres', '--source', pg.url('shop'), '--to', `file://${storeDir}`, '--json'],
      {
        env: pg.env,
      },
    );
    assert.equal(b.code, 0, b.stderr);
    id = JSON.parse(b.stdout).id;
    // The crafted manifest: hostile text in every free-form field the page shows, stored shell lines
    // of the attacker's own, and a digest recomputed so that it is "valid".
    const file = path.join(storeDir, id, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    const { digest: _, ...content } = {
      ...m,
      databaseId: EVIL,
      serverVersion: EVIL,
      warnings: [EVIL],
      manualRestore: ['touch pwned-stored-line'],
      artifacts: m.artifacts.map((a: { role: string }) => ({ ...a, role: `${a.role}\ntouch pwned-role` })),
    };
    fs.writeFileSync(file, JSON.stringify({ ...content, digest: manifestDigest(content) }, null, 2));
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every printed line runs only its own commands, each value one argument', async () => {
    const target = `${pg.url('shop')}?application_name=a;touch%20pwned-target`;
    const r = await dbbackup(['runbook', '--from', `file://${storeDir}`, '--id', id, '--target', target], {
      env: pg.env,
    });
    assert.equal(r.code, 0, r.stderr);
    const lines = shellLines(r.stdout);
    assert.ok(
      lines.some((l) => l.startsWith('dbbackup restore')),
      r.stdout,
    );

    // Stand-ins for every program the page names, each recording its argv; `touch` is real.
    const bin = path.join(dir, 'bin');
    const scratch = path.join(dir, 'scratch');
    fs.mkdirSync(bin);
    fs.mkdirSync(scratch);
    const argvLog = path.join(dir, 'argv.log');
    for (const tool of [
      'dbbackup',
      'aws',
      'cat',
      'jq',
      'base64',
      'zstd',
      'pg_restore',
      'psql',
      'date',
      'age',
      'dirname',
    ]) {
      fs.writeFileSync(
        path.join(bin, tool),
        `#!/bin/bash\nprintf '%s' "${tool}" >> ${argvLog}; for a in "$@"; do printf ` +
          `'\\0%s' "$a" >> ${argvLog}; done; printf '\\n' >> ${argvLog}\n`,
        { mode: 0o755 },
      );
    }
    fs.symlinkSync('/usr/bin/touch', path.join(bin, 'touch'));
    for (const line of lines) {
      spawnSync('/bin/bash', ['-c', line], { cwd: scratch, env: { PATH: bin }, encoding: 'utf8' });
    }
    assert.deepEqual(
      fs.readdirSync(scratch).filter((f) => f.startsWith('pwned')),
      [],
      r.stdout,
    );
    // The values arrived whole: the store and the target as one argument each.
    const calls = fs
      .readFileSync(argvLog, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('dbbackup'))
      .map((l) => l.split('\0'));
    const restore = calls.find((c) => c.includes('--id'));
    assert.ok(restore !== undefined, fs.readFileSync(argvLog, 'utf8'));
    assert.equal(restore[restore.indexOf('--from') + 1], `file://${storeDir}`);
    assert.equal(restore[restore.indexOf('--id') + 1], id);
    assert.equal(restore[restore.indexOf('--target') + 1], target);
    // No line of the page begins with the text the manifest tried to inject.
    assert.ok(!/^touch /m.test(r.stdout), r.stdout);
  });
});
