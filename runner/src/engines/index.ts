import { ConfigError } from '../../../lib/core/errors';
import { Engine } from '../../../lib/core/model';
import { EngineDriver } from './engine';
import { MongoDriver } from './mongodb';
import { MySQLDriver } from './mysql';
import { PostgresDriver } from './postgres';

export * from './engine';

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
