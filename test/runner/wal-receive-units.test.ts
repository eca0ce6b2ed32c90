// Pure parts of streaming WAL shipping: wal-receive's options, `--to-time latest`, where the
// archive's WAL ends along a recovery path (the segment a streamed partial continues), and the
// partial segment's pointer read back from storage.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from '@jest/globals';
import { Compression } from '../../lib/core/model';
import { EncryptionScheme, parseStorageUrl } from '../../lib/core/urls';
import { ArchivedObject, objectName, parseObjectKey } from '../../runner/src/archive/log-archive';
import { parseInterval, parseInvocation, type RestoreConfig, type WalReceiveConfig } from '../../runner/src/config';
import { archiveEnd, indexOf, readWalIndex } from '../../runner/src/engines/postgres/wal-archive';
import { PARTIAL_PREFIX, readPartial } from '../../runner/src/engines/postgres/wal-partial';
import { openStorage } from '../../runner/src/storage';

const SEG = 16 * 1024 * 1024;

function archived(name: string, written: string): ArchivedObject {
  const sha = name.toLowerCase().padEnd(64, '0');
  const key =
    `wal/${name.slice(0, 8)}/${name}/` +
    objectName({
      sha256: sha,
      size: SEG,
      written: new Date(written),
      compression: Compression.ZSTD,
      encryption: EncryptionScheme.NONE,
    });
  return parseObjectKey({ key, size: 1000 }, 'wal')!;
}

function indexWith(objects: ArchivedObject[]) {
  return indexOf(new Map(objects.map((o) => [`${o.group}/${o.file}`, [o]])));
}

describe('wal-receive options', () => {
  const env = { DBBACKUP_TO: 'file:///tmp/x' };
  test('defaults: slot dbbackup, no slot creation, asynchronous, 5 s partial interval', () => {
    const c = parseInvocation(['wal-receive', '--source', 'postgres://rep@db:5432/postgres'], env) as WalReceiveConfig;
    assert.equal(c.slot, 'dbbackup');
    assert.equal(c.createSlot, false);
    assert.equal(c.synchronous, false);
    assert.equal(c.partialIntervalMs, 5000);
    assert.equal(c.spoolDir, undefined);
  });

  test('every option, from flags and from the environment', () => {
    const c = parseInvocation(
      ['wal-receive', '--source', 'postgres://rep@db/postgres', '--create-slot', '--synchronous'],
      { ...env, DBBACKUP_SLOT: 'orders_1', DBBACKUP_PARTIAL_INTERVAL: '250ms', DBBACKUP_SPOOL_DIR: '/var/spool/x' },
    ) as WalReceiveConfig;
    assert.deepEqual(
      [c.slot, c.createSlot, c.synchronous, c.partialIntervalMs, c.spoolDir],
      ['orders_1', true, true, 250, '/var/spool/x'],
    );
  });

  test('bad input names the value and the fix', () => {
    assert.throws(
      () => parseInvocation(['wal-receive', '--source', 'mysql://u@db/app'], env),
      /wal-receive streams PostgreSQL's WAL.*Use binlog-stream/,
    );
    assert.throws(
      () => parseInvocation(['wal-receive', '--source', 'postgres://u@db/app', '--slot', 'My-Slot'], env),
      /--slot 'My-Slot' is not a replication slot name/,
    );
    assert.throws(() => parseInterval('soon', '--partial-interval'), /--partial-interval 'soon' is not a duration/);
    assert.throws(() => parseInterval('50ms', '--partial-interval'), /from 100ms to 60m/);
    assert.equal(parseInterval('2', 'x'), 2000);
    assert.equal(parseInterval('1.5s', 'x'), 1500);
    assert.equal(parseInterval('1m', 'x'), 60000);
  });

  test('restore --to-time latest: a PostgreSQL --target-dir restore only', () => {
    const c = parseInvocation(
      ['restore', '--from', 'file:///tmp/x', '--to-time', 'latest', '--target-dir', '/tmp/d'],
      {},
    ) as RestoreConfig;
    assert.equal(c.toLatest, true);
    assert.equal(c.toTime, undefined);
    assert.equal(c.selector.kind, 'latest');
    assert.throws(
      () =>
        parseInvocation(
          ['restore', '--from', 'file:///tmp/x', '--to-time', 'latest', '--target', 'mysql://u@h/db'],
          {},
        ),
      /--to-time latest restores a PostgreSQL data directory.*needs --target-dir DIR/,
    );
  });
});

describe('where the archive ends (the segment a streamed partial continues)', () => {
  test('the end of a contiguous archive names the next segment', () => {
    const index = indexWith([
      archived('000000010000000000000002', '2026-11-25T10:00:00Z'),
      archived('000000010000000000000003', '2026-11-25T10:05:00Z'),
    ]);
    const end = archiveEnd(index, [{ timeline: 1, fromSegno: 2n }], 'here');
    assert.deepEqual(
      end.segments.map((s) => s.file),
      ['000000010000000000000002', '000000010000000000000003'],
    );
    assert.equal(end.next.name, '000000010000000000000004');
    assert.equal(end.gap, undefined);
  });

  test('a missing segment with later ones is a gap, named', () => {
    const index = indexWith([
      archived('000000010000000000000002', '2026-11-25T10:00:00Z'),
      archived('000000010000000000000005', '2026-11-25T10:15:00Z'),
    ]);
    const end = archiveEnd(index, [{ timeline: 1, fromSegno: 2n }], 'here');
    assert.equal(end.next.name, '000000010000000000000003');
    assert.match(end.gap!.message, /2 segments, 000000010000000000000003 to 000000010000000000000004, are missing/);
  });

  test('along a timeline switch, the end is on the new timeline', () => {
    const index = indexWith([
      archived('000000010000000000000002', '2026-11-25T10:00:00Z'),
      archived('000000020000000000000003', '2026-11-25T10:05:00Z'),
    ]);
    const end = archiveEnd(
      index,
      [
        { timeline: 1, fromSegno: 2n, toSegno: 2n },
        { timeline: 2, fromSegno: 3n },
      ],
      'here',
    );
    assert.equal(end.next.name, '000000020000000000000004');
  });
});

describe('the streamed partial pointer', () => {
  test('absent: undefined; present: read as an archived object; the index never takes it for a segment', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-partial-'));
    try {
      const storage = openStorage(parseStorageUrl(`file://${dir}`, '--to'));
      assert.equal(await readPartial(storage, '00000001'), undefined);
      const pointer = {
        version: 1,
        file: '000000010000000000000004',
        key: `${PARTIAL_PREFIX}/00000001/current.zst`,
        sha256: 'ab'.repeat(32),
        size: SEG,
        written: '2026-11-25T10:07:00.000Z',
        compression: 'zstd',
        encryption: 'none',
      };
      await storage.putBytes(`${PARTIAL_PREFIX}/00000001/current.zst`, Buffer.from('x'));
      await storage.putBytes(`${PARTIAL_PREFIX}/00000001/current.json`, Buffer.from(JSON.stringify(pointer)));
      const o = await readPartial(storage, '00000001');
      assert.equal(o?.file, '000000010000000000000004');
      assert.equal(o?.written.toISOString(), '2026-11-25T10:07:00.000Z');
      const index = await readWalIndex(storage);
      assert.equal(index.segments.size, 0);
      assert.equal(index.others.size, 0);
      await storage.putBytes(
        `${PARTIAL_PREFIX}/00000001/current.json`,
        Buffer.from(JSON.stringify({ ...pointer, key: 'elsewhere/x' })),
      );
      await assert.rejects(readPartial(storage, '00000001'), /does not describe a partial segment/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
