/**
 * Backup ids: `20261125T041500Z-app-full-3f9a`, the UTC start time first so that ids sort by time.
 * The catalog, the storage backends (GCS lists backup folders by id) and the tier choice read them.
 */
import * as crypto from 'node:crypto';
import { BackupType } from './model';

/** Backup ids start with the UTC start time, so they sort by time. */
const ID_RE = /^(\d{8}T\d{6}Z)-[A-Za-z0-9._-]+$/;

/** A new backup id: `20261125T041500Z-app-full-3f9a`. */
export function makeBackupId(at: Date, database: string, type: BackupType): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const slug = idSlug(database);
  return `${stamp}-${slug}-${type}-${crypto.randomBytes(2).toString('hex')}`;
}

/** The start time encoded in a backup id, or undefined for a folder that is not a backup. */
export function idTime(id: string): Date | undefined {
  const m = ID_RE.exec(id);
  if (m === null) return undefined;
  const s = m[1];
  return new Date(
    `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`,
  );
}

/** The database name as it appears in a backup id. */
export function idSlug(database: string): string {
  return database.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60) || 'db';
}

/** `OrdersBackup` or `orders_prod` → `orders-backup`, `orders-prod`: kebab case. */
export function kebabCase(id: string): string {
  return id
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .toLowerCase();
}

/**
 * The database id every flavour derives when none is given: the source's database name in kebab
 * case (`orders_prod` → `orders-prod`), at most 40 characters; never the construct's id, so that
 * renaming or moving a construct never moves its backups. Undefined when the name makes no valid id.
 */
export function databaseIdFromName(databaseName: string): string | undefined {
  const derived = kebabCase(databaseName).slice(0, 40).replace(/-+$/, '');
  return /^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$/.test(derived) ? derived : undefined;
}
