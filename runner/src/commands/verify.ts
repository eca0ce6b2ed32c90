import { Readable } from 'node:stream';
import { FIRST_DIGEST_VERSION, Manifest, ManifestArtifact, manifestMacMatches } from '../../../lib/core/manifest';
import { EncryptionScheme, StorageKind } from '../../../lib/core/urls';
import { BackupType } from '../../../lib/core/model';
import { backupsOfDatabase, findOrphans, readCatalog, selectBackups } from '../catalog';
import { manifestPolicy, VerifyConfig } from '../config';
import { driverFor } from '../engines';
import { DamagedError } from '../errors';
import { log } from '../log';
import { brokenChains } from '../archive/window';
import { archiveWindows } from '../engines';
import { kmsManifestMacKey, prepareDecryption } from '../pipeline/encrypt';
import { preflight, readPlan } from '../preflight';
import { digestStream } from '../pipeline/stream';
import { NotFoundError, openStorage, Storage } from '../storage';
import { readBack } from '../pipeline/read-back';

export interface VerifyReport {
  readonly id: string;
  readonly ok: boolean;
  readonly deep: boolean;
  readonly problems: { readonly artifact?: string; readonly reason: string }[];
  /** What could not be checked or should be known (an old manifest without a digest, a MAC not checked). */
  readonly warnings?: string[];
  /** kms: whether the manifest's HMAC was checked (and matched); undefined for other schemes. */
  readonly authenticated?: boolean;
}

/** Check stored backups against their manifests; `deep` also reads each archive back with the engine's tool. */
export async function runVerify(cfg: VerifyConfig, signal: AbortSignal): Promise<VerifyReport[]> {
  const storage = openStorage(cfg.from);
  const reports: VerifyReport[] = [];
  let manifests: Manifest[];
  if (cfg.selector.kind === 'all') {
    const catalog = await readCatalog(storage);
    for (const u of catalog.unreadable)
      reports.push({ id: u.id, ok: false, deep: cfg.deep, problems: [{ reason: u.reason }] });
    const database = cfg.selector.database;
    manifests =
      database === undefined ? catalog.backups : backupsOfDatabase(catalog.backups, database, cfg.from.display);
    if (manifests.length === 0 && reports.length === 0)
      throw new DamagedError(`there are no backups in ${storage.url.display}.`);
  } else {
    manifests = await selectBackups(storage, cfg.selector, true);
  }
  if (cfg.deep) await preflight(readPlan(manifests, { identity: cfg.identity, deep: true }));
  for (const m of manifests) {
    if (signal.aborted) throw signal.reason;
    reports.push(await verifyOne(storage, m, cfg, signal));
  }
  // Chains and log archives: a dependant without its base, a gap or a conflict in the archive is damage.
  if (cfg.selector.kind !== 'id') reports.push(...(await verifyChainsAndArchives(storage, cfg)));
  else reports.push(...(await verifyChainOf(storage, manifests, cfg)));
  if (cfg.selector.kind === 'all') reports.push(await verifyNoOrphans(storage));
  return reports;
}

/**
 * Objects no manifest lists. On file:// they are damage (the next backup or prune removes what
 * killed runs left); on object storage a listed warning, as the lifecycle rules expire them.
 */
async function verifyNoOrphans(storage: Storage): Promise<VerifyReport> {
  const { stray, running } = await findOrphans(storage, await readCatalog(storage));
  const id = 'unlisted-objects';
  const warnings = running.map((r) => `${r} has no manifest yet: a backup may be writing it`);
  if (stray.length === 0) return { id, ok: true, deep: false, problems: [], warnings };
  const what = `${stray.length} object(s) or folder(s) that no manifest lists: ${stray.join(', ')}`;
  if (storage.url.kind !== StorageKind.FILE) {
    log.warn(`${what}; the storage's lifecycle rules expire them`, { event: 'verify-warning', id, stray });
    return { id, ok: true, deep: false, problems: [], warnings: [...warnings, what] };
  }
  log.error(what, { event: 'verify-failed', id, stray });
  const reason =
    'no manifest lists it (left by a killed run or put there by hand); ' +
    'the next backup or prune of this store removes leftovers of killed runs';
  return { id, ok: false, deep: false, problems: stray.map((s) => ({ artifact: s, reason })), warnings };
}

/** `--id` of a dependant: every backup of its chain must still be stored. */
async function verifyChainOf(
  storage: Storage,
  selected: readonly Manifest[],
  cfg: VerifyConfig,
): Promise<VerifyReport[]> {
  if (selected.every((m) => m.type === BackupType.FULL)) return [];
  const ids = new Set(selected.map((m) => m.id));
  const broken = brokenChains((await readCatalog(storage)).backups).filter((c) => ids.has(c.id));
  for (const c of broken) log.error(c.message, { event: 'verify-failed', id: c.id, missing: c.missing });
  return broken.map((c) => ({ id: c.id, ok: false, deep: cfg.deep, problems: [{ reason: c.message }] }));
}

async function verifyChainsAndArchives(storage: Storage, cfg: VerifyConfig): Promise<VerifyReport[]> {
  const catalog = await readCatalog(storage);
  const out: VerifyReport[] = [];
  for (const c of brokenChains(catalog.backups)) {
    out.push({ id: c.id, ok: false, deep: cfg.deep, problems: [{ reason: c.message }] });
  }
  for (const w of await archiveWindows(storage, catalog)) {
    const problems = [
      ...w.gaps.map((g) => ({ reason: g.message })),
      ...w.conflicts.map((c) => ({ reason: `${c} is archived twice with different content` })),
    ];
    const id = `${w.archive}-archive`;
    if (problems.length > 0)
      log.error(`the ${w.archive} archive has ${problems.length} problem(s)`, { event: 'verify-failed', id, problems });
    else
      log.info(
        `the ${w.archive} archive is continuous${w.earliest !== undefined ? ` from ${w.earliest} to ${w.latest}` : ''}`,
        { event: 'verify-ok', id },
      );
    out.push({ id, ok: problems.length === 0, deep: false, problems });
  }
  return out;
}

async function verifyOne(storage: Storage, m: Manifest, cfg: VerifyConfig, signal: AbortSignal): Promise<VerifyReport> {
  const problems: { artifact?: string; reason: string }[] = [];
  const warnings: string[] = [];
  // The manifest's own digest was checked when it was parsed; a kms: manifest's HMAC needs the key.
  let authenticated: boolean | undefined;
  if (m.version < FIRST_DIGEST_VERSION) {
    warnings.push(`no digest: the manifest (version ${m.version}) predates digests; a changed field goes unseen`);
  } else if (m.pipeline.encryption.scheme === EncryptionScheme.KMS) {
    try {
      authenticated = manifestMacMatches(m, await kmsManifestMacKey(m.pipeline.encryption, m.id));
      if (!authenticated) {
        const reason = "its HMAC does not match: it was changed or forged by someone without the backup's KMS key";
        problems.push({ artifact: 'manifest.json', reason });
      }
    } catch (e) {
      if ((e as Error).name !== 'BackupError') throw e;
      authenticated = false;
      const why = `the manifest's MAC could not be checked (${(e as Error).message}); it is not authenticated`;
      // --require-encryption kms: an unauthenticated manifest is not accepted as a backup.
      if (manifestPolicy.requireEncryption === EncryptionScheme.KMS)
        problems.push({ artifact: 'manifest.json', reason: `${why}, and --require-encryption kms requires it` });
      else warnings.push(why);
    }
  }
  for (const a of m.artifacts) {
    const reason = cfg.deep ? await deepCheck(storage, m, a, cfg, signal) : await shallowCheck(storage, m, a);
    if (reason !== undefined) problems.push({ artifact: a.name, reason });
  }
  const ok = problems.length === 0;
  const how = `${cfg.deep ? ' (deep)' : ''}${authenticated === true ? ', manifest authenticated (KMS)' : ''}`;
  if (!ok) log.error(`backup ${m.id} is damaged`, { event: 'verify-failed', id: m.id, problems });
  else if (authenticated === false) {
    const what = `backup ${m.id}: its artifacts match, but its manifest's MAC could not be checked: NOT authenticated`;
    log.warn(what, { event: 'verify-unauthenticated', id: m.id, warnings });
  } else {
    const extra = warnings.length > 0 ? { warnings } : {};
    log.info(`backup ${m.id} verified${how}`, { event: 'verify-ok', id: m.id, ...extra });
  }
  for (const w of warnings) if (authenticated !== false) log.warn(`backup ${m.id}: ${w}`, { id: m.id });
  return { id: m.id, ok, deep: cfg.deep, problems, warnings, authenticated };
}

async function shallowCheck(storage: Storage, m: Manifest, a: ManifestArtifact): Promise<string | undefined> {
  let stream: Readable;
  try {
    stream = await storage.read(`${m.id}/${a.name}`);
  } catch (e) {
    if (e instanceof NotFoundError) return `missing: ${storage.url.display}/${m.id}/${a.name} does not exist`;
    throw e;
  }
  const { size, sha256 } = await digestStream(stream);
  if (size !== a.size) return `size: the stored object has ${size} bytes, the manifest records ${a.size}`;
  if (sha256 !== a.sha256)
    return `sha256: the stored object's sha256 ${sha256} does not match the manifest's ${a.sha256}`;
  return undefined;
}

async function deepCheck(
  storage: Storage,
  m: Manifest,
  a: ManifestArtifact,
  cfg: VerifyConfig,
  signal: AbortSignal,
): Promise<string | undefined> {
  const shallow = await shallowCheck(storage, m, a);
  if (shallow !== undefined) return shallow;
  const dec = await prepareDecryption(m.pipeline.encryption, cfg.identity, m.id);
  try {
    const check = driverFor(m.engine).deepCheck(a);
    if (check.kind === 'command') {
      await readBack(storage, m, a, dec, check.command, signal);
      return undefined;
    }
    if (check.kind === 'reader') {
      await readBack(storage, m, a, dec, check.read, signal);
      return undefined;
    }
    // Only the end matters: keep the last bytes of the stream, never the whole plaintext.
    let tail = Buffer.alloc(0);
    await readBack(
      storage,
      m,
      a,
      dec,
      async (plaintext) => {
        for await (const c of plaintext as AsyncIterable<Buffer>) tail = Buffer.concat([tail, c]).subarray(-65536);
      },
      signal,
    );
    const text = tail.toString('utf8');
    if (
      !text
        .trimEnd()
        .split('\n')
        .slice(-3)
        .some((l) => l.includes(check.trailer))
    ) {
      return `incomplete: the plaintext does not end with '${check.trailer}'`;
    }
    return undefined;
  } catch (e) {
    // A tool or key that fails the read-back is the run's failure (exit 1), not the backup's damage.
    if ((e as Error).name === 'ConfigError' || (e as Error).name === 'StageError') throw e;
    return `unreadable: ${(e as Error).message}`;
  } finally {
    await dec.cleanup();
  }
}

/** Throw DamagedError (exit 3) when any report failed. */
export function assertAllOk(reports: VerifyReport[]): void {
  const bad = reports.filter((r) => !r.ok);
  if (bad.length > 0) {
    throw new DamagedError(
      bad
        .map(
          (r) =>
            `backup ${r.id} is ` +
            `damaged: ${r.problems.map((p) => (p.artifact ? `${p.artifact}: ${p.reason}` : p.reason)).join('; ')}`,
        )
        .join('\n'),
    );
  }
}
