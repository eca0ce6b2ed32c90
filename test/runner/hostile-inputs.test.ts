// Hostile values on the command line: passwords in every URL form, malformed ids, escapes,
// paths, bucket names, moments and recipients. Each is refused with exit 2 by the real
// runner, with a message that names the value and the fix, and no password in any output.
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { parseMoment } from '../../runner/src/config';
import { ageRecipientProblem, bucketNameProblem, redact, StorageKind } from '../../lib/core/urls';
import { ageKeyPair } from '../../runner/src/pipeline/encrypt';
import { dbbackup } from '../harness/runner';

const SECRET = 'Sekr3tPw';
const DIR = 'file:///tmp/dbbackup-hostile-never-written';

/** Run and expect exit 2 with `message` on stderr and nothing of `secret` anywhere. */
async function refused(
  args: string[],
  message: RegExp,
  env: Record<string, string | undefined> = {},
  secret?: string,
): Promise<string> {
  const r = await dbbackup(args, { env });
  assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, message);
  if (secret !== undefined) {
    assert.ok(
      !(r.stdout + r.stderr).includes(secret),
      `the password '${secret}' appears in the output:\n${r.stdout}${r.stderr}`,
    );
  }
  return r.stderr;
}

describe('passwords in URLs are refused and never echoed', () => {
  const forms: [string, string, string][] = [
    ['postgres', `postgres://backup:${SECRET}@db.internal:5432/app`, SECRET],
    // Unescaped '@' and '/' in the password: the URL parser would take part of it as the host.
    ['postgres', `postgres://backup:${SECRET}@pa/ss@db.internal/app`, `${SECRET}@pa/ss`],
    ['postgres', `postgres://backup:${SECRET}/x@db.internal/app`, `${SECRET}/x`],
    ['postgres', `postgres://backup:${SECRET}?a=1@db.internal/app`, `${SECRET}?a=1`],
    ['postgres', `postgresql://backup:${SECRET}%40x@db.internal/app`, SECRET],
    ['postgres', `postgres://backup@db.internal/app?password=${SECRET}`, SECRET],
    ['postgres', `postgres://backup@db.internal/app?sslmode=require&pass=${SECRET}`, SECRET],
    ['postgres', `postgres://backup@db.internal/app?pass%77ord=${SECRET}`, SECRET],
    ['mysql', `mysql://backup:${SECRET}@db.internal:3306/app`, SECRET],
    ['mysql', `mysql://backup@db.internal/app?user=backup&pwd=${SECRET}`, SECRET],
    ['mysql', `mariadb://backup@db.internal/app?password=${SECRET}`, SECRET],
    ['mongodb', `mongodb://backup:${SECRET}@h1:27017,h2:27017/app?replicaSet=rs0`, SECRET],
    ['mongodb', `mongodb+srv://backup:${SECRET}@cluster0.example.net/app`, SECRET],
  ];
  for (const [engine, url, secret] of forms) {
    test(`backup --source ${redact(url)}`, async () => {
      const err = await refused(
        ['backup', '--engine', engine, '--source', url, '--to', DIR],
        /contains a password/,
        {},
        secret,
      );
      assert.match(err, /DBBACKUP_SOURCE_PASSWORD/);
    });
  }

  test('the same through DBBACKUP_SOURCE, --target, a positional and a storage URL', async () => {
    const url = `postgres://backup:${SECRET}@pa/ss@db.internal/app`;
    await refused(
      ['backup', '--engine', 'postgres', '--to', DIR],
      /contains a password/,
      { DBBACKUP_SOURCE: url },
      SECRET,
    );
    const err = await refused(
      ['restore', '--from', DIR, '--latest', '--target', url],
      /contains a password/,
      {},
      SECRET,
    );
    assert.match(err, /DBBACKUP_TARGET_PASSWORD/);
    await refused(
      ['drill', '--from', DIR, '--target', `mongodb://u:${SECRET}@h1,h2/app`],
      /contains a password/,
      {},
      SECRET,
    );
    await refused(['list', '--from', DIR, url], /takes no argument/, {}, SECRET);
    await refused(['list', '--from', `s3://AKIAX:${SECRET}@bucket/x`], /credentials/, {}, SECRET);
    await refused(
      ['backup', '--engine', 'postgres', '--source', 'postgres://u@h/db', '--to', `file://u:${SECRET}@host/x`],
      /credentials/,
      {},
      SECRET,
    );
  });

  test('redact masks the password however it is written, and leaves URLs without one alone', () => {
    assert.equal(redact(`postgres://u:${SECRET}@pa/ss@h/db`), 'postgres://u:***@h/db');
    assert.equal(
      redact(`postgres://u@h/db?sslmode=require&password=${SECRET}`),
      'postgres://u@h/db?sslmode=require&password=***',
    );
    assert.equal(redact('postgres://u@h:5432/db?application_name=a@b'), 'postgres://u@h:5432/db?application_name=a@b');
    assert.equal(
      redact('mongodb://u@h1:27017,h2:27017/app?replicaSet=rs0'),
      'mongodb://u@h1:27017,h2:27017/app?replicaSet=rs0',
    );
  });
});

describe('malformed values: exit 2 naming the value', () => {
  for (const id of ['.', '..', '...', '.hidden', '../x', 'a/b']) {
    test(`--id '${id}'`, async () => {
      await refused(
        ['verify', '--from', DIR, '--id', id],
        new RegExp(`--id '${id.replace(/[./]/g, (c) => '\\' + c)}' is not a backup id`),
      );
    });
  }

  test('malformed percent-escapes in source and storage URLs', async () => {
    await refused(
      ['backup', '--engine', 'postgres', '--source', 'postgres://u@h/a%zzb', '--to', DIR],
      /malformed percent-escape '%zz'.*%25/,
    );
    await refused(
      ['backup', '--engine', 'postgres', '--source', 'postgres://u@h/a%', '--to', DIR],
      /malformed percent-escape/,
    );
    await refused(['backup', '--engine', 'postgres', '--source', 'postgres://u@h/a%C3b', '--to', DIR], /not UTF-8/);
    await refused(['list', '--from', 'file:///tmp/a%2'], /malformed percent-escape '%2'/);
    await refused(['list', '--from', 's3://bucket/pre%gfix'], /malformed percent-escape '%gf'/);
  });

  const paths: [string, RegExp][] = [
    ['file:///a/../b', /'file:\/\/\/a\/\.\.\/b' is not a normalised absolute path.*Use file:\/\/\/b\./],
    ['file:///a/./b', /not a normalised absolute path.*Use file:\/\/\/a\/b\./],
    ['file:///a//b', /not a normalised absolute path.*Use file:\/\/\/a\/b\./],
    ['file:////a', /not a normalised absolute path/],
    ['file:///a/%2e%2e/b', /not a normalised absolute path/],
    ['file://rel', /has the host 'rel'.*three slashes/],
    ['file://rel/path', /has the host 'rel'/],
    ['s3://bucket/a/../b', /prefix 'a\/\.\.\/b'.*Use s3:\/\/bucket\/a\/b/],
  ];
  for (const [url, message] of paths) {
    test(`storage URL ${url}`, async () => {
      await refused(['list', '--from', url], message);
    });
  }

  const buckets: [string, RegExp][] = [
    ['s3://ab/x', /has 2 characters/],
    [`s3://${'a'.repeat(64)}/x`, /has 64 characters/],
    ['s3://a..b/x', /adjacent dots/],
    ['s3://My-Bucket/x', /lower-case/],
    ['s3://my_bucket/x', /lower-case letters, digits, dots and hyphens/],
    ['s3://-bucket/x', /start and end with a letter or digit/],
    ['s3://192.168.10.1/x', /IP address/],
    ['s3://xn--bucket/x', /'xn--'/],
    ['s3://sthree-bucket/x', /'sthree-'/],
    ['s3://bucket-s3alias/x', /'-s3alias'/],
    ['s3://bucket--ol-s3/x', /'--ol-s3'/],
    ['gs://goog-backups/x', /'goog'/],
    ['gs://my-google-backups/x', /'google'/],
    ['gs://my-g00gle-backups/x', /'google'/],
    ['gs://My_Bucket/x', /lower-case/],
    [`gs://${'a'.repeat(64)}.b/x`, /part longer than 63/],
  ];
  for (const [url, message] of buckets) {
    test(`bucket ${url.slice(0, 40)}`, async () => {
      await refused(
        ['list', '--from', url],
        new RegExp(`not a valid bucket name for (S3|Cloud Storage): it .*${message.source}`),
      );
    });
  }

  test('valid bucket names pass their own rules', () => {
    assert.equal(bucketNameProblem(StorageKind.S3, 'my-backups.eu-1'), undefined);
    assert.equal(bucketNameProblem(StorageKind.GCS, 'my_backups'), undefined);
    assert.equal(bucketNameProblem(StorageKind.GCS, `${'a'.repeat(63)}.${'b'.repeat(63)}`), undefined);
    assert.match(bucketNameProblem(StorageKind.S3, 'my_backups') ?? '', /lower-case/);
  });

  for (const moment of [
    '2026-01-01',
    'yesterday',
    'now',
    '2026-01-01T10:00:00',
    '2026-01-01 10:00',
    '1735725600',
    '2026-02-30T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T10:00:00+25:00',
  ]) {
    test(`--to-time '${moment}'`, async () => {
      await refused(
        ['restore', '--from', DIR, '--to-time', moment, '--target-dir', '/tmp/x'],
        new RegExp(
          `--to-time '${moment.replace(/[+]/g, '\\+')}' is not a (full ISO-8601 ` +
            `moment with a zone|real moment).*2026-11-25T04:30:00Z`,
        ),
      );
    });
  }

  test('full moments with a zone are read exactly', () => {
    assert.equal(parseMoment('2026-11-25T04:30:00Z', 'x').toISOString(), '2026-11-25T04:30:00.000Z');
    assert.equal(parseMoment('2026-11-25T05:30:00+01:00', 'x').toISOString(), '2026-11-25T04:30:00.000Z');
    assert.equal(parseMoment('2026-11-24T23:00:00.250-0530', 'x').toISOString(), '2026-11-25T04:30:00.250Z');
    assert.equal(parseMoment('2028-02-29T00:00Z', 'x').toISOString(), '2028-02-29T00:00:00.000Z');
  });
});

describe('age recipients: the Bech32 checksum is checked', () => {
  const { recipient, identity } = ageKeyPair(Buffer.alloc(32, 7));

  test('a valid recipient passes; a changed, dropped or swapped character fails its checksum', () => {
    assert.equal(ageRecipientProblem(recipient), undefined);
    const last = recipient.at(-1) === 'q' ? 'p' : 'q';
    for (const broken of [
      recipient.slice(0, -1) + last,
      recipient.slice(0, 10) + recipient.slice(11),
      recipient.slice(0, 5) + recipient[6] + recipient[5] + recipient.slice(7),
    ]) {
      assert.match(ageRecipientProblem(broken) ?? '', /checksum/, broken);
    }
  });

  test('backup --encrypt with a broken checksum or an identity: exit 2, the identity never echoed', async () => {
    const broken = recipient.slice(0, -1) + (recipient.at(-1) === 'q' ? 'p' : 'q');
    const err = await refused(
      ['backup', '--engine', 'postgres', '--source', 'postgres://u@h/db', '--to', DIR, '--encrypt', `age:${broken}`],
      /Bech32 checksum does not match/,
    );
    assert.ok(err.includes(broken), 'the message names the recipient');
    await refused(
      ['backup', '--engine', 'postgres', '--source', 'postgres://u@h/db', '--to', DIR, '--encrypt', `age:${identity}`],
      /is an identity/,
      {},
      identity.slice(16),
    );
  });
});
