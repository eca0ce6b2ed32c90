import { Readable } from 'node:stream';
import { ConfigError } from '../../../lib/core/errors';
import { Manifest } from '../../../lib/core/manifest';
import { BackupMethod, BackupType, Engine } from '../../../lib/core/model';
import { assertAuthentic, selectBackups } from '../catalog';
import { RestoreConfig } from '../config';
import { driverFor, EngineDriver } from '../engines';
import { log } from '../log';
import { PreparedDecryption, prepareDecryption } from '../pipeline/encrypt';
import { preflight, readPlan } from '../preflight';
import { openStorage, Storage } from '../storage';
import { runBinlogChainRestore, runBinlogRestore } from './binlog-restore';
import { runPhysicalRestore } from './pitr-restore';
import { readBack, streamOf } from './read-back';

export interface RestoreResult {
  readonly id: string;
  readonly target: string;
  readonly seconds: number;
  readonly artifacts: string[];
}

/**
 * Restore a backup into a database. The target is checked before anything is written; the
 * database is restored in one transaction fed by a stream whose end is held back until the
 * stored bytes match the manifest, so a damaged backup or a wrong key leaves the target as it was.
 */
export async function runRestore(cfg: RestoreConfig, signal: AbortSignal): Promise<RestoreResult> {
  const started = Date.now();
  // PostgreSQL physical and point-in-time restores lay a data directory down (pitr-restore.ts).
  if (cfg.targetDir !== undefined) return runPhysicalRestore(cfg, signal);
  if (cfg.target === undefined) throw new ConfigError(`'restore' needs --target URL or --target-dir DIR.`);
  if (cfg.toTime !== undefined) {
    if (cfg.target.engine === Engine.MYSQL) return runBinlogRestore(cfg, signal);
    throw new ConfigError(
      cfg.target.engine === Engine.POSTGRES
        ? `PostgreSQL point-in-time recovery lays down a data directory from a physical base backup and the WAL archive: give --target-dir DIR instead of --target URL, then start PostgreSQL on DIR.`
        : `--to-time for ${cfg.target.engine} is not available in this build.`,
    );
  }
  const storage = openStorage(cfg.from);
  const [manifest] = await selectBackups(storage, cfg.selector);
  checkEngine(manifest, cfg.target.engine);
  await assertAuthentic(manifest);
  if (manifest.method === BackupMethod.PHYSICAL && manifest.engine === Engine.POSTGRES) {
    throw new ConfigError(`backup ${manifest.id} is a physical backup (a whole data directory); restore it with --target-dir DIR, then start PostgreSQL on DIR.`);
  }
  await preflight(readPlan([manifest], { identity: cfg.identity, target: cfg.target }));
  // MySQL/MariaDB incremental and differential backups: the full, then the binary log ranges of the chain.
  if (manifest.engine === Engine.MYSQL && manifest.type !== BackupType.FULL) return runBinlogChainRestore(cfg, manifest, signal);
  log.info(`restoring backup ${manifest.id} into ${cfg.target.display}`, { event: 'restore-start', id: manifest.id });
  const dec = await prepareDecryption(manifest.pipeline.encryption, cfg.identity, manifest.id);
  try {
    const driver = driverFor(manifest.engine);
    if (driver.verifyBeforeRestore === true) await checkWhole(storage, manifest, driver, dec, signal);
    const session = await driver.openRestore(cfg.target, manifest, { clean: cfg.clean, withGlobals: cfg.withGlobals });
    try {
      for (const step of session.steps) {
        // An interrupt between steps (or before the first) must not let the next one start.
        if (signal.aborted) throw signal.reason;
        if (typeof step.consumer === 'function') {
          // Small scripts (globals) are read and checked whole before any of them is applied.
          const plaintext = await readBack(storage, manifest, step.artifact, dec, 'buffer', signal);
          await step.consumer(streamOf(plaintext!));
        } else {
          await readBack(storage, manifest, step.artifact, dec, step.consumer, signal);
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
  log.info(`restored backup ${manifest.id} in ${seconds.toFixed(1)} s`, { event: 'restore-done', id: manifest.id, seconds });
  return { id: manifest.id, target: cfg.target.display, seconds, artifacts: manifest.artifacts.map((a) => a.name) };
}

/**
 * Read every artifact whole (stored bytes against the manifest, decryption, decompression and
 * the engine's deep check) before a restore whose tool cannot undo what it wrote starts.
 */
async function checkWhole(storage: Storage, manifest: Manifest, driver: EngineDriver, dec: PreparedDecryption, signal: AbortSignal): Promise<void> {
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
    throw new ConfigError(`backup ${manifest.id} is a ${manifest.engine} backup; --target must be a ${manifest.engine} URL, not ${engine}.`);
  }
}
