import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, test } from '@jest/globals';
import { ConfigError } from '../../lib/core/errors';
import { Manifest } from '../../lib/core/manifest';
import { RetentionTier } from '../../lib/core/model';
import { assignTier, isoWeekKey } from '../../lib/core/retention';
import { parseSourceUrl, parseStorageUrl } from '../../lib/core/urls';
import { planPrune } from '../../runner/src/commands/prune';
import { HelpRequest, parseInvocation } from '../../runner/src/config';
import { withoutOwnRole } from '../../runner/src/engines/postgres/driver';
import { ageKeyPair } from '../../runner/src/pipeline/encrypt';
import { feedVerified } from '../../runner/src/pipeline/stream';
import { partSizeFor, S3_LIMITS } from '../../runner/src/storage/s3';

const MiB = 1024 * 1024;

describe('S3 part sizes', () => {
  test('10,000 growing parts hold more than 5 TiB, each within S3 limits', () => {
    let total = 0;
    for (let n = 1; n <= S3_LIMITS.maxParts; n++) {
      const size = partSizeFor(n);
      assert.ok(size >= S3_LIMITS.minPartSize && size <= S3_LIMITS.maxPartSize, `part ${n}: ${size}`);
      if (n > 1) assert.ok(size >= partSizeFor(n - 1), 'sizes never shrink');
      total += size;
    }
    assert.ok(total >= 5 * 1024 * 1024 * MiB, `total ${total}`);
    assert.equal(partSizeFor(1), 8 * MiB, 'a small backup uses small parts');
  });
});

describe('retention tiers', () => {
  test('the first backup of a month is monthly, of an ISO week weekly, the rest daily', () => {
    const at = (s: string) => new Date(s);
    assert.equal(assignTier(at('2026-11-25T02:00:00Z'), []), RetentionTier.MONTHLY);
    assert.equal(assignTier(at('2026-11-25T02:00:00Z'), [at('2026-11-02T02:00:00Z')]), RetentionTier.WEEKLY);
    assert.equal(
      assignTier(at('2026-11-25T02:00:00Z'), [at('2026-11-02T02:00:00Z'), at('2026-11-23T02:00:00Z')]),
      RetentionTier.DAILY,
    );
    // 2027-01-01 is in ISO week 2026-W53.
    assert.equal(isoWeekKey(at('2027-01-01T00:00:00Z')), '2026-W53');
    assert.equal(isoWeekKey(at('2026-11-25T00:00:00Z')), '2026-W48');
  });

  test('prune keeps the newest backup of each of the newest N days, weeks and months, and their bases', () => {
    const m = (id: string, startedAt: string, parent?: string) => ({ id, startedAt, parent }) as unknown as Manifest;
    const backups = [
      m('a', '2026-09-15T02:00:00Z'),
      m('b', '2026-10-01T02:00:00Z'),
      m('c', '2026-10-20T02:00:00Z'),
      m('d', '2026-11-23T02:00:00Z'),
      m('e', '2026-11-24T02:00:00Z'),
      m('f', '2026-11-24T14:00:00Z', 'e'),
      m('g', '2026-11-25T02:00:00Z'),
    ];
    const kept = planPrune(backups, { daily: 2, weekly: 1, monthly: 2 });
    assert.deepEqual([...kept.keys()].sort(), ['c', 'e', 'f', 'g']);
    assert.deepEqual(kept.get('e'), ['base of f']);
    assert.deepEqual(kept.get('c'), ['monthly 2026-10']);
  });
});

describe('age keys from KMS randomness', () => {
  test("the identity and recipient are age's own encodings (checked with age-keygen -y)", () => {
    const { identity, recipient } = ageKeyPair(crypto.randomBytes(32));
    assert.match(identity, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
    assert.equal(
      execFileSync('age-keygen', ['-y'], { input: identity + '\n' })
        .toString()
        .trim(),
      recipient,
    );
  });
});

describe('the hold-back stream', () => {
  async function consume(data: Buffer, expected: { size: number; sha256: string }, holdback: number) {
    const seen: Buffer[] = [];
    let ended = false;
    const sink = new Writable({
      write(chunk, _e, cb) {
        seen.push(chunk);
        cb();
      },
      final(cb) {
        ended = true;
        cb();
      },
    });
    const chunks = [];
    for (let i = 0; i < data.length; i += 1000) chunks.push(data.subarray(i, i + 1000));
    const err = await feedVerified(Readable.from(chunks), sink, { name: 'obj', ...expected }, undefined, holdback).then(
      () => undefined,
      (e) => e,
    );
    return { err, seen: Buffer.concat(seen), ended };
  }

  test('a good object passes whole; a damaged one never reaches its last bytes', async () => {
    const data = crypto.randomBytes(50000);
    const good = { size: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') };
    const ok = await consume(data, good, 8000);
    assert.equal(ok.err, undefined);
    assert.ok(ok.ended);
    assert.ok(ok.seen.equals(data));

    const damaged = Buffer.from(data);
    damaged[100] ^= 1;
    const bad = await consume(damaged, good, 8000);
    assert.equal(bad.err?.name, 'DamagedError');
    assert.match(bad.err.message, /obj: sha256 [0-9a-f]{64} does not match/);
    assert.equal(bad.ended, false);
    assert.ok(bad.seen.length <= data.length - 8000, `the consumer saw ${bad.seen.length} of ${data.length} bytes`);

    const short = await consume(data.subarray(0, 40000), good, 8000);
    assert.match(short.err.message, /has 40000 bytes, the manifest records 50000/);
  });

  test('a consumer that stops reading early does not stop the check', async () => {
    const data = crypto.randomBytes(20000);
    const sink = new PassThrough();
    sink.destroy();
    const err = await feedVerified(
      Readable.from([data]),
      sink,
      { name: 'o', size: 1, sha256: '0'.repeat(64) },
      undefined,
      10,
    ).catch((e) => e);
    assert.equal(err?.name, 'DamagedError');
  });

  /** A stream of `data` in 64 KiB chunks that counts what was read of it. */
  function counted(data: Buffer): { stream: Readable; read: () => number } {
    let read = 0;
    const stream = Readable.from(
      (function* () {
        for (let i = 0; i < data.length; i += 65536) {
          const c = data.subarray(i, i + 65536);
          read += c.length;
          yield c;
        }
      })(),
    );
    return { stream, read: () => read };
  }
  /** A consumer that takes `n` bytes, then goes away (as pg_restore --list does: EPIPE). */
  function takes(n: number): Writable {
    let got = 0;
    return new Writable({
      write(chunk, _e, cb) {
        got += chunk.length;
        cb(got > n ? Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }) : null);
      },
    });
  }

  test('headOnly: after a whole checked read, a read of the start stops at the prefix it checked', async () => {
    const data = crypto.randomBytes(24 << 20);
    const expected = {
      name: 'head',
      size: data.length,
      sha256: crypto.createHash('sha256').update(data).digest('hex'),
    };
    // Without an earlier read of the object: read whole and checked, as any read.
    const first = counted(data);
    const fed = await feedVerified(first.stream, takes(1000), expected, undefined, 4 << 20, { headOnly: true });
    assert.equal(first.read(), data.length);
    assert.equal(fed.prefix, undefined);
    // That read checked it whole: the next one stops at 4 MiB (the bytes held back, then the prefix).
    const second = counted(data);
    const head = await feedVerified(second.stream, takes(1000), expected, undefined, 4 << 20, { headOnly: true });
    assert.equal(head.delivered, false);
    assert.equal(head.prefix, 1 << 20);
    assert.ok(second.read() <= (5 << 20) + 65536, `read ${second.read()} of ${data.length} bytes`);
    // An object whose start changed since it was checked: DamagedError, whatever its manifest says.
    const changed = Buffer.from(data);
    changed[10] ^= 1;
    const err = await feedVerified(counted(changed).stream, takes(1000), expected, undefined, 4 << 20, {
      headOnly: true,
    }).catch((e) => e);
    assert.equal(err?.name, 'DamagedError');
    assert.match(err.message, /head: its first 1048576 bytes differ from those read and checked before/);
    // A consumer that reads on past the prefixes: the whole object is read and checked.
    const whole = counted(data);
    await feedVerified(whole.stream, takes(data.length + 1), expected, undefined, 4 << 20, { headOnly: true });
    assert.equal(whole.read(), data.length);
  });
});

describe('configuration', () => {
  test('options come from the environment, the command line wins, flags take true/false', () => {
    const inv = parseInvocation(['backup', '--compression', 'lz4'], {
      DBBACKUP_ENGINE: 'postgres',
      DBBACKUP_SOURCE: 'postgres://backup@db.internal/app',
      DBBACKUP_TO: 's3://bucket/prefix',
      DBBACKUP_COMPRESSION: 'gzip',
      DBBACKUP_JSON: 'true',
      DBBACKUP_ENCRYPT: 'kms:alias/backups',
    });
    assert.ok(!(inv instanceof HelpRequest));
    assert.equal(inv.command, 'backup');
    if (inv.command !== 'backup') return;
    assert.equal(inv.compression, 'lz4');
    assert.equal(inv.json, true);
    assert.deepEqual(inv.encryption, { scheme: 'kms', key: 'alias/backups' });
    assert.equal(inv.source.host, 'db.internal');
    assert.equal(inv.source.port, 5432);
    assert.equal(inv.to.bucket, 'bucket');
    assert.equal(inv.to.path, 'prefix');
    assert.throws(
      () => parseInvocation(['list'], { DBBACKUP_FROM: 'file:///x', DBBACKUP_JSON: 'maybe' }),
      /DBBACKUP_JSON is 'maybe'; use true or false/,
    );
    assert.throws(
      () => parseInvocation(['list', '--from', 'file:///x', '--deep'], {}),
      /option --deep does not go with 'list' \(it is for: verify\)/,
    );
    assert.throws(
      () =>
        parseInvocation(
          ['prune', '--from', 's3://bkt/p', '--keep-daily', '7', '--keep-weekly', '4', '--keep-monthly', '12'],
          {},
        ),
      /prune works on file:\/\/ storage only/,
    );
    assert.ok(parseInvocation(['--help'], {}) instanceof HelpRequest);
  });

  test('URLs: sockets, default ports, engine mismatch, passwords refused', () => {
    const s = parseSourceUrl('mysql://root@localhost/shop?socket=/tmp/x/mysqld.sock');
    assert.equal(s.socket, '/tmp/x/mysqld.sock');
    assert.equal(s.port, 3306);
    assert.equal(parseSourceUrl('postgres://u@%2Frun%2Fpostgresql/db?host=/run/postgresql').socket, '/run/postgresql');
    assert.throws(() => parseSourceUrl('mysql://u@h/db', '--source', 'postgres' as never), ConfigError);
    assert.throws(
      () => parseSourceUrl('postgres://u:secretvalue@h/db'),
      (e: Error) => !e.message.includes('secretvalue') && /contains a password/.test(e.message),
    );
    assert.throws(() => parseStorageUrl('file://relative/path'), /has the host 'relative'/);
    assert.throws(() => parseStorageUrl('s3://Bad_Bucket/x'), /not a valid bucket name/);
  });
});

describe('restoring globals', () => {
  test("the restoring role's own CREATE/ALTER ROLE lines are left out, others kept", () => {
    const script = [
      'CREATE ROLE postgres;',
      "ALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$x';",
      'CREATE ROLE reporting;',
      'ALTER ROLE reporting WITH NOLOGIN;',
      'CREATE ROLE postgres_ro;',
    ].join('\n');
    assert.deepEqual(withoutOwnRole(script, 'postgres').split('\n'), [
      'CREATE ROLE reporting;',
      'ALTER ROLE reporting WITH NOLOGIN;',
      'CREATE ROLE postgres_ro;',
    ]);
  });
});
