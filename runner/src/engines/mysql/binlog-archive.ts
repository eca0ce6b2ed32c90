/**
 * The binary log archive under `<storage>/binlog/` that `binlog-stream` fills:
 *
 *   binlog/<base name>/<file>/<offset>-<object>   a chunk of a binary log: its bytes from <offset>
 *                                                 (12 digits), object named as in log-archive.ts
 *                                                 (sha256 and size of the chunk's plaintext, the
 *                                                 time of its last event, compression, key)
 *   binlog/<base name>/shipped.json               how far the archive is complete: every event the
 *                                                 server wrote before `at` is in it, up to `size`
 *                                                 bytes of `file`
 *
 * A closed log is the concatenation of its chunks; the open one grows by a chunk at least every
 * upload interval, always cut at an event boundary. Chunks are whole objects (an upload that did
 * not finish leaves nothing), so a shipper killed at any moment leaves a consistent archive.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Manifest } from '../../../../lib/core/manifest';
import { BackupType, Engine } from '../../../../lib/core/model';
import { DamagedError } from '../../errors';
import { NotFoundError, ObjectInfo, Storage } from '../../storage';
import { ArchivedObject, fetchObject, parseObjectKey } from '../../archive/log-archive';
import { ArchiveWindow, LogGap } from '../../archive/window';
import { Catalog } from '../../catalog';
import { BINLOG_PREFIX } from '../../../../lib/core/layout';

export { BINLOG_PREFIX } from '../../../../lib/core/layout';

/** One uploaded piece of a binary log. */
export interface BinlogChunk extends ArchivedObject {
  readonly offset: number;
}

/** What the archive holds of one binary log. */
export interface BinlogFile {
  readonly name: string;
  readonly seq: number;
  readonly chunks: readonly BinlogChunk[];
  /** Bytes held without a hole from the start of the file. */
  readonly length: number;
  /** Where a chunk is missing inside the file (offset of the first missing byte). */
  readonly holeAt?: number;
  /** Time of the last event in the contiguous part. */
  readonly lastEvent?: Date;
}

/** How far the shipper has archived everything the server wrote. */
export interface Shipped {
  readonly file: string;
  readonly size: number;
  readonly at: string;
}

/** The archive of one server's binary logs (one base name). */
export interface BinlogIndex {
  readonly base: string;
  /** By sequence number. */
  readonly files: ReadonlyMap<number, BinlogFile>;
  readonly shipped?: Shipped;
}

const CHUNK_RE = /^(\d{12})-(.+)$/;

/** The object name of a chunk. */
export function chunkName(offset: number, objectName: string): string {
  return `${String(offset).padStart(12, '0')}-${objectName}`;
}

/** Parse a chunk's key. */
export function parseChunkKey(info: ObjectInfo): BinlogChunk | undefined {
  const parts = info.key.split('/');
  const last = parts[parts.length - 1];
  const m = CHUNK_RE.exec(last);
  if (m === null) return undefined;
  const o = parseObjectKey({ key: [...parts.slice(0, -1), m[2]].join('/'), size: info.size }, BINLOG_PREFIX);
  if (o === undefined) return undefined;
  return { ...o, key: info.key, offset: Number(m[1]) };
}

/** The sequence number of a binary log name (`binlog.000042` → 42). */
export function binlogSeq(name: string): number | undefined {
  const m = /\.(\d+)$/.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/** `binlog.000042` → `binlog`. */
export function binlogBase(name: string): string {
  return name.replace(/\.\d+$/, '');
}

export function binlogName(base: string, seq: number): string {
  return `${base}.${String(seq).padStart(6, '0')}`;
}

/** Read the archive's listing: one index per base name. */
export async function readBinlogIndexes(storage: Storage): Promise<BinlogIndex[]> {
  const byBase = new Map<string, Map<string, BinlogChunk[]>>();
  for (const info of await storage.list(BINLOG_PREFIX)) {
    const c = parseChunkKey(info);
    if (c === undefined) continue;
    if (!byBase.has(c.group)) byBase.set(c.group, new Map());
    const files = byBase.get(c.group)!;
    files.set(c.file, [...(files.get(c.file) ?? []), c]);
  }
  const out: BinlogIndex[] = [];
  for (const base of new Set([...byBase.keys(), ...(await storage.listFolders(BINLOG_PREFIX))])) {
    const files = new Map<number, BinlogFile>();
    for (const [name, chunks] of byBase.get(base) ?? new Map<string, BinlogChunk[]>()) {
      const seq = binlogSeq(name);
      if (seq === undefined) continue;
      chunks.sort((a, b) => a.offset - b.offset);
      let length = 0;
      let lastEvent: Date | undefined;
      let holeAt: number | undefined;
      for (const c of chunks) {
        if (c.offset > length) {
          holeAt = length;
          break;
        }
        if (c.offset + c.size > length) {
          length = c.offset + c.size;
          lastEvent = c.written;
        }
      }
      files.set(seq, { name, seq, chunks, length, holeAt, lastEvent });
    }
    let shipped: Shipped | undefined;
    try {
      shipped = JSON.parse(
        (await storage.readBytes(`${BINLOG_PREFIX}/${base}/shipped.json`)).toString('utf8'),
      ) as Shipped;
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    if (files.size > 0) out.push({ base, files, shipped });
  }
  return out;
}

/** The latest moment the archive of `index` holds every event up to, reading on from file `seq`. */
function contiguousEnd(index: BinlogIndex, seq: number): { last: BinlogFile; end?: Date; gapAt?: number } | undefined {
  let f = index.files.get(seq);
  if (f === undefined) return undefined;
  for (;;) {
    if (f.holeAt !== undefined) break;
    const next = index.files.get(f.seq + 1);
    if (next === undefined) break;
    f = next;
  }
  let end = f.lastEvent;
  const s = index.shipped;
  if (
    s !== undefined &&
    s.file === f.name &&
    f.length >= s.size &&
    f.holeAt === undefined &&
    (end === undefined || new Date(s.at) > end)
  )
    end = new Date(s.at);
  const maxSeq = Math.max(...index.files.keys());
  return { last: f, end, gapAt: f.holeAt !== undefined || f.seq < maxSeq ? f.seq : undefined };
}

/** Missing logs (and holes inside logs) from `fromSeq` on. */
export function binlogGaps(index: BinlogIndex, fromSeq: number, where: string): LogGap[] {
  const gaps: LogGap[] = [];
  const seqs = [...index.files.keys()].filter((s) => s >= fromSeq).sort((a, b) => a - b);
  let prev: number | undefined;
  for (const s of seqs) {
    const f = index.files.get(s)!;
    if (prev !== undefined && s > prev + 1) {
      const first = binlogName(index.base, prev + 1);
      const last = binlogName(index.base, s - 1);
      const count = s - prev - 1;
      const after = index.files.get(prev)!.lastEvent?.toISOString();
      gaps.push({
        group: index.base,
        first,
        last,
        count,
        after,
        before: f.lastEvent?.toISOString(),
        message:
          `the binary log archive ${where} has a ` +
          `gap: ${count === 1 ? `${first} is` : `${count} logs, ${first} to ${last}, are`} ` +
          `missing${after !== undefined ? `; changes after ${after} cannot be replayed past it` : ''}`,
      });
    }
    if (f.holeAt !== undefined && s < Math.max(...seqs)) {
      gaps.push({
        group: index.base,
        first: f.name,
        last: f.name,
        count: 1,
        after: f.lastEvent?.toISOString(),
        message: `the binary log archive ${where} has a gap: ${f.name} is missing its bytes from ${f.holeAt} on`,
      });
    }
    prev = s;
  }
  return gaps;
}

/** Full MySQL/MariaDB backups that record a binlog position: the bases of point-in-time recovery. */
export function binlogBases(backups: readonly Manifest[]): Manifest[] {
  return backups.filter(
    (m) =>
      m.engine === Engine.MYSQL &&
      m.type === BackupType.FULL &&
      m.position?.file !== undefined &&
      m.position.pos !== undefined,
  );
}

/** The recoverable window of the binary log archive. */
export async function binlogWindow(storage: Storage, backups: readonly Manifest[]): Promise<ArchiveWindow> {
  const indexes = await readBinlogIndexes(storage);
  const where = `${storage.url.display}/${BINLOG_PREFIX}`;
  const bases = binlogBases(backups);
  const gaps: LogGap[] = [];
  const spans: { from: Date; to: Date }[] = [];
  for (const index of indexes) {
    const mine = bases.filter((b) => binlogBase(b.position!.file!) === index.base);
    if (mine.length === 0) continue;
    gaps.push(...binlogGaps(index, Math.min(...mine.map((b) => binlogSeq(b.position!.file!) ?? 0)), where));
    for (const b of mine) {
      const c = contiguousEnd(index, binlogSeq(b.position!.file!)!);
      const from = new Date(b.endedAt);
      if (c?.end !== undefined) spans.push({ from, to: c.end > from ? c.end : from });
    }
  }
  spans.sort((a, b) => a.from.getTime() - b.from.getTime());
  const merged: { from: Date; to: Date }[] = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.from <= last.to) {
      if (s.to > last.to) last.to = s.to;
    } else merged.push({ ...s });
  }
  return {
    engine: Engine.MYSQL,
    archive: BINLOG_PREFIX,
    bases: bases.length,
    earliest: merged[0]?.from.toISOString(),
    latest: merged[merged.length - 1]?.to.toISOString(),
    holes: merged.slice(1).map((m, i) => ({ from: merged[i].to.toISOString(), to: m.from.toISOString() })),
    gaps,
    conflicts: [],
  };
}

/**
 * The logs a replay from `base`'s position to `target` reads, in order. Throws DamagedError
 * naming the gap when one is missing on the way, or the latest restorable moment when the
 * archive does not reach past the target.
 */
export function planBinlogReplay(index: BinlogIndex, base: Manifest, target: Date, where: string): BinlogFile[] {
  const startSeq = binlogSeq(base.position!.file!)!;
  const out: BinlogFile[] = [];
  const stopSecond = Math.floor(target.getTime() / 1000) + 1;
  for (let seq = startSeq; ; seq++) {
    const f = index.files.get(seq);
    const later = [...index.files.keys()].some((s) => s > seq);
    if (f === undefined) {
      const prev = out[out.length - 1];
      if (later) {
        throw new DamagedError(
          `cannot restore to ${target.toISOString()}: the binary log ` +
            `archive ${where} has a gap: ${binlogName(index.base, seq)} is missing` +
            (prev?.lastEvent !== undefined
              ? `; the latest moment restorable before it is ${prev.lastEvent.toISOString()}.`
              : '.'),
        );
      }
      // The end of the archive: enough when it is known complete up to the moment (shipped.json or a later event).
      const end = prev === undefined ? undefined : contiguousEnd(index, startSeq)?.end;
      if (end !== undefined && end.getTime() >= target.getTime()) return out;
      throw new DamagedError(
        `cannot restore to ${target.toISOString()}: the binary log archive ${where} holds events only ` +
          `up to ${end?.toISOString() ?? '(none after the backup)'}; that is the latest restorable moment. ` +
          `Is binlog-stream running (it uploads the open log at least every 60 s)?`,
      );
    }
    if (f.holeAt !== undefined && (later || (f.lastEvent !== undefined && f.lastEvent.getTime() < stopSecond * 1000))) {
      throw new DamagedError(
        `cannot restore to ${target.toISOString()}: the binary log archive ${where} ` +
          `has a gap: ${f.name} is missing its bytes from ${f.holeAt} on.`,
      );
    }
    out.push(f);
    // This log holds an event after the moment: the replay stops in it.
    if (f.lastEvent !== undefined && f.lastEvent.getTime() >= stopSecond * 1000) return out;
  }
}

/** Write a whole archived binary log (its chunks, decrypted and checked, in order) to `dest`. */
export async function fetchBinlog(
  storage: Storage,
  f: BinlogFile,
  dest: string,
  identity: string | undefined,
  signal?: AbortSignal,
): Promise<void> {
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-binlog-'));
  try {
    await fs.promises.writeFile(dest, '', { mode: 0o600 });
    let at = 0;
    for (const c of f.chunks) {
      if (c.offset + c.size <= at) continue;
      if (c.offset > at) throw new DamagedError(`${f.name}: bytes ${at} to ${c.offset} are not in the archive`);
      const part = path.join(tmp, `${c.offset}`);
      await fetchObject(storage, BINLOG_PREFIX, c, part, identity, signal);
      await pipeline(fs.createReadStream(part, { start: at - c.offset }), fs.createWriteStream(dest, { flags: 'a' }));
      at = c.offset + c.size;
      await fs.promises.rm(part);
    }
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}

/** The recoverable window of the binary log archive, when the storage location holds one. */
export async function binlogArchiveWindow(storage: Storage, catalog: Catalog): Promise<ArchiveWindow | undefined> {
  if (!(await storage.listFolders('')).includes(BINLOG_PREFIX)) return undefined;
  return binlogWindow(storage, catalog.backups);
}
