/**
 * The streamed partial segment: the WAL segment `dbbackup wal-receive` is receiving, uploaded every
 * few seconds so a restore can replay what was committed since the last completed segment.
 *
 *   wal/partial/<timeline>/current[.zst|.gz|.lz4][.kms-<ref>][.age|.gpg|.enc]   the newest copy
 *   wal/partial/<timeline>/current.json                                          what it holds
 *
 * One object per timeline, overwritten by each upload (object storage gives the runner no delete
 * right, and a restore only ever wants the newest). The data object is written first, then the
 * small pointer (atomic), which records the segment's name and the sha256 and size of the
 * plaintext, so a fetch checks what it decoded as for a completed segment; a fetch that meets a
 * newer data object than its pointer (an upload in between) reads the pointer again. The folder is
 * below `wal/`, so the WAL lifecycle rule expires it, and its keys are not segment objects
 * (log-archive.ts), so the archive's index never takes it for one.
 */
import { Compression } from '../../../../lib/core/model';
import { ENCRYPTION_EXT, EncryptionScheme } from '../../../../lib/core/urls';
import { ArchivedObject, ArchiveEncryption, fetchObject } from '../../archive/log-archive';
import { DamagedError } from '../../errors';
import { COMPRESSION_EXT } from '../../pipeline/compress';
import { runPipeline } from '../../pipeline/store';
import { NotFoundError, Storage } from '../../storage';
import { WAL_PREFIX } from '../../../../lib/core/layout';

export const PARTIAL_PREFIX = `${WAL_PREFIX}/partial`;

/** The pointer object: which segment the data object holds, and how to read it. */
export interface PartialPointer {
  readonly version: 1;
  /** The segment's full name (without `.partial`). */
  readonly file: string;
  readonly key: string;
  readonly sha256: string;
  readonly size: number;
  /** When pg_receivewal last wrote the copy that was uploaded. */
  readonly written: string;
  readonly compression: Compression;
  readonly encryption: EncryptionScheme;
  readonly keyRef?: string;
}

function pointerKey(timelineHex: string): string {
  return `${PARTIAL_PREFIX}/${timelineHex}/current.json`;
}

/** Upload a private, stable copy of the partial segment `file` and then point at it. */
export async function uploadPartial(
  storage: Storage,
  copy: string,
  file: string,
  o: {
    sha256: string;
    size: number;
    written: Date;
    compression: Compression;
    enc: ArchiveEncryption;
    signal: AbortSignal;
  },
): Promise<PartialPointer> {
  const tl = file.slice(0, 8);
  const enc = `${o.enc.keyRef !== undefined ? '.' + o.enc.keyRef : ''}${ENCRYPTION_EXT[o.enc.scheme]}`;
  const key = `${PARTIAL_PREFIX}/${tl}/current${COMPRESSION_EXT[o.compression]}${enc}`;
  await runPipeline(
    storage,
    key,
    { cmd: 'cat', args: ['--', copy] },
    { compression: o.compression },
    o.enc.prepared,
    undefined,
    o.signal,
  );
  const pointer: PartialPointer = {
    version: 1,
    file,
    key,
    sha256: o.sha256,
    size: o.size,
    written: o.written.toISOString(),
    compression: o.compression,
    encryption: o.enc.scheme,
    ...(o.enc.keyRef !== undefined ? { keyRef: o.enc.keyRef } : {}),
  };
  await storage.putBytes(pointerKey(tl), Buffer.from(JSON.stringify(pointer) + '\n'), {
    contentType: 'application/json',
  });
  return pointer;
}

/** What is wrong with a pointer read from storage (anyone who can write the store can write one), or undefined. */
function pointerProblem(p: PartialPointer, timelineHex: string): string | undefined {
  if (typeof p !== 'object' || p === null || p.version !== 1) return 'not version 1';
  if (typeof p.file !== 'string' || !/^[0-9A-F]{24}$/.test(p.file)) return `file ${JSON.stringify(p.file)}`;
  if (p.file.slice(0, 8) !== timelineHex) return `segment ${p.file} is not of timeline ${timelineHex}`;
  // One of the names uploadPartial writes: `current` and its extensions, in the timeline's folder.
  if (
    typeof p.key !== 'string' ||
    !new RegExp(`^${PARTIAL_PREFIX}/${timelineHex}/current(\\.[a-z0-9-]+)*$`).test(p.key)
  )
    return `key ${JSON.stringify(p.key)}`;
  if (typeof p.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(p.sha256)) return `sha256 ${JSON.stringify(p.sha256)}`;
  if (!Number.isSafeInteger(p.size) || p.size < 0) return `size ${JSON.stringify(p.size)}`;
  if (typeof p.written !== 'string' || Number.isNaN(Date.parse(p.written)))
    return `written ${JSON.stringify(p.written)}`;
  if (!Object.values(Compression).includes(p.compression)) return `compression ${JSON.stringify(p.compression)}`;
  if (!Object.values(EncryptionScheme).includes(p.encryption)) return `encryption ${JSON.stringify(p.encryption)}`;
  if (p.keyRef !== undefined && !/^kms-[0-9a-f]{16}$/.test(String(p.keyRef)))
    return `keyRef ${JSON.stringify(p.keyRef)}`;
  return undefined;
}

/** The newest streamed partial segment of a timeline, or undefined when there is none. */
export async function readPartial(storage: Storage, timelineHex: string): Promise<ArchivedObject | undefined> {
  let raw: Buffer;
  try {
    raw = await storage.readBytes(pointerKey(timelineHex));
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
  let p: PartialPointer;
  try {
    p = JSON.parse(raw.toString('utf8')) as PartialPointer;
  } catch {
    throw new DamagedError(`${storage.url.display}/${pointerKey(timelineHex)} is not JSON`);
  }
  const problem = pointerProblem(p, timelineHex);
  if (problem !== undefined) {
    throw new DamagedError(
      `${storage.url.display}/${pointerKey(timelineHex)} does not describe a partial segment (${problem}). ` +
        'wal-receive rewrites it with its next upload; until then, restore to a moment with --to-time ISO-8601 ' +
        '(or remove the pointer to restore to the last completed segment).',
    );
  }
  return {
    key: p.key,
    file: p.file,
    group: timelineHex,
    sha256: p.sha256,
    size: p.size,
    written: new Date(p.written),
    compression: p.compression,
    encryption: p.encryption,
    keyRef: p.keyRef,
    storedSize: 0,
  };
}

/**
 * Fetch the partial segment `o` into `dest` (checked against its pointer). When the data object
 * was overwritten meanwhile (wal-receive still running), the pointer is read again, a few times.
 */
export async function fetchPartial(
  storage: Storage,
  o: ArchivedObject,
  dest: string,
  identity: string | undefined,
  signal?: AbortSignal,
): Promise<ArchivedObject> {
  let current = o;
  for (let attempt = 1; ; attempt++) {
    try {
      await fetchObject(storage, WAL_PREFIX, current, dest, identity, signal);
      return current;
    } catch (e) {
      const again = attempt < 5 ? await readPartial(storage, o.group) : undefined;
      if (!(e instanceof DamagedError) || again === undefined || again.sha256 === current.sha256) throw e;
      current = again;
    }
  }
}
