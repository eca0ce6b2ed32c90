import { Readable } from 'node:stream';
import { ConfigError } from '../../../lib/core/errors';
import { Manifest } from '../../../lib/core/manifest';
import { BackupType } from '../../../lib/core/model';
import { assertAuthentic, selectBackups } from '../catalog';
import { RestoreConfig } from '../config';
import { directoryRestorer, driverFor, EngineDriver, RestoreResult } from '../engines';
import { log } from '../log';
import { PreparedDecryption, prepareDecryption } from '../pipeline/encrypt';
import { checkBeforeWork, preflight, readPlan } from '../preflight';
import { openStorage, Storage } from '../storage';
import { readBack, streamOf } from '../pipeline/read-back';

export type { RestoreResult } from '../engines';

/**
 * Restore a backup into a database. The target is checked before anything is written; the
 * database is restored in one transaction fed by a stream whose end is held back until the
 * stored bytes match the manifest, so a damaged backup or a wrong key leaves the target as it was.
 */
export async function runRestore(cfg: RestoreConfig, signal: AbortSignal): Promise<RestoreResult> {
  const started = Date.now();
  // Engines that lay a data directory down (PostgreSQL physical and point-in-time restores).
  // Engines whose plan only they know check it through `check` before any read or write.
  const check = checkBeforeWork(cfg.identity);
  if (cfg.targetDir !== undefined) return directoryRestorer().restoreToDirectory!(cfg, signal, check);
  if (cfg.target === undefined) throw new ConfigError(`'restore' needs --target URL or --target-dir DIR.`);
  if (cfg.toTime !== undefined) {
    const engine = driverFor(cfg.target.engine);
    if (engine.restoreToTime !== undefined) return engine.restoreToTime(cfg, signal, runRestore, check);
    throw new ConfigError(engine.toTimeRefusal ?? `--to-time for ${cfg.target.engine} is not available in this build.`);
  }
  const storage = openStorage(cfg.from);
  const [manifest] = await selectBackups(storage, cfg.selector);
  checkEngine(manifest, cfg.target.engine);
  await assertAuthentic(manifest);
  const driver = driverFor(manifest.engine);
  const refusal = driver.notRestorableToUrl?.(manifest);
  if (refusal !== undefined) throw new ConfigError(refusal);
  await preflight(readPlan([manifest], { identity: cfg.identity, target: cfg.target }));
  // A chain the engine replays itself (MySQL/MariaDB: the full, then the binary log ranges).
  if (manifest.type !== BackupType.FULL && driver.restoreChain !== undefined) {
    return driver.restoreChain(cfg, manifest, signal, runRestore, check);
  }
  log.info(`restoring backup ${manifest.id} into ${cfg.target.display}`, { event: 'restore-start', id: manifest.id });
  const dec = await prepareDecryption(manifest.pipeline.encryption, cfg.identity, manifest.id);
  try {
    if (driver.verifyBeforeRestore === true) await checkWhole(storage, manifest, driver, dec, signal);
    const session = await driver.openRestore(cfg.target, manifest, {
      clean: cfg.clean,
      withGlobals: cfg.withGlobals,
      jobs: cfg.jobs,
      signal,
    });
    try {
      for (const step of session.steps) {
        // An interrupt between steps (or before the first) must not let the next one start.
        if (signal.aborted) throw signal.reason;
        if (typeof step.consumer === 'function' && step.streamed !== true) {
          // Small scripts (globals) are read and checked whole before any of them is applied.
          const plaintext = await readBack(storage, manifest, step.artifact, dec, 'buffer', signal);
          await step.consumer(streamOf(plaintext!));
        } else {
          await readBack(storage, manifest, step.artifact, dec, step.consumer, signal, { headOnly: step.headOnly });
        }
        log.info(`restored ${step.artifact.name}`, { artifact: step.artifact.name });
      }
      if (signal.aborted) throw signal.reason;
      await session.commit();
    } catch (e) {
      await session.rollback();
      throw e;
    }
  } finally {
    await dec.cleanup();
  }
  const seconds = (Date.now() - started) / 1000;
  log.info(`restored backup ${manifest.id} in ${seconds.toFixed(1)} s`, {
    event: 'restore-done',
    id: manifest.id,
    seconds,
  });
  return { id: manifest.id, target: cfg.target.display, seconds, artifacts: manifest.artifacts.map((a) => a.name) };
}

/**
 * Read every artifact whole (stored bytes against the manifest, decryption, decompression and
 * the engine's deep check) before a restore whose tool cannot undo what it wrote starts.
 */
async function checkWhole(
  storage: Storage,
  manifest: Manifest,
  driver: EngineDriver,
  dec: PreparedDecryption,
  signal: AbortSignal,
): Promise<void> {
  for (const artifact of manifest.artifacts) {
    const check = driver.deepCheck(artifact);
    const consumer =
      check.kind === 'command'
        ? check.command
        : check.kind === 'reader'
          ? check.read
          : async (plaintext: Readable) => {
              for await (const _ of plaintext as AsyncIterable<Buffer>) void _;
            };
    await readBack(storage, manifest, artifact, dec, consumer, signal);
    log.info(`checked ${artifact.name} whole before restoring it`, { artifact: artifact.name });
  }
}

function checkEngine(manifest: Manifest, engine: string): void {
  if (manifest.engine !== engine) {
    throw new ConfigError(
      `backup ${manifest.id} is a ${manifest.engine} backup; --target must be a ${manifest.engine} URL, not ${engine}.`,
    );
  }
}
