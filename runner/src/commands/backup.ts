import { RUNNER_ENV } from '../../../lib/core/contract';
import { Manifest, ManifestArtifact } from '../../../lib/core/manifest';
import { METRICS } from '../../../lib/core/metrics';
import { BackupType, MANIFEST_NAME, MANIFEST_VERSION, RetentionTier } from '../../../lib/core/model';
import { assignTier } from '../../../lib/core/retention';
import { checkTierOverride, idTime, makeBackupId, removeLeftovers, writeManifest } from '../catalog';
import { keepChainWhole } from '../chain-tiers';
import { BackupConfig } from '../config';
import { ArtifactCopy, ArtifactPlan, driverFor, StreamProducer } from '../engines';
import { BackupError, ChildProcessError, wroteNothingError } from '../errors';
import { formatBytes, log } from '../log';
import { emitMetrics } from '../metrics';
import { COMPRESSION_EXT } from '../pipeline/compress';
import { encryptionExt, prepareEncryption, PreparedEncryption } from '../pipeline/encrypt';
import { replicaLagGate, replicaLagRecord } from './replica-gate';
import { manualRestoreSteps } from '../pipeline/manual';
import { GatedDigest } from '../pipeline/stream';
import { CommandSpec } from '../pipeline/stages';
import { emptyStoredSize, producerLabel, runPipeline } from '../pipeline/store';
import { openStorage, Storage } from '../storage';
import { StorageUrl } from '../../../lib/core/urls';
import * as path from 'node:path';

/** The result printed by `backup`. */
export interface BackupResult {
  readonly id: string;
  readonly location: string;
  readonly manifest: Manifest;
  readonly seconds: number;
}

/** The identifier of the database in metrics and lock names. */
export function databaseIdOf(cfg: {
  source: { host?: string; socket?: string; port: number; database: string };
}): string {
  return (
    process.env[RUNNER_ENV.DATABASE_ID] ?? `${cfg.source.host ?? 'local'}:${cfg.source.port}/${cfg.source.database}`
  );
}

/**
 * The key of the overlap lock: the database and the normalised destination. The lock lives in
 * the database server itself (an advisory lock, GET_LOCK), so the server is part of it already:
 * however the source names the server (`localhost`, `127.0.0.1`, a socket, a host name's case),
 * two runs of the same database to the same place meet on the same lock; a trailing `/` or a
 * `.` segment in the destination does not make another place.
 */
export function overlapLockKey(source: { database: string }, to: StorageUrl): string {
  const dest =
    to.kind === 'file'
      ? path.posix.normalize(to.path).replace(/(.)\/+$/, '$1')
      : `${to.bucket}/${path.posix
          .normalize(to.path)
          .replace(/^\/+|\/+$/g, '')
          .replace(/^\.$/, '')}`;
  return `${source.database}|${to.kind}:${dest}`;
}

/**
 * Take a backup: engine producer → compress → encrypt → sha256 → storage, for each artifact,
 * then the manifest, written last. On any failure nothing is committed: uploads are aborted
 * and no manifest is written.
 */
export async function runBackup(cfg: BackupConfig, signal: AbortSignal): Promise<BackupResult> {
  const started = new Date();
  const storage = openStorage(cfg.to);
  const driver = driverFor(cfg.engine);
  const databaseId = databaseIdOf(cfg);
  const id = makeBackupId(started, cfg.source.database, cfg.type);
  log.info(`backup ${id} of ${cfg.source.display} to ${cfg.to.display}`, { event: 'backup-start', id, databaseId });
  try {
    // Tier and key first: the first producer then starts as soon as the session is open (an
    // engine may hold a brief lock from opening its snapshot until its dump tool opened its own).
    // Incremental and differential backups take the shortest tier, their bases raised if need be (chain-tiers.ts).
    let tier =
      cfg.tier ??
      (cfg.type === BackupType.FULL ? await chooseTier(storage, cfg.source.database, started) : RetentionTier.DAILY);
    const enc = await prepareEncryption(cfg.encryption, id);
    const lagBefore = await replicaLagGate(driver, cfg.source, cfg.maxReplicaLagSeconds, 'before');
    // What the manifest's warnings say: from the engine's session and from the artifacts' pipelines.
    const warnings: string[] = [];
    const session = await driver.openBackup(cfg.source, {
      warn: (message, fields) => {
        log.warn(message, fields);
        if (!warnings.includes(message)) warnings.push(message);
      },
      type: cfg.type,
      method: cfg.method,
      lockKey: overlapLockKey(cfg.source, cfg.to),
      lockWaitSeconds: cfg.lockWaitSeconds,
      lockTimeoutSeconds: cfg.lockTimeoutSeconds,
      storage,
      databaseId,
      jobs: cfg.jobs,
      rowCounts: cfg.rowCounts,
    });
    try {
      await checkTierOverride(storage, cfg.tier, session.chain);
      const artifacts: ManifestArtifact[] = [];
      const keeping =
        cfg.tier === undefined && session.chain !== undefined
          ? await keepChainWhole(storage, session.chain.parent, started, cfg.tierDays, warnings)
          : undefined;
      tier = keeping?.tier ?? tier;
      const stored = await storeAll(session.artifacts, signal, (plan, s) =>
        storeArtifact(storage, id, plan, cfg, enc, tier, s, warnings),
      );
      artifacts.push(...stored.filter((a): a is ManifestArtifact => a !== undefined));
      for (const copy of session.copies ?? []) artifacts.push(await copyArtifact(storage, id, copy, tier, signal));
      const tables = await session.tables();
      const lagAfter =
        lagBefore === undefined
          ? undefined
          : await replicaLagGate(driver, cfg.source, cfg.maxReplicaLagSeconds, 'after');
      const base: Omit<Manifest, 'manualRestore'> = {
        version: MANIFEST_VERSION,
        id,
        engine: cfg.engine,
        database: cfg.source.database,
        databaseId,
        source: { host: cfg.source.host ?? cfg.source.socket, port: cfg.source.port, user: cfg.source.user },
        serverVersion: session.serverVersion,
        tools: session.tools,
        type: cfg.type,
        method: cfg.method,
        tier,
        startedAt: started.toISOString(),
        endedAt: new Date().toISOString(),
        parent: session.chain?.parent,
        base: session.chain?.base,
        position: session.position,
        startPosition: session.chain?.startPosition ?? session.startPosition,
        pipeline: session.storedAs ?? { compression: cfg.compression, encryption: enc.manifest },
        artifacts,
        tables,
        replicaLag: replicaLagRecord(lagBefore, lagAfter, cfg.maxReplicaLagSeconds),
        warnings: warnings.length > 0 ? warnings : undefined,
      };
      const unsigned: Manifest = { ...base, manualRestore: manualRestoreSteps(cfg.to, base) };
      if (signal.aborted) throw signal.reason;
      await keeping?.commit();
      const manifest = await writeManifest(storage, unsigned, tier, enc);
      const seconds = (Date.now() - started.getTime()) / 1000;
      const size = artifacts.reduce((s, a) => s + a.size, 0);
      log.info(`backup ${id} committed: ${formatBytes(size)} in ${seconds.toFixed(1)} s`, {
        event: 'backup-done',
        id,
        databaseId,
        bytes: size,
        seconds,
        tier,
      });
      emitMetrics(
        databaseId,
        { [METRICS.BACKUP_SUCCEEDED]: 1, [METRICS.BACKUP_SIZE]: size, [METRICS.BACKUP_DURATION]: seconds },
        {
          [METRICS.BACKUP_SIZE]: 'Bytes',
          [METRICS.BACKUP_DURATION]: 'Seconds',
        },
      );
      await removeLeftovers(storage, cfg.leftoverHours).catch((d: Error) =>
        log.warn(`could not remove leftovers: ${d.message}`),
      );
      return { id, location: `${cfg.to.display}/${id}`, manifest, seconds };
    } finally {
      await session.close();
    }
  } catch (e) {
    await storage
      .discardIncomplete(id)
      .catch((d: Error) => log.warn(`could not clean up after the failed backup: ${d.message}`));
    emitMetrics(databaseId, { [METRICS.BACKUP_FAILED]: 1 });
    log.error(`backup ${id} failed; nothing was committed (no ${MANIFEST_NAME})`, {
      event: 'backup-failed',
      id,
      databaseId,
      error: (e as Error).message,
    });
    throw e;
  }
}

/** The tier of a new backup from the backups of the same database already stored. */
async function chooseTier(storage: Storage, database: string, at: Date): Promise<RetentionTier> {
  const slug = database.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60);
  const month = at.toISOString().slice(0, 7).replace('-', '');
  // Only this month's and the previous week's folders can matter; read only their manifests' presence.
  const candidates = (await storage.listFolders('')).filter(
    (f) => f.includes(`-${slug}-${BackupType.FULL}-`) && idTime(f) !== undefined,
  );
  const recent = candidates.filter((f) => f.startsWith(month) || at.getTime() - idTime(f)!.getTime() < 8 * 86400000);
  const committed: Date[] = [];
  for (const f of recent) if ((await storage.stat(`${f}/${MANIFEST_NAME}`)) !== undefined) committed.push(idTime(f)!);
  return assignTier(at, committed);
}

/** Copy an already stored object (archived WAL) into the backup's folder, byte for byte, hashing what is stored. */
async function copyArtifact(
  storage: Storage,
  id: string,
  copy: ArtifactCopy,
  tier: RetentionTier,
  signal: AbortSignal,
): Promise<ManifestArtifact> {
  const source = await storage.read(copy.from);
  const digest = new GatedDigest(() => Promise.resolve());
  source.on('error', (e) => digest.destroy(e));
  source.pipe(digest);
  await storage.upload(`${id}/${copy.name}`, digest, { tier, signal });
  return {
    name: copy.name,
    role: copy.role,
    format: copy.format,
    size: digest.size,
    sha256: digest.digest(),
    rawSize: copy.rawSize,
  };
}

/**
 * Store every artifact: one after another in order, and those marked `alongside` at the same
 * time as the first. The first failure stops the others (their pipelines are aborted) and is
 * what is thrown, once every one has ended; the results keep the plans' order.
 */
export async function storeAll(
  plans: readonly ArtifactPlan[],
  signal: AbortSignal,
  store: (plan: ArtifactPlan, signal: AbortSignal) => Promise<ManifestArtifact | undefined>,
): Promise<(ManifestArtifact | undefined)[]> {
  const stop = new AbortController();
  const interrupt = () => stop.abort(signal.reason);
  signal.addEventListener('abort', interrupt);
  if (signal.aborted) interrupt();
  let cause: unknown;
  const results: (ManifestArtifact | undefined)[] = [];
  const run = async (i: number): Promise<void> => {
    try {
      results[i] = await store(plans[i], stop.signal);
    } catch (e) {
      if (cause === undefined && !stop.signal.aborted) {
        cause = e;
        stop.abort(e);
      }
      throw e;
    }
  };
  try {
    const inOrder = (async () => {
      for (const [i, plan] of plans.entries()) if (plan.alongside !== true) await run(i);
    })();
    const side = plans.flatMap((plan, i) => (plan.alongside === true ? [run(i)] : []));
    const settled = await Promise.allSettled([inOrder, ...side]);
    if (signal.aborted) throw signal.reason;
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw cause ?? failed.reason;
    return results;
  } finally {
    signal.removeEventListener('abort', interrupt);
  }
}

/**
 * Above this many stored bytes an artifact cannot be an empty stream's (the largest empty stream
 * of the schemes, an OpenSSL envelope or a GPG packet for a 4096-bit key, is about 1 KiB).
 */
const EMPTY_STORED_BOUND = 64 * 1024;

/** Run one artifact's pipeline into storage. */
async function storeArtifact(
  storage: Storage,
  id: string,
  plan: ArtifactPlan,
  cfg: BackupConfig,
  enc: PreparedEncryption,
  tier: RetentionTier,
  signal: AbortSignal,
  warnings: string[],
): Promise<ManifestArtifact | undefined> {
  const name = plan.name + COMPRESSION_EXT[cfg.compression] + encryptionExt(cfg.encryption.scheme);
  let producer: CommandSpec | StreamProducer = plan.producer;
  // What the first failure said to do, once its retry runs.
  let retried: ReturnType<NonNullable<ArtifactPlan['onFailure']>> | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const { size, sha256 } = await runPipeline(
        storage,
        `${id}/${name}`,
        producer,
        cfg,
        enc,
        tier,
        signal,
        plan.onStderr,
      );
      if (plan.neverEmpty === true && size <= EMPTY_STORED_BOUND && size === (await emptyStoredSize(cfg, enc))) {
        throw wroteNothingError(producerLabel(producer), `nothing for ${plan.name}`);
      }
      const warning = retried === undefined ? plan.warning?.() : retried.retryWarning?.();
      if (warning !== undefined) {
        log.warn(warning, { artifact: plan.name });
        warnings.push(warning);
      }
      return { name, role: plan.role, format: plan.format, size, sha256 };
    } catch (e) {
      if (retried?.skipWarning !== undefined && e instanceof ChildProcessError && e.tool === producerLabel(producer)) {
        log.warn(retried.skipWarning, { artifact: plan.name, error: e.message });
        warnings.push(retried.skipWarning);
        return undefined;
      }
      if (
        !(e instanceof ChildProcessError) ||
        e.tool !== producerLabel(producer) ||
        plan.onFailure === undefined ||
        attempt > 0 ||
        signal.aborted
      )
        throw e;
      const next = plan.onFailure(e.stderrTail);
      if (next?.retry !== undefined) {
        log.warn(`${e.tool} failed; retrying`, {
          artifact: plan.name,
          error: e.message,
          retry: 'args' in next.retry ? next.retry.args.join(' ') : next.retry.label,
        });
        producer = next.retry;
        retried = next;
        continue;
      }
      if (next?.fail !== undefined) throw new BackupError(next.fail);
      if (next?.skipWarning !== undefined) {
        log.warn(next.skipWarning, { artifact: plan.name });
        warnings.push(next.skipWarning);
        return undefined;
      }
      throw e;
    }
  }
}
