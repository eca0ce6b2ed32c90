import * as crypto from 'node:crypto';
import { Manifest, ManifestError, parseManifest } from '../../lib/core/manifest';
import { BackupType, MANIFEST_NAME, RetentionTier } from '../../lib/core/model';
import { Selector } from './config';
import { BackupError, DamagedError } from './errors';
import { NotFoundError, Storage } from './storage';

/** Backup ids start with the UTC start time, so they sort by time. */
const ID_RE = /^(\d{8}T\d{6}Z)-[A-Za-z0-9._-]+$/;

/** A new backup id: `20261125T041500Z-app-full-3f9a`. */
export function makeBackupId(at: Date, database: string, type: BackupType): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const slug = database.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60) || 'db';
  return `${stamp}-${slug}-${type}-${crypto.randomBytes(2).toString('hex')}`;
}

/** The start time encoded in a backup id, or undefined for a folder that is not a backup. */
export function idTime(id: string): Date | undefined {
  const m = ID_RE.exec(id);
  if (m === null) return undefined;
  const s = m[1];
  return new Date(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`);
}

/** What a storage location holds. */
export interface Catalog {
  /** Committed backups, oldest first. */
  readonly backups: Manifest[];
  /** Folders with no manifest: interrupted or running backups. They are never used. */
  readonly incomplete: string[];
  /** Folders whose manifest cannot be read: reported by verify. */
  readonly unreadable: { id: string; reason: string }[];
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

/** Read every backup folder's manifest. */
export async function readCatalog(storage: Storage): Promise<Catalog> {
  const folders = (await storage.listFolders('')).filter((f) => idTime(f) !== undefined);
  const results = await mapLimit(folders, 16, async (id) => {
    try {
      return { id, manifest: await readManifest(storage, id) };
    } catch (e) {
      if (e instanceof NotFoundError) return { id, missing: true };
      if (e instanceof ManifestError) return { id, reason: e.message };
      throw e;
    }
  });
  const catalog: Catalog = { backups: [], incomplete: [], unreadable: [] };
  for (const r of results) {
    if ('manifest' in r && r.manifest !== undefined) catalog.backups.push(r.manifest);
    else if ('missing' in r) catalog.incomplete.push(r.id);
    else if ('reason' in r) catalog.unreadable.push({ id: r.id, reason: r.reason! });
  }
  catalog.backups.sort((a, b) => a.id.localeCompare(b.id));
  return catalog;
}

/** Read and check one backup's manifest. Throws NotFoundError or ManifestError. */
export async function readManifest(storage: Storage, id: string): Promise<Manifest> {
  const m = parseManifest((await storage.readBytes(`${id}/${MANIFEST_NAME}`)).toString('utf8'), `${storage.url.display}/${id}/${MANIFEST_NAME}`);
  if (m.id !== id) throw new ManifestError(`${storage.url.display}/${id}/${MANIFEST_NAME} names the backup '${m.id}', not its folder '${id}'`);
  return m;
}

/** The backups a selector picks. A missing backup is a DamagedError when `missingIsDamage` (verify), else a BackupError. */
export async function selectBackups(storage: Storage, selector: Selector, missingIsDamage = false): Promise<Manifest[]> {
  const Missing = missingIsDamage ? DamagedError : BackupError;
  if (selector.kind === 'id') {
    try {
      return [await readManifest(storage, selector.id)];
    } catch (e) {
      if (e instanceof NotFoundError) {
        throw new Missing(`there is no backup '${selector.id}' in ${storage.url.display} (no ${selector.id}/${MANIFEST_NAME}); 'dbbackup list --from ${storage.url.display}' shows the backups there.`);
      }
      throw e;
    }
  }
  const catalog = await readCatalog(storage);
  if (catalog.backups.length === 0) throw new Missing(`there are no backups in ${storage.url.display}.`);
  return selector.kind === 'all' ? catalog.backups : [catalog.backups[catalog.backups.length - 1]];
}

/** Commit a backup: the manifest, written last. */
export async function writeManifest(storage: Storage, manifest: Manifest, tier: RetentionTier): Promise<void> {
  await storage.putBytes(`${manifest.id}/${MANIFEST_NAME}`, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'), {
    tier,
    contentType: 'application/json',
  });
}
