/**
 * Physical and point-in-time restores of PostgreSQL into a data directory:
 *
 *   restore --from URL --to-time ISO --target-dir DIR   newest base before the moment + WAL archive
 *   restore --from URL --id ID --target-dir DIR         a base (as it was when it ended), or an
 *                                                       incremental/differential (its chain, replayed
 *                                                       to its end)
 *
 * The steps, each in its own module:
 * - which base and chain (pitr-restore-base.ts);
 * - the WAL recovery reads, checked in the archive's listing before anything is written: a missing
 *   segment fails the restore with a message naming it, never a partial restore
 *   (pitr-restore-wal.ts, with the timeline choice in pitr-restore-timeline.ts);
 * - the data directory (pitr-restore-target-dir.ts): the base is laid down from its tar (read back
 *   through the shared, verified read path, and written by this process into DIR only: see
 *   layDownBase and pipeline/untar.ts);
 * - the recovery settings (pitr-restore-settings.ts): recovery.signal, and in postgresql.auto.conf a
 *   restore_command running `dbbackup wal-fetch`, the recovery target and
 *   recovery_target_action = 'promote'. Starting PostgreSQL on DIR then recovers to exactly that
 *   point and opens for writes.
 */
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ConfigError } from '../../../../lib/core/errors';
import { BackupType } from '../../../../lib/core/model';
import { readCatalog } from '../../catalog';
import { RestoreConfig } from '../../config';
import { BackupError } from '../../errors';
import { CheckBeforeWork } from '../shared/engine';
import { log } from '../../log';
import { prepareDecryption } from '../../pipeline/encrypt';
import { readBack } from '../../pipeline/read-back';
import { openStorage } from '../../storage';
import { layDownBase, PG_CONTROL } from './physical';
import { chooseBase } from './pitr-restore-base';
import { writeRecoverySettings } from './pitr-restore-settings';
import { prepareTargetDir } from './pitr-restore-target-dir';
import { layDownPartial, layDownWalRanges, planToTime, ToTimePlan } from './pitr-restore-wal';
import { readWalIndex } from './wal-archive';

export interface PhysicalRestoreResult {
  readonly id: string;
  readonly target: string;
  readonly seconds: number;
  readonly artifacts: string[];
  /** The backups laid down or replayed, base first. */
  readonly chain: string[];
  /** What recovery stops at: a moment, an LSN, or the base's consistent point. */
  readonly recoveryTarget: string;
  readonly timeline: number;
  /** WAL segments the archive must serve (a --to-time restore). */
  readonly walSegments?: number;
  /** How to start the restored server. */
  readonly next: string;
}

export async function runPhysicalRestore(
  cfg: RestoreConfig,
  signal: AbortSignal,
  check: CheckBeforeWork,
): Promise<PhysicalRestoreResult> {
  const started = Date.now();
  if (cfg.targetDir === undefined)
    throw new ConfigError(
      `a PostgreSQL physical or point-in-time restore needs --target-dir ` +
        `DIR (the data directory to lay the backup down in).`,
    );
  if (cfg.target !== undefined)
    throw new ConfigError(
      `give --target-dir DIR or --target URL, not both: a physical restore ` +
        `lays down a data directory; start PostgreSQL on it.`,
    );
  const dir = path.resolve(cfg.targetDir);
  const storage = openStorage(cfg.from);
  const catalog = await readCatalog(storage);
  const chosenBase = await chooseBase(cfg, storage, catalog);
  const { chosen, chain, base, baseArtifact } = chosenBase;
  // The programs that read the chain back (and, to a moment, the archived WAL) run, before any read.
  const toMoment = cfg.toTime !== undefined || cfg.toLatest === true;
  const walIndex = toMoment ? await readWalIndex(storage) : undefined;
  const wal = walIndex === undefined ? [] : [...walIndex.segments.values()].flatMap((s) => [...s.values()]);
  await check({ manifests: chain, objects: [...wal, ...(walIndex?.others.values() ?? [])] });

  // Plan first: nothing is written before the archive is known to hold what recovery needs.
  let settings: Record<string, string>;
  let recoveryTarget: string;
  let timeline = chosenBase.timeline;
  let walSegments: number | undefined;
  let walPlan: ToTimePlan | undefined;
  if (toMoment) {
    const plan = await planToTime(storage, chosenBase, cfg.toTime ?? 'latest', cfg.identity, walIndex);
    walPlan = plan;
    ({ settings, recoveryTarget, timeline } = plan);
    walSegments = plan.segments.length;
    log.info(
      `restoring to ${recoveryTarget}: base ${base.id}, then ${plan.segments.length} WAL ` +
        `segment(s) up to ${plan.segments[plan.segments.length - 1]?.file ?? '(none)'}` +
        (plan.partial !== undefined ? ` and the streamed partial segment ${plan.partial.segment}` : ''),
      {
        event: 'pitr-plan',
        base: base.id,
        timeline,
        segments: plan.segments.length,
        partial: plan.partial?.segment,
      },
    );
  } else if (chosen.type === BackupType.FULL) {
    recoveryTarget = `the end of ${base.id} (${base.position!.lsn})`;
    settings = {
      recovery_target: 'immediate',
      recovery_target_action: 'promote',
      recovery_target_timeline: String(chosenBase.timeline),
    };
  } else {
    if (chosen.position?.lsn === undefined) throw new BackupError(`backup ${chosen.id} records no end LSN`);
    timeline = chosen.position.timeline ?? timeline;
    recoveryTarget = `the end of ${chosen.id} (${chosen.position.lsn})`;
    settings = {
      recovery_target_lsn: chosen.position.lsn,
      recovery_target_inclusive: 'false',
      recovery_target_timeline: String(timeline),
      recovery_target_action: 'promote',
    };
  }

  try {
    return await layDown();
  } finally {
    await walPlan?.cleanup();
  }

  async function layDown(): Promise<PhysicalRestoreResult> {
    const target = await prepareTargetDir(dir);
    const artifacts: string[] = [];
    try {
      const dec = await prepareDecryption(base.pipeline.encryption, cfg.identity, base.id);
      let control: Buffer | undefined;
      try {
        const layDown = async (p: Readable) => {
          control = await layDownBase(p, target.dir, base.id);
        };
        await readBack(storage, base, baseArtifact, dec, layDown, signal);
        artifacts.push(`${base.id}/${baseArtifact.name}`);
      } finally {
        await dec.cleanup();
      }
      // The WAL ranges of an incremental/differential chain go into pg_wal, where recovery finds them.
      if (walPlan?.partial !== undefined) artifacts.push(await layDownPartial(target.dir, walPlan.partial));
      if (walPlan === undefined) {
        const walRanges = chosen.type === BackupType.DIFFERENTIAL ? [chosen] : chain.slice(1);
        artifacts.push(...(await layDownWalRanges(storage, walRanges, target.dir, cfg.identity, signal)));
      }
      if (signal.aborted) throw signal.reason;
      await writeRecoverySettings(target.dir, {
        id: chosen.id,
        recoveryTarget,
        from: cfg.from,
        identity: cfg.identity,
        settings,
      });
      // Last: until pg_control is there, PostgreSQL refuses to start on the directory.
      await target.dir.writeFile(PG_CONTROL, control!);
      if (target.owner !== undefined) await target.dir.chownAll(target.owner);
      else if (process.getuid?.() === 0) {
        log.warn(
          `${dir} belongs to root, as its parent does, and PostgreSQL does not run as root: hand it to the ` +
            `database user (e.g. chown -R postgres:postgres ${dir}) before starting it`,
        );
      }
      target.dir.close();
    } catch (e) {
      await target.undo().catch((d: Error) => log.warn(`could not clean ${dir} up: ${d.message}`));
      throw e;
    }
    const seconds = (Date.now() - started) / 1000;
    log.info(
      `laid down ${chain.map((m) => m.id).join(' + ')} in ${dir}; starting ` +
        `PostgreSQL on it recovers to ${recoveryTarget} and promotes`,
      {
        event: 'restore-done',
        id: chosen.id,
        seconds,
      },
    );
    return {
      id: chosen.id,
      target: dir,
      seconds,
      artifacts,
      chain: chain.map((m) => m.id),
      recoveryTarget,
      timeline,
      walSegments,
      next:
        `pg_ctl -D ${dir} start   (as the database's OS user; recovery ` +
        `replays the WAL, then the server opens for writes)`,
    };
  }
}
