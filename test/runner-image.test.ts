// The runner image and the table of supported server versions (lib/core/versions.ts) say the
// same thing: each family's client is pinned in runner/Dockerfile at the version the table
// names, the pin is used by the build, the newest server the table admits is the tools' own
// release, and no tool pin in the Dockerfile is missing from the table.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from '@jest/globals';
import { parseServerVersion, ServerFamily, ServerVersions } from '../lib/core/versions';

const dockerfile = fs.readFileSync(path.join(__dirname, '..', 'runner', 'Dockerfile'), 'utf8');
const args = new Map([...dockerfile.matchAll(/^ARG ([A-Z_]+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
const runLines = dockerfile.split('\n').filter((l) => !l.startsWith('#') && !l.startsWith('ARG '));
const uses = (arg: string) => runLines.some((l) => l.includes(`\${${arg}}`));

describe('runner/Dockerfile against lib/core/versions.ts', () => {
  for (const range of ServerVersions.all()) {
    test(`${range.family}: ${range.dockerfileArg}=${range.clientVersion} is pinned and used`, () => {
      const pin = args.get(range.dockerfileArg);
      assert.equal(pin, range.clientVersion, `ARG ${range.dockerfileArg} in runner/Dockerfile`);
      assert.ok(uses(range.dockerfileArg), `runner/Dockerfile never uses \${${range.dockerfileArg}}`);
    });
  }

  test('every tool pin of the Dockerfile is in the table', () => {
    const pinned = [...args.keys()].filter((a) => a !== 'TARGETARCH');
    assert.deepEqual(
      pinned.sort(),
      ServerVersions.all()
        .map((r) => r.dockerfileArg)
        .sort(),
    );
  });

  test('PostgreSQL: the newest server is the client major, installed as postgresql-client-${PG_MAJOR}', () => {
    const pg = ServerVersions.of(ServerFamily.POSTGRES);
    assert.equal(pg.maxServer, args.get('PG_MAJOR'));
    assert.match(dockerfile, /"postgresql-client-\$\{PG_MAJOR\}"/);
    assert.ok(Number(pg.maxServer) >= 18, 'the image carries pg_dump 18 or newer');
  });

  test("MySQL: the newest server is Oracle's client series, from the 8.4 LTS repository", () => {
    const my = ServerVersions.of(ServerFamily.MYSQL);
    const [major, minor] = parseServerVersion(args.get('MYSQL_VERSION')!)!;
    assert.equal(my.maxServer, `${major}.${minor}`);
    assert.match(dockerfile, new RegExp(`bookworm mysql-${major}\\.${minor}-lts`));
    assert.match(dockerfile, /mysql-community-client=\$\{MYSQL_VERSION\}/);
  });

  test("MariaDB: the newest server is MariaDB's client series, from its repository", () => {
    const maria = ServerVersions.of(ServerFamily.MARIADB);
    assert.equal(maria.maxServer, args.get('MARIADB_MAJOR'));
    assert.match(dockerfile, /deb\.mariadb\.org\/\$\{MARIADB_MAJOR\}\/debian/);
  });

  test('the image checks each installed tool against its pin', () => {
    assert.match(dockerfile, /pg_dump --version \| grep -E " \$\{PG_MAJOR\}/);
    assert.match(dockerfile, /mariadb-dump --version \| grep -F " \$\{MARIADB_MAJOR\}\./);
    assert.match(dockerfile, /mysqldump --version \| grep -F "Ver \$\{MYSQL_VERSION\}"/);
  });

  test('the server programs that point-in-time restores and drills run are in the image, at the pins', () => {
    // pg_waldump and postgres (PostgreSQL PITR restores and drills), mariadbd (physical MariaDB
    // drills and --to-time restores on a temporary server): each installed and checked.
    assert.match(dockerfile, /"postgresql-\$\{PG_MAJOR\}"/);
    assert.match(dockerfile, /create_main_cluster = false/);
    assert.match(dockerfile, /postgresql\/\$\{PG_MAJOR\}\/bin\/pg_waldump" --version/);
    assert.match(dockerfile, /postgresql\/\$\{PG_MAJOR\}\/bin\/postgres" --version/);
    assert.match(dockerfile, /mariadb-server-core/);
    assert.match(dockerfile, /mariadbd --version \| grep -F " \$\{MARIADB_MAJOR\}\./);
  });
});

describe('ServerVersions', () => {
  test('a server newer than the tools is refused, naming both versions', () => {
    const pg = ServerVersions.problem(ServerFamily.POSTGRES, '19.1');
    assert.match(pg!, /version 19\.1, newer than .*pg_dump 18.* 9\.2 to 18/);
    assert.match(ServerVersions.problem(ServerFamily.MYSQL, '9.1.0')!, /version 9\.1\.0, newer .*mysqldump 8\.4\.7/);
    assert.match(ServerVersions.problem(ServerFamily.MARIADB, '12.0.2-MariaDB')!, /12\.0\.2-MariaDB, newer .*11\.8/);
    assert.match(ServerVersions.problem(ServerFamily.MONGODB, '8.2')!, /newer .*mongodump 100\.10\.0/);
  });

  test('servers in range pass; PostgreSQL counts by major from 10 on', () => {
    for (const [family, version] of [
      [ServerFamily.POSTGRES, '18.1'],
      [ServerFamily.POSTGRES, '9.6'],
      [ServerFamily.MYSQL, '8.4.7'],
      [ServerFamily.MYSQL, '8.0.mysql_aurora.3.05.2'],
      [ServerFamily.MARIADB, '11.4.5-MariaDB-log'],
      [ServerFamily.MONGODB, '7.0'],
    ] as const) {
      assert.equal(ServerVersions.problem(family, version), undefined, `${family} ${version}`);
    }
  });

  test('too old and not a version are refused with the fix', () => {
    assert.match(ServerVersions.problem(ServerFamily.POSTGRES, '9.1')!, /older than .*Upgrade the server/);
    const word = ServerVersions.problem(ServerFamily.MYSQL, 'latest');
    assert.match(word!, /'latest' is not a version number; give e\.g\. '8\.4'/);
    assert.throws(() => ServerVersions.check(ServerFamily.MYSQL, '9.0', 'engineVersion'), {
      name: 'ConfigError',
      message: /^engineVersion: /,
    });
  });
});
