/**
 * Which backup a physical restore starts from: with --to-time the newest physical full that
 * ended before the moment (or the one --id names, checked), otherwise the backup selected; then
 * its chain, every kms: manifest of it authenticated before anything is read.
 */
import { ConfigError } from '../../../../lib/core/errors';
import { Manifest, ManifestArtifact } from '../../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../../lib/core/model';
import { chainOf } from '../../archive/chain';
import { assertAuthentic, Catalog, selectBackups } from '../../catalog';
import { RestoreConfig } from '../../config';
import { BackupError } from '../../errors';
import { Storage } from '../../storage';

export function isPhysicalFull(m: Manifest): boolean {
  return m.engine === Engine.POSTGRES && m.method === BackupMethod.PHYSICAL && m.type === BackupType.FULL;
}

/** What the restore lays down: the chosen backup, its chain (base first) and the base's tar. */
export interface ChosenBase {
  readonly chosen: Manifest;
  readonly chain: readonly Manifest[];
  readonly base: Manifest;
  readonly baseArtifact: ManifestArtifact;
  /** The base's WAL start point and timeline. */
  readonly startLsn: string;
  readonly timeline: number;
}

async function chooseBackup(cfg: RestoreConfig, storage: Storage, catalog: Catalog): Promise<Manifest> {
  if (cfg.toTime === undefined && cfg.toLatest !== true) {
    const chosen = (await selectBackups(storage, cfg.selector))[0];
    if (chosen.engine !== Engine.POSTGRES || chosen.method !== BackupMethod.PHYSICAL) {
      throw new ConfigError(
        `backup ${chosen.id} is a ${chosen.engine} ${chosen.method} backup; --target-dir ` +
          `takes PostgreSQL physical backups. Restore it with --target URL.`,
      );
    }
    return chosen;
  }
  const t = cfg.toTime ?? new Date(8.64e15);
  if (cfg.selector.kind === 'id') {
    const chosen = (await selectBackups(storage, cfg.selector))[0];
    if (!isPhysicalFull(chosen))
      throw new ConfigError(
        `--to-time starts from a full physical backup; ${chosen.id} is ` +
          `a ${chosen.type} ${chosen.method} backup. Leave --id out to pick the newest base before the moment.`,
      );
    if (cfg.toTime !== undefined && new Date(chosen.endedAt) > t)
      throw new ConfigError(
        `backup ${chosen.id} ended at ${chosen.endedAt}, ` +
          `after ${t.toISOString()}; a base must end before the moment it is restored to.`,
      );
    return chosen;
  }
  const bases = catalog.backups.filter(isPhysicalFull);
  const before = bases.filter((m) => new Date(m.endedAt) <= t);
  if (before.length === 0) {
    throw new BackupError(
      bases.length === 0
        ? `there is no physical base backup in ${storage.url.display} (dbbackup backup --engine ` +
            `postgres --method physical); point-in-time recovery starts from one.`
        : `no physical base backup in ${storage.url.display} ended before ${t.toISOString()}; the ` +
            `earliest restorable moment is ${bases[0].endedAt} (when ${bases[0].id} ended).`,
    );
  }
  return before[before.length - 1];
}

export async function chooseBase(cfg: RestoreConfig, storage: Storage, catalog: Catalog): Promise<ChosenBase> {
  const chosen = await chooseBackup(cfg, storage, catalog);
  const chain = chainOf(chosen, new Map(catalog.backups.map((m) => [m.id, m])));
  // Every kms: manifest of the chain is authenticated (its HMAC) before anything is laid down.
  for (const m of chain) await assertAuthentic(m);
  const base = chain[0];
  const baseArtifact = base.artifacts.find((a) => a.role === 'base');
  if (baseArtifact === undefined || base.startPosition?.lsn === undefined || base.position?.timeline === undefined) {
    throw new BackupError(
      `backup ${base.id} has no base tar or records no WAL start point and ` +
        `timeline; it cannot be the base of a physical restore.`,
    );
  }
  return {
    chosen,
    chain,
    base,
    baseArtifact,
    startLsn: base.startPosition.lsn,
    timeline: base.position.timeline,
  };
}
