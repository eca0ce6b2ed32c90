/**
 * The scratch database a restore drill restores into, per engine, for every flavour: it runs
 * beside the runner (same task or job), reachable only on 127.0.0.1, and accepts the runner's
 * login without a password; the runner creates the `drill` database itself.
 */
import { Engine } from './model';

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

/** The scratch database of each engine. */
export const SCRATCH_DATABASES: Readonly<Record<Engine, ScratchDatabase>> = {
  [Engine.POSTGRES]: {
    image: 'public.ecr.aws/docker/library/postgres:17-bookworm',
    target: 'postgres://postgres@127.0.0.1:5432/drill',
    environment: { POSTGRES_HOST_AUTH_METHOD: 'trust' },
    command: ['postgres', '-c', 'listen_addresses=127.0.0.1', '-c', 'dynamic_shared_memory_type=mmap'],
    healthCheck: 'pg_isready -h 127.0.0.1 -p 5432 -U postgres -d postgres || exit 1',
    port: 5432,
  },
  [Engine.MYSQL]: {
    image: 'public.ecr.aws/docker/library/mariadb:11.4',
    target: 'mysql://root@127.0.0.1:3306/drill',
    environment: { MARIADB_ALLOW_EMPTY_ROOT_PASSWORD: '1' },
    command: ['--bind-address=127.0.0.1'],
    healthCheck: 'mariadb-admin ping -h 127.0.0.1 -uroot --silent || exit 1',
    port: 3306,
  },
  [Engine.MONGODB]: {
    image: 'public.ecr.aws/docker/library/mongo:8.0',
    target: 'mongodb://127.0.0.1:27017/drill',
    environment: {},
    command: ['mongod', '--bind_ip', '127.0.0.1'],
    healthCheck: "mongosh --quiet --host 127.0.0.1 --eval 'db.adminCommand({ ping: 1 }).ok' || exit 1",
    port: 27017,
  },
};

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
