import { Manifest } from '../../../lib/core/manifest';
import { dayKey, isoWeekKey, monthKey } from '../../../lib/core/retention';
import { groupByDatabase, readCatalog, removeLeftovers } from '../catalog';
import { PruneConfig } from '../config';
import { log } from '../log';
import { planLogPrune } from '../engines';
import { openStorage } from '../storage';

export interface PruneResult {
  readonly kept: { id: string; reasons: string[] }[];
  readonly deleted: string[];
  readonly dryRun: boolean;
  /** Per log archive: the files no kept base can replay, removed (or, with --dry-run, to remove). */
  readonly logs: { archive: string; files: number; removedBytes: number; keptBytes: number }[];
}

/**
 * Which backups a calendar retention keeps: for the newest N days (ISO weeks, months) that
 * have backups, the newest backup of each. A kept backup also keeps the backups it depends on.
 */
export function planPrune(
  backups: readonly Manifest[],
  keep: { daily: number; weekly: number; monthly: number },
): Map<string, string[]> {
  const newestFirst = [...backups].sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  const kept = new Map<string, string[]>();
  const rules: [string, number, (d: Date) => string][] = [
    ['daily', keep.daily, dayKey],
    ['weekly', keep.weekly, isoWeekKey],
    ['monthly', keep.monthly, monthKey],
  ];
  for (const [name, count, key] of rules) {
    const seen = new Set<string>();
    for (const b of newestFirst) {
      if (seen.size >= count) break;
      const k = key(new Date(b.startedAt));
      if (seen.has(k)) continue;
      seen.add(k);
      kept.set(b.id, [...(kept.get(b.id) ?? []), `${name} ${k}`]);
    }
  }
  const byId = new Map(backups.map((b) => [b.id, b]));
  for (const id of [...kept.keys()]) {
    let parent = byId.get(id)?.parent;
    while (parent !== undefined && byId.has(parent)) {
      kept.set(parent, [...(kept.get(parent) ?? []), `base of ${id}`]);
      parent = byId.get(parent)?.parent;
    }
  }
  return kept;
}

/** Delete the backups a calendar retention does not keep (file:// storage only). */
export async function runPrune(cfg: PruneConfig): Promise<PruneResult> {
  const storage = openStorage(cfg.from);
  const catalog = await readCatalog(storage);
  // Each database keeps its own days, weeks and months: one database's backups never count for another's.
  const keep = { daily: cfg.keepDaily, weekly: cfg.keepWeekly, monthly: cfg.keepMonthly };
  const kept = new Map<string, string[]>();
  for (const [databaseId, backups] of groupByDatabase(catalog.backups)) {
    for (const [id, reasons] of planPrune(backups, keep))
      kept.set(
        id,
        reasons.map((r) => `${r} of ${databaseId}`),
      );
  }
  const deleted = catalog.backups.filter((b) => !kept.has(b.id)).map((b) => b.id);
  for (const id of deleted) {
    if (cfg.dryRun) {
      log.info(`would delete backup ${id}`, { id });
      continue;
    }
    // The manifest goes first, so an interrupted prune never leaves a manifest without its artifacts.
    await storage.removeFolder(`${id}/manifest.json`);
    await storage.removeFolder(id);
    log.info(`deleted backup ${id}`, { id });
  }
  // Then the log objects no kept base can replay (lib: runner/src/pitr/prune-logs.ts).
  const logs: PruneResult['logs'] = [];
  for (const p of await planLogPrune(
    storage,
    catalog.backups.filter((b) => kept.has(b.id)),
  )) {
    const folders = [...new Set(p.remove.map((o) => o.key.slice(0, o.key.lastIndexOf('/'))))].sort();
    for (const folder of folders) {
      if (cfg.dryRun) log.info(`would delete log ${folder}`, { archive: p.archive });
      else await storage.removeFolder(folder);
    }
    if (folders.length > 0)
      log.info(
        `${cfg.dryRun ? 'would delete' : 'deleted'} ${folders.length} ${p.archive} file(s) no kept base can replay`,
        { archive: p.archive, bytes: p.removedBytes },
      );
    logs.push({ archive: p.archive, files: folders.length, removedBytes: p.removedBytes, keptBytes: p.keptBytes });
  }
  if (!cfg.dryRun) await removeLeftovers(storage, cfg.leftoverHours);
  return {
    kept: [...kept.entries()].map(([id, reasons]) => ({ id, reasons })).sort((a, b) => a.id.localeCompare(b.id)),
    deleted,
    dryRun: cfg.dryRun,
    logs,
  };
}
