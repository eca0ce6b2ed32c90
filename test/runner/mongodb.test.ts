// MongoDB without a server: no MongoDB server or tools can be installed here, so these tests
// check everything that does not need one — the archive reader against archives built here byte
// by byte from the format's specification, the connection string and credentials file, the
// restore planning, and the whole shared pipeline (compression, encryption, storage, manifest,
// verify, restore) driven through stand-in `mongodump`/`mongorestore` programs that record
// how they were called and what they were fed.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { parseSourceUrl } from '../../lib/core/urls';
import { ArchiveError, bsonFields, Crc64, readArchive } from '../../runner/src/engines/mongodb/archive';
import { mongoUri, restoreArgs, toolConfig } from '../../runner/src/engines/mongodb/driver';
import { allCmdlines, findDescendant, poll } from '../harness/procs';
import { dbbackup, logLines } from '../harness/runner';
import { flipByte } from '../harness/damage';

// ---------------------------------------------------------------------------------------------
// BSON and mongodump archives, written by hand from bsonspec.org and mongo-tools' archive spec.

class Int64 {
  constructor(public readonly v: bigint) {}
}
class Timestamp {
  constructor(
    public readonly t: number,
    public readonly i: number,
  ) {}
}
class ObjectId {
  constructor(public readonly bytes: Buffer) {}
}
type Bson = string | number | boolean | null | Buffer | Int64 | Timestamp | ObjectId | Bson[] | { [k: string]: Bson };

function cstring(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}
function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}

/** A BSON document (field order kept). */
function bson(doc: { [k: string]: Bson }): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(doc)) {
    const el = (type: number, body: Buffer) => parts.push(Buffer.from([type]), cstring(k), body);
    if (typeof v === 'string') {
      const s = cstring(v);
      el(0x02, Buffer.concat([int32(s.length), s]));
    } else if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) el(0x10, int32(v));
      else {
        const b = Buffer.alloc(8);
        b.writeDoubleLE(v);
        el(0x01, b);
      }
    } else if (typeof v === 'boolean') el(0x08, Buffer.from([v ? 1 : 0]));
    else if (v === null) el(0x0a, Buffer.alloc(0));
    else if (Buffer.isBuffer(v)) el(0x05, Buffer.concat([int32(v.length), Buffer.from([0]), v]));
    else if (v instanceof Int64) {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(v.v);
      el(0x12, b);
    } else if (v instanceof Timestamp) {
      const b = Buffer.alloc(8);
      b.writeUInt32LE(v.i, 0);
      b.writeUInt32LE(v.t, 4);
      el(0x11, b);
    } else if (v instanceof ObjectId) el(0x07, v.bytes);
    else if (Array.isArray(v)) el(0x04, bson(Object.fromEntries(v.map((x, i) => [String(i), x]))));
    else el(0x03, bson(v));
  }
  const body = Buffer.concat([...parts, Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

const TERMINATOR = Buffer.from([0xff, 0xff, 0xff, 0xff]);

interface Collection {
  readonly db: string;
  readonly coll: string;
  readonly docs: Buffer[];
  readonly type?: string;
}

/** The CRC-64 that mongodump writes into an EOF header, as a signed int64. */
function crcOf(docs: Buffer[]): Int64 {
  const crc = new Crc64();
  for (const d of docs) crc.update(d);
  return new Int64(BigInt.asIntN(64, crc.digest()));
}

/**
 * A mongodump archive: magic, header, prelude, then each namespace's documents in segments of
 * `segment` documents, interleaved round-robin as mongodump's multiplexer does, then each
 * namespace's EOF block with its CRC. The oplog is the namespace `""."oplog"`.
 */
function makeArchive(
  collections: Collection[],
  oplog: Buffer[] | undefined,
  segment = 7,
  serverVersion = '7.0.14',
): Buffer {
  const parts: Buffer[] = [Buffer.from([0x6d, 0xe2, 0x99, 0x81])];
  parts.push(
    bson({ concurrent_collections: 4, version: '0.1', server_version: serverVersion, tool_version: '100.10.0' }),
  );
  const all: Collection[] = [...collections, ...(oplog ? [{ db: '', coll: 'oplog', docs: oplog }] : [])];
  for (const c of all) {
    parts.push(
      bson({
        db: c.db,
        collection: c.coll,
        metadata:
          c.db === ''
            ? ''
            : JSON.stringify({
                indexes: [{ v: 2, key: { _id: 1 }, name: '_id_' }],
                uuid: crypto.randomUUID().replace(/-/g, ''),
                collectionName: c.coll,
                type: c.type ?? 'collection',
              }),
        size: c.docs.reduce((s, d) => s + d.length, 0),
        type: c.type ?? 'collection',
      }),
    );
  }
  parts.push(TERMINATOR);
  // A view has metadata only: no data blocks.
  const data = all.filter((c) => c.type !== 'view');
  const cursors = data.map(() => 0);
  let open = true;
  while (open) {
    open = false;
    data.forEach((c, n) => {
      if (cursors[n] >= c.docs.length) return;
      open = true;
      parts.push(
        bson({ db: c.db, collection: c.coll, EOF: false, CRC: new Int64(0n) }),
        ...c.docs.slice(cursors[n], cursors[n] + segment),
        TERMINATOR,
      );
      cursors[n] += segment;
    });
  }
  for (const c of data) {
    // An empty collection still gets its (empty) segment, as mongodump's MuxIn.Close writes one.
    if (c.docs.length === 0)
      parts.push(bson({ db: c.db, collection: c.coll, EOF: false, CRC: new Int64(0n) }), TERMINATOR);
    parts.push(bson({ db: c.db, collection: c.coll, EOF: true, CRC: crcOf(c.docs) }), TERMINATOR);
  }
  return Buffer.concat(parts);
}

function oid(n: number): ObjectId {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(0x65000000 + n, 0);
  b.writeUInt32BE(n, 8);
  return new ObjectId(b);
}

/** A small deployment: two collections of `app`, an empty one, admin users, and an oplog. */
function sampleArchive(): { archive: Buffer; oplogEnd: string } {
  const users = Array.from({ length: 40 }, (_, i) =>
    bson({
      _id: oid(i),
      name: `user ${i} héllo 🎉`,
      age: 20 + (i % 50),
      score: i * 1.25,
      tags: ['a', 'ß', i],
      active: i % 2 === 0,
      avatar: crypto.randomBytes(64),
      big: new Int64(BigInt(i) * 10_000_000_000n),
    }),
  );
  const orders = Array.from({ length: 25 }, (_, i) =>
    bson({ _id: oid(1000 + i), user: oid(i % 40), total: (i * 7.31) % 100, items: [{ sku: `S${i}`, qty: i % 3 }] }),
  );
  const adminUsers = [
    bson({
      _id: 'app.reporting',
      user: 'reporting',
      db: 'app',
      credentials: {
        'SCRAM-SHA-256': { iterationCount: 15000, salt: 'c2FsdA==', storedKey: 'a2V5', serverKey: 'c2s=' },
      },
      roles: [{ role: 'read', db: 'app' }],
    }),
  ];
  const oplog = Array.from({ length: 5 }, (_, i) =>
    bson({
      ts: new Timestamp(1795580000 + i, i + 1),
      t: new Int64(3n),
      v: 2,
      op: 'i',
      ns: 'app.orders',
      o: { _id: oid(5000 + i), total: i },
    }),
  );
  return {
    archive: makeArchive(
      [
        { db: 'app', coll: 'users', docs: users },
        { db: 'app', coll: 'orders', docs: orders },
        { db: 'app', coll: 'empty', docs: [] },
        { db: 'admin', coll: 'system.users', docs: adminUsers },
        { db: 'app', coll: 'recent', docs: [], type: 'view' },
      ],
      oplog,
    ),
    oplogEnd: `${1795580004}.5`,
  };
}

// ---------------------------------------------------------------------------------------------

describe('MongoDB archive reader (verify --deep, the check before a restore)', () => {
  test('CRC-64 is Go hash/crc64 ECMA (CRC-64/XZ): the check value of "123456789"', () => {
    assert.equal(new Crc64().update(Buffer.from('123456789')).digest().toString(16), '995dc9bbdf1939fa');
    assert.equal(new Crc64().update(Buffer.alloc(0)).digest(), 0n);
    // Fed in pieces, the same.
    const data = crypto.randomBytes(10000);
    assert.equal(
      new Crc64().update(data.subarray(0, 3333)).update(data.subarray(3333)).digest(),
      new Crc64().update(data).digest(),
    );
  });

  test('BSON fields of a document, and malformed documents refused', () => {
    const d = bson({
      db: 'app',
      collection: 'users',
      EOF: true,
      CRC: new Int64(-5n),
      ts: new Timestamp(7, 9),
      n: 3,
      x: 1.5,
      nested: { a: [1, 2] },
      bin: Buffer.from([1, 2]),
      nothing: null,
    });
    const f = bsonFields(d);
    assert.deepEqual(
      [f.db, f.collection, f.EOF, f.CRC, f.ts, f.n, f.x, f.nothing],
      ['app', 'users', true, -5n, { t: 7, i: 9 }, 3, 1.5, null],
    );
    const bad = Buffer.from(d);
    bad.writeInt32LE(1000, 4 + 1 + 3); // the string length of `db` runs past the end
    assert.throws(() => bsonFields(bad), ArchiveError);
    const unknown = Buffer.from(d);
    unknown[4] = 0x42;
    assert.throws(() => bsonFields(unknown), /unknown element type 0x42/);
  });

  test('a complete archive: namespaces, documents, the server version and the last oplog time', async () => {
    const { archive, oplogEnd } = sampleArchive();
    const s = await readArchive(Readable.from([archive]));
    assert.equal(s.serverVersion, '7.0.14');
    assert.equal(s.toolVersion, '100.10.0');
    assert.equal(s.formatVersion, '0.1');
    assert.deepEqual(s.namespaces, {
      'admin.system.users': 1,
      'app.empty': 0,
      'app.orders': 25,
      'app.users': 40,
      oplog: 5,
    });
    assert.equal(s.documents, 71);
    assert.equal(s.bytes, archive.length);
    assert.equal(s.lastOplogTs, oplogEnd);
    // In one-byte chunks, the same.
    const bytes = [...archive].map((b) => Buffer.from([b]));
    assert.deepEqual(await readArchive(Readable.from(bytes)), s);
  });

  test('every truncation of an archive is refused, including one that ends exactly between blocks', async () => {
    const { archive } = sampleArchive();
    const cuts = new Set<number>([0, 3, 4, 10]);
    for (let i = 1; i < 40; i++) cuts.add(Math.floor((archive.length * i) / 40));
    // Exactly after each terminator: every block boundary.
    for (let at = archive.indexOf(TERMINATOR); at >= 0; at = archive.indexOf(TERMINATOR, at + 1)) cuts.add(at + 4);
    cuts.delete(archive.length);
    for (const cut of cuts) {
      await assert.rejects(
        readArchive(Readable.from([archive.subarray(0, cut)])),
        ArchiveError,
        `cut at ${cut} of ${archive.length}`,
      );
    }
  });

  test(
    'damage is refused: magic, a flipped byte in a document ' + '(CRC), trailing bytes, data after a namespace ended',
    async () => {
      const { archive } = sampleArchive();
      const magic = Buffer.from(archive);
      magic[0] ^= 1;
      await assert.rejects(readArchive(Readable.from([magic])), /does not start with the magic number/);

      const flipped = Buffer.from(archive);
      const at = archive.indexOf(Buffer.from('user 17 h'));
      flipped[at + 5] ^= 0x01;
      await assert.rejects(
        readArchive(Readable.from([flipped])),
        /corrupt: the documents of app\.users have CRC-64 [0-9a-f]+, the archive records [0-9a-f]+/,
      );

      await assert.rejects(
        readArchive(Readable.from([Buffer.concat([archive, Buffer.from([1, 2, 3])])])),
        ArchiveError,
      );
      await assert.rejects(
        readArchive(Readable.from([Buffer.concat([archive, TERMINATOR])])),
        /two terminators in a row/,
      );
      const after = Buffer.concat([
        archive,
        bson({ db: 'app', collection: 'users', EOF: false, CRC: new Int64(0n) }),
        bson({ _id: 1 }),
        TERMINATOR,
      ]);
      await assert.rejects(readArchive(Readable.from([after])), /more data for app\.users after its end/);
      // A prelude that announces a collection whose data never comes.
      const missing = makeArchive([{ db: 'app', coll: 'a', docs: [bson({ _id: 1 })] }], undefined);
      const withoutB = Buffer.concat([
        missing.subarray(0, missing.indexOf(TERMINATOR)),
        bson({ db: 'app', collection: 'b', metadata: '{}', size: 0, type: 'collection' }),
        missing.subarray(missing.indexOf(TERMINATOR)),
      ]);
      await assert.rejects(
        readArchive(Readable.from([withoutB])),
        /the prelude announces app\.b, whose data the archive lacks/,
      );
    },
  );

  test('views have no data; a timeseries collection has its data as system.buckets', async () => {
    const a = makeArchive(
      [
        { db: 'app', coll: 'v', docs: [], type: 'view' },
        { db: 'app', coll: 'system.buckets.weather', docs: [bson({ _id: 1 })] },
      ],
      undefined,
    );
    // The prelude lists the timeseries collection by its own name and type.
    const prelude = Buffer.concat([
      a.subarray(0, a.indexOf(TERMINATOR)),
      bson({ db: 'app', collection: 'weather', metadata: '{}', size: 0, type: 'timeseries' }),
      a.subarray(a.indexOf(TERMINATOR)),
    ]);
    const withoutView = Buffer.from(prelude);
    const s = await readArchive(Readable.from([withoutView]));
    assert.deepEqual(s.namespaces, { 'app.system.buckets.weather': 1 });
  });
});

describe('MongoDB connection, credentials and restore planning', () => {
  test('the connection string: hosts and options, authSource from the path, no database path, never a password', () => {
    const u = (s: string) => mongoUri(parseSourceUrl(s, '--source'));
    assert.equal(
      u('mongodb://backup@db.internal:27017/app?replicaSet=rs0&authSource=admin'),
      'mongodb://backup@db.internal:27017/?replicaSet=rs0&authSource=admin',
    );
    assert.equal(u('mongodb://backup@db.internal/app'), 'mongodb://backup@db.internal:27017/?authSource=app');
    assert.equal(u('mongodb://db.internal:27018/app?tls=true'), 'mongodb://db.internal:27018/?tls=true');
    assert.equal(
      u('mongodb+srv://back%40up@cluster0.example.net/app?retryWrites=true'),
      'mongodb+srv://back%40up@cluster0.example.net/?retryWrites=true&authSource=app',
    );
    assert.equal(
      u('mongodb://u@localhost/app?socket=/tmp/mongodb-27017.sock'),
      'mongodb://u@%2Ftmp%2Fmongodb-27017.sock/?authSource=app',
    );
    assert.throws(() => parseSourceUrl('mongodb://u:secret@h/app', '--source'), /contains a password/);
  });

  test('the --config YAML holds the connection string and the password, quoted so any character survives', () => {
    const pw = 'p"a\\ss: #{word}\n\t ü 🎉';
    const yaml = toolConfig('mongodb://u@h:27017/?authSource=admin', pw);
    const lines = yaml.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^uri: "/);
    assert.match(lines[1], /^password: "/);
    // A JSON string is a YAML double-quoted scalar: the YAML value decodes to the password.
    assert.equal(JSON.parse(lines[1].slice('password: '.length)), pw);
    assert.equal(toolConfig('mongodb://h:27017/', undefined), 'uri: "mongodb://h:27017/"\n');
  });

  test(
    'restore planning: the same name replays the oplog; another ' +
      'name renames one database without it; --clean drops',
    () => {
      assert.deepEqual(restoreArgs('/c.yaml', 'app', 'app', { clean: false, withGlobals: false }), {
        args: ['--config=/c.yaml', '--archive', '--stopOnError', '--oplogReplay'],
        consistent: true,
      });
      assert.deepEqual(restoreArgs('/c.yaml', 'app', 'app_copy', { clean: true, withGlobals: false }), {
        args: [
          '--config=/c.yaml',
          '--archive',
          '--stopOnError',
          '--drop',
          '--nsInclude=app.*',
          '--nsFrom=app.*',
          '--nsTo=app_copy.*',
        ],
        consistent: false,
      });
    },
  );
});

describe('MongoDB through the shared pipeline, with stand-in mongodump and mongorestore', () => {
  let dir: string;
  let bin: string;
  let calls: string;
  let archiveFile: string;
  let archive: Buffer;
  let identity: string;
  let otherIdentity: string;
  let recipient: string;
  const password = 'mongo-Secret-' + crypto.randomBytes(6).toString('hex');
  const source = 'mongodb://backup@db.internal:27017/app?replicaSet=rs0&authSource=admin';

  /** A stand-in tool: records argv, its --config file (content and mode) and stdin; writes FAKE_ARCHIVE. */
  function fakeTool(name: string): void {
    const script = `#!${process.execPath}
const fs = require('fs');
const crypto = require('crypto');
const argv = process.argv.slice(2);
if (argv.includes('--version')) { console.log('${name} version: 100.10.0'); process.exit(0); }
const cfg = (argv.find((a) => a.startsWith('--config=')) || '').slice(9);
const record = { tool: '${name}', argv, config: cfg && fs.readFileSync(cfg, 'utf8'),
  mode: cfg && (fs.statSync(cfg).mode & 0o777).toString(8), configFile: cfg,
  dirMode: cfg && (fs.statSync(require('path').dirname(cfg)).mode & 0o777).toString(8) };
const done = (extra) => fs.appendFileSync(process.env.FAKE_CALLS, JSON.stringify({ ...record, ...extra }) + '\\n');
if ('${name}' === 'mongodump') {
  if (process.env.FAKE_FAIL) { done({}); process.stderr.write(process.env.FAKE_FAIL + '\\n'); process.exit(1); }
  const data = fs.readFileSync(process.env.FAKE_ARCHIVE);
  const upTo = process.env.FAKE_TRUNCATE ? Number(process.env.FAKE_TRUNCATE) : data.length;
  const delay = Number(process.env.FAKE_DELAY_MS || 0);
  let at = 0;
  const step = () => {
    while (at < upTo) {
      const chunk = data.subarray(at, Math.min(upTo, at + Number(process.env.FAKE_CHUNK || 65536)));
      at += chunk.length;
      if (!process.stdout.write(chunk)) return process.stdout.once('drain', step);
      if (delay) return setTimeout(step, delay);
    }
    done({});
    process.stderr.write('2026-11-25T04:00:00.000+0000\\twriting captured oplog to\\n' +
      '2026-11-25T04:00:00.000+0000\\t\\tdumped 5 oplog entries\\n');
  };
  step();
} else {
  const hash = crypto.createHash('sha256');
  let size = 0;
  process.stdin.on('data', (d) => { hash.update(d); size += d.length; });
  process.stdin.on('end', () => {
    done({ stdinSha256: hash.digest('hex'), stdinSize: size });
    if (process.env.FAKE_FAIL) { process.stderr.write(process.env.FAKE_FAIL + '\\n'); process.exit(1); }
  });
}
`;
    fs.writeFileSync(path.join(bin, name), script, { mode: 0o755 });
  }

  function callsOf(tool: string): Record<string, unknown>[] {
    if (!fs.existsSync(calls)) return [];
    return fs
      .readFileSync(calls, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((c) => c.tool === tool);
  }

  function env(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
    return {
      PATH: `${bin}:${process.env.PATH}`,
      FAKE_CALLS: calls,
      FAKE_ARCHIVE: archiveFile,
      DBBACKUP_SOURCE_PASSWORD: password,
      DBBACKUP_TARGET_PASSWORD: password,
      TMPDIR: path.join(dir, 'tmp'),
      ...extra,
    };
  }

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-mongo-test-'));
    bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.mkdirSync(path.join(dir, 'tmp'));
    calls = path.join(dir, 'calls.jsonl');
    archive = sampleArchive().archive;
    archiveFile = path.join(dir, 'sample.archive');
    fs.writeFileSync(archiveFile, archive);
    fakeTool('mongodump');
    fakeTool('mongorestore');
    identity = path.join(dir, 'identity.txt');
    otherIdentity = path.join(dir, 'other.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    execFileSync('age-keygen', ['-o', otherIdentity], { stdio: 'ignore' });
    recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test(
    'backup: mongodump --archive --oplog with the credentials in a 0600 --config ' +
      'file; the shared pipeline stores, verify --deep reads the archive',
    async () => {
      fs.rmSync(calls, { force: true });
      const store = `file://${dir}/store`;
      const b = await dbbackup(
        ['backup', '--engine', 'mongodb', '--source', source, '--to', store, '--encrypt', `age:${recipient}`, '--json'],
        { env: env() },
      );
      assert.equal(b.code, 0, b.stderr);
      const m = JSON.parse(b.stdout);
      assert.equal(m.engine, 'mongodb');
      assert.equal(m.database, 'app');
      assert.deepEqual(m.tools, { mongodump: '100.10.0' });
      assert.equal(m.position, undefined);
      assert.equal(m.tables, undefined);
      assert.deepEqual(
        m.artifacts.map((a: { name: string; role: string; format: string }) => [a.name, a.role, a.format]),
        [['database.archive.zst.age', 'database', 'mongodump-archive']],
      );
      assert.ok(
        m.manualRestore.some((l: string) =>
          /age -d -i identity\.txt \| zstd -d -c \| mongorestore --archive --oplogReplay/.test(l),
        ),
        m.manualRestore.join('\n'),
      );

      const [dump] = callsOf('mongodump');
      assert.deepEqual(
        (dump.argv as string[]).map((a) => a.replace(/=.*\/tool\.yaml$/, '=CONFIG')),
        ['--config=CONFIG', '--archive', '--oplog'],
      );
      assert.equal(dump.mode, '600');
      assert.equal(dump.dirMode, '700');
      assert.equal(
        dump.config,
        `uri: "mongodb://backup@db.internal:27017/?replicaSet=rs0&authSource=admin"\npassword: ` +
          `${JSON.stringify(password)}\n`,
      );
      assert.equal(fs.existsSync(dump.configFile as string), false, 'the credentials file is gone after the run');
      assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
      assert.doesNotMatch(b.stdout + b.stderr, new RegExp(password));

      // The stored bytes are the archive, compressed and encrypted by the standard tools.
      const stored = path.join(dir, 'store', m.id, 'database.archive.zst.age');
      const plain = execFileSync('sh', ['-c', `age -d -i ${identity} ${stored} | zstd -d -c`], { maxBuffer: 64 << 20 });
      assert.ok(plain.equals(archive));

      const v = await dbbackup(['verify', '--from', store, '--latest', '--deep', '--identity', identity], {
        env: env(),
      });
      assert.equal(v.code, 0, v.stderr);
      const checked = logLines(v.stderr).find((l) =>
        /a complete mongodump archive from MongoDB 7\.0\.14/.test(String(l.msg)),
      );
      assert.ok(checked, v.stderr);
      assert.equal(checked.lastOplogTs, '1795580004.5');
      assert.equal(checked.documents, 71);
    },
  );

  test(
    'restore under the same name: the whole archive with ' + '--oplogReplay, checked whole first; --clean adds --drop',
    async () => {
      fs.rmSync(calls, { force: true });
      const store = `file://${dir}/store`;
      const r = await dbbackup(
        [
          'restore',
          '--from',
          store,
          '--latest',
          '--identity',
          identity,
          '--target',
          'mongodb://restorer@db2.internal:27017/app?authSource=admin',
        ],
        { env: env() },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /checked database\.archive\.zst\.age whole before restoring it/);
      const [call] = callsOf('mongorestore');
      assert.deepEqual((call.argv as string[]).slice(1), ['--archive', '--stopOnError', '--oplogReplay']);
      assert.equal(call.mode, '600');
      assert.equal(
        call.config,
        `uri: "mongodb://restorer@db2.internal:27017/?authSource=admin"\npassword: ${JSON.stringify(password)}\n`,
      );
      assert.equal(call.stdinSha256, crypto.createHash('sha256').update(archive).digest('hex'));
      assert.equal(fs.existsSync(call.configFile as string), false);

      const c = await dbbackup(
        [
          'restore',
          '--from',
          store,
          '--latest',
          '--clean',
          '--identity',
          identity,
          '--target',
          'mongodb://restorer@db2.internal:27017/app',
        ],
        { env: env() },
      );
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual((callsOf('mongorestore')[1].argv as string[]).slice(1), [
        '--archive',
        '--stopOnError',
        '--drop',
        '--oplogReplay',
      ]);
    },
  );

  test(
    'restore under another name: only that database, renamed, ' +
      'without the oplog (and said so); --with-globals refused',
    async () => {
      fs.rmSync(calls, { force: true });
      const store = `file://${dir}/store`;
      const r = await dbbackup(
        [
          'restore',
          '--from',
          store,
          '--latest',
          '--identity',
          identity,
          '--target',
          'mongodb://restorer@db2.internal:27017/app_drill',
        ],
        { env: env() },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /restoring only app as app_drill: mongorestore cannot replay the oplog into a renamed database/,
      );
      assert.deepEqual((callsOf('mongorestore')[0].argv as string[]).slice(1), [
        '--archive',
        '--stopOnError',
        '--nsInclude=app.*',
        '--nsFrom=app.*',
        '--nsTo=app_drill.*',
      ]);
      const g = await dbbackup(
        [
          'restore',
          '--from',
          store,
          '--latest',
          '--with-globals',
          '--identity',
          identity,
          '--target',
          'mongodb://restorer@db2.internal:27017/app_drill',
        ],
        { env: env() },
      );
      assert.equal(g.code, 2);
      assert.match(g.stderr, /--with-globals: a MongoDB backup's users and roles are in its admin database/);
    },
  );

  test('a flipped byte or the wrong key: nothing reaches mongorestore', async () => {
    const store = `file://${dir}/flip`;
    const b = await dbbackup(
      ['backup', '--engine', 'mongodb', '--source', source, '--to', store, '--compression', 'none', '--json'],
      { env: env() },
    );
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout);
    const object = path.join(dir, 'flip', m.id, 'database.archive');
    flipByte(object);
    fs.rmSync(calls, { force: true });
    const v = await dbbackup(['verify', '--from', store, '--latest'], { env: env() });
    assert.equal(v.code, 3);
    assert.match(v.stdout, /DAMAGED\s+.*database\.archive sha256/);
    const r = await dbbackup(['restore', '--from', store, '--latest', '--target', 'mongodb://h:27017/app'], {
      env: env(),
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /database\.archive: sha256 .* does not match/);
    assert.deepEqual(callsOf('mongorestore'), []);

    const w = await dbbackup(
      [
        'restore',
        '--from',
        `file://${dir}/store`,
        '--latest',
        '--identity',
        otherIdentity,
        '--target',
        'mongodb://h:27017/app',
      ],
      { env: env() },
    );
    assert.equal(w.code, 1);
    assert.match(w.stderr, /age exited with code 1: .*no identity matched any of the recipients/);
    assert.deepEqual(callsOf('mongorestore'), []);
  });

  test(
    'a truncated archive that mongodump reported as written: verify ' +
      '--deep exits 3, restore refuses before mongorestore starts',
    async () => {
      const store = `file://${dir}/truncated`;
      const b = await dbbackup(
        ['backup', '--engine', 'mongodb', '--source', source, '--to', store, '--compression', 'gzip'],
        { env: env({ FAKE_TRUNCATE: String(archive.length - 30) }) },
      );
      assert.equal(b.code, 0, b.stderr);
      const v = await dbbackup(['verify', '--from', store, '--latest', '--deep'], { env: env() });
      assert.equal(v.code, 3);
      assert.match(v.stdout, /DAMAGED\s+.*database\.archive\.gz unreadable: truncated/);
      fs.rmSync(calls, { force: true });
      const r = await dbbackup(['restore', '--from', store, '--latest', '--target', 'mongodb://h:27017/app'], {
        env: env(),
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /truncated: the archive ends/);
      assert.deepEqual(callsOf('mongorestore'), []);
    },
  );

  test(
    'mongorestore failing half-way: exit 1 with its message, and ' + 'a warning that the target may hold part of it',
    async () => {
      const r = await dbbackup(
        [
          'restore',
          '--from',
          `file://${dir}/store`,
          '--latest',
          '--identity',
          identity,
          '--target',
          'mongodb://h:27017/app',
        ],
        {
          env: env({
            FAKE_FAIL:
              'Failed: app.users: error restoring from archive: E11000 duplicate key error collection: app.users',
          }),
        },
      );
      assert.equal(r.code, 1);
      assert.match(r.stderr, /mongorestore exited with code 1: Failed: app\.users: .*E11000 duplicate key/);
      assert.match(r.stderr, /mongorestore may have written part of the backup/);
    },
  );

  test('mongodump failing or killed mid-stream: exit 1, no manifest, no credentials file left', async () => {
    const failed = await dbbackup(
      ['backup', '--engine', 'mongodb', '--source', source, '--to', `file://${dir}/failed`],
      {
        env: env({
          FAKE_FAIL:
            "Failed: can't create session: failed to connect to mongodb://db.internal:27017/: " +
            'connection() error occurred during connection handshake: auth error: sasl conversation error: ' +
            'unable to authenticate using mechanism "SCRAM-SHA-256": (AuthenticationFailed) Authentication ' +
            'failed.',
        }),
      },
    );
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /mongodump exited with code 1: Failed: can't create session: .*Authentication failed/);
    assert.equal(
      fs.existsSync(path.join(dir, 'failed'))
        ? fs.readdirSync(path.join(dir, 'failed'), { recursive: true }).length
        : 0,
      0,
    );

    let runner = 0;
    const running = dbbackup(['backup', '--engine', 'mongodb', '--source', source, '--to', `file://${dir}/killed`], {
      env: env({ FAKE_DELAY_MS: '100', FAKE_CHUNK: '256' }),
      onSpawn: (pid) => (runner = pid),
    });
    // The dump itself, not the `mongodump --version` that runs before it.
    const dumping = (pid: number | undefined) => {
      try {
        return pid !== undefined && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--oplog')
          ? pid
          : undefined;
      } catch {
        return undefined;
      }
    };
    const dump = await poll(() => dumping(findDescendant(runner, 'mongodump')));
    await new Promise((r) => setTimeout(r, 300));
    process.kill(dump, 'SIGKILL');
    const r = await running;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /mongodump was killed by SIGKILL/);
    assert.match(r.stderr, /nothing was committed/);
    assert.equal(
      fs.existsSync(path.join(dir, 'killed'))
        ? fs.readdirSync(path.join(dir, 'killed'), { recursive: true }).length
        : 0,
      0,
    );
    assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
  });

  test('the password never appears in any process argv nor in any log line', async () => {
    const seen = new Set<string>();
    let done = false;
    const watcher = (async () => {
      while (!done) {
        for (const c of allCmdlines()) if (/mongo|zstd|age|dbbackup/.test(c)) seen.add(c);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const b = await dbbackup(
      [
        'backup',
        '--engine',
        'mongodb',
        '--source',
        source,
        '--to',
        `file://${dir}/argv`,
        '--encrypt',
        `age:${recipient}`,
      ],
      { env: env({ FAKE_DELAY_MS: '10', FAKE_CHUNK: '512' }) },
    );
    const r = await dbbackup(
      [
        'restore',
        '--from',
        `file://${dir}/argv`,
        '--latest',
        '--identity',
        identity,
        '--target',
        'mongodb://restorer@h:27017/app',
      ],
      { env: env() },
    );
    done = true;
    await watcher;
    assert.equal(b.code, 0, b.stderr);
    assert.equal(r.code, 0, r.stderr);
    const cmdlines = [...seen];
    assert.ok(
      cmdlines.some((c) => c.includes('mongodump') && c.includes('--oplog')),
      'the watcher saw mongodump running',
    );
    for (const c of cmdlines) assert.doesNotMatch(c, new RegExp(password), c);
    assert.doesNotMatch(b.stdout + b.stderr + r.stdout + r.stderr, new RegExp(password));
  });

  test('bad input exits 2 naming the value and the fix', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['backup', '--engine', 'mongodb', '--source', 'mongodb://u:hunter2@h/app', '--to', `file://${dir}/x`],
        /contains a password/,
      ],
      [
        ['backup', '--engine', 'mongodb', '--source', 'mongodb://h/app.v1', '--to', `file://${dir}/x`],
        /names the database 'app\.v1', which MongoDB does not allow/,
      ],
      [
        ['backup', '--engine', 'mongodb', '--source', source, '--to', `file://${dir}/x`, '--type', 'differential'],
        /--type differential --method logical is not available for MongoDB/,
      ],
      [
        ['backup', '--engine', 'mongodb', '--source', 'mysql://h/app', '--to', `file://${dir}/x`],
        /is a mysql URL but the engine is 'mongodb'/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await dbbackup(args, { env: env() });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /hunter2/);
    }
  });
});
