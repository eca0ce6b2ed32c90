import { Token } from 'cdktf';
import {
  ConfigError,
  DEFAULT_PORTS,
  Engine,
  type ManagedService,
  parseSourceUrl,
  ServerFamily,
  sourceServerFamily,
} from '../../core';

/**
 * Check a source URL for `engine`. A literal URL is parsed by the runner's own parser
 * (`lib/core` `parseSourceUrl`); a URL with tokens in it (an RDS or Cloud SQL address) is
 * checked on its literal parts: the scheme and that no password is in it.
 * @returns the port the database listens on
 */
export function checkSourceUrl(url: string, engine: Engine, what = 'source url'): number {
  if (!Token.isUnresolved(url)) return parseSourceUrl(url, what, engine).port;
  const schemes: Record<Engine, string[]> = {
    [Engine.POSTGRES]: ['postgres://', 'postgresql://'],
    [Engine.MYSQL]: ['mysql://', 'mariadb://'],
    [Engine.MONGODB]: ['mongodb://', 'mongodb+srv://'],
  };
  if (!schemes[engine].some((s) => url.startsWith(s))) {
    throw new ConfigError(
      `${what} must start with ${schemes[engine].join(' or ')} for a ${engine} ` +
        `source; write it as e.g. ${schemes[engine][0]}user@host/dbname.`,
    );
  }
  if (/^[a-z+]+:\/\/[^/@]*:[^/@]*@/.test(url)) {
    throw new ConfigError(
      `${what} contains a password. Remove it from the URL and give the password as a ` +
        `secret, so it never appears in the Terraform state, argv or logs.`,
    );
  }
  const port = /^[a-z+]+:\/\/[^/]*:(\d+)(?:\/|$)/.exec(url);
  return port !== null ? Number(port[1]) : DEFAULT_PORTS[engine];
}

/**
 * The database name in a source URL (its path), also when the host is a token
 * (`mysql://backup@${db.address}:3306/orders` → `orders`); undefined when the name itself is one.
 */
export function databaseNameOf(url: string, engine: Engine): string | undefined {
  if (!Token.isUnresolved(url)) return parseSourceUrl(url, 'source url', engine).database;
  const m = /\/([A-Za-z0-9_$.-]+)(?:\?[^/]*)?$/.exec(url);
  return m === null ? undefined : m[1];
}

/**
 * The server family of a source (lib/core `sourceServerFamily`): MariaDB for a `mysql` source given
 * as `BackupSource.mariadb` or a `mariadb://` URL, else the engine's default (MySQL for `mysql`).
 */
export function serverFamilyOf(engine: Engine, url: string, mariadb: boolean): ServerFamily {
  return sourceServerFamily(engine, mariadb || url.startsWith('mariadb://'));
}

/**
 * Whether a source is on the cloud's managed service, which the synth-time rules need (no physical
 * method, no PostgreSQL chains, no PostgreSQL WAL streaming): the source's own `managed` when given,
 * as the AWS CDK flavour knows it from `fromRdsInstance`/`fromDatabaseCluster`; else what the URL's
 * literal text shows (`seen`: an RDS host, a `/cloudsql/` socket). A host given as a token cannot be
 * read at synth, so it counts as self-managed unless `managed` says otherwise. `managed: false`
 * against a URL that shows the service is refused: one of them is wrong.
 */
export function managedSource(
  url: string,
  seen: boolean,
  managed: boolean | undefined,
  service: ManagedService,
): boolean {
  if (managed === false && seen) {
    throw new ConfigError(
      `managed is false, but the source url '${url}' is on ${service.name}; leave managed out (or give the ` +
        'URL of the self-managed server it meant).',
    );
  }
  return managed ?? seen;
}
