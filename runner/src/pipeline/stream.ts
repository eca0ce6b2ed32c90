import * as crypto from 'node:crypto';
import { Readable, Transform, TransformCallback, Writable } from 'node:stream';
import { DamagedError } from '../errors';

/**
 * Hashes (sha256) and counts the bytes that pass. The stream ends only after `gate` resolves
 * (every process that produced the bytes exited 0); if it rejects, the stream fails instead,
 * so storage never completes an object whose producer failed.
 */
export class GatedDigest extends Transform {
  private readonly hash = crypto.createHash('sha256');
  public size = 0;

  constructor(
    private readonly gate: () => Promise<void>,
    private readonly onBytes?: (n: number) => void,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  public _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }

  public _flush(cb: TransformCallback): void {
    this.gate().then(() => cb(), cb);
  }

  public digest(): string {
    return this.hash.digest('hex');
  }
}

/** What a stored object must be. */
export interface Expected {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** How feeding ended: `delivered` is false when `dest` stopped taking bytes before the end. */
export interface Fed {
  readonly delivered: boolean;
  /** Bytes `dest` accepted. */
  readonly written: number;
  /** Set when only a checked prefix of this many bytes was read (`headOnly`). */
  readonly prefix?: number;
}

/** The first prefix with a digest of its own; the next ones double (1, 2, 4 … MiB). */
const FIRST_PREFIX = 1 << 20;

/**
 * The sha256 of each prefix of FIRST_PREFIX × 2^k bytes of an object, recorded by a read that
 * checked the whole object against its manifest, by object (name, size, sha256), for the life of
 * the process: a later read of the same object that needs only its start (headOnly) checks its
 * bytes against them and stops there.
 */
const prefixDigests = new Map<string, Map<number, string>>();

function objectKey(e: Expected): string {
  return `${e.name}\0${e.size}\0${e.sha256}`;
}

export interface FeedOptions {
  /**
   * The consumer needs only the object's start: once `dest` has gone away, the bytes are read on
   * to the next prefix whose digest an earlier, whole, checked read of this object recorded,
   * compared with it, and the read stops there (a DamagedError if they differ). Without such a
   * read the whole object is read and checked as always.
   */
  readonly headOnly?: boolean;
}

/**
 * Copy a stored object to `dest`, holding back its last `holdback` bytes until the whole object
 * has been checked against its recorded size and sha256. A damaged object therefore never
 * reaches the end of its stream: the consumer cannot finish (and, restoring in one
 * transaction, cannot commit) before the check passed. Throws DamagedError without ending
 * `dest`; the caller kills the consumer.
 *
 * A `dest` that goes away (the stage reading it exited, failed or was killed) is never waited
 * on: the object is still read to the end and checked, and the result says it was not
 * delivered, so the caller can judge the stage by its exit and never takes a short read for
 * success.
 */
export async function feedVerified(
  source: Readable,
  dest: Writable,
  expected: Expected,
  onBytes?: (n: number) => void,
  holdback = 4 << 20,
  options: FeedOptions = {},
): Promise<Fed> {
  const hash = crypto.createHash('sha256');
  const known = options.headOnly === true ? prefixDigests.get(objectKey(expected)) : undefined;
  const seen = new Map<number, string>();
  let nextPrefix = FIRST_PREFIX;
  let size = 0;
  let written = 0;
  const tail: Buffer[] = [];
  let tailSize = 0;
  let destError: Error | undefined;
  const onError = (e: Error) => (destError = e);
  dest.on('error', onError);
  const gone = () => destError !== undefined || dest.destroyed || dest.writableEnded;
  const write = async (b: Buffer) => {
    if (gone()) return;
    written += b.length;
    if (dest.write(b) || gone()) return;
    // Resolves on drain, or as soon as `dest` is gone (close follows an error or a destroy).
    await new Promise<void>((resolve) => {
      const done = () => {
        dest.off('drain', done);
        dest.off('close', done);
        dest.off('error', done);
        resolve();
      };
      dest.on('drain', done);
      dest.on('close', done);
      dest.on('error', done);
      if (gone()) done();
    });
  };
  for await (const chunk of source as AsyncIterable<Buffer>) {
    // The digest of each prefix boundary the chunk crosses, then the rest of it.
    let at = 0;
    while (size + (chunk.length - at) >= nextPrefix) {
      const cut = nextPrefix - size;
      hash.update(chunk.subarray(at, at + cut));
      at += cut;
      size += cut;
      seen.set(nextPrefix, hash.copy().digest('hex'));
      nextPrefix *= 2;
    }
    hash.update(at === 0 ? chunk : chunk.subarray(at));
    size += chunk.length - at;
    onBytes?.(chunk.length);
    if (known !== undefined && gone()) {
      // The consumer has what it needs, from at most `written` bytes: the first recorded prefix
      // that covers them, once read, ends the read.
      const cover = [...known.keys()].find((n) => n >= written); // recorded in ascending order
      if (cover !== undefined && size >= cover) {
        if (seen.get(cover) !== known.get(cover)) {
          throw new DamagedError(
            `${expected.name}: its first ${cover} bytes differ from those read and checked before in this run ` +
              '(the stored object changed meanwhile)',
          );
        }
        return { delivered: false, written, prefix: cover };
      }
    }
    tail.push(chunk);
    tailSize += chunk.length;
    while (tailSize - tail[0].length >= holdback) {
      const b = tail.shift()!;
      tailSize -= b.length;
      await write(b);
    }
  }
  const digest = hash.digest('hex');
  if (size !== expected.size) {
    throw new DamagedError(
      `${expected.name}: the stored object has ${size} bytes, the manifest records ${expected.size}`,
    );
  }
  if (digest !== expected.sha256) {
    throw new DamagedError(`${expected.name}: sha256 ${digest} does not match the manifest's ${expected.sha256}`);
  }
  prefixDigests.set(objectKey(expected), seen);
  for (const b of tail) await write(b);
  if (gone()) return { delivered: false, written };
  await new Promise<void>((resolve) => {
    const done = () => {
      dest.off('close', done);
      dest.off('error', done);
      resolve();
    };
    dest.on('close', done);
    dest.on('error', done);
    dest.end(done);
  });
  // An error while the last bytes were flushed: they were not all taken.
  return { delivered: destError === undefined, written };
}

/** sha256 and size of a whole stream. */
export async function digestStream(
  source: Readable,
  onBytes?: (n: number) => void,
): Promise<{ size: number; sha256: string }> {
  const hash = crypto.createHash('sha256');
  let size = 0;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    onBytes?.(chunk.length);
  }
  return { size, sha256: hash.digest('hex') };
}
