// The mbstream checker in front of `mbstream -x` (engines/mysql/mbstream.ts), on streams built
// chunk by chunk: a clean stream passes through byte for byte and unpacks with the real mbstream;
// a path that is absolute or climbs out, a NUL in a path, a payload failing its CRC-32, an
// unknown chunk type and a stream cut short are refused (DamagedError) with nothing written
// outside the directory. Also the checkpoint and binlog-position parsers.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { afterAll, describe, test } from '@jest/globals';
import { DamagedError } from '../../runner/src/errors';
import {
  MbstreamCheck,
  parseBinlogInfo,
  parseCheckpoints,
  unpackStream,
} from '../../runner/src/engines/mysql/mbstream';
import { physicalChain } from '../../runner/src/engines/mysql/physical-restore';
import * as crypto from 'node:crypto';
import { Manifest, manifestDigest } from '../../lib/core/manifest';
import { dbbackup } from '../harness/runner';

const crc = (b: Buffer): number => (zlib as unknown as { crc32: (b: Buffer) => number }).crc32(b);

/** One payload chunk (`P`) of `name` at `offset`; `badCrc` stores a wrong CRC-32. */
function payload(name: string, data: Buffer, offset = 0, badCrc = false, type = 'P'): Buffer {
  const p = Buffer.from(name, 'utf8');
  const head = Buffer.alloc(14);
  head.write('XBSTCK01', 0, 'latin1');
  head[8] = 0;
  head[9] = type.charCodeAt(0);
  head.writeUInt32LE(p.length, 10);
  const tail = Buffer.alloc(20);
  tail.writeBigUInt64LE(BigInt(data.length), 0);
  tail.writeBigUInt64LE(BigInt(offset), 8);
  tail.writeUInt32LE(badCrc ? (crc(data) ^ 1) >>> 0 : crc(data), 16);
  return Buffer.concat([head, p, tail, data]);
}

function eof(name: string): Buffer {
  const p = Buffer.from(name, 'utf8');
  const head = Buffer.alloc(14);
  head.write('XBSTCK01', 0, 'latin1');
  head[9] = 'E'.charCodeAt(0);
  head.writeUInt32LE(p.length, 10);
  return Buffer.concat([head, p]);
}

function file(name: string, data: Buffer): Buffer {
  return Buffer.concat([payload(name, data), eof(name)]);
}

/** Feed `bytes` in small pieces (headers split across reads). */
function pieces(bytes: Buffer, size = 7): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts);
}

const CHECKPOINTS = 'backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 44420\nlast_lsn = 46662\n';

describe('the mbstream checker', () => {
  const dirs: string[] = [];
  const scratch = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-mbs-'));
    dirs.push(d);
    fs.mkdirSync(path.join(d, 'into'));
    return d;
  };
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('a clean stream passes through unchanged, unpacks with mbstream, and keeps its checkpoints', async () => {
    const big = Buffer.alloc(300_000, 7);
    const stream = Buffer.concat([
      file('xtrabackup_checkpoints', Buffer.from(CHECKPOINTS)),
      payload('shop/t.ibd', big.subarray(0, 100_000), 0),
      payload('shop/t.ibd', big.subarray(100_000), 100_000),
      eof('shop/t.ibd'),
      file('empty', Buffer.alloc(0)),
    ]);
    const check = new MbstreamCheck('test');
    const out: Buffer[] = [];
    for await (const c of pieces(stream).pipe(check)) out.push(c as Buffer);
    assert.ok(Buffer.concat(out).equals(stream));
    const d = scratch();
    const summary = await unpackStream(pieces(stream, 4096), path.join(d, 'into'), 'mbstream', 'test');
    assert.equal(summary.files, 3);
    assert.equal(parseCheckpoints(summary.kept.get('xtrabackup_checkpoints')!)?.toLsn, '44420');
    assert.ok(fs.readFileSync(path.join(d, 'into', 'shop', 't.ibd')).equals(big));
  });

  const hostile: [string, Buffer, RegExp][] = [
    ['a path that climbs out', file('../escaped', Buffer.from('x')), /climbs out with '\.\.'/],
    ['a path inside that climbs out', file('shop/../../escaped', Buffer.from('x')), /climbs out/],
    ['an absolute path', file('/tmp/escaped-abs', Buffer.from('x')), /its path is absolute/],
    ['a NUL in a path', file('shop/a\0b', Buffer.from('x')), /NUL byte/],
    ['a payload failing its CRC-32', payload('shop/t.ibd', Buffer.from('data'), 0, true), /fails its CRC-32/],
    ['an unknown chunk type', payload('shop/t.ibd', Buffer.from('data'), 0, false, 'S'), /unknown chunk type 'S'/],
    ['a stream cut short', payload('shop/t.ibd', Buffer.alloc(1000, 1)).subarray(0, 500), /cut short/],
    ['bytes that are not a chunk', Buffer.from('PK\x03\x04 not an mbstream at all'), /does not start with XBSTCK01/],
  ];
  for (const [what, bytes, message] of hostile) {
    test(`${what} is refused before mbstream writes it`, async () => {
      const d = scratch();
      const stream = Buffer.concat([file('ok-first', Buffer.from('fine')), bytes]);
      await assert.rejects(unpackStream(pieces(stream), path.join(d, 'into'), 'mbstream', 'the test stream'), (e) => {
        assert.ok(e instanceof DamagedError, String(e));
        assert.match((e as Error).message, message);
        return true;
      });
      // Nothing beside the directory, nothing at the absolute path.
      assert.deepEqual(fs.readdirSync(d), ['into']);
      assert.equal(fs.existsSync('/tmp/escaped-abs'), false);
    });
  }
});

describe('physical chains and positions', () => {
  const m = (id: string, type: string, extra: Partial<Manifest>): Manifest =>
    ({ id, type, engine: 'mysql', method: 'physical', ...extra }) as unknown as Manifest;
  const full = m('f', 'full', { position: { kind: 'binlog', lsn: '100' } });
  const inc1 = m('i1', 'incremental', {
    parent: 'f',
    base: 'f',
    startPosition: { kind: 'binlog', lsn: '100' },
    position: { kind: 'binlog', lsn: '200' },
  });
  const inc2 = m('i2', 'incremental', {
    parent: 'i1',
    base: 'f',
    startPosition: { kind: 'binlog', lsn: '200' },
    position: { kind: 'binlog', lsn: '300' },
  });

  test('a chain is laid down full first; LSNs that do not continue are refused', () => {
    const byId = new Map([full, inc1, inc2].map((x) => [x.id, x]));
    assert.deepEqual(
      physicalChain(inc2, byId).map((x) => x.id),
      ['f', 'i1', 'i2'],
    );
    const skipping = { ...inc2, parent: 'f' } as Manifest;
    assert.throws(
      () => physicalChain(skipping, byId),
      /starts at LSN 200, but f before it in the chain ends at LSN 100/,
    );
    assert.throws(
      () => physicalChain(inc2, new Map([[inc2.id, inc2]])),
      /depends on i1 .* not in the storage any more/,
    );
    const logical = { ...full, method: 'logical' } as Manifest;
    assert.throws(
      () => physicalChain(inc1, new Map([['f', logical]])),
      /is a mysql logical backup, not a MySQL\/MariaDB physical one/,
    );
  });

  test('checkpoints and binlog positions parse from what mariadb-backup writes', () => {
    assert.deepEqual(parseCheckpoints(CHECKPOINTS), {
      backupType: 'full-backuped',
      fromLsn: '0',
      toLsn: '44420',
      lastLsn: '46662',
    });
    assert.equal(parseCheckpoints('backup_type = full-backuped\nfrom_lsn = x\nto_lsn = 1\n'), undefined);
    assert.deepEqual(parseBinlogInfo('binlog.000001\t629\t0-1-2\n'), {
      file: 'binlog.000001',
      pos: 629,
      gtid: '0-1-2',
    });
    assert.deepEqual(
      parseBinlogInfo("binlog_pos = filename 'binlog.000003', position '1234', GTID of the last change '0-1-9'"),
      { file: 'binlog.000003', pos: 1234, gtid: '0-1-9' },
    );
    assert.deepEqual(parseBinlogInfo('mysql-bin.000002\t4\n'), { file: 'mysql-bin.000002', pos: 4, gtid: undefined });
  });
});

describe('a stored physical backup whose stream climbs out', () => {
  test('restore --target-dir refuses it with exit 3 and writes nothing outside, nor leaves the target', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-mbs-e2e-'));
    try {
      const id = '20261201T120000Z-shop-full-abcd';
      const folder = path.join(root, 'store', id);
      fs.mkdirSync(folder, { recursive: true });
      const stream = Buffer.concat([
        file('xtrabackup_checkpoints', Buffer.from(CHECKPOINTS)),
        file('../../outside-the-target', Buffer.from('planted')),
      ]);
      fs.writeFileSync(path.join(folder, 'instance.mbstream'), stream);
      const base = {
        version: 2,
        id,
        engine: 'mysql',
        database: 'shop',
        databaseId: 'db:3306/shop',
        source: { host: 'db', port: 3306 },
        serverVersion: '10.11.19-MariaDB',
        tools: { 'mariadb-backup': '10.11.19' },
        type: 'full',
        method: 'physical',
        tier: 'daily',
        startedAt: '2026-12-01T12:00:00.000Z',
        endedAt: '2026-12-01T12:00:01.000Z',
        position: { kind: 'binlog', file: 'binlog.000001', pos: 4, lsn: '44420' },
        pipeline: { compression: 'none', encryption: { scheme: 'none' } },
        artifacts: [
          {
            name: 'instance.mbstream',
            role: 'physical',
            format: 'mariadb-backup-mbstream',
            size: stream.length,
            sha256: crypto.createHash('sha256').update(stream).digest('hex'),
          },
        ],
      };
      fs.writeFileSync(path.join(folder, 'manifest.json'), JSON.stringify({ ...base, digest: manifestDigest(base) }));
      const target = path.join(root, 'restore', 'data');
      const r = await dbbackup(['restore', '--from', `file://${root}/store`, '--id', id, '--target-dir', target]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /the member '\.\.\/\.\.\/outside-the-target' cannot be laid down: its path climbs out/);
      // Neither the target nor the parent the restore made for it is left; nothing else was written.
      assert.deepEqual(fs.readdirSync(root), ['store']);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
