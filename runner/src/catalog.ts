import {
  encryptionPolicyViolation,
  FIRST_DIGEST_VERSION,
  Manifest,
  manifestDigest,
  ManifestError,
  manifestMacMatches,
  parseManifest,
} from '../../lib/core/manifest';
import { EncryptionScheme } from '../../lib/core/urls';
import { BackupMethod, MANIFEST_NAME, RetentionTier } from '../../lib/core/model';
import { idSlug, idTime } from '../../lib/core/ids';
import { tierOutlives } from '../../lib/core/retention';
import { manifestPolicy, Selector } from './config';
import { ConfigError } from '../../lib/core/errors';
import { BackupError, DamagedError } from './errors';
import { log } from './log';
import { kmsManifestMacKey, PreparedEncryption } from './pipeline/encrypt';
import { NotFoundError, Storage } from './storage';
import { FileStorage } from './storage/file';

export { idSlug, idTime, makeBackupId } from '../../lib/core/ids';

/** What a storage location holds. */
export interface Catalog {
  /** Committed backups, oldest first by end time. */
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

/** A file system error (permission denied, a directory where the manifest should be): the manifest cannot be read. */
function isFileError(e: unknown): e is NodeJS.ErrnoException {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
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
      if (isFileError(e)) {
        return { id, reason: `${storage.url.display}/${id}/${MANIFEST_NAME} cannot be read: ${e.message}` };
      }
      throw e;
    }
  });
  const catalog: Catalog = { backups: [], incomplete: [], unreadable: [] };
  for (const r of results) {
    if ('manifest' in r && r.manifest !== undefined) catalog.backups.push(r.manifest);
    else if ('missing' in r) catalog.incomplete.push(r.id);
    else if ('reason' in r) catalog.unreadable.push({ id: r.id, reason: r.reason! });
  }
  catalog.backups.sort(byEndTime);
  return catalog;
}

/** Oldest first by the time a backup completed (the id's second is when it started). */
export function byEndTime(a: Manifest, b: Manifest): number {
  return Date.parse(a.endedAt) - Date.parse(b.endedAt) || a.id.localeCompare(b.id);
}

/**
 * Read and check one backup's manifest, held to the run's --require-encryption policy (a
 * manifest that fails it is refused like an unreadable one: --latest never falls back past it,
 * verify reports it). Throws NotFoundError or ManifestError.
 */
export async function readManifest(storage: Storage, id: string): Promise<Manifest> {
  const where = `${storage.url.display}/${id}/${MANIFEST_NAME}`;
  const m = parseManifest((await storage.readBytes(`${id}/${MANIFEST_NAME}`)).toString('utf8'), where);
  if (m.id !== id) throw new ManifestError(`${where} names the backup '${m.id}', not its folder '${id}'`);
  const required = manifestPolicy.requireEncryption;
  const violation = required === undefined ? undefined : encryptionPolicyViolation(m, required);
  if (violation !== undefined) throw new ManifestError(`${where} ${violation}; it is refused`);
  return m;
}

/** The databases of a store, keyed by the manifests' database id. */
export function groupByDatabase(backups: readonly Manifest[]): Map<string, Manifest[]> {
  const groups = new Map<string, Manifest[]>();
  for (const b of backups) groups.set(b.databaseId, [...(groups.get(b.databaseId) ?? []), b]);
  return groups;
}

/** `host:5432/app (app, 3 backups)` lines for a message that asks for --database. */
function describeDatabases(groups: Map<string, Manifest[]>): string {
  return [...groups.entries()]
    .map(([id, ms]) => `${id} (database ${ms[0].database}, ${ms.length} backup${ms.length === 1 ? '' : 's'})`)
    .join('; ');
}

/**
 * The backups of the database `name` names: its database id, or its bare database name when
 * one database id has it. Without a name, the store must hold one database. ConfigError (exit 2) otherwise.
 */
export function backupsOfDatabase(backups: readonly Manifest[], name: string | undefined, where: string): Manifest[] {
  const groups = groupByDatabase(backups);
  if (name === undefined) {
    if (groups.size <= 1) return [...backups];
    throw new ConfigError(
      `${where} holds backups of ${groups.size} databases: ${describeDatabases(groups)}. ` +
        'Say which with --database NAME (a database id, or a database name when only one id has it).',
    );
  }
  const exact = groups.get(name);
  if (exact !== undefined) return exact;
  const byName = [...groups.entries()].filter(([, ms]) => ms[0].database === name);
  if (byName.length === 1) return byName[0][1];
  if (byName.length > 1) {
    const ids = byName.map(([id]) => id).join(', ');
    throw new ConfigError(`--database '${name}' names ${byName.length} databases in ${where}: ${ids}; give one id.`);
  }
  const held = groups.size === 0 ? 'no backups' : describeDatabases(groups);
  throw new ConfigError(`--database '${name}' is not a database in ${where}; it holds ${held}.`);
}

/** The slug of a database name as backup ids carry it (see makeBackupId). */

export interface SelectOptions {
  /** A missing backup is a DamagedError (verify, drill) rather than a BackupError. */
  readonly missingIsDamage?: boolean;
  /** --latest: take the newest backup this accepts (drill skips what it cannot drill). */
  readonly accept?: (m: Manifest) => string | undefined;
}

/** The backups a selector picks. */
export async function selectBackups(
  storage: Storage,
  selector: Selector,
  missingIsDamageOrOptions: boolean | SelectOptions = false,
): Promise<Manifest[]> {
  const opts: SelectOptions =
    typeof missingIsDamageOrOptions === 'boolean'
      ? { missingIsDamage: missingIsDamageOrOptions }
      : missingIsDamageOrOptions;
  const Missing = opts.missingIsDamage === true ? DamagedError : BackupError;
  const where = storage.url.display;
  if (selector.kind === 'id') {
    try {
      return [await readManifest(storage, selector.id)];
    } catch (e) {
      if (e instanceof NotFoundError) {
        throw new Missing(
          `there is no backup '${selector.id}' in ${where} (no ${selector.id}/${MANIFEST_NAME}); ` +
            `'dbbackup list --from ${where}' shows the backups there.`,
        );
      }
      throw e;
    }
  }
  const catalog = await readCatalog(storage);
  const database = (selector as { database?: string }).database;
  if (catalog.backups.length === 0) {
    if (catalog.unreadable.length > 0) throw unreadableError(where, catalog.unreadable);
    throw new Missing(`there are no backups in ${where}.`);
  }
  const mine = backupsOfDatabase(catalog.backups, database, where);
  if (selector.kind === 'all') return mine;
  const skipped: string[] = [];
  let chosen: Manifest | undefined;
  for (const m of [...mine].reverse()) {
    const why = opts.accept?.(m);
    if (why === undefined) {
      chosen = m;
      break;
    }
    skipped.push(`${m.id} (${why})`);
  }
  if (skipped.length > 0) log.info(`skipped ${skipped.length} newer backup(s): ${skipped.join(', ')}`, { skipped });
  // A manifest that cannot be read and may be newer than the one chosen: never fall back silently.
  const slug = idSlug(mine[0].database);
  const after = chosen === undefined ? 0 : Date.parse(chosen.startedAt) - 1000;
  const oneDatabase = groupByDatabase(catalog.backups).size === 1;
  const newer = catalog.unreadable.filter(
    (u) => idTime(u.id)!.getTime() >= after && (oneDatabase || u.id.includes(`-${slug}-`)),
  );
  if (newer.length > 0) throw unreadableError(where, newer);
  if (chosen === undefined) {
    throw new Missing(`there is no backup in ${where} that can be used: ${skipped.join(', ')}.`);
  }
  return [chosen];
}

/** Why a drill cannot use a backup (a physical one is a data directory, not a database), or undefined. */
export function notDrillable(m: Manifest): string | undefined {
  if (m.method !== BackupMethod.PHYSICAL) return undefined;
  return `a physical ${m.type} backup; a drill restores a logical backup into a database`;
}

function unreadableError(where: string, unreadable: { id: string; reason: string }[]): DamagedError {
  return new DamagedError(
    `the newest backup in ${where} cannot be read, so --latest cannot say which backup is the latest: ` +
      `${unreadable.map((u) => u.reason).join('; ')}. ` +
      `Repair or remove it, or name an older backup with --id ID.`,
  );
}

/**
 * Commit a backup: the manifest, written last, with its digest. A kms: manifest's digest is
 * also MACed: with `macKey` (from the backup's own key), or a key KMS unwraps from the
 * manifest's wrapped key when the bytes were stored under another (archived WAL).
 */
export async function writeManifest(
  storage: Storage,
  manifest: Manifest,
  tier: RetentionTier,
  enc?: PreparedEncryption,
): Promise<Manifest> {
  const e = manifest.pipeline.encryption;
  let macKey: Buffer | undefined;
  if (e.scheme === EncryptionScheme.KMS) {
    const own = enc?.macKey !== undefined && enc.manifest.wrappedKey === e.wrappedKey;
    macKey = own ? enc!.macKey : await kmsManifestMacKey(e, manifest.id);
  }
  const { digest: _, ...content } = manifest;
  void _;
  const signed: Manifest = { ...content, digest: manifestDigest(content, macKey) };
  await storage.putBytes(`${manifest.id}/${MANIFEST_NAME}`, Buffer.from(JSON.stringify(signed, null, 2) + '\n'), {
    tier,
    contentType: 'application/json',
  });
  return signed;
}

/**
 * Remove what killed runs left in a file:// store (manifest-less folders and partial files
 * whose writer is gone; never a running backup's). Other storage: nothing (lifecycle rules do it).
 */
export async function removeLeftovers(storage: Storage, afterHours?: number): Promise<string[]> {
  if (!(storage instanceof FileStorage)) return [];
  const removed = await storage.removeLeftovers(
    Date.now(),
    afterHours === undefined ? undefined : afterHours * 3600000,
  );
  if (removed.length > 0) {
    const what = `removed ${removed.length} leftover(s) of killed runs: ${removed.join(', ')}`;
    log.info(what, { event: 'leftovers-removed', removed });
  }
  return removed;
}

/** Objects that no manifest lists: manifest-less folders and unlisted files in committed folders. */
export interface Orphans {
  /** Left over by killed runs (file://: damage) or, on object storage, awaiting the lifecycle rules. */
  readonly stray: string[];
  /** Manifest-less folders that may belong to a backup that is running now. */
  readonly running: string[];
}

export async function findOrphans(storage: Storage, catalog: Catalog): Promise<Orphans> {
  const stray: string[] = [];
  const running: string[] = [];
  for (const id of catalog.incomplete) {
    if (storage instanceof FileStorage && (await storage.folderState(id)) === 'running') running.push(`${id}/`);
    else stray.push(`${id}/`);
  }
  for (const m of catalog.backups) {
    const listed = new Set([...m.artifacts.map((a) => a.name), MANIFEST_NAME]);
    for (const o of await storage.list(m.id)) {
      const name = o.key.slice(o.key.lastIndexOf(`${m.id}/`) + m.id.length + 1);
      if (!listed.has(name)) stray.push(`${m.id}/${name}`);
    }
  }
  return { stray, running };
}

/**
 * A `--tier` given for an incremental/differential backup must not outlive the backups it
 * depends on: lifecycle would expire the base first and leave it unrestorable. Refused (exit 2);
 * raising the base's tier would need rewriting its objects' tags, which the runner's role may not do.
 */
export async function checkTierOverride(
  storage: Storage,
  tier: RetentionTier | undefined,
  chain: { parent?: string; base?: string } | undefined,
): Promise<void> {
  if (tier === undefined || chain === undefined) return;
  for (const id of new Set([chain.parent, chain.base].filter((x): x is string => x !== undefined))) {
    const m = await readManifest(storage, id).catch(() => undefined);
    if (m !== undefined && tierOutlives(tier, m.tier)) {
      throw new ConfigError(
        `--tier ${tier} would keep this backup longer than ${m.id} (tier ${m.tier}) it depends on: ` +
          'lifecycle would expire that one first and leave this one unrestorable. ' +
          `Give --tier ${m.tier} (or shorter), or take a full backup with --tier ${tier}.`,
      );
    }
  }
}

/**
 * Before a kms: backup is used: its manifest's HMAC must match the key KMS unwraps (the
 * restore needs that unwrap anyway). A mismatch is a forged or changed manifest: DamagedError.
 */
export async function assertAuthentic(m: Manifest): Promise<void> {
  if (m.version < FIRST_DIGEST_VERSION || m.pipeline.encryption.scheme !== EncryptionScheme.KMS) return;
  if (!manifestMacMatches(m, await kmsManifestMacKey(m.pipeline.encryption, m.id))) {
    throw new DamagedError(
      `backup ${m.id}: its manifest's HMAC does not match; ` +
        "it was changed or forged by someone without the backup's KMS key. Nothing was restored.",
    );
  }
}
