/**
 * The scratch database a restore drill restores into, per engine, for every flavour: it runs
 * beside the runner (same task or job), reachable only on 127.0.0.1, and accepts the runner's
 * login without a password; the runner creates the `drill` database itself.
 */
import { ConfigError } from './errors';
import { Engine } from './model';
import { defaultServerFamily, parseServerVersion, ServerFamily, ServerVersions } from './versions';

/** One engine's scratch database. */
export interface ScratchDatabase {
  /** The image (Docker Official Images, from the ECR Public mirror, which both clouds can pull). */
  readonly image: string;
  /** The runner's `--target`. */
  readonly target: string;
  readonly environment: Readonly<Record<string, string>>;
  readonly command: readonly string[];
  /** A shell health check that succeeds once the server accepts connections. */
  readonly healthCheck: string;
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
}

/**
 * The default scratch database of each server family: a source drills on its own family's server
 * (MySQL on Oracle MySQL, MariaDB on MariaDB).
 */
const FAMILY_SCRATCH: Readonly<Record<ServerFamily, ScratchDatabase>> = {
  [ServerFamily.POSTGRES]: {
    image: 'public.ecr.aws/docker/library/postgres:17-bookworm',
    target: 'postgres://postgres@127.0.0.1:5432/drill',
    environment: { POSTGRES_HOST_AUTH_METHOD: 'trust' },
    command: ['postgres', '-c', 'listen_addresses=127.0.0.1', '-c', 'dynamic_shared_memory_type=mmap'],
    healthCheck: 'pg_isready -h 127.0.0.1 -p 5432 -U postgres -d postgres || exit 1',
    port: 5432,
  },
  [ServerFamily.MYSQL]: {
    image: 'public.ecr.aws/docker/library/mysql:8.4',
    target: 'mysql://root@127.0.0.1:3306/drill',
    environment: { MYSQL_ALLOW_EMPTY_PASSWORD: 'yes' },
    command: ['--bind-address=127.0.0.1'],
    healthCheck: 'mysqladmin ping -h 127.0.0.1 -uroot --silent || exit 1',
    port: 3306,
  },
  [ServerFamily.MARIADB]: {
    image: 'public.ecr.aws/docker/library/mariadb:11.4',
    target: 'mysql://root@127.0.0.1:3306/drill',
    environment: { MARIADB_ALLOW_EMPTY_ROOT_PASSWORD: '1' },
    command: ['--bind-address=127.0.0.1'],
    healthCheck: 'mariadb-admin ping -h 127.0.0.1 -uroot --silent || exit 1',
    port: 3306,
  },
  [ServerFamily.MONGODB]: {
    image: 'public.ecr.aws/docker/library/mongo:8.0',
    target: 'mongodb://127.0.0.1:27017/drill',
    environment: {},
    command: ['mongod', '--bind_ip', '127.0.0.1'],
    healthCheck: "mongosh --quiet --host 127.0.0.1 --eval 'db.adminCommand({ ping: 1 }).ok' || exit 1",
    port: 27017,
  },
};

/** The scratch database of each engine: its default family's (`defaultServerFamily`; MySQL for `mysql`). */
export const SCRATCH_DATABASES: Readonly<Record<Engine, ScratchDatabase>> = {
  [Engine.POSTGRES]: FAMILY_SCRATCH[defaultServerFamily(Engine.POSTGRES)],
  [Engine.MYSQL]: FAMILY_SCRATCH[defaultServerFamily(Engine.MYSQL)],
  [Engine.MONGODB]: FAMILY_SCRATCH[defaultServerFamily(Engine.MONGODB)],
};

/** The version a scratch image runs: its tag (`postgres:17-bookworm` → `17`). */
function imageVersion(image: string): string {
  return image.slice(image.lastIndexOf(':') + 1).replace(/-.*$/, '');
}

/**
 * The major version two servers must share for a drill to prove anything: PostgreSQL 10 on
 * by its first number (16.4 → 16), MySQL, MariaDB and MongoDB by theirs (Aurora MySQL 3 reports
 * 8.0.mysql_aurora.3…, so MySQL 8). A dump restores into a newer major too, but a drill that does
 * so proves a restore onto a server the day of the restore will not have.
 */
export function majorVersion(family: ServerFamily, version: string): string | undefined {
  const v = parseServerVersion(version);
  if (v === undefined) return undefined;
  if (family === ServerFamily.POSTGRES && v[0] < 10) return `${v[0]}.${v[1]}`;
  return String(v[0]);
}

/**
 * The scratch database of a drill of a source of this family and version: the family's server,
 * on the source's version when it is known (`postgres:16-bookworm` for PostgreSQL 16.4,
 * `mysql:8.0` for Aurora MySQL 3, `mariadb:10.11` for MariaDB 10.11.8).
 */
export function scratchDatabaseFor(family: ServerFamily, sourceVersion?: string): ScratchDatabase {
  const base = FAMILY_SCRATCH[family];
  if (sourceVersion === undefined) return base;
  const v = parseServerVersion(sourceVersion);
  if (v === undefined || ServerVersions.problem(family, sourceVersion) !== undefined) return base;
  const repo = base.image.slice(0, base.image.lastIndexOf(':'));
  const tag = family === ServerFamily.POSTGRES ? `${majorVersion(family, sourceVersion)}-bookworm` : `${v[0]}.${v[1]}`;
  return { ...base, image: `${repo}:${tag}` };
}

/** What a drill's scratch server is, to check against the source. */
export interface DrillScratchCheck {
  /** The source's family. */
  readonly family: ServerFamily;
  /** The source's version, when known. */
  readonly sourceVersion?: string;
  /** The scratch server's family. */
  readonly scratchFamily: ServerFamily;
  /** The scratch server's version (a custom image's declared version, or the default image's tag). */
  readonly scratchVersion?: string;
  /** Names the prop that sets the scratch version, for the message. */
  readonly versionProp: string;
}

/**
 * Refuse a drill on a server that is not the source's: another family (a MySQL source drilled on
 * MariaDB), or another major version (PostgreSQL 16 drilled on 17). Throws a ConfigError naming
 * both and the fix; passes when the source's version is not known (the runner records it).
 */
export function checkDrillScratch(c: DrillScratchCheck): void {
  if (c.family !== c.scratchFamily) {
    throw new ConfigError(
      `the restore drill's scratch server is ${c.scratchFamily}, but the source is ${c.family}: ` +
        `a drill proves a restore only on the source's own server. Drill on a ${c.family} image ` +
        `(leave databaseImage out for the default, ${FAMILY_SCRATCH[c.family].image}).`,
    );
  }
  if (c.sourceVersion === undefined) return;
  const want = majorVersion(c.family, c.sourceVersion);
  if (c.scratchVersion === undefined) {
    throw new ConfigError(
      `the restore drill runs a custom databaseImage whose version is not given, and the ${c.family} source is ` +
        `version ${c.sourceVersion}: set ${c.versionProp} to the image's version (e.g. '${want}'), ` +
        'so that a drill on another major version is refused.',
    );
  }
  const got = majorVersion(c.scratchFamily, c.scratchVersion);
  if (want !== undefined && got !== want) {
    throw new ConfigError(
      `the restore drill's scratch ${c.family} server is version ${c.scratchVersion} (${c.versionProp}), but the ` +
        `source is version ${c.sourceVersion}: drill on major version ${want} (a ${c.family} ${want} image, ` +
        `or leave databaseImage out for ${scratchDatabaseFor(c.family, c.sourceVersion).image}).`,
    );
  }
}

/** The version of a scratch database's image (its tag). */
export function scratchImageVersion(scratch: ScratchDatabase): string {
  return imageVersion(scratch.image);
}

/** The name of the scratch database's container in a drill task or job. */
export const DRILL_DATABASE_CONTAINER_NAME = 'database';

/** The name of the runner's container in every task and job. */
export const RUNNER_CONTAINER = 'runner';

/** Where the runner image keeps the runner. */
export const RUNNER_SCRIPT = '/opt/dbbackup/dbbackup.js';

/**
 * A container's entry point: the runner under coreutils `timeout`, which sends SIGTERM when the
 * time is up (exit 124) and SIGKILL a minute later. Fargate itself has no task timeout.
 */
export function timeoutEntryPoint(timeoutSeconds: number): string[] {
  return ['timeout', '--signal=TERM', '--kill-after=60', String(timeoutSeconds), 'node', RUNNER_SCRIPT];
}

/** What `drillScratchOf` needs: the source's server and the drill's custom image, if any. */
export interface DrillScratchProps {
  readonly engine: Engine;
  /** @default - the engine's `defaultServerFamily` (PostgreSQL, MySQL or MongoDB) */
  readonly family?: ServerFamily;
  /** The source's version, when known (a literal). */
  readonly sourceVersion?: string;
  /** Whether a custom scratch image is given. */
  readonly customImage: boolean;
  /** The custom image's declared version (`16`, `11.4-MariaDB`, `8.0-mysql`). */
  readonly databaseImageVersion?: string;
  /** The prop that declares it, for messages. */
  readonly versionProp: string;
}

/**
 * The scratch database of a drill, for every flavour: the source's family on its major version
 * (`scratchDatabaseFor`), checked with `checkDrillScratch` against a custom image's declared
 * version (a version naming its server, `11.4-MariaDB` or `8.0-mysql`, names the image's family).
 */
export function drillScratchOf(p: DrillScratchProps): ScratchDatabase {
  const family = p.family ?? defaultServerFamily(p.engine);
  const scratch = scratchDatabaseFor(family, p.sourceVersion);
  const declared = p.databaseImageVersion;
  const scratchFamily =
    declared !== undefined && /mariadb/i.test(declared)
      ? ServerFamily.MARIADB
      : declared !== undefined && /mysql/i.test(declared)
        ? ServerFamily.MYSQL
        : family;
  checkDrillScratch({
    family,
    sourceVersion: p.sourceVersion,
    scratchFamily,
    scratchVersion: declared ?? (p.customImage ? undefined : scratchImageVersion(scratch)),
    versionProp: p.versionProp,
  });
  return scratch;
}
