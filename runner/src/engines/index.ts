import { ENGINE_CAPABILITIES, LogShipping } from '../../../lib/core/engines';
import { ConfigError } from '../../../lib/core/errors';
import { Engine } from '../../../lib/core/model';
import { ArchiveWindow } from '../archive/window';
import { Catalog } from '../catalog';
import { Storage } from '../storage';
import { EngineDriver } from './shared/engine';
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

/** The driver that restores into a data directory (`restore --target-dir DIR`). */
export function directoryRestorer(): EngineDriver {
  for (const make of Object.values(DRIVERS)) {
    const driver = make();
    if (driver.restoreToDirectory !== undefined) return driver;
  }
  throw new ConfigError(`--target-dir is not available in this build.`);
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
