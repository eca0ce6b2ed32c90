/**
 * Keeping a chain whole without delete rights: when an incremental or differential backup is
 * written, every backup it needs must outlive it. The rule is lib/core/retention.ts
 * `planChainTiers` (the one the retention simulator proves at synth): the dependant takes the
 * shortest-lived tier, and a base that lifecycle would remove first is re-tagged with a longer
 * tier where the storage allows it (S3 tags). Where it cannot (GCS tier folders), the backup
 * is still written and says until when it can be restored.
 */
import { BackupType, RetentionTier } from '../../lib/core/model';
import { ChainLink, LifecycleTiming, planChainTiers } from '../../lib/core/retention';
import { StorageKind } from '../../lib/core/urls';
import { MANIFEST_NAME } from '../../lib/core/model';
import { readManifest } from './catalog';
import { log } from './log';
import { Storage } from './storage';

/** Every backup a dependant with this parent needs, full first, with the tier each carries now. */
async function chainOf(storage: Storage, parent: string): Promise<ChainLink[]> {
  const links: ChainLink[] = [];
  for (let id: string | undefined = parent; id !== undefined && links.length < 10_000; ) {
    const m = await readManifest(storage, id);
    const tier = (await storage.currentTier?.(`${m.id}/${MANIFEST_NAME}`)) ?? m.tier;
    links.unshift({ id: m.id, tier, startedAt: new Date(m.startedAt) });
    id = m.type === BackupType.FULL ? undefined : m.parent;
  }
  return links;
}

/** A dependant's tier, and the raises to make once its artifacts are stored (before its manifest). */
export interface ChainKeeping {
  readonly tier: RetentionTier;
  commit(): Promise<void>;
}

/**
 * The tier of a dependant backup started at `at` on `parent`, and what to raise; warnings go
 * into `warnings` (and the manifest). Without the tiers' days (no --tier-days) nothing is
 * known about expiry: daily, as before, with a warning when a base is daily too. A backup that
 * fails before `commit` raises nothing.
 */
export async function keepChainWhole(
  storage: Storage,
  parent: string,
  at: Date,
  tierDays: Partial<Record<RetentionTier, number>> | undefined,
  warnings: string[],
): Promise<ChainKeeping> {
  const none = async () => undefined;
  // prune keeps chains whole there
  if (storage.url.kind === StorageKind.FILE) return { tier: RetentionTier.DAILY, commit: none };
  const chain = await chainOf(storage, parent);
  if (tierDays === undefined) {
    const daily = chain.filter((l) => l.tier === RetentionTier.DAILY).map((l) => l.id);
    if (daily.length > 0) {
      warnings.push(
        `this backup depends on ${daily.join(', ')} in the daily tier, which lifecycle may remove before this one; ` +
          'give --tier-days (the constructs do) so the runner keeps the chain whole',
      );
    }
    return { tier: RetentionTier.DAILY, commit: none };
  }
  const plan = planChainTiers(at, chain, {
    tierDays,
    canRaise: storage.raiseTier !== undefined,
    timing: storage.url.kind === StorageKind.GCS ? LifecycleTiming.GCS : LifecycleTiming.S3,
  });
  for (const u of plan.unprotected) {
    warnings.push(
      `${u.id} (${u.tier}), which this backup needs, may be removed by lifecycle on ` +
        `${u.expires.toISOString().slice(0, 10)}, ` +
        'before this backup; it can be restored until then (take a full backup, or keep fulls in a longer tier)',
    );
  }
  return {
    tier: plan.tier,
    commit: async () => {
      for (const r of plan.raise) {
        await storage.raiseTier!(r.id, r.to);
        log.info(`raised ${r.id} from ${r.from} to ${r.to}, so it outlives the backups that need it`, {
          event: 'tier-raised',
          ...r,
        });
      }
    },
  };
}
