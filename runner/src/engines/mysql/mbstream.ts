/**
 * The mbstream / xbstream format (what `mariadb-backup --stream=mbstream` and Percona
 * XtraBackup's `--stream=xbstream` write), checked in this process before `mbstream -x` sees a
 * byte of it.
 *
 * A stream is a run of chunks: the magic `XBSTCK01`, a flags byte, a type byte (`P` payload,
 * `E` end of a file), the path's length (uint32 LE) and the path; a payload chunk then has its
 * length and its offset in the file (uint64 LE each), the CRC-32 of the payload (uint32 LE) and
 * the payload. `MbstreamCheck` passes the bytes through unchanged and stops the stream, with a
 * DamagedError naming the chunk, at a path that is absolute, climbs out with `..` or holds a NUL
 * byte (so `mbstream -x -C DIR` never writes outside DIR), an unknown chunk type, a payload
 * whose CRC-32 does not match, or a stream that ends inside a chunk. It keeps the small files a
 * restore reads (xtrabackup_checkpoints, the binlog position) in memory as they pass.
 */
import * as path from 'node:path';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { DamagedError } from '../../errors';
import { Child } from '../../pipeline/stages';
import { memberPath } from '../../pipeline/untar';

const MAGIC = Buffer.from('XBSTCK01', 'latin1');
/** A path longer than this is not one mariadb-backup writes (its limit is FN_REFLEN, 512). */
const MAX_PATH = 4096;
/** Files kept in memory as they pass (each is a few hundred bytes). */
export const KEPT_FILES = [
  'xtrabackup_checkpoints',
  'xtrabackup_binlog_info',
  'mariadb_backup_binlog_info',
  'xtrabackup_info',
  'mariadb_backup_info',
] as const;
const MAX_KEPT = 64 << 10;

const crc32: (data: Buffer, value?: number) => number =
  (zlib as unknown as { crc32?: (d: Buffer, v?: number) => number }).crc32 ?? crc32Js;

let table: Uint32Array | undefined;
function crc32Js(data: Buffer, value = 0): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** What a checked stream held. */
export interface MbstreamSummary {
  readonly files: number;
  readonly chunks: number;
  readonly payloadBytes: number;
  /** The small files of KEPT_FILES that the stream held, by name. */
  readonly kept: ReadonlyMap<string, string>;
}

/** A pass-through that refuses a damaged or hostile mbstream (see the file's comment). */
export class MbstreamCheck extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of the current payload still to pass, and its CRC so far. */
  private payloadLeft = 0;
  private payloadCrc = 0;
  private expectedCrc = 0;
  private current = '';
  private offset = 0;
  private chunks = 0;
  private payloadBytes = 0;
  private readonly files = new Set<string>();
  private readonly keptParts = new Map<string, Buffer[]>();
  /** The damage found, if any (kept so a caller sees it even when the extractor failed first). */
  public failure?: DamagedError;

  constructor(private readonly what: string) {
    super();
  }

  public summary(): MbstreamSummary {
    const kept = new Map<string, string>();
    for (const [k, parts] of this.keptParts) kept.set(k, Buffer.concat(parts).toString('utf8'));
    return { files: this.files.size, chunks: this.chunks, payloadBytes: this.payloadBytes, kept };
  }

  private damaged(why: string): DamagedError {
    this.failure = new DamagedError(
      `${this.what} is not a sound mbstream: ${why} (chunk ${this.chunks + 1}, at byte ${this.offset}). ` +
        'The backup is damaged; restore an older one.',
    );
    return this.failure;
  }

  public override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.consume(chunk);
      this.push(chunk);
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  public override _flush(done: TransformCallback): void {
    if (this.payloadLeft > 0 || this.pending.length > 0) {
      done(this.damaged('the stream ends inside a chunk (it was cut short)'));
      return;
    }
    if (this.chunks === 0) {
      done(this.damaged('the stream holds no chunk at all'));
      return;
    }
    done();
  }

  private consume(data: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    for (;;) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, buf.length);
        const part = buf.subarray(0, n);
        this.payloadCrc = crc32(part, this.payloadCrc);
        this.keep(part);
        this.payloadLeft -= n;
        this.offset += n;
        buf = buf.subarray(n);
        if (this.payloadLeft > 0) break;
        if (this.payloadCrc >>> 0 !== this.expectedCrc >>> 0)
          throw this.damaged(`the payload of ${this.current} fails its CRC-32`);
        this.chunks++;
        continue;
      }
      const header = this.header(buf);
      if (header === undefined) break;
      buf = buf.subarray(header);
    }
    this.pending = Buffer.from(buf);
  }

  /** Parse one chunk header at the start of `buf`; the bytes it took, or undefined when incomplete. */
  private header(buf: Buffer): number | undefined {
    if (buf.length < 14) {
      if (
        buf.length > 0 &&
        !MAGIC.subarray(0, Math.min(8, buf.length)).equals(buf.subarray(0, Math.min(8, buf.length)))
      )
        throw this.damaged('a chunk does not start with XBSTCK01');
      return undefined;
    }
    if (!buf.subarray(0, 8).equals(MAGIC)) throw this.damaged('a chunk does not start with XBSTCK01');
    const type = String.fromCharCode(buf[9]);
    if (type !== 'P' && type !== 'E') throw this.damaged(`unknown chunk type '${type}'`);
    const pathLen = buf.readUInt32LE(10);
    if (pathLen === 0 || pathLen > MAX_PATH) throw this.damaged(`a path of ${pathLen} bytes`);
    const fixed = 14 + pathLen + (type === 'P' ? 20 : 0);
    if (buf.length < fixed) return undefined;
    const name = buf.subarray(14, 14 + pathLen).toString('utf8');
    const p = memberPath(name);
    if ('problem' in p || p.path === '') {
      throw this.damaged(
        `the member '${name}' cannot be laid down: ${'problem' in p ? p.problem : 'its path is empty'}`,
      );
    }
    this.current = p.path;
    this.files.add(p.path);
    this.offset += fixed;
    if (type === 'E') {
      this.chunks++;
      return fixed;
    }
    const len = buf.readBigUInt64LE(14 + pathLen);
    if (len > BigInt(Number.MAX_SAFE_INTEGER)) throw this.damaged(`a payload of ${len} bytes`);
    this.payloadLeft = Number(len);
    this.payloadBytes += this.payloadLeft;
    this.expectedCrc = buf.readUInt32LE(14 + pathLen + 16);
    this.payloadCrc = 0;
    if (this.payloadLeft === 0) {
      if (this.expectedCrc !== 0) throw this.damaged(`the empty payload of ${this.current} fails its CRC-32`);
      this.chunks++;
    }
    return fixed;
  }

  private keep(part: Buffer): void {
    if (!(KEPT_FILES as readonly string[]).includes(this.current)) return;
    const parts = this.keptParts.get(this.current) ?? [];
    if (parts.reduce((s, b) => s + b.length, 0) + part.length > MAX_KEPT) return;
    parts.push(Buffer.from(part));
    this.keptParts.set(this.current, parts);
  }
}

/** The fields of an xtrabackup_checkpoints file. */
export interface Checkpoints {
  readonly backupType: string;
  readonly fromLsn: string;
  readonly toLsn: string;
  readonly lastLsn?: string;
}

export function parseCheckpoints(text: string): Checkpoints | undefined {
  const get = (k: string) => new RegExp(`^${k}\\s*=\\s*(\\S+)`, 'm').exec(text)?.[1];
  const backupType = get('backup_type');
  const fromLsn = get('from_lsn');
  const toLsn = get('to_lsn');
  if (backupType === undefined || fromLsn === undefined || toLsn === undefined) return undefined;
  if (!/^\d+$/.test(fromLsn) || !/^\d+$/.test(toLsn)) return undefined;
  return { backupType, fromLsn, toLsn, lastLsn: get('last_lsn') };
}

/** A binary log position: `file\tpos[\tgtid]` (xtrabackup_binlog_info) or xtrabackup_info's binlog_pos line. */
export function parseBinlogInfo(text: string): { file: string; pos: number; gtid?: string } | undefined {
  const info = /binlog_pos\s*=\s*filename '([^']+)', position '(\d+)'(?:, GTID of the last change '([^']*)')?/.exec(
    text,
  );
  if (info !== null) return { file: info[1], pos: Number(info[2]), gtid: info[3] || undefined };
  const line = text.split('\n').find((l) => l.trim() !== '');
  const m = line === undefined ? null : /^(\S+)\t(\d+)(?:\t(\S*))?/.exec(line);
  if (m === null) return undefined;
  return { file: m[1], pos: Number(m[2]), gtid: m[3] || undefined };
}

/**
 * Unpack a plaintext stream with `mbstream -x -C dir` (or `xbstream -x`), every byte passing
 * MbstreamCheck first; `dir` must be a new, empty, private directory. Resolves with what the
 * stream held once the check and the extractor both finished; rejects (and kills the extractor)
 * on the first failure of either.
 */
export async function unpackStream(
  plaintext: Readable,
  dir: string,
  extractor: string,
  what: string,
): Promise<MbstreamSummary> {
  const check = new MbstreamCheck(what);
  const child = new Child({ cmd: extractor, args: ['-x', '-C', dir], label: path.basename(extractor) }, [
    'pipe',
    'ignore',
    'pipe',
  ]);
  const stdin = child.process.stdin!;
  stdin.on('error', () => undefined);
  try {
    await Promise.all([pipeline(plaintext, check, stdin), child.done]);
  } catch (e) {
    child.kill('SIGKILL');
    await child.done.catch(() => undefined);
    throw e instanceof DamagedError ? e : (check.failure ?? e);
  }
  return check.summary();
}
