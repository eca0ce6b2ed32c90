/**
 * The archive of a database's change log (PostgreSQL WAL files, MariaDB binary logs): one
 * folder per log file, holding one object whose name says everything needed to read it back.
 *
 *   <prefix>/<group>/<file name>/<sha256>.<size>.<written>[.zst|.gz|.lz4][.kms-<ref>][.age|.gpg|.enc]
 *
 * - sha256 and size are those of the plaintext (the log file itself), so a push of the same
 *   file again is recognised without decrypting anything, a different file under the same name
 *   is refused, and a fetch checks what it decrypted against the name before handing it over;
 * - written is when the database last wrote the file (its mtime), an upper bound of the times of
 *   the changes it holds: the recoverable window and the files a restore to a moment needs are
 *   worked out from it;
 * - an upload that did not finish leaves nothing at its key (Storage's promise), so an object at
 *   its final name is whole: the archive needs no second "commit" object per file.
 *
 * Compression and encryption are the shared pipeline's stages. `kms:` archives encrypt to an age
 * recipient whose identity, wrapped by KMS, is stored once at <prefix>/keys/<ref>.json (the
 * object names say which), so pushing a file needs no KMS call.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compressionOfExtension, extensionPattern } from '../../../lib/core/codecs';
import { ConfigError } from '../../../lib/core/errors';
import { ManifestEncryption } from '../../../lib/core/manifest';
import { Compression } from '../../../lib/core/model';
import { ENCRYPTION_EXT, EncryptionScheme, EncryptionSpec } from '../../../lib/core/urls';
import { runPipeline } from '../pipeline/store';
import { BackupError, ChildProcessError, DamagedError } from '../errors';
import { log } from '../log';
import { COMPRESSION_EXT, decompressStage } from '../pipeline/compress';
import { prepareDecryption, prepareEncryption, PreparedDecryption, PreparedEncryption } from '../pipeline/encrypt';
import { CommandSpec, Pipeline } from '../pipeline/stages';
import { guarded } from '../pipeline/abort';
import { NotFoundError, ObjectInfo, Storage } from '../storage';

/** One stored log file, as its object name describes it. */
export interface ArchivedObject {
  /** The object's key relative to the storage URL. */
  readonly key: string;
  /** The log file's name (the folder it is in). */
  readonly file: string;
  /** The folder above the file's (the timeline for WAL, the server for binary logs). */
  readonly group: string;
  readonly sha256: string;
  readonly size: number;
  /** When the database last wrote the file. */
  readonly written: Date;
  readonly compression: Compression;
  /** `none`, `age`, `gpg`, `openssl` (need the identity or key ring) or `kms` (the key file named by keyRef). */
  readonly encryption: EncryptionScheme;
  readonly keyRef?: string;
  /** Size of the stored object. */
  readonly storedSize: number;
}

const OBJECT_RE = new RegExp(
  `^([0-9a-f]{64})\\.(\\d+)\\.(\\d{8}T\\d{9}Z)(${extensionPattern()})?` +
    '(?:\\.(kms-[0-9a-f]{16}))?(\\.age|\\.gpg|\\.enc)?$',
);
const EXT_ENCRYPTION: Readonly<Record<string, EncryptionScheme>> = {
  '.gpg': EncryptionScheme.GPG,
  '.enc': EncryptionScheme.OPENSSL,
};

/** `20261125T041500123Z` */
export function compactTime(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('.', '');
}

function parseCompactTime(s: string): Date {
  return new Date(
    `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}` +
      `T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}.${s.slice(15, 18)}Z`,
  );
}

/** The object name of a log file. */
export function objectName(o: {
  sha256: string;
  size: number;
  written: Date;
  compression: Compression;
  encryption: EncryptionScheme;
  keyRef?: string;
}): string {
  const enc = `${o.keyRef !== undefined ? '.' + o.keyRef : ''}${ENCRYPTION_EXT[o.encryption]}`;
  return `${o.sha256}.${o.size}.${compactTime(o.written)}${COMPRESSION_EXT[o.compression]}${enc}`;
}

/** Parse an object of the archive from its key (`<prefix>/<group>/<file>/<object>`), or undefined. */
export function parseObjectKey(info: ObjectInfo, prefix: string): ArchivedObject | undefined {
  const rest = info.key.startsWith(prefix + '/') ? info.key.slice(prefix.length + 1) : undefined;
  if (rest === undefined) return undefined;
  const parts = rest.split('/');
  if (parts.length !== 3) return undefined;
  const m = OBJECT_RE.exec(parts[2]);
  if (m === null) return undefined;
  return {
    key: info.key,
    group: parts[0],
    file: parts[1],
    sha256: m[1],
    size: Number(m[2]),
    written: parseCompactTime(m[3]),
    compression: m[4] === undefined ? Compression.NONE : compressionOfExtension(m[4])!,
    encryption:
      m[6] === undefined
        ? EncryptionScheme.NONE
        : (EXT_ENCRYPTION[m[6]] ?? (m[5] !== undefined ? EncryptionScheme.KMS : EncryptionScheme.AGE)),
    keyRef: m[5],
    storedSize: info.size,
  };
}

/** Every archived object under `prefix`, grouped by `group/file`. */
export async function listArchive(storage: Storage, prefix: string): Promise<Map<string, ArchivedObject[]>> {
  const out = new Map<string, ArchivedObject[]>();
  for (const info of await storage.list(prefix)) {
    const o = parseObjectKey(info, prefix);
    if (o === undefined) continue;
    const k = `${o.group}/${o.file}`;
    out.set(k, [...(out.get(k) ?? []), o]);
  }
  return out;
}

/** The archived copies of one file (normally one; two with different content is a conflict). */
export async function listFile(
  storage: Storage,
  prefix: string,
  group: string,
  file: string,
): Promise<ArchivedObject[]> {
  return (await storage.list(`${prefix}/${group}/${file}`))
    .map((i) => parseObjectKey(i, prefix))
    .filter((o): o is ArchivedObject => o !== undefined);
}

/** sha256 and size of a local file. */
export async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = crypto.createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The key file of a kms: archive key. */
interface KeyFile {
  readonly version: 1;
  readonly ref: string;
  readonly encryption: ManifestEncryption;
}

function keyRefOf(recipient: string): string {
  return 'kms-' + crypto.createHash('sha256').update(recipient).digest('hex').slice(0, 16);
}

/** Encryption for pushing files: the stage and what the object name records. */
export interface ArchiveEncryption {
  readonly prepared: PreparedEncryption;
  readonly scheme: EncryptionScheme;
  readonly keyRef?: string;
}

/** Set up encryption of pushed files. For kms:, reuse the archive's key for that KMS key, or make and store one. */
export async function archiveEncryption(
  storage: Storage,
  prefix: string,
  spec: EncryptionSpec,
): Promise<ArchiveEncryption> {
  if (spec.scheme !== EncryptionScheme.KMS) {
    return { prepared: await prepareEncryption(spec, prefix), scheme: spec.scheme };
  }
  for (const info of await storage.list(`${prefix}/keys`)) {
    if (!info.key.endsWith('.json')) continue;
    const kf = JSON.parse((await storage.readBytes(info.key)).toString('utf8')) as KeyFile;
    if (kf.encryption.keyId === spec.key && kf.encryption.recipient !== undefined) {
      return {
        prepared: { stage: { cmd: 'age', args: ['-e', '-r', kf.encryption.recipient] }, manifest: kf.encryption },
        scheme: EncryptionScheme.KMS,
        keyRef: kf.ref,
      };
    }
  }
  // The first push with this KMS key: a new archive key, stored (wrapped) before anything is encrypted to it.
  const prepared = await prepareEncryption(spec, `${prefix}-archive-key-${crypto.randomBytes(6).toString('hex')}`);
  const ref = keyRefOf(prepared.manifest.recipient!);
  const kf: KeyFile = { version: 1, ref, encryption: prepared.manifest };
  await storage.putBytes(`${prefix}/keys/${ref}.json`, Buffer.from(JSON.stringify(kf, null, 2) + '\n'), {
    contentType: 'application/json',
  });
  log.info(`made the archive key ${ref} for KMS key ${spec.key}; its wrapped form is ${prefix}/keys/${ref}.json`);
  return { prepared, scheme: EncryptionScheme.KMS, keyRef: ref };
}

/**
 * Decryption of an archived object: age, gpg (GNUPGHOME or the --identity secret key file) and
 * openssl (the --identity key file) as a backup's, or kms through the archive's key file.
 */
export async function archiveDecryption(
  storage: Storage,
  prefix: string,
  o: ArchivedObject,
  identity: string | undefined,
): Promise<PreparedDecryption> {
  switch (o.encryption) {
    case EncryptionScheme.NONE:
      return prepareDecryption({ scheme: EncryptionScheme.NONE }, undefined, o.key);
    case EncryptionScheme.AGE:
      return prepareDecryption({ scheme: EncryptionScheme.AGE, recipient: 'the archive recipient' }, identity, o.key);
    case EncryptionScheme.GPG:
    case EncryptionScheme.OPENSSL:
      return prepareDecryption({ scheme: o.encryption }, identity, o.key);
    case EncryptionScheme.KMS: {
      let kf: KeyFile;
      try {
        kf = JSON.parse((await storage.readBytes(`${prefix}/keys/${o.keyRef}.json`)).toString('utf8')) as KeyFile;
      } catch (e) {
        if (e instanceof NotFoundError)
          throw new DamagedError(
            `${o.key} is encrypted with the archive key ${o.keyRef}, but ${prefix}/keys/${o.keyRef}.json is missing`,
          );
        throw e;
      }
      return prepareDecryption(kf.encryption, undefined, o.key);
    }
    default:
      throw new ConfigError(`encryption scheme '${o.encryption}' is not supported`);
  }
}

/** The result of pushing one file. */
export interface PushResult {
  /** `stored`: uploaded now; `present`: the same content was already archived. */
  readonly status: 'stored' | 'present';
  readonly key: string;
  readonly size: number;
  readonly sha256: string;
}

/** A different file is already archived under the same name. */
export class ArchiveConflictError extends BackupError {
  public readonly name = 'ArchiveConflictError';
}

/**
 * Push a local log file into the archive: resolves once it is durably stored (or was already,
 * with the same content). A different content under the same name is refused loudly.
 */
export async function pushFile(
  storage: Storage,
  prefix: string,
  group: string,
  file: string,
  localPath: string,
  options: {
    compression: Compression;
    encryption: ArchiveEncryption | (() => Promise<ArchiveEncryption>);
    signal: AbortSignal;
    what: string;
    hint: string;
  },
): Promise<PushResult> {
  const stat = await fs.promises.stat(localPath);
  const { sha256, size } = await hashFile(localPath);
  const conflict = (others: ArchivedObject[]) =>
    new ArchiveConflictError(
      `${options.what} ${file} is already archived at ${storage.url.display}/${prefix}/${group}/${file}/ with ` +
        `different content (sha256 ${others.map((o) => o.sha256.slice(0, 16)).join(', ')}…, written ` +
        `${others.map((o) => o.written.toISOString()).join(', ')}), not ${sha256.slice(0, 16)}… of ${localPath}. ` +
        `Refusing to replace it. ${options.hint}`,
    );
  const existing = await listFile(storage, prefix, group, file);
  if (existing.some((o) => o.sha256 === sha256 && o.size === size)) {
    return { status: 'present', key: existing.find((o) => o.sha256 === sha256)!.key, size, sha256 };
  }
  if (existing.length > 0) throw conflict(existing);
  const enc = typeof options.encryption === 'function' ? await options.encryption() : options.encryption;
  const name = objectName({
    sha256,
    size,
    written: stat.mtime,
    compression: options.compression,
    encryption: enc.scheme,
    keyRef: enc.keyRef,
  });
  const key = `${prefix}/${group}/${file}/${name}`;
  const producer: CommandSpec = { cmd: 'cat', args: ['--', localPath] };
  const stored = await runPipeline(
    storage,
    key,
    producer,
    { compression: options.compression },
    enc.prepared,
    undefined,
    options.signal,
  );
  // Another writer may have pushed a different file under the same name meanwhile.
  const after = (await listFile(storage, prefix, group, file)).filter((o) => o.sha256 !== sha256);
  if (after.length > 0) throw conflict(after);
  return { status: 'stored', key, size: stored.size, sha256 };
}

/**
 * Fetch an archived file into `dest`: decrypted, decompressed and checked against the sha256
 * and size its name records before it appears at `dest` (written to a temporary name, then
 * renamed), so a damaged object never reaches the database.
 */
export async function fetchObject(
  storage: Storage,
  prefix: string,
  o: ArchivedObject,
  dest: string,
  identity: string | undefined,
  signal?: AbortSignal,
): Promise<void> {
  const dec = await archiveDecryption(storage, prefix, o, identity);
  const tmp = `${dest}.dbbackup-${process.pid}-${Date.now()}`;
  try {
    const source = await storage.read(o.key);
    const stages = [dec.stage, decompressStage(o.compression)].filter((s): s is CommandSpec => s !== undefined);
    const hash = crypto.createHash('sha256');
    let size = 0;
    const out = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
    const writeAll = async (input: AsyncIterable<Buffer>) => {
      for await (const chunk of input) {
        hash.update(chunk);
        size += chunk.length;
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    };
    if (stages.length === 0) {
      await writeAll(source as AsyncIterable<Buffer>);
    } else {
      const pipeline = new Pipeline(stages, { kind: 'pipe' }, { stallGuard: true, onStall: (e) => source.destroy(e) });
      await guarded({ signal, pipeline }, async () => {
        source.on('error', (e) => pipeline.stdin!.destroy(e));
        source.on('data', () => pipeline.activity());
        source.pipe(pipeline.stdin!);
        const [w, p] = await Promise.allSettled([writeAll(pipeline.stdout as AsyncIterable<Buffer>), pipeline.wait()]);
        if (signal?.aborted) throw signal.reason;
        if (p.status === 'rejected') throw readBackFailure(p.reason as Error, `${storage.url.display}/${o.key}`);
        if (w.status === 'rejected') throw w.reason;
      });
    }
    const sha256 = hash.digest('hex');
    if (size !== o.size || sha256 !== o.sha256) {
      throw new DamagedError(
        `${storage.url.display}/${o.key} is damaged: it decodes to ${size} bytes with sha256 ${sha256}, its name ` +
          `records ${o.size} bytes with sha256 ${o.sha256}`,
      );
    }
    await fs.promises.rename(tmp, dest);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  } finally {
    await dec.cleanup();
  }
}

/**
 * A stage that failed decoding an archived object: damage (exit 3), unless the stage itself is
 * at fault (not installed, killed by a signal, stalled, a key that is not one): then the run
 * failed (exit 1).
 */
function readBackFailure(e: Error, what: string): Error {
  const own =
    !(e instanceof ChildProcessError) ||
    e.exitCode === 127 ||
    e.signal !== null ||
    (e.tool === 'age' && /identit|secret keys/i.test(e.stderrTail));
  return own ? e : new DamagedError(`${what} could not be read back: ${e.message}`);
}

/**
 * The absolute path of a file given relative to the working directory (PostgreSQL runs archive
 * commands in the data directory).
 */
export function absolute(p: string): string {
  return path.resolve(p);
}
