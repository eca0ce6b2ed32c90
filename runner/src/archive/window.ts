/**
 * What `list` and `verify` say about chains and point-in-time recovery: each backup's chain,
 * broken chains (a dependant whose parent or full is gone), and the recoverable window of each
 * log archive (earliest and latest restorable moment, gaps, holes).
 */
import { Manifest } from '../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../lib/core/model';
import { Catalog } from '../catalog';
import { Storage } from '../storage';
import { binlogWindow, BINLOG_PREFIX } from '../engines/mysql/binlog-archive';
import { BaseInfo, readWalIndex, RecoverableWindow, WAL_PREFIX, walWindow } from '../engines/postgres/wal-archive';
import { parseLsn, segmentOf } from '../engines/postgres/wal-names';

/** The recoverable window of one log archive. */
export interface ArchiveWindow extends RecoverableWindow {
  readonly engine: Engine;
  /** `wal` (PostgreSQL) or `binlog` (MySQL/MariaDB). */
  readonly archive: string;
  /** The bases the window is computed from. */
  readonly bases: number;
}

/** A dependant whose chain is incomplete: it cannot be restored. */
export interface BrokenChain {
  readonly id: string;
  readonly missing: string;
  readonly message: string;
}

/** Dependants whose parent or full backup is not in the catalog. */
export function brokenChains(backups: readonly Manifest[]): BrokenChain[] {
  const ids = new Set(backups.map((m) => m.id));
  const out: BrokenChain[] = [];
  for (const m of backups) {
    if (m.type === BackupType.FULL) continue;
    for (const [what, id] of [
      ['parent', m.parent],
      ['full backup', m.base],
    ] as const) {
      if (id === undefined || !ids.has(id)) {
        out.push({
          id: m.id,
          missing: id ?? '(not recorded)',
          message: `${m.type} backup ${m.id} depends on its ${what} ${id ?? '(not recorded)'}, which is not in the storage: it cannot be restored (retention removed its base before it)`,
        });
        break;
      }
    }
  }
  return out;
}

/** Physical PostgreSQL full backups as bases of the WAL archive. */
export function walBases(backups: readonly Manifest[], segmentSize: number): BaseInfo[] {
  return backups
    .filter((m) => m.engine === Engine.POSTGRES && m.method === BackupMethod.PHYSICAL && m.type === BackupType.FULL && m.startPosition?.lsn !== undefined && m.position?.timeline !== undefined)
    .map((m) => ({
      id: m.id,
      timeline: m.position!.timeline!,
      startSegno: segmentOf(parseLsn(m.startPosition!.lsn!), segmentSize),
      consistentAt: new Date(m.endedAt),
    }));
}

/** The windows of the log archives a storage location holds (none when it holds no archive). */
export async function archiveWindows(storage: Storage, catalog: Catalog): Promise<ArchiveWindow[]> {
  const top = new Set(await storage.listFolders(''));
  const out: ArchiveWindow[] = [];
  if (top.has(WAL_PREFIX)) {
    const index = await readWalIndex(storage);
    const bases = walBases(catalog.backups, index.segmentSize);
    out.push({ engine: Engine.POSTGRES, archive: WAL_PREFIX, bases: bases.length, ...walWindow(index, bases, `${storage.url.display}/${WAL_PREFIX}`) });
  }
  if (top.has(BINLOG_PREFIX)) out.push(await binlogWindow(storage, catalog.backups));
  return out;
}
