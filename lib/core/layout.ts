/**
 * How a vault is laid out, once for every flavour: each database's backups live under its own
 * prefix (`PREFIX/<backup id>/…`, `manifest.json` last), the runner's storage URL names it, the
 * grants are scoped to it, and on Cloud Storage the tier is a folder (`PREFIX/<tier>/<id>/…`)
 * because GCS lifecycle rules cannot match object metadata. Database ids and prefixes are unique
 * within a vault, and no prefix lies inside another (its lifecycle and grants would reach it).
 */
import { ConfigError } from './errors';
import { MANIFEST_NAME, RetentionTier } from './model';
import { validateDatabaseId, validateStoragePrefix } from './checks';

/** The storage services a vault can be on. */
export type VaultScheme = 's3' | 'gs';

/**
 * Check the prefix of a database's backups in a vault: not empty (each database its own
 * prefix, so grants and lifecycle stay per database) and made of safe segments.
 */
export function checkVaultPrefix(prefix: string, what = 'prefix'): void {
  if (prefix === '') {
    throw new ConfigError(`${what} is empty; give each database its own prefix in the vault (e.g. its database ` +
      `id), so grants and lifecycle stay per database.`);
  }
  validateStoragePrefix(prefix, what);
}

/** The runner's storage URL of a prefix: `s3://bucket/prefix`, `gs://bucket/prefix`. */
export function vaultStorageUrl(scheme: VaultScheme, bucket: string, prefix: string): string {
  return `${scheme}://${bucket}/${prefix}`;
}

/** The object-key pattern of every backup object of a prefix (IAM resources, event filters). */
export function prefixObjectsPattern(prefix: string): string {
  return `${prefix}/*`;
}

/** The object-key pattern of the manifests of a prefix (the commit marker of each backup). */
export function manifestPattern(prefix: string): string {
  return `${prefix}/*/${MANIFEST_NAME}`;
}

/** The `s3:prefix` values a prefix-scoped `s3:ListBucket` allows. */
export function listPrefixes(prefix: string): string[] {
  return [prefix, `${prefix}/*`];
}

/** The object-name prefix of one tier's backups on Cloud Storage: `<prefix>/<tier>/`. */
export function tierPrefix(prefix: string, tier: RetentionTier): string {
  return prefix === '' ? `${tier}/` : `${prefix}/${tier}/`;
}

interface Claim {
  readonly owner: object;
  readonly databaseId: string;
  readonly prefix: string;
}

const claims = new WeakMap<object, Claim[]>();

/**
 * Register database `databaseId` under `prefix` in `vault` (any object that stands for the
 * vault). The same owner may register the same pair again (several tasks of one database);
 * another owner with the same id, the same prefix or an overlapping prefix is refused.
 */
export function claimVaultPrefix(vault: object, owner: object, databaseId: string, prefix: string): void {
  validateDatabaseId(databaseId);
  checkVaultPrefix(prefix);
  const list = claims.get(vault) ?? [];
  for (const c of list) {
    if (c.owner === owner && c.databaseId === databaseId && c.prefix === prefix) return;
    if (c.databaseId === databaseId) {
      throw new ConfigError(`databaseId '${databaseId}' is already used in this vault; give each database its ` +
        `own databaseId (it names the metrics and alarms).`);
    }
    if (c.prefix === prefix || c.prefix.startsWith(`${prefix}/`) || prefix.startsWith(`${c.prefix}/`)) {
      throw new ConfigError(
        `prefix '${prefix}' of '${databaseId}' ${c.prefix === prefix ? 'is' : 'overlaps'} the prefix ` +
          `'${c.prefix}' of '${c.databaseId}' in this vault, so one database's grants and lifecycle would reach ` +
            `the other's backups; use side-by-side prefixes such as 'orders' and 'billing'.`,
      );
    }
  }
  list.push({ owner, databaseId, prefix });
  claims.set(vault, list);
}

/**
 * The folder of a database's log archive under its prefix: the runner's `wal-push` writes
 * PostgreSQL WAL under `wal/`, `binlog-stream` MySQL/MariaDB binary logs under `binlog/`.
 */
export const LOG_ARCHIVE_FOLDERS = { wal: 'wal', binlog: 'binlog' } as const;

/** The object-name prefix of a database's log archive: `<prefix>/binlog/` (lifecycle rule filters). */
export function logArchivePrefix(prefix: string, folder: string): string {
  return prefix === '' ? `${folder}/` : `${prefix}/${folder}/`;
}
