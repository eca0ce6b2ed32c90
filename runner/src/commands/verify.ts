import { Manifest, ManifestArtifact } from '../../../lib/core/manifest';
import { readCatalog, selectBackups } from '../catalog';
import { VerifyConfig } from '../config';
import { driverFor } from '../engines';
import { DamagedError } from '../errors';
import { log } from '../log';
import { archiveWindows, brokenChains } from '../pitr/window';
import { prepareDecryption } from '../pipeline/encrypt';
import { preflight, readPlan } from '../preflight';
import { digestStream } from '../pipeline/stream';
import { NotFoundError, openStorage, Storage } from '../storage';
import { readBack } from './read-back';

export interface VerifyReport {
  readonly id: string;
  readonly ok: boolean;
  readonly deep: boolean;
  readonly problems: { readonly artifact?: string; readonly reason: string }[];
}

/** Check stored backups against their manifests; `deep` also reads each archive back with the engine's tool. */
export async function runVerify(cfg: VerifyConfig, signal: AbortSignal): Promise<VerifyReport[]> {
  const storage = openStorage(cfg.from);
  const reports: VerifyReport[] = [];
  let manifests: Manifest[];
  if (cfg.selector.kind === 'all') {
    const catalog = await readCatalog(storage);
    for (const u of catalog.unreadable) reports.push({ id: u.id, ok: false, deep: cfg.deep, problems: [{ reason: u.reason }] });
    manifests = catalog.backups;
    if (manifests.length === 0 && reports.length === 0) throw new DamagedError(`there are no backups in ${storage.url.display}.`);
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
  return reports;
}

async function verifyChainsAndArchives(storage: Storage, cfg: VerifyConfig): Promise<VerifyReport[]> {
  const catalog = await readCatalog(storage);
  const out: VerifyReport[] = [];
  for (const c of brokenChains(catalog.backups)) {
    out.push({ id: c.id, ok: false, deep: cfg.deep, problems: [{ reason: c.message }] });
  }
  for (const w of await archiveWindows(storage, catalog)) {
    const problems = [...w.gaps.map((g) => ({ reason: g.message })), ...w.conflicts.map((c) => ({ reason: `${c} is archived twice with different content` }))];
    const id = `${w.archive}-archive`;
    if (problems.length > 0) log.error(`the ${w.archive} archive has ${problems.length} problem(s)`, { event: 'verify-failed', id, problems });
    else log.info(`the ${w.archive} archive is continuous${w.earliest !== undefined ? ` from ${w.earliest} to ${w.latest}` : ''}`, { event: 'verify-ok', id });
    out.push({ id, ok: problems.length === 0, deep: false, problems });
  }
  return out;
}

async function verifyOne(storage: Storage, m: Manifest, cfg: VerifyConfig, signal: AbortSignal): Promise<VerifyReport> {
  const problems: { artifact?: string; reason: string }[] = [];
  for (const a of m.artifacts) {
    const reason = cfg.deep ? await deepCheck(storage, m, a, cfg, signal) : await shallowCheck(storage, m, a);
    if (reason !== undefined) problems.push({ artifact: a.name, reason });
  }
  const ok = problems.length === 0;
  if (ok) log.info(`backup ${m.id} verified${cfg.deep ? ' (deep)' : ''}`, { event: 'verify-ok', id: m.id });
  else log.error(`backup ${m.id} is damaged`, { event: 'verify-failed', id: m.id, problems });
  return { id: m.id, ok, deep: cfg.deep, problems };
}

async function shallowCheck(storage: Storage, m: Manifest, a: ManifestArtifact): Promise<string | undefined> {
  let stream;
  try {
    stream = await storage.read(`${m.id}/${a.name}`);
  } catch (e) {
    if (e instanceof NotFoundError) return `missing: ${storage.url.display}/${m.id}/${a.name} does not exist`;
    throw e;
  }
  const { size, sha256 } = await digestStream(stream);
  if (size !== a.size) return `size: the stored object has ${size} bytes, the manifest records ${a.size}`;
  if (sha256 !== a.sha256) return `sha256: the stored object's sha256 ${sha256} does not match the manifest's ${a.sha256}`;
  return undefined;
}

async function deepCheck(storage: Storage, m: Manifest, a: ManifestArtifact, cfg: VerifyConfig, signal: AbortSignal): Promise<string | undefined> {
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
    await readBack(storage, m, a, dec, async (plaintext) => {
      for await (const c of plaintext as AsyncIterable<Buffer>) tail = Buffer.concat([tail, c]).subarray(-65536);
    }, signal);
    const text = tail.toString('utf8');
    if (!text.trimEnd().split('\n').slice(-3).some((l) => l.includes(check.trailer))) {
      return `incomplete: the plaintext does not end with '${check.trailer}'`;
    }
    return undefined;
  } catch (e) {
    if ((e as Error).name === 'ConfigError') throw e;
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
      bad.map((r) => `backup ${r.id} is damaged: ${r.problems.map((p) => (p.artifact ? `${p.artifact}: ${p.reason}` : p.reason)).join('; ')}`).join('\n'),
    );
  }
}
