/**
 * Chains of backups, engine-neutral: which stored backup a new incremental or differential
 * continues, and which backups a restore of one lays down, base first.
 */
import { Manifest } from '../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../lib/core/model';
import { DamagedError } from '../errors';

/**
 * The chain a new incremental/differential backup continues, from the backups already stored:
 * the latest backup of the same engine and database (and method, when the engine's chains are
 * made of one method only); a differential continues the latest full.
 */
export function chooseParent(
  backups: readonly Manifest[],
  type: BackupType,
  databaseId: string | undefined,
  engine: Engine,
  method?: BackupMethod,
): Manifest | undefined {
  const same = backups.filter(
    (m) =>
      m.engine === engine &&
      (databaseId === undefined || m.databaseId === databaseId) &&
      (method === undefined || m.method === method),
  );
  const candidates = type === BackupType.DIFFERENTIAL ? same.filter((m) => m.type === BackupType.FULL) : same;
  return candidates[candidates.length - 1];
}

/** The backups a restore of `m` lays down and replays, base first. */
export function chainOf(m: Manifest, byId: ReadonlyMap<string, Manifest>): Manifest[] {
  if (m.type === BackupType.FULL) return [m];
  const chain: Manifest[] = [m];
  let cur = m;
  while (cur.type !== BackupType.FULL) {
    const next = cur.type === BackupType.DIFFERENTIAL ? cur.base : cur.parent;
    const parent = next === undefined ? undefined : byId.get(next);
    if (parent === undefined) {
      throw new DamagedError(
        `backup ${m.id} depends on ${next ?? '(unrecorded)'} (its ` +
          `${cur.type === BackupType.DIFFERENTIAL ? 'full backup' : 'parent'}), which is not in the storage any ` +
          `more: the chain is broken and ${m.id} cannot be restored. Restore ` +
          `${chain.length > 1 ? chain[chain.length - 1].id : 'an older full backup'} or a newer full backup instead.`,
      );
    }
    chain.unshift(parent);
    cur = parent;
  }
  return chain;
}
