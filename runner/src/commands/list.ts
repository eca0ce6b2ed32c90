import { Manifest } from '../../../lib/core/manifest';
import { oneLine } from '../../../lib/core/shell';
import { groupByDatabase, readCatalog } from '../catalog';
import { ListConfig } from '../config';
import { formatBytes } from '../log';
import { ArchiveWindow, BrokenChain, brokenChains } from '../archive/window';
import { archiveWindows } from '../engines';
import { openStorage } from '../storage';

export interface ListEntry {
  readonly id: string;
  readonly engine: string;
  readonly database: string;
  /** The database's identifier (metrics, --database): the store may hold several databases. */
  readonly databaseId: string;
  readonly type: string;
  readonly tier: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly size: number;
  readonly compression: string;
  readonly encryption: string;
  readonly parent?: string;
  /** The full backup at the start of this backup's chain (incremental/differential). */
  readonly base?: string;
  readonly method: string;
  /** What the backup holds or lacks that a restore or a drill should know (the manifest's warnings). */
  readonly warnings?: readonly string[];
}

/** One database of the store and its backups. */
export interface ListDatabase {
  readonly databaseId: string;
  readonly database: string;
  readonly engine: string;
  readonly backups: number;
  /** The newest completed backup (by end time). */
  readonly latest: string;
}

export interface ListResult {
  readonly location: string;
  /** Oldest first by end time, every database. */
  readonly backups: ListEntry[];
  /** The databases the backups belong to. */
  readonly databases: ListDatabase[];
  /** Folders without a manifest (interrupted or running backups); never used. */
  readonly incomplete: string[];
  readonly unreadable: { id: string; reason: string }[];
  /** The recoverable window of each log archive (WAL, binary logs) stored here. */
  readonly windows: (ArchiveWindow & { readonly objects: number; readonly bytes: number })[];
  /** Incremental/differential backups whose parent or full is gone: not restorable. */
  readonly brokenChains: BrokenChain[];
}

function entry(m: Manifest): ListEntry {
  return {
    id: m.id,
    engine: m.engine,
    database: m.database,
    databaseId: m.databaseId,
    type: m.type,
    tier: m.tier,
    startedAt: m.startedAt,
    endedAt: m.endedAt,
    size: m.artifacts.reduce((s, a) => s + a.size, 0),
    compression: m.pipeline.compression,
    encryption: m.pipeline.encryption.scheme,
    parent: m.parent,
    base: m.base,
    method: m.method,
    ...(m.warnings?.length ? { warnings: m.warnings } : {}),
  };
}

export async function runList(cfg: ListConfig): Promise<ListResult> {
  const storage = openStorage(cfg.from);
  const catalog = await readCatalog(storage);
  return {
    location: cfg.from.display,
    backups: catalog.backups.map(entry),
    databases: [...groupByDatabase(catalog.backups)].map(([databaseId, ms]) => ({
      databaseId,
      database: ms[0].database,
      engine: ms[0].engine,
      backups: ms.length,
      latest: ms[ms.length - 1].id,
    })),
    incomplete: catalog.incomplete,
    unreadable: catalog.unreadable,
    windows: await Promise.all(
      (await archiveWindows(storage, catalog)).map(async (w) => {
        const stored = await storage.list(w.archive);
        return { ...w, objects: stored.length, bytes: stored.reduce((n, o) => n + o.size, 0) };
      }),
    ),
    brokenChains: brokenChains(catalog.backups),
  };
}

export function formatList(r: ListResult): string {
  if (r.backups.length === 0) {
    return [
      `no backups in ${r.location}` +
        (r.incomplete.length ? ` (${r.incomplete.length} incomplete folders ignored)` : ''),
      ...formatWindows(r),
    ].join('\n');
  }
  const lines: string[] = [];
  const groups = r.databases.length > 1 ? r.databases : [undefined];
  for (const db of groups) {
    const backups = db === undefined ? r.backups : r.backups.filter((b) => b.databaseId === db.databaseId);
    if (db !== undefined) {
      if (lines.length > 0) lines.push('');
      const count = `${db.backups} backup${db.backups === 1 ? '' : 's'}`;
      lines.push(`database ${db.databaseId} (${db.engine} ${db.database}): ${count}, latest ${db.latest}`);
    }
    lines.push(...table(backups, r));
  }
  lines.push(...formatWarnings(r.backups));
  if (r.incomplete.length > 0) {
    const n = r.incomplete.length;
    lines.push(`${n} incomplete folder(s) without a manifest (not backups): ${r.incomplete.join(', ')}`);
  }
  if (r.unreadable.length > 0) {
    const ids = r.unreadable.map((u) => u.id).join(', ');
    lines.push(`${r.unreadable.length} folder(s) with an unreadable manifest: ${ids}`);
  }
  lines.push(...formatWindows(r));
  return lines.join('\n');
}

/** The rows of one database's backups (or of the whole store when it holds one database). */
function table(backups: readonly ListEntry[], r: ListResult): string[] {
  const chains = backups.some((b) => b.parent !== undefined);
  const warned = r.backups.some((b) => b.warnings !== undefined);
  const rows = [
    [
      'ID',
      'ENGINE',
      'DATABASE',
      'TYPE',
      'TIER',
      'ENDED',
      'SIZE',
      'PIPELINE',
      ...(warned ? ['WARNINGS'] : []),
      ...(chains ? ['DEPENDS ON'] : []),
    ],
  ];
  for (const b of backups) {
    const type = b.method === 'physical' && b.type === 'full' ? 'full (physical)' : b.type;
    const broken = r.brokenChains.some((c) => c.id === b.id);
    rows.push([
      b.id,
      b.engine,
      b.database,
      type,
      b.tier,
      b.endedAt.replace(/\.\d+Z$/, 'Z'),
      formatBytes(b.size),
      `${b.compression}+${b.encryption}`,
      ...(warned ? [b.warnings === undefined ? '-' : String(b.warnings.length)] : []),
      ...(chains ? [b.parent === undefined ? '-' : `${b.parent}${broken ? ' (MISSING: chain broken)' : ''}`] : []),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) =>
    row
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * The manifests' warnings, each once with the backups that carry it (a daily backup's warning is
 * the same every day): one line each, control characters shown as `?`.
 */
function formatWarnings(backups: readonly ListEntry[]): string[] {
  const byText = new Map<string, string[]>();
  for (const b of backups) for (const w of b.warnings ?? []) byText.set(w, [...(byText.get(w) ?? []), b.id]);
  if (byText.size === 0) return [];
  const lines = ['warnings the backups recorded (what they hold or lack; also in dbbackup runbook --id ID):'];
  for (const [text, ids] of byText) {
    const which = ids.length === 1 ? ids[0] : `${ids.length} backups, ${ids[0]} to ${ids[ids.length - 1]}`;
    lines.push(`  WARNING ${which}: ${oneLine(text)}`);
  }
  return lines;
}

/** The recoverable windows, gaps and broken chains, for people. */
function formatWindows(r: ListResult): string[] {
  const lines: string[] = [];
  for (const w of r.windows) {
    const what =
      `${w.engine} ${w.archive === 'wal' ? 'WAL' : 'binary log'} archive ` +
      `(${w.archive}/, ${w.objects} objects, ${formatBytes(w.bytes)})`;
    if (w.earliest === undefined) {
      lines.push(
        `point-in-time recovery: ${what} holds logs but there is ` +
          `no ${w.engine === 'postgres' ? 'physical base' : 'full'} backup to start from`,
      );
    } else {
      lines.push(
        `point-in-time recovery: any moment from ${w.earliest} to ${w.latest} ` +
          `(${what}, ${w.bases} base backup${w.bases === 1 ? '' : 's'})`,
      );
    }
    for (const h of w.holes)
      lines.push(`  NOT restorable from ${h.from} to ${h.to} (a gap in the log archive, until the next base backup)`);
    for (const g of w.gaps) lines.push(`  GAP: ${g.message}`);
    for (const c of w.conflicts) lines.push(`  CONFLICT: ${c} is archived twice with different content`);
  }
  for (const c of r.brokenChains) lines.push(`BROKEN CHAIN: ${c.message}`);
  return lines;
}
