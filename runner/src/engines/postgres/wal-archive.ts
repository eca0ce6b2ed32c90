/**
 * The WAL archive under `<storage>/wal/`: what it holds, where it has gaps, which moments it can
 * restore, and which segments a recovery to a moment needs.
 *
 *   wal/<timeline>/<file name>/<object>      (see log-archive.ts for the object name)
 *   wal/keys/<ref>.json                      (kms: archive keys)
 */
import { ArchivedObject, listArchive } from '../../archive/log-archive';
import { parseWalFileName, segmentName, segmentNumber, TimelineStretch, WalFileKind } from './wal-names';
import { DamagedError } from '../../errors';
import { Storage } from '../../storage';
import { readPartial } from './wal-partial';
import { parseLsn, segmentOf } from './wal-names';
import { ArchiveWindow, LogGap, RecoverableWindow } from '../../archive/window';
import { Catalog } from '../../catalog';
import { Manifest } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { WAL_PREFIX } from '../../../../lib/core/layout';

export { WAL_PREFIX } from '../../../../lib/core/layout';

/** The default WAL segment size, used when the archive holds no segment yet. */
export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;

export interface WalIndex {
  readonly segmentSize: number;
  /** timeline → segment number → the archived segment. */
  readonly segments: ReadonlyMap<number, ReadonlyMap<bigint, ArchivedObject>>;
  /** History, partial and backup history files by name. */
  readonly others: ReadonlyMap<string, ArchivedObject>;
  /** Files archived twice with different content. */
  readonly conflicts: readonly string[];
}

/** Read the WAL archive's listing (names only: nothing is decrypted). */
export async function readWalIndex(storage: Storage): Promise<WalIndex> {
  return indexOf(await listArchive(storage, WAL_PREFIX));
}

/** Build the index from a listing. */
export function indexOf(listing: ReadonlyMap<string, readonly ArchivedObject[]>): WalIndex {
  const segments = new Map<number, Map<bigint, ArchivedObject>>();
  const others = new Map<string, ArchivedObject>();
  const conflicts: string[] = [];
  const segmentObjects: ArchivedObject[] = [];
  for (const objects of listing.values()) {
    const name = parseWalFileName(objects[0].file);
    if (name === undefined) continue;
    if (new Set(objects.map((o) => o.sha256)).size > 1) conflicts.push(objects[0].file);
    if (name.kind === WalFileKind.SEGMENT) segmentObjects.push(objects[0]);
    else others.set(name.name, objects[0]);
  }
  const segmentSize = segmentObjects[0]?.size ?? DEFAULT_SEGMENT_SIZE;
  for (const o of segmentObjects) {
    const tl = parseInt(o.file.slice(0, 8), 16);
    if (!segments.has(tl)) segments.set(tl, new Map());
    segments.get(tl)!.set(segmentNumber(o.file, segmentSize), o);
  }
  return { segmentSize, segments, others, conflicts };
}

function gapOf(index: WalIndex, timeline: number, from: bigint, to: bigint, where: string): LogGap {
  const segs = index.segments.get(timeline)!;
  const first = segmentName(timeline, from, index.segmentSize);
  const last = segmentName(timeline, to, index.segmentSize);
  const after = segs.get(from - 1n)?.written.toISOString();
  const before = segs.get(to + 1n)?.written.toISOString();
  const count = Number(to - from + 1n);
  return {
    group: timeline.toString(16).toUpperCase().padStart(8, '0'),
    first,
    last,
    count,
    after,
    before,
    message:
      `the WAL archive ${where} has a ` +
      `gap: ${count === 1 ? `segment ${first} is` : `${count} segments, ${first} to ${last}, are`} missing` +
      (after !== undefined
        ? `; changes after ${after} ` +
          `(when ${segmentName(timeline, from - 1n, index.segmentSize)} was ` +
          `written) cannot be replayed past it`
        : ''),
  };
}

/**
 * Missing segments on each timeline, from `startAt` (timeline → first segment that matters) to the newest archived one.
 */
export function findGaps(index: WalIndex, startAt: ReadonlyMap<number, bigint>, where: string): LogGap[] {
  const gaps: LogGap[] = [];
  for (const [tl, segs] of [...index.segments].sort((a, b) => a[0] - b[0])) {
    const nos = [...segs.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const start = startAt.get(tl) ?? nos[0];
    let prev: bigint | undefined;
    for (const n of nos) {
      if (n < start) continue;
      const expected = prev === undefined ? start : prev + 1n;
      if (n > expected) gaps.push(gapOf(index, tl, expected, n - 1n, where));
      prev = n;
    }
  }
  return gaps;
}

/** A physical base backup as the window computation needs it. */
export interface BaseInfo {
  readonly id: string;
  readonly timeline: number;
  /** The segment its WAL starts in. */
  readonly startSegno: bigint;
  /** When it became usable (its manifest's end: conservative, after its stop point). */
  readonly consistentAt: Date;
}

/**
 * The last segment reachable without a gap from `segno` on `timeline`, following a timeline that
 * took over where this one ended (a promoted restore that replaced the server), not a fork.
 */
function lastContiguous(index: WalIndex, timeline: number, segno: bigint): ArchivedObject | undefined {
  const segs = index.segments.get(timeline);
  if (segs === undefined || !segs.has(segno)) return undefined;
  let n = segno;
  while (segs.has(n + 1n)) n++;
  const end = segs.get(n)!;
  // A later timeline that begins in or right after this one's last segment continued it (a promoted
  // restore replaced the server); one that begins earlier, while this one went on, is a fork.
  const next = [...index.segments.keys()]
    .filter((t) => t > timeline)
    .sort((a, b) => b - a)
    .find((t) => {
      const first = [...index.segments.get(t)!.keys()].reduce((a, b) => (a < b ? a : b));
      return first === n || first === n + 1n;
    });
  if (next === undefined) return end;
  const first = [...index.segments.get(next)!.keys()].reduce((a, b) => (a < b ? a : b));
  return lastContiguous(index, next, first) ?? end;
}

/** The streamed partial segment right after `last` on its timeline, when nothing is archived past `last` there. */
function continuingPartial(
  index: WalIndex,
  last: ArchivedObject,
  partials: ReadonlyMap<number, ArchivedObject>,
): ArchivedObject | undefined {
  const timeline = parseInt(last.group, 16);
  const p = partials.get(timeline);
  const segs = index.segments.get(timeline);
  if (p === undefined || segs === undefined) return undefined;
  const segno = segmentNumber(last.file, index.segmentSize);
  if ([...segs.keys()].some((n) => n > segno)) return undefined;
  return p.file === segmentName(timeline, segno + 1n, index.segmentSize) && p.written > last.written ? p : undefined;
}

/**
 * The recoverable window of a set of physical bases over the WAL archive. `partials` (by
 * timeline) are the streamed partial segments: one that continues a span's last completed
 * segment, with nothing archived after it, extends the span to when it was written, as
 * `restore --to-time` replays it (pitr-restore-wal.ts, fetchContinuingPartial).
 */
export function walWindow(
  index: WalIndex,
  bases: readonly BaseInfo[],
  where: string,
  partials: ReadonlyMap<number, ArchivedObject> = new Map(),
): RecoverableWindow {
  const startAt = new Map<number, bigint>();
  for (const b of bases) {
    const s = startAt.get(b.timeline);
    if (s === undefined || b.startSegno < s) startAt.set(b.timeline, b.startSegno);
  }
  const gaps = bases.length === 0 ? [] : findGaps(index, startAt, where);
  const spans: { from: Date; to: Date }[] = [];
  for (const b of [...bases].sort((x, y) => x.consistentAt.getTime() - y.consistentAt.getTime())) {
    const last = lastContiguous(index, b.timeline, b.startSegno);
    if (last === undefined) continue;
    const end = continuingPartial(index, last, partials) ?? last;
    spans.push({ from: b.consistentAt, to: end.written > b.consistentAt ? end.written : b.consistentAt });
  }
  if (spans.length === 0) return { holes: [], gaps, conflicts: index.conflicts };
  spans.sort((a, b) => a.from.getTime() - b.from.getTime());
  const merged: { from: Date; to: Date }[] = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.from <= last.to) {
      if (s.to > last.to) last.to = s.to;
    } else merged.push({ ...s });
  }
  const holes = merged.slice(1).map((m, i) => ({ from: merged[i].to.toISOString(), to: m.from.toISOString() }));
  return {
    earliest: merged[0].from.toISOString(),
    latest: merged[merged.length - 1].to.toISOString(),
    holes,
    gaps,
    conflicts: index.conflicts,
  };
}

/** What a recovery to a moment reads. */
export interface RecoveryPlan {
  /** Every segment from the base's start to the one written at or after the target. */
  readonly segments: readonly ArchivedObject[];
  /**
   * The segment after the last one: `present`, missing in a `gap` (later ones exist) or missing
   * at the `end` of the archive. When it is missing, recovery can stop only if the last segment
   * holds a transaction that ended after the target (the caller checks it with pg_waldump);
   * otherwise `missing` is the error to report.
   */
  readonly following: 'present' | 'gap' | 'end';
  readonly missing?: DamagedError;
}

/**
 * The segments a recovery from a base to `target` needs, along `path`: every segment from the
 * base's start up to the first one written at or after the target (it holds the first change
 * after the target, where recovery stops). Throws DamagedError naming the gap when one is
 * missing, or the latest restorable moment when the target is past the archive's end
 * (DamagedError: exit 3).
 */
export function planRecovery(
  index: WalIndex,
  path: readonly TimelineStretch[],
  target: Date,
  where: string,
): RecoveryPlan {
  const out: ArchivedObject[] = [];
  const lookup = (stretchIndex: number, segno: bigint): ArchivedObject | undefined => {
    for (let i = stretchIndex; i >= 0; i--) {
      const o = index.segments.get(path[i].timeline)?.get(segno);
      if (o !== undefined) return o;
    }
    return undefined;
  };
  const anyAfter = (stretchIndex: number, segno: bigint): bigint | undefined => {
    for (let i = stretchIndex; i < path.length; i++) {
      const later = [...(index.segments.get(path[i].timeline)?.keys() ?? [])].filter((n) => n > segno);
      if (later.length > 0) return later.reduce((a, b) => (a < b ? a : b));
    }
    return undefined;
  };
  const gapError = (stretchIndex: number, segno: bigint, next: bigint) => {
    const tl = path[stretchIndex].timeline;
    const gap = gapOf(index, tl, segno, next - 1n, where);
    return new DamagedError(
      `cannot restore to ${target.toISOString()}: ${gap.message}.` +
        (out.length > 0
          ? ` The latest moment restorable before the gap is the last transaction ` +
            `before ${out[out.length - 1].written.toISOString()}.`
          : ' Take a new base backup (backup --method physical) to restore moments after the gap.'),
    );
  };
  for (let si = 0; si < path.length; si++) {
    const stretch = path[si];
    for (let segno = stretch.fromSegno; stretch.toSegno === undefined || segno <= stretch.toSegno; segno++) {
      const o = lookup(si, segno);
      if (o === undefined) {
        const next = anyAfter(si, segno);
        if (next === undefined) {
          const latest = out.length > 0 ? out[out.length - 1].written.toISOString() : undefined;
          throw new DamagedError(
            `cannot restore to ${target.toISOString()}: it is after the newest WAL in the archive ${where}` +
              (latest !== undefined
                ? ` (segment ${out[out.length - 1].file}, written ${latest}); ` +
                  `the latest restorable moment is ${latest}.`
                : '; the archive holds no WAL after the base backup.') +
              ' Is archive_command set to dbbackup wal-push … with this storage, and ' +
              'is archive_timeout set so quiet periods are archived too?',
          );
        }
        throw gapError(si, segno, next);
      }
      out.push(o);
      if (o.written >= target) {
        // Recovery stops at the first transaction that ended after the target: in this segment, or the next.
        const following = lookup(si, segno + 1n) ?? (si + 1 < path.length ? lookup(si + 1, segno + 1n) : undefined);
        if (following !== undefined) return { segments: out, following: 'present' };
        const next = anyAfter(si, segno + 1n);
        if (next !== undefined) return { segments: out, following: 'gap', missing: gapError(si, segno + 1n, next) };
        return {
          segments: out,
          following: 'end',
          missing: new DamagedError(
            `cannot restore to ${target.toISOString()}: no transaction ended after it in the WAL ` +
              `archive ${where} (the newest segment, ${o.file}, was written ${o.written.toISOString()}), so ` +
              `recovery could not tell it reached the moment. Give an earlier moment, or restore once the ` +
              `next segment is archived (archive_timeout bounds how long that takes).`,
          ),
        };
      }
    }
  }
  return { segments: out, following: 'end' };
}

/** Physical PostgreSQL full backups as bases of the WAL archive. */
export function walBases(backups: readonly Manifest[], segmentSize: number): BaseInfo[] {
  return backups
    .filter(
      (m) =>
        m.engine === Engine.POSTGRES &&
        m.method === BackupMethod.PHYSICAL &&
        m.type === BackupType.FULL &&
        m.startPosition?.lsn !== undefined &&
        m.position?.timeline !== undefined,
    )
    .map((m) => ({
      id: m.id,
      timeline: m.position!.timeline!,
      startSegno: segmentOf(parseLsn(m.startPosition!.lsn!), segmentSize),
      consistentAt: new Date(m.endedAt),
    }));
}

/** The recoverable window of the WAL archive, when the storage location holds one. */
export async function walArchiveWindow(storage: Storage, catalog: Catalog): Promise<ArchiveWindow | undefined> {
  if (!(await storage.listFolders('')).includes(WAL_PREFIX)) return undefined;
  const index = await readWalIndex(storage);
  const bases = walBases(catalog.backups, index.segmentSize);
  const where = `${storage.url.display}/${WAL_PREFIX}`;
  // The streamed partial segment of each timeline (wal-receive); a pointer that cannot be read
  // does not count (restore --to-time latest reports it as damage when it would use it).
  const partials = new Map<number, ArchivedObject>();
  for (const tl of index.segments.keys()) {
    const p = await readPartial(storage, tl.toString(16).toUpperCase().padStart(8, '0')).catch(() => undefined);
    if (p !== undefined) partials.set(tl, p);
  }
  return {
    engine: Engine.POSTGRES,
    archive: WAL_PREFIX,
    bases: bases.length,
    ...walWindow(index, bases, where, partials),
  };
}

/** Where the archive's WAL along a recovery path ends: the segments up to the first missing one. */
export interface ArchiveEnd {
  readonly segments: readonly ArchivedObject[];
  /** The first segment the archive does not hold (where a streamed partial would continue). */
  readonly next: { readonly timeline: number; readonly segno: bigint; readonly name: string };
  /** Set when later segments exist past the missing one: a gap, not the end. */
  readonly gap?: LogGap;
}

/** Every archived segment from the base's start along `path`, up to the first one missing. */
export function archiveEnd(index: WalIndex, path: readonly TimelineStretch[], where: string): ArchiveEnd {
  const out: ArchivedObject[] = [];
  for (let si = 0; si < path.length; si++) {
    const stretch = path[si];
    for (let segno = stretch.fromSegno; stretch.toSegno === undefined || segno <= stretch.toSegno; segno++) {
      let o: ArchivedObject | undefined;
      for (let i = si; i >= 0 && o === undefined; i--) o = index.segments.get(path[i].timeline)?.get(segno);
      if (o !== undefined) {
        out.push(o);
        continue;
      }
      const tl = stretch.timeline;
      const next = { timeline: tl, segno, name: segmentName(tl, segno, index.segmentSize) };
      for (let i = si; i < path.length; i++) {
        const later = [...(index.segments.get(path[i].timeline)?.keys() ?? [])].filter((n) => n > segno);
        if (later.length > 0) {
          const first = later.reduce((a, b) => (a < b ? a : b));
          return { segments: out, next, gap: gapOf(index, path[i].timeline, segno, first - 1n, where) };
        }
      }
      return { segments: out, next };
    }
  }
  // Unreachable: the last stretch is open-ended.
  throw new Error('a recovery path ends with an open stretch');
}
