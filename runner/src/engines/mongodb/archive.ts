import { Readable } from 'node:stream';

/**
 * A reader of the mongodump archive format (mongo-tools `common/archive/spec.md`), used by
 * `verify --deep` and by the check a MongoDB restore runs before it writes anything:
 *
 *   archive   = magic (0x8199e26d, little-endian) header-doc *collection-metadata-doc terminator
 *               *(namespace-header-doc *document terminator)
 *   terminator = int32 -1 (ff ff ff ff)
 *
 * A namespace's data may come in several segments, interleaved with other namespaces'; its last
 * block is an EOF header (`EOF: true`) whose `CRC` is the CRC-64 (ECMA-182, as Go's hash/crc64)
 * of all its documents. The reader checks the framing of every block, each namespace's CRC,
 * that every namespace that started also ended, that every collection the prelude announces
 * has its data, and that nothing follows the last block: a truncated or damaged archive fails.
 */

const MAGIC = 0x8199e26d;
const TERMINATOR = -1;
const MIN_BSON = 5;
/** mongodump's own bound (db.MaxBSONSize). */
const MAX_BSON = 16 * 1024 * 1024 + 16 * 1024;

/** An archive that is not a complete, well-formed mongodump archive. */
export class ArchiveError extends Error {
  public readonly name = 'ArchiveError';
}

/** What a complete archive holds. */
export interface ArchiveSummary {
  readonly formatVersion: string;
  readonly serverVersion: string;
  readonly toolVersion: string;
  /** `db.collection` → documents; the oplog is `oplog`. */
  readonly namespaces: Readonly<Record<string, number>>;
  readonly documents: number;
  readonly bytes: number;
  /** The `ts` of the last oplog entry (`t.i`): restored with --oplogReplay, the data is consistent at it. */
  readonly lastOplogTs?: string;
}

// CRC-64 as Go's hash/crc64 with the ECMA table (reflected 0xC96C5795D7870F42, init and
// final xor ~0; also known as CRC-64/XZ), in two 32-bit halves for speed.
const TABLE_LO = new Uint32Array(256);
const TABLE_HI = new Uint32Array(256);
(() => {
  const polyLo = 0xd7870f42;
  const polyHi = 0xc96c5795;
  for (let i = 0; i < 256; i++) {
    let lo = i;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const carry = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (carry) {
        lo = (lo ^ polyLo) >>> 0;
        hi = (hi ^ polyHi) >>> 0;
      }
    }
    TABLE_LO[i] = lo;
    TABLE_HI[i] = hi;
  }
})();

/** A running CRC-64/ECMA (Go's crc64.New(crc64.MakeTable(crc64.ECMA))). */
export class Crc64 {
  private lo = 0xffffffff;
  private hi = 0xffffffff;

  public update(b: Uint8Array, start = 0, end = b.length): this {
    let lo = this.lo;
    let hi = this.hi;
    for (let i = start; i < end; i++) {
      const idx = (lo ^ b[i]) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ TABLE_LO[idx];
      hi = (hi >>> 8) ^ TABLE_HI[idx];
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    return this;
  }

  /** The CRC as an unsigned 64-bit value. */
  public digest(): bigint {
    return (BigInt(~this.hi >>> 0) << 32n) | BigInt(~this.lo >>> 0);
  }
}

/** A BSON value the reader cares about (strings, numbers, booleans, timestamps); others are skipped. */
type Value = string | number | bigint | boolean | { t: number; i: number } | null | undefined;

/**
 * The top-level fields of a BSON document, checking its structure (every element's type and
 * length inside the document, the terminating zero).
 */
export function bsonFields(doc: Buffer): Record<string, Value> {
  const out: Record<string, Value> = {};
  const len = doc.readInt32LE(0);
  if (len !== doc.length || doc[len - 1] !== 0)
    throw new ArchiveError(`a BSON document of ${doc.length} bytes says it has ${len}`);
  let p = 4;
  const fail = (what: string) => {
    throw new ArchiveError(`a BSON document is malformed: ${what} at byte ${p}`);
  };
  const cstring = () => {
    const end = doc.indexOf(0, p);
    if (end < 0 || end >= len - 1 + 1) fail('an unterminated name');
    const s = doc.toString('utf8', p, end);
    p = end + 1;
    return s;
  };
  const int32At = (at: number) => {
    if (at + 4 > len) fail('a length past the end');
    return doc.readInt32LE(at);
  };
  while (p < len - 1) {
    const type = doc[p++];
    const name = cstring();
    let size: number;
    switch (type) {
      case 0x01:
        if (p + 8 > len) fail('a double past the end');
        out[name] = doc.readDoubleLE(p);
        size = 8;
        break;
      case 0x02:
      case 0x0d:
      case 0x0e: {
        const n = int32At(p);
        if (n < 1 || p + 4 + n > len - 1 || doc[p + 4 + n - 1] !== 0) fail(`a string of length ${n}`);
        if (type === 0x02) out[name] = doc.toString('utf8', p + 4, p + 4 + n - 1);
        size = 4 + n;
        break;
      }
      case 0x03:
      case 0x04:
      case 0x0f: {
        const n = int32At(p);
        if (n < MIN_BSON || p + n > len - 1) fail(`an embedded document of length ${n}`);
        size = n;
        break;
      }
      case 0x05: {
        const n = int32At(p);
        if (n < 0 || p + 5 + n > len - 1) fail(`binary data of length ${n}`);
        size = 5 + n;
        break;
      }
      case 0x06:
      case 0x0a:
      case 0x7f:
      case 0xff:
        out[name] = null;
        size = 0;
        break;
      case 0x07:
        size = 12;
        break;
      case 0x08:
        out[name] = doc[p] === 1;
        size = 1;
        break;
      case 0x09:
        size = 8;
        break;
      case 0x0b: {
        const a = doc.indexOf(0, p);
        const b = a < 0 ? -1 : doc.indexOf(0, a + 1);
        if (b < 0) fail('an unterminated regular expression');
        size = b + 1 - p;
        break;
      }
      case 0x0c: {
        const n = int32At(p);
        size = 4 + n + 12;
        break;
      }
      case 0x10:
        out[name] = int32At(p);
        size = 4;
        break;
      case 0x11:
        if (p + 8 > len) fail('a timestamp past the end');
        out[name] = { i: doc.readUInt32LE(p), t: doc.readUInt32LE(p + 4) };
        size = 8;
        break;
      case 0x12:
        if (p + 8 > len) fail('an int64 past the end');
        out[name] = doc.readBigInt64LE(p);
        size = 8;
        break;
      case 0x13:
        size = 16;
        break;
      default:
        return fail(`an unknown element type 0x${type.toString(16)}`);
    }
    p += size;
    if (p > len - 1) fail(`element '${name}' running past the end`);
  }
  return out;
}

/** Reads exact byte counts from a stream. */
class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  public consumed = 0;

  constructor(stream: Readable) {
    this.it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** `n` bytes, or fewer only at the end of the stream. */
  public async read(n: number): Promise<Buffer> {
    while (this.buf.length - this.off < n) {
      const r = await this.it.next();
      if (r.done) break;
      this.buf =
        this.off > 0 ? Buffer.concat([this.buf.subarray(this.off), r.value]) : Buffer.concat([this.buf, r.value]);
      this.off = 0;
    }
    const out = this.buf.subarray(this.off, Math.min(this.off + n, this.buf.length));
    this.off += out.length;
    this.consumed += out.length;
    return out;
  }

  public async atEnd(): Promise<boolean> {
    if (this.off < this.buf.length) return false;
    const r = await this.it.next();
    if (r.done) return true;
    this.buf = r.value;
    this.off = 0;
    return r.value.length === 0 ? this.atEnd() : false;
  }
}

/** Read one BSON document or a terminator; a stream that ends here is truncated. */
async function next(reader: ByteReader, where: string): Promise<Buffer | 'terminator'> {
  const head = await reader.read(4);
  if (head.length < 4)
    throw new ArchiveError(
      `truncated: the archive ` +
        `ends ${head.length === 0 ? '' : 'inside a length '}${where} (after ${reader.consumed} bytes)`,
    );
  const size = head.readInt32LE(0);
  if (size === TERMINATOR) return 'terminator';
  if (size < MIN_BSON || size > MAX_BSON)
    throw new ArchiveError(
      `corrupt: ${size} is neither a BSON length nor a terminator ${where} (at byte ${reader.consumed - 4})`,
    );
  const rest = await reader.read(size - 4);
  if (rest.length < size - 4)
    throw new ArchiveError(`truncated: the archive ends inside a document ${where} (after ${reader.consumed} bytes)`);
  const doc = Buffer.concat([head, rest]);
  if (doc[size - 1] !== 0)
    throw new ArchiveError(
      `corrupt: a document ${where} does not end with a zero byte (at byte ${reader.consumed - size})`,
    );
  return doc;
}

function str(v: Value): string {
  return typeof v === 'string' ? v : '';
}

/** Read a whole mongodump archive and check it (see the module comment). */
export async function readArchive(stream: Readable): Promise<ArchiveSummary> {
  const reader = new ByteReader(stream);
  const magic = await reader.read(4);
  if (magic.length < 4 || magic.readUInt32LE(0) !== MAGIC)
    throw new ArchiveError('not a mongodump archive: it does not start with the magic number 0x8199e26d');
  const first = await next(reader, 'in the header');
  if (first === 'terminator') throw new ArchiveError('corrupt: the archive has no header document');
  const header = bsonFields(first);
  /** Namespaces the prelude announces data for: any one of the names counts (see timeseries). */
  const expected: string[][] = [];
  for (;;) {
    const d = await next(reader, 'in the prelude');
    if (d === 'terminator') break;
    const meta = bsonFields(d);
    const db = str(meta.db);
    const coll = str(meta.collection);
    const type = str(meta.type);
    if (type === 'view') continue;
    const ns = db === '' ? coll : `${db}.${coll}`;
    // A timeseries collection's data comes as its buckets collection (before MongoDB 8.3).
    expected.push(type === 'timeseries' ? [`${db}.system.buckets.${coll}`, ns] : [ns]);
  }

  const counts = new Map<string, number>();
  const crcs = new Map<string, Crc64>();
  const ended = new Set<string>();
  let documents = 0;
  let lastOplogTs: string | undefined;
  while (!(await reader.atEnd())) {
    const h = await next(reader, 'where a namespace block starts');
    if (h === 'terminator')
      throw new ArchiveError(`corrupt: two terminators in a row (at byte ${reader.consumed - 4})`);
    const nh = bsonFields(h);
    const ns = str(nh.db) === '' ? str(nh.collection) : `${str(nh.db)}.${str(nh.collection)}`;
    if (str(nh.collection) === '')
      throw new ArchiveError(
        `corrupt: a namespace header without a collection (at byte ${reader.consumed - h.length})`,
      );
    if (ended.has(ns)) throw new ArchiveError(`corrupt: more data for ${ns} after its end`);
    const crc = crcs.get(ns) ?? new Crc64();
    crcs.set(ns, crc);
    if (nh.EOF === true) {
      const t = await next(reader, `after the end of ${ns}`);
      if (t !== 'terminator') throw new ArchiveError(`corrupt: the end of ${ns} is not followed by a terminator`);
      const recorded = typeof nh.CRC === 'bigint' ? BigInt.asUintN(64, nh.CRC) : BigInt(Number(nh.CRC ?? 0));
      const actual = crc.digest();
      if (recorded !== actual) {
        throw new ArchiveError(
          `corrupt: the documents of ${ns} have ` +
            `CRC-64 ${actual.toString(16)}, the archive records ${recorded.toString(16)}`,
        );
      }
      ended.add(ns);
      counts.set(ns, counts.get(ns) ?? 0);
      continue;
    }
    for (;;) {
      const d = await next(reader, `in the data of ${ns}`);
      if (d === 'terminator') break;
      crc.update(d);
      documents++;
      counts.set(ns, (counts.get(ns) ?? 0) + 1);
      if (ns === 'oplog') {
        const ts = bsonFields(d).ts;
        if (typeof ts === 'object' && ts !== null) lastOplogTs = `${ts.t}.${ts.i}`;
      }
    }
  }
  const open = [...crcs.keys()].filter((ns) => !ended.has(ns));
  if (open.length > 0)
    throw new ArchiveError(
      `truncated: the archive ends before the end ` +
        `of ${open.slice(0, 5).join(', ')}${open.length > 5 ? ` and ${open.length - 5} more` : ''}`,
    );
  const missing = expected
    .filter((names) => !names.some((ns) => ended.has(ns)))
    .map((names) => names[names.length - 1]);
  if (missing.length > 0)
    throw new ArchiveError(
      `incomplete: the prelude ` +
        `announces ${missing.slice(0, 5).join(', ')}` +
        `${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}, whose data the archive lacks`,
    );
  return {
    formatVersion: str(header.version),
    serverVersion: str(header.server_version),
    toolVersion: str(header.tool_version),
    namespaces: Object.fromEntries([...counts.entries()].sort()),
    documents,
    bytes: reader.consumed,
    lastOplogTs,
  };
}
