// A MySQL/MariaDB server newer than the runner's dump tool is refused before any work, naming
// both versions: the rule (lib/core/versions.ts) by itself, and the check against a real
// MariaDB 10.11 server with a stand-in mariadb-dump that reports an older release.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { ServerFamily, ServerVersions } from '../../lib/core/versions';
import { LocalMariaDB, startLocalMariaDB } from '../../runner/src/local/mariadb-server';
import { dbbackup } from '../harness/runner';

const { MARIADB, MYSQL } = ServerFamily;

describe('the dump tool against the server (ServerVersions.dumpToolProblem)', () => {
  const problem = (server: ServerFamily, sv: string, tool: ServerFamily, tv: string) =>
    ServerVersions.dumpToolProblem(server, sv, tool, tv, 'the-dump');

  test('same family: the tool dumps servers up to its own major.minor', () => {
    assert.equal(problem(MARIADB, '10.11.6-MariaDB-log', MARIADB, '10.11.19-MariaDB'), undefined);
    assert.equal(problem(MARIADB, '10.3.39-MariaDB', MARIADB, '11.8.2-MariaDB'), undefined);
    assert.equal(problem(MYSQL, '8.4.3', MYSQL, '8.4.7'), undefined);
    assert.equal(problem(MYSQL, '5.7.44-log', MYSQL, '8.4.7'), undefined);
    assert.match(
      problem(MARIADB, '11.4.2-MariaDB', MARIADB, '10.11.19-MariaDB')!,
      new RegExp(
        /^the-dump 10\.11\.19-MariaDB cannot dump the mariadb/.source +
          / 11\.4\.2-MariaDB server: .*newer.*mariadb-client\) 11\.4 or newer/.source,
      ),
    );
    assert.match(
      problem(MYSQL, '9.1.0', MYSQL, '8.4.7')!,
      /8\.4\.7 cannot dump the mysql 9\.1\.0 server.*9\.1 or newer/,
    );
    // Patch releases of the same major.minor are one release line.
    assert.equal(problem(MARIADB, '10.11.20-MariaDB', MARIADB, '10.11.6-MariaDB'), undefined);
  });

  test('across families: MariaDB tools dump MySQL up to 8.0; MySQL 8 mysqldump never dumps MariaDB', () => {
    assert.equal(problem(MYSQL, '8.0.39', MARIADB, '11.8.2-MariaDB'), undefined);
    assert.match(
      problem(MYSQL, '8.4.3', MARIADB, '11.8.2-MariaDB')!,
      /dump MySQL servers up to 8\.0.*mysqldump\) 8\.4/,
    );
    assert.match(problem(MARIADB, '10.11.6-MariaDB', MYSQL, '8.4.7')!, /COLUMN_STATISTICS/);
  });

  test('a version that is no number is left to the session', () => {
    assert.equal(problem(MARIADB, 'unknown', MARIADB, '10.11.19-MariaDB'), undefined);
  });
});

describe('backup refuses a MariaDB server newer than mariadb-dump (real MariaDB 10.11)', () => {
  let db: LocalMariaDB;
  let tmp: string;

  beforeAll(async () => {
    db = await startLocalMariaDB();
    await db.sql('CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1)');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-myversions-'));
  });
  afterAll(async () => {
    await db?.stop();
    if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** PATH with every program but the dump tools, plus a mariadb-dump that reports `version` (and dumps). */
  function pathWithDump(name: string, version: string): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    for (const d of (process.env.PATH ?? '').split(':').filter((x) => x !== '')) {
      for (const e of fs.existsSync(d) ? fs.readdirSync(d) : []) {
        if (e === 'mariadb-dump' || e === 'mysqldump' || fs.existsSync(path.join(dir, e))) continue;
        try {
          if (fs.statSync(path.join(d, e)).isFile()) fs.symlinkSync(path.join(d, e), path.join(dir, e));
        } catch {
          // a dangling link on PATH
        }
      }
    }
    // It reports `version`; everything else is the real tool's work.
    const real = execFileSync('sh', ['-c', 'command -v mariadb-dump']).toString().trim();
    const say = `echo "mariadb-dump  Ver 10.19 Distrib ${version}-MariaDB, for debian-linux-gnu (x86_64)"`;
    const body = `case "$1" in --version) ${say};; *) exec ${real} "$@";; esac`;
    fs.writeFileSync(path.join(dir, 'mariadb-dump'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return dir;
  }

  const backup = (to: string, env: Record<string, string>) =>
    dbbackup(['backup', '--engine', 'mysql', '--source', db.url('app'), '--to', `file://${to}`], {
      env: { ...db.env, ...env },
    });

  test('mariadb-dump 10.6 against the 10.11 server: exit 2 naming both versions, nothing stored', async () => {
    const server = await db.sql('SELECT VERSION()');
    assert.match(server, /^10\.11\./);
    const to = path.join(tmp, 'refused');
    const r = await backup(to, { PATH: pathWithDump('old-dump', '10.6.18') });
    assert.equal(r.code, 2, r.stderr);
    const escaped = server.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(
      r.stderr,
      new RegExp(`mariadb-dump \\(.*\\) 10\\.6\\.18-MariaDB cannot dump the mariadb ${escaped} server`),
    );
    assert.match(r.stderr, /mariadb-client\) 10\.11 or newer/);
    assert.doesNotMatch(r.stderr, /"event":"backup-start"/);
    assert.ok(!fs.existsSync(to) || fs.readdirSync(to).length === 0);
  });

  test('the same stand-in reporting 10.11 backs up (the refusal above is the version, nothing else)', async () => {
    const r = await backup(path.join(tmp, 'passes'), { PATH: pathWithDump('same-dump', '10.11.19') });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /cannot dump the mariadb/);
  });
});
