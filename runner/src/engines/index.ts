import { ENGINE_CAPABILITIES, LogShipping } from '../../../lib/core/engines';
import { ConfigError } from '../../../lib/core/errors';
import { BackupMethod, Engine } from '../../../lib/core/model';
import { ArchiveWindow } from '../archive/window';
import { Catalog, readCatalog, selectBackups } from '../catalog';
import { RestoreConfig } from '../config';
import { openStorage, Storage } from '../storage';
import { CheckBeforeWork, EngineDriver } from './shared/engine';
import { MongoDriver } from './mongodb/driver';
import { MySQLDriver } from './mysql/driver';
import { PostgresDriver } from './postgres/driver';

export * from './shared/engine';
export { planLogPrune } from './prune-logs';

const DRIVERS: Partial<Record<Engine, () => EngineDriver>> = {
  [Engine.POSTGRES]: () => new PostgresDriver(),
  [Engine.MYSQL]: () => new MySQLDriver(),
  [Engine.MONGODB]: () => new MongoDriver(),
};

/** The driver of an engine. */
export function driverFor(engine: Engine): EngineDriver {
  const make = DRIVERS[engine];
  if (make === undefined) throw new ConfigError(`engine '${engine}' is not available in this build; use postgres.`);
  return make();
}

/**
 * What restores into a data directory (`restore --target-dir DIR`): the driver of the engine
 * whose physical backup the restore takes (by --id; else the only engine with physical backups
 * in the store, or the one --database names).
 */
export function directoryRestorer(): Required<Pick<EngineDriver, 'restoreToDirectory'>> {
  return {
    restoreToDirectory: async (cfg: RestoreConfig, signal: AbortSignal, check: CheckBeforeWork) => {
      const able = (Object.keys(DRIVERS) as Engine[]).filter((e) => driverFor(e).restoreToDirectory !== undefined);
      let engine: Engine | undefined;
      const storage = openStorage(cfg.from);
      if (cfg.selector.kind === 'id') {
        engine = (await selectBackups(storage, cfg.selector))[0].engine;
      } else {
        const database = cfg.selector.database;
        const { backups } = await readCatalog(storage);
        const engines = new Set(
          backups
            .filter((m) => m.method === BackupMethod.PHYSICAL)
            .filter((m) => database === undefined || m.database === database || m.databaseId === database)
            .map((m) => m.engine),
        );
        if (engines.size > 1) {
          throw new ConfigError(
            `${storage.url.display} holds physical backups of ${[...engines].join(' and ')}; say which with ` +
              '--database NAME or --id ID.',
          );
        }
        engine = [...engines][0] ?? able[0];
      }
      const driver = engine === undefined ? undefined : driverFor(engine);
      if (driver?.restoreToDirectory === undefined) {
        throw new ConfigError(
          `--target-dir restores physical backups of ${able.join(' or ')}; this is a ${engine} backup: ` +
            'restore it with --target URL.',
        );
      }
      return driver.restoreToDirectory(cfg, signal, check);
    },
  };
}

/** The windows of the log archives a storage location holds (none when it holds no archive). */
export async function archiveWindows(storage: Storage, catalog: Catalog): Promise<ArchiveWindow[]> {
  const out: ArchiveWindow[] = [];
  for (const make of Object.values(DRIVERS)) {
    const window = await make().archiveWindow?.(storage, catalog);
    if (window !== undefined) out.push(window);
  }
  return out;
}

/** The driver of the engine that ships its log the given way (lib/core/engines.ts). */
export function shipperOf(shipping: LogShipping): EngineDriver {
  const engine = (Object.keys(ENGINE_CAPABILITIES) as Engine[]).find(
    (e) => ENGINE_CAPABILITIES[e].logShipping === shipping,
  );
  if (engine === undefined) throw new ConfigError(`no engine of this build ships a ${shipping} log.`);
  return driverFor(engine);
}
