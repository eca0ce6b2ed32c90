// Pure parts of point-in-time recovery: WAL names and positions, the archive's gaps and window,
// recovery planning, and the synth-time chain retention check (lib/core/chains.ts).
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { checkChainRetention } from '../../lib/core/chains';
import { Compression } from '../../lib/core/model';
import { LifecycleTiming, Retention } from '../../lib/core/retention';
import { parseCron } from '../../lib/core/schedule';
import { EncryptionScheme } from '../../lib/core/urls';
import { ArchivedObject, objectName, parseObjectKey } from '../../runner/src/archive/log-archive';
import { findGaps, indexOf, planRecovery, walWindow } from '../../runner/src/engines/postgres/wal-archive';
import {
  formatLsn,
  parseHistory,
  parseLsn,
  parseWalFileName,
  segmentBefore,
  segmentName,
  segmentNumber,
  segmentOf,
  timelinePath,
  WalFileKind,
} from '../../runner/src/engines/postgres/wal-names';

const SEG = 16 * 1024 * 1024;

function archived(name: string, written: string, size = SEG): ArchivedObject {
  const sha = name
    .padEnd(64, '0')
    .toLowerCase()
    .replace(/[^0-9a-f]/g, '0')
    .slice(0, 64);
  const key =
    `wal/${name.slice(0, 8)}/${name}/` +
    objectName({
      sha256: sha,
      size,
      written: new Date(written),
      compression: Compression.ZSTD,
      encryption: EncryptionScheme.NONE,
    });
  return parseObjectKey({ key, size: 1000 }, 'wal')!;
}

function indexWith(objects: ArchivedObject[]) {
  const m = new Map<string, ArchivedObject[]>();
  for (const o of objects) m.set(`${o.group}/${o.file}`, [o]);
  return indexOf(m);
}

describe('WAL names and positions', () => {
  test('LSNs, segment numbers and names round-trip', () => {
    assert.equal(parseLsn('0/3000028'), 0x3000028n);
    assert.equal(formatLsn(0x1_0000_0028n), '1/28');
    assert.equal(segmentOf(parseLsn('0/3000028'), SEG), 3n);
    assert.equal(
      segmentBefore(parseLsn('0/4000000'), SEG),
      3n,
      'a stop point on a boundary belongs to the segment before',
    );
    assert.equal(segmentName(1, 0x1ffn, SEG), '0000000100000001000000FF');
    assert.equal(segmentNumber('0000000100000001000000FF', SEG), 0x1ffn);
    assert.equal(segmentName(2, 5n, 1 << 30), '000000020000000100000001', '1 GiB segments: 4 per log');
  });

  test('file kinds PostgreSQL archives, and nothing else', () => {
    assert.equal(parseWalFileName('000000010000000000000003')?.kind, WalFileKind.SEGMENT);
    assert.equal(parseWalFileName('000000020000000000000003.partial')?.kind, WalFileKind.PARTIAL);
    assert.equal(parseWalFileName('00000002.history')?.timeline, 2);
    assert.equal(parseWalFileName('000000010000000000000002.00000028.backup')?.kind, WalFileKind.BACKUP);
    assert.equal(parseWalFileName('../etc/passwd'), undefined);
    assert.equal(parseWalFileName('00000001000000000000000g'), undefined);
  });

  test('timeline history and the path recovery follows', () => {
    const h = parseHistory('1\t0/5000000\tno recovery target specified\n\n2\t0/70000A0\tbefore 2026-01-01\n');
    assert.deepEqual(h, [
      { parent: 1, switchpoint: 0x5000000n },
      { parent: 2, switchpoint: 0x70000a0n },
    ]);
    assert.deepEqual(timelinePath(1, 3, h, 2n, SEG), [
      { timeline: 1, fromSegno: 2n, toSegno: 4n },
      { timeline: 2, fromSegno: 5n, toSegno: 6n },
      { timeline: 3, fromSegno: 7n },
    ]);
    assert.equal(timelinePath(4, 3, h, 2n, SEG), undefined);
  });

  test('archive object names carry the plaintext sha256, size, write time, compression and key', () => {
    const name = objectName({
      sha256: 'ab'.repeat(32),
      size: 123,
      written: new Date('2026-11-25T04:15:00.123Z'),
      compression: Compression.GZIP,
      encryption: EncryptionScheme.KMS,
      keyRef: 'kms-0123456789abcdef',
    });
    assert.equal(name, `${'ab'.repeat(32)}.123.20261125T041500123Z.gz.kms-0123456789abcdef.age`);
    const o = parseObjectKey({ key: `wal/00000001/000000010000000000000001/${name}`, size: 99 }, 'wal')!;
    assert.deepEqual(
      {
        file: o.file,
        group: o.group,
        size: o.size,
        written: o.written.toISOString(),
        compression: o.compression,
        encryption: o.encryption,
        keyRef: o.keyRef,
        storedSize: o.storedSize,
      },
      {
        file: '000000010000000000000001',
        group: '00000001',
        size: 123,
        written: '2026-11-25T04:15:00.123Z',
        compression: 'gzip',
        encryption: 'kms',
        keyRef: 'kms-0123456789abcdef',
        storedSize: 99,
      },
    );
    assert.equal(
      parseObjectKey({ key: `wal/00000001/000000010000000000000001/${name}.partial-1-2`, size: 1 }, 'wal'),
      undefined,
    );
  });
});

describe('the WAL archive: gaps, window and recovery plans', () => {
  const objects = [
    archived('000000010000000000000002', '2026-11-25T10:00:00Z'),
    archived('000000010000000000000003', '2026-11-25T10:05:00Z'),
    archived('000000010000000000000004', '2026-11-25T10:10:00Z'),
    // 5 and 6 missing
    archived('000000010000000000000007', '2026-11-25T10:25:00Z'),
    archived('000000010000000000000008', '2026-11-25T10:30:00Z'),
  ];
  const index = indexWith(objects);
  const path = [{ timeline: 1, fromSegno: 2n }];

  test('a gap is found and named', () => {
    const gaps = findGaps(index, new Map([[1, 2n]]), 'file:///x/wal');
    assert.equal(gaps.length, 1);
    assert.equal(gaps[0].first, '000000010000000000000005');
    assert.equal(gaps[0].last, '000000010000000000000006');
    assert.equal(gaps[0].after, '2026-11-25T10:10:00.000Z');
    assert.match(gaps[0].message, /2 segments, 000000010000000000000005 to 000000010000000000000006, are missing/);
  });

  test('a moment before the gap plans the segments up to the one written after it', () => {
    const plan = planRecovery(index, path, new Date('2026-11-25T10:03:00Z'), 'here');
    assert.deepEqual(
      plan.segments.map((s) => s.file),
      ['000000010000000000000002', '000000010000000000000003'],
    );
  });

  test('a moment inside or after the gap fails naming it; past the end names the latest moment', () => {
    assert.throws(
      () => planRecovery(index, path, new Date('2026-11-25T10:15:00Z'), 'here'),
      new RegExp(
        /gap: 2 segments, 000000010000000000000005 to 000000010000000000000006, are missing.*latest/.source +
          / moment restorable before the gap is the last transaction before 2026-11-25T10:10:00.000Z/.source,
      ),
    );
    assert.throws(
      () => planRecovery(index, path, new Date('2026-11-25T10:28:00Z'), 'here'),
      /000000010000000000000005/,
    );
    // Within the last segment before the gap: recovery stops only if that segment holds a later transaction.
    const edge = planRecovery(index, path, new Date('2026-11-25T10:08:00Z'), 'here');
    assert.equal(edge.following, 'gap');
    assert.match(edge.missing!.message, /gap: 2 segments, 000000010000000000000005/);
    assert.equal(planRecovery(index, path, new Date('2026-11-25T10:03:00Z'), 'here').following, 'present');
    const ok = indexWith(objects.slice(0, 3));
    assert.throws(
      () => planRecovery(ok, path, new Date('2026-11-25T11:00:00Z'), 'here'),
      /after the newest WAL.*latest restorable moment is 2026-11-25T10:10:00.000Z/,
    );
  });

  test('the window runs from the base to the gap, and resumes at a base taken after it', () => {
    const w = walWindow(
      index,
      [{ id: 'a', timeline: 1, startSegno: 2n, consistentAt: new Date('2026-11-25T09:59:00Z') }],
      'here',
    );
    assert.equal(w.earliest, '2026-11-25T09:59:00.000Z');
    assert.equal(w.latest, '2026-11-25T10:10:00.000Z');
    assert.equal(w.gaps.length, 1);
    const w2 = walWindow(
      index,
      [
        { id: 'a', timeline: 1, startSegno: 2n, consistentAt: new Date('2026-11-25T09:59:00Z') },
        { id: 'b', timeline: 1, startSegno: 7n, consistentAt: new Date('2026-11-25T10:24:00Z') },
      ],
      'here',
    );
    assert.equal(w2.latest, '2026-11-25T10:30:00.000Z');
    assert.deepEqual(w2.holes, [{ from: '2026-11-25T10:10:00.000Z', to: '2026-11-25T10:24:00.000Z' }]);
  });
});

describe('checkChainRetention (lib/core/chains.ts)', () => {
  const weeklyFull = [parseCron({ hour: '2', weekDay: 'SUN' })];
  const dailyFull = [parseCron({ hour: '2' })];
  const daily = [parseCron({ hour: '3' })];
  const hourly = [parseCron({ minute: '30', hour: '*' })];

  test('weekly fulls with daily differentials fit the default tiers', () => {
    const r = checkChainRetention({
      retention: Retention.gfs(),
      fullSchedules: weeklyFull,
      differentialSchedules: daily,
    });
    assert.equal(r.requiredFullDays, 14, 'a differential taken 6 days and 1 hour after its full lives 7 more days');
    assert.deepEqual(r.warnings, []);
  });

  test('fulls in the daily tier cannot outlive their own dependants on GCS: the message says what to change', () => {
    assert.throws(
      () =>
        checkChainRetention({
          retention: Retention.gfs(),
          fullSchedules: dailyFull,
          incrementalSchedules: hourly,
          what: 'MyBackup retention',
          timing: LifecycleTiming.GCS,
        }),
      new RegExp(
        /MyBackup retention: a full backup in the daily tier is kept 7 days but must stay 8 days.*schedule/.source +
          / at most one full backup per ISO week.*First break: on \d{4}-\d\d-\d\d backup \S+-incremental/.source,
      ),
    );
  });

  test('on S3 the runner raises the daily chain instead, and the check says so', () => {
    const r = checkChainRetention({
      retention: Retention.gfs(),
      fullSchedules: dailyFull,
      incrementalSchedules: hourly,
    });
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0], /raises the tier of \d+ of \d+ backups.*daily → weekly/);
  });

  test('a point-in-time window longer than the weekly tier fails naming the weekly setting', () => {
    assert.throws(
      () =>
        checkChainRetention({
          retention: Retention.gfs({ weekly: 4 }),
          fullSchedules: weeklyFull,
          pointInTimeDays: 30,
        }),
      /weekly tier is kept 28 days but must stay 37 days.*raise retention weekly to at least 6/,
    );
    const r = checkChainRetention({
      retention: Retention.gfs({ weekly: 6 }),
      fullSchedules: weeklyFull,
      pointInTimeDays: 30,
    });
    assert.equal(r.requiredLogArchiveDays, 37);
  });

  test('a log archive shorter than the window needs fails naming logArchiveDays', () => {
    assert.throws(
      () =>
        checkChainRetention({
          retention: Retention.gfs(),
          fullSchedules: weeklyFull,
          pointInTimeDays: 7,
          logArchiveDays: 10,
        }),
      /raise logArchiveDays to at least 14/,
    );
    assert.doesNotThrow(() =>
      checkChainRetention({
        retention: Retention.gfs(),
        fullSchedules: weeklyFull,
        pointInTimeDays: 7,
        logArchiveDays: 14,
      }),
    );
  });

  test('incremental chains whose first links expire before the last are refused, naming the first break', () => {
    assert.throws(
      () => checkChainRetention({ retention: Retention.gfs(), fullSchedules: weeklyFull, incrementalSchedules: daily }),
      /First break: on \d{4}-\d\d-\d\d backup \S+-incremental would break: .*needs \S+-full.*Fix: take differential/,
    );
  });

  test('dependants or a window without full backups is refused', () => {
    assert.throws(
      () => checkChainRetention({ retention: Retention.gfs(), fullSchedules: [], pointInTimeDays: 3 }),
      /need scheduled full backups/,
    );
  });
});
