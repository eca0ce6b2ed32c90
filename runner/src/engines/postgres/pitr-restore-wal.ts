/**
 * The WAL of a physical restore: for --to-time, which archived segments recovery reads (along the
 * timeline it follows, every one checked present before anything is written, a gap or a moment past
 * the archive's end failing the restore); for an incremental/differential chain, its WAL ranges laid
 * down in pg_wal.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Manifest } from '../../../../lib/core/manifest';
import { ArchivedObject, fetchObject } from '../../archive/log-archive';
import { RUNNER_ENV } from '../../../../lib/core/contract';
import { BackupError, ConfigError, DamagedError } from '../../errors';
import { log } from '../../log';
import { prepareDecryption } from '../../pipeline/encrypt';
import { readBack } from '../../pipeline/read-back';
import { Child } from '../../pipeline/stages';
import { ConfinedDir } from '../../pipeline/untar';
import { Storage } from '../../storage';
import { ChosenBase } from './pitr-restore-base';
import { pgTimestamp } from './pitr-restore-settings';
import { chooseTimeline, readHistories } from './pitr-restore-timeline';
import { pgTool } from './tools';
import { archiveEnd, ArchiveEnd, planRecovery, readWalIndex, RecoveryPlan, WAL_PREFIX, WalIndex } from './wal-archive';
import { fetchPartial, readPartial } from './wal-partial';
import { parseLsn, segmentOf, timelinePath } from './wal-names';

/** When the transactions recorded in an archived segment ended (commit and abort records), read with pg_waldump. */
export async function transactionEnds(
  storage: Storage,
  segment: ArchivedObject,
  identity: string | undefined,
): Promise<Date[]> {
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-wal-'));
  try {
    const file = path.join(tmp, segment.file);
    await fetchObject(storage, WAL_PREFIX, segment, file, identity);
    return await transactionEndsIn(file);
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}

/** Where the last whole record of an archived segment starts. */
async function lastRecordOf(
  storage: Storage,
  segment: ArchivedObject,
  identity: string | undefined,
): Promise<string | undefined> {
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-wal-'));
  try {
    const file = path.join(tmp, segment.file);
    await fetchObject(storage, WAL_PREFIX, segment, file, identity);
    return (await walRecords(file)).lastLsn;
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}

/** When the transactions recorded in a local WAL file ended. */
export async function transactionEndsIn(file: string): Promise<Date[]> {
  return (await walRecords(file)).ends;
}

/** What pg_waldump reads in a local WAL file: when its transactions ended, and where its last whole record starts. */
async function walRecords(file: string): Promise<{ ends: Date[]; lastLsn?: string }> {
  // pg_waldump stops with an error where the segment's records end; what it printed before is what counts.
  const child = new Child({ cmd: pgTool('pg_waldump'), args: [file], env: { TZ: 'UTC' }, label: 'pg_waldump' }, [
    'ignore',
    'pipe',
    'pipe',
  ]);
  let out = '';
  child.process.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  let spawnFailed: Error | undefined;
  child.process.once('error', (e) => (spawnFailed = e));
  await child.done.catch(() => undefined);
  // Its error exit at the records' end is expected; a pg_waldump that never ran is not "no transactions".
  if (spawnFailed !== undefined) {
    throw new ConfigError(
      `pg_waldump cannot be run (${pgTool('pg_waldump')}: ${spawnFailed.message}); a restore to a moment reads ` +
        `when the WAL's transactions ended with it. Fix: install the PostgreSQL server tools (Debian: postgresql-15, ` +
        `or the major of the archive), or point ${RUNNER_ENV.PG_BIN} at their bin directory.`,
    );
  }
  const ends: Date[] = [];
  for (const m of out.matchAll(/desc: (?:COMMIT|ABORT)\S* (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC/g))
    ends.push(new Date(m[1].replace(' ', 'T') + 'Z'));
  const lsns = [...out.matchAll(/\blsn: ([0-9A-F]+\/[0-9A-F]+),/g)];
  return { ends, lastLsn: lsns.length > 0 ? lsns[lsns.length - 1][1] : undefined };
}

/** What a --to-time (or `latest`) restore recovers: the settings, the timeline and the WAL it reads. */
export interface ToTimePlan {
  readonly recoveryTarget: string;
  readonly settings: Record<string, string>;
  readonly timeline: number;
  readonly segments: readonly ArchivedObject[];
  /** The streamed partial segment recovery replays after the completed ones, fetched to a local file. */
  readonly partial?: { readonly segment: string; readonly file: string; readonly written: Date };
  /** Remove the local copies the plan made. */
  cleanup(): Promise<void>;
}

/**
 * The streamed partial segment that continues the archive at `end`, fetched into a private
 * temporary file, or undefined when the archive holds none for that segment.
 */
async function fetchContinuingPartial(
  storage: Storage,
  end: ArchiveEnd,
  identity: string | undefined,
): Promise<{ segment: string; file: string; written: Date; tmp: string } | undefined> {
  if (end.gap !== undefined) return undefined;
  const tlHex = end.next.name.slice(0, 8);
  const o = await readPartial(storage, tlHex);
  if (o === undefined || o.file !== end.next.name) return undefined;
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'dbbackup-partial-'));
  try {
    const file = path.join(tmp, o.file);
    const got = await fetchPartial(storage, o, file, identity);
    if (got.file !== o.file)
      throw new BackupError(
        `the streamed partial segment moved on from ${o.file} to ${got.file} while the ` +
          `restore read it (wal-receive is running); run the restore again.`,
      );
    log.info(`the archive's completed segments end before ${end.next.name}; replaying its streamed partial copy too`, {
      event: 'pitr-partial',
      segment: o.file,
      written: got.written.toISOString(),
    });
    return { segment: o.file, file, written: got.written, tmp };
  } catch (e) {
    await fs.promises.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Plan a recovery from `base` to `toTime` (or the end of the archive) over the WAL archive; throws when the archive
 * cannot serve it.
 */
export async function planToTime(
  storage: Storage,
  base: ChosenBase,
  toTime: Date | 'latest',
  identity: string | undefined,
  /** The archive's index, when the caller has listed it already. */
  listed?: WalIndex,
): Promise<ToTimePlan> {
  const index = listed ?? (await readWalIndex(storage));
  const histories = await readHistories(storage, index, identity);
  const tl = chooseTimeline(base.timeline, index, histories);
  const startSegno = segmentOf(parseLsn(base.startLsn), index.segmentSize);
  const walPath = timelinePath(base.timeline, tl.timeline, tl.history, startSegno, index.segmentSize);
  if (walPath === undefined)
    throw new BackupError(`timeline ${tl.timeline} does not descend from timeline ${base.timeline} of ${base.base.id}`);
  const where = storage.url.display;
  const end = archiveEnd(index, walPath, where);
  const timelineSettings = {
    recovery_target_timeline: String(tl.timeline),
    recovery_target_action: 'promote',
  };
  if (toTime === 'latest') {
    if (end.gap !== undefined)
      throw new DamagedError(
        `cannot restore to the latest moment: ${end.gap.message}. Restore ` +
          `to a moment before the gap with --to-time ISO-8601.`,
      );
    const partial = await fetchContinuingPartial(storage, end, identity);
    const cleanup = async () => {
      if (partial !== undefined) await fs.promises.rm(partial.tmp, { recursive: true, force: true });
    };
    // The last whole record is the recovery target: a segment recovery cannot fetch (storage
    // trouble, a wrong key) then stops it short of the target with an error instead of promoting
    // a server that silently misses the rest.
    const lastSegment = end.segments[end.segments.length - 1];
    let lastLsn: string | undefined;
    try {
      if (partial !== undefined) lastLsn = (await walRecords(partial.file)).lastLsn;
      if (lastLsn === undefined && lastSegment !== undefined)
        lastLsn = await lastRecordOf(storage, lastSegment, identity);
    } catch (e) {
      await cleanup();
      throw e;
    }
    const last = partial?.segment ?? lastSegment?.file;
    return {
      recoveryTarget:
        `the end of the archived WAL ` + `(${last ?? 'the base backup'}${lastLsn !== undefined ? `, ${lastLsn}` : ''})`,
      timeline: tl.timeline,
      segments: end.segments,
      settings:
        lastLsn === undefined
          ? timelineSettings
          : { recovery_target_lsn: lastLsn, recovery_target_inclusive: 'true', ...timelineSettings },
      ...(partial !== undefined ? { partial } : {}),
      cleanup,
    };
  }
  const settings = { recovery_target_time: pgTimestamp(toTime), ...timelineSettings };
  let plan: RecoveryPlan | undefined;
  let refusal: Error | undefined;
  try {
    plan = planRecovery(index, walPath, toTime, where);
    if (plan.following !== 'present') {
      // The segment after the last one is missing: recovery can stop only if a transaction ended after the moment in
      // the last one.
      const last = plan.segments[plan.segments.length - 1];
      const ends = last === undefined ? [] : await transactionEnds(storage, last, identity);
      if (!ends.some((e) => e > toTime)) refusal = plan.missing!;
    }
  } catch (e) {
    if (!(e instanceof DamagedError)) throw e;
    refusal = e;
  }
  if (refusal === undefined)
    return {
      recoveryTarget: toTime.toISOString(),
      timeline: tl.timeline,
      segments: plan!.segments,
      settings,
      cleanup: async () => {},
    };
  // The completed segments end before the moment: the streamed partial segment may reach past it.
  const partial = await fetchContinuingPartial(storage, end, identity);
  if (partial === undefined) throw refusal;
  const cleanup = () => fs.promises.rm(partial.tmp, { recursive: true, force: true });
  if (!(await transactionEndsIn(partial.file)).some((e) => e > toTime)) {
    await cleanup();
    throw new DamagedError(
      `cannot restore to ${toTime.toISOString()}: no transaction ended after it in the WAL archive ${where}, ` +
        `its streamed partial segment ${partial.segment} ` +
        `(uploaded ${partial.written.toISOString()}) included, so recovery ` +
        'could not tell it reached the moment. Give an earlier moment, or ' +
        'restore to the end of the archive with --to-time latest.',
    );
  }
  return {
    recoveryTarget: toTime.toISOString(),
    timeline: tl.timeline,
    segments: end.segments,
    settings,
    partial,
    cleanup,
  };
}

/** The WAL segment an artifact of a WAL range carries (its name starts with the segment's). */
function segmentFile(a: { name: string }): string {
  const seg = a.name.slice(0, 24);
  if (!/^[0-9A-F]{24}$/.test(seg)) {
    throw new DamagedError(`WAL artifact '${a.name}' does not start with a WAL segment name`);
  }
  return `pg_wal/${seg}`;
}

/** Lay the WAL ranges of an incremental/differential chain down in pg_wal, where recovery finds them. */
export async function layDownWalRanges(
  storage: Storage,
  ranges: readonly Manifest[],
  dir: ConfinedDir,
  identity: string | undefined,
  signal: AbortSignal,
): Promise<string[]> {
  const artifacts: string[] = [];
  for (const m of ranges) {
    const mdec = await prepareDecryption(m.pipeline.encryption, identity, m.id);
    try {
      for (const a of m.artifacts.filter((x) => x.role === 'wal')) {
        const file = segmentFile(a);
        // The base's copy of its last segment is replaced by the whole archived one.
        const write = async (p: Readable) =>
          void (await dir.writeFile(file, p.iterator({ destroyOnReturn: false }), { replace: true }));
        await readBack(storage, m, a, mdec, write, signal);
        artifacts.push(`${m.id}/${a.name}`);
      }
    } finally {
      await mdec.cleanup();
    }
  }
  return artifacts;
}

/** Lay the streamed partial segment down in pg_wal under its full name, where recovery reads it after the archive's. */
export async function layDownPartial(dir: ConfinedDir, partial: { segment: string; file: string }): Promise<string> {
  await dir.writeFile(`pg_wal/${partial.segment}`, fs.createReadStream(partial.file), { replace: true });
  return `pg_wal/${partial.segment} (streamed partial)`;
}
