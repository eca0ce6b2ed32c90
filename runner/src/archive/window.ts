/**
 * What `list` and `verify` say about chains and point-in-time recovery: each backup's chain,
 * broken chains (a dependant whose parent or full is gone), and the recoverable window of each
 * log archive (earliest and latest restorable moment, gaps, holes). Each engine computes the
 * window of its own archive (EngineDriver.archiveWindow); these are the shapes they share.
 */
import { Manifest } from '../../../lib/core/manifest';
import { BackupType, Engine } from '../../../lib/core/model';

/** A run of missing files in a log archive. */
export interface LogGap {
  /** The timeline (WAL) or server (binary logs) the gap is in. */
  readonly group: string;
  /** The first and last missing file. */
  readonly first: string;
  readonly last: string;
  readonly count: number;
  /** When the last file before the gap was written (changes up to this moment are restorable). */
  readonly after?: string;
  /** When the first file after the gap was written. */
  readonly before?: string;
  /** A sentence naming the gap, for people. */
  readonly message: string;
}

/** The moments a storage location can restore to. */
export interface RecoverableWindow {
  /** The earliest and latest restorable moments (ISO-8601); undefined when nothing is restorable to a moment. */
  readonly earliest?: string;
  readonly latest?: string;
  /** Stretches of time inside [earliest, latest] that cannot be restored (between a gap and the next base). */
  readonly holes: readonly { readonly from: string; readonly to: string }[];
  readonly gaps: readonly LogGap[];
  readonly conflicts: readonly string[];
}

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
          message:
            `${m.type} backup ${m.id} depends on its ${what} ${id ?? '(not recorded)'}, which is not in the ` +
            'storage: it cannot be restored (retention removed its base before it)',
        });
        break;
      }
    }
  }
  return out;
}
