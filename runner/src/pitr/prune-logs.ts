/**
 * Which log objects `prune` removes on file:// storage: what no kept base backup can replay.
 * A point-in-time restore starts from a full base and replays the logs from the base's start
 * position on, so every log object before the oldest kept base's start is unreachable:
 * - WAL (per timeline): segments of timeline T before the oldest kept physical base on T, when no
 *   kept base is on an earlier timeline (its recovery would follow the history into T); segments
 *   of a timeline older than every kept base's. History and backup-label files stay.
 * - binary logs (per server's base name): whole files numbered before the oldest kept full's
 *   binlog file. A server no kept full names keeps all of its files.
 * With no kept base at all, nothing is removed (there is nothing to measure against).
 */
import { Manifest } from '../../../lib/core/manifest';
import { ArchivedObject } from './log-archive';
import { binlogBase, binlogBases, binlogSeq, readBinlogIndexes } from './binlog-archive';
import { readWalIndex } from './wal-archive';
import { walBases } from './window';
import { Storage } from '../storage';

/** What a prune removes from one log archive. */
export interface LogPrunePlan {
  readonly archive: 'wal' | 'binlog';
  readonly remove: readonly ArchivedObject[];
  readonly removedBytes: number;
  readonly keptBytes: number;
}

/** The log objects no kept base needs, per archive (only archives the storage holds). */
export async function planLogPrune(storage: Storage, kept: readonly Manifest[]): Promise<LogPrunePlan[]> {
  const top = new Set(await storage.listFolders(''));
  const out: LogPrunePlan[] = [];
  if (top.has('wal')) {
    const index = await readWalIndex(storage);
    const bases = walBases(kept, index.segmentSize);
    const remove: ArchivedObject[] = [];
    let total = 0;
    for (const [tl, segments] of index.segments) {
      const earlier = bases.some((b) => b.timeline < tl);
      const on = bases.filter((b) => b.timeline === tl).map((b) => b.startSegno);
      const later = bases.some((b) => b.timeline > tl);
      for (const [segno, o] of segments) {
        total += o.storedSize;
        if (bases.length === 0 || earlier) continue;
        const before = on.length > 0 ? segno < on.reduce((a, b) => (a < b ? a : b)) : later;
        if (before) remove.push(o);
      }
    }
    for (const o of index.others.values()) total += o.storedSize;
    out.push(plan('wal', remove, total));
  }
  if (top.has('binlog')) {
    const bases = binlogBases(kept);
    const remove: ArchivedObject[] = [];
    let total = 0;
    for (const index of await readBinlogIndexes(storage)) {
      const seqs = bases
        .filter((b) => binlogBase(b.position!.file!) === index.base)
        .map((b) => binlogSeq(b.position!.file!))
        .filter((s): s is number => s !== undefined);
      const from = seqs.length > 0 ? Math.min(...seqs) : undefined;
      for (const f of index.files.values()) {
        for (const c of f.chunks) {
          total += c.storedSize;
          if (from !== undefined && f.seq < from) remove.push(c);
        }
      }
    }
    out.push(plan('binlog', remove, total));
  }
  return out;
}

function plan(archive: 'wal' | 'binlog', remove: ArchivedObject[], total: number): LogPrunePlan {
  const removedBytes = remove.reduce((s, o) => s + o.storedSize, 0);
  return { archive, remove, removedBytes, keptBytes: total - removedBytes };
}
