import { PassThrough, Readable } from 'node:stream';
import { Manifest, ManifestArtifact } from '../../../lib/core/manifest';
import { BackupError } from '../errors';
import { Progress } from '../log';
import { decompressStage } from '../pipeline/compress';
import { PreparedDecryption } from '../pipeline/encrypt';
import { feedVerified } from '../pipeline/stream';
import { CommandSpec, Pipeline } from '../proc';
import { Storage } from '../storage';

/** Plaintext artifacts read into memory (globals scripts) are capped at this size. */
const MAX_BUFFERED = 256 << 20;

/** A consumer in this process: reads the whole plaintext stream, rejects when it is not right. */
export type StreamConsumer = (plaintext: Readable) => Promise<void>;

/**
 * Read a stored artifact back through decryption and decompression into `consumer`: a command
 * that takes the plaintext on stdin, a function that reads the plaintext stream, or `'buffer'`
 * to get the whole verified plaintext.
 * The stored bytes are checked against the manifest as they stream, and the end of the stream
 * is held back until they match (see feedVerified).
 */
export async function readBack(
  storage: Storage,
  manifest: Manifest,
  artifact: ManifestArtifact,
  dec: PreparedDecryption,
  consumer: CommandSpec | 'buffer' | StreamConsumer,
  signal?: AbortSignal,
): Promise<Buffer | undefined> {
  if (typeof consumer === 'function') {
    await readInto(storage, manifest, artifact, dec, consumer, signal);
    return undefined;
  }
  const stages = [dec.stage, decompressStage(manifest.pipeline.compression), consumer === 'buffer' ? undefined : consumer].filter(
    (s): s is CommandSpec => s !== undefined,
  );
  const key = `${manifest.id}/${artifact.name}`;
  const source = await storage.read(key);
  const progress = new Progress(`reading ${key}`, { object: key });
  if (stages.length === 0) {
    // Nothing to transform: the stored bytes are the plaintext.
    const chunks: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => chunks.push(c));
    await feedVerified(source, sink, artifact, (n) => progress.add(n));
    progress.stop();
    return Buffer.concat(chunks);
  }
  const pipeline = new Pipeline(stages, { kind: 'pipe' });
  const onAbort = () => pipeline.kill();
  signal?.addEventListener('abort', onAbort);
  const collected: Buffer[] = [];
  let collectedSize = 0;
  pipeline.stdout.on('data', (c: Buffer) => {
    if (consumer !== 'buffer') return;
    collectedSize += c.length;
    if (collectedSize > MAX_BUFFERED) {
      pipeline.kill();
      return;
    }
    collected.push(c);
  });
  try {
    const feeding = feedVerified(source, pipeline.stdin!, artifact, (n) => progress.add(n)).catch((e) => {
      // Damaged or unreadable: stop the consumer before it sees the end of the stream.
      pipeline.kill('SIGKILL');
      source.destroy();
      throw e;
    });
    const waiting = pipeline.wait({ consumerMayExitEarly: consumer !== 'buffer' });
    const [f, w] = await Promise.allSettled([feeding, waiting]);
    if (signal?.aborted) throw signal.reason;
    if (f.status === 'rejected' && (f.reason as Error).name === 'DamagedError') throw f.reason;
    if (w.status === 'rejected') throw w.reason;
    if (f.status === 'rejected') throw f.reason;
    if (collectedSize > MAX_BUFFERED) throw new BackupError(`${artifact.name} is larger than ${MAX_BUFFERED} bytes of plaintext`);
    return consumer === 'buffer' ? Buffer.concat(collected) : undefined;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    progress.stop();
  }
}

/** readBack into a function: the plaintext stream goes to `consumer` while the stored bytes are checked. */
async function readInto(
  storage: Storage,
  manifest: Manifest,
  artifact: ManifestArtifact,
  dec: PreparedDecryption,
  consumer: StreamConsumer,
  signal?: AbortSignal,
): Promise<void> {
  const stages = [dec.stage, decompressStage(manifest.pipeline.compression)].filter((s): s is CommandSpec => s !== undefined);
  const key = `${manifest.id}/${artifact.name}`;
  const source = await storage.read(key);
  const progress = new Progress(`reading ${key}`, { object: key });
  const pipeline = stages.length > 0 ? new Pipeline(stages, { kind: 'pipe' }) : undefined;
  const input = pipeline?.stdin ?? new PassThrough();
  const plaintext = pipeline?.stdout ?? (input as PassThrough);
  const onAbort = () => {
    pipeline?.kill();
    plaintext.destroy(new BackupError('interrupted'));
  };
  signal?.addEventListener('abort', onAbort);
  try {
    const feeding = feedVerified(source, input, artifact, (n) => progress.add(n)).catch((e) => {
      pipeline?.kill('SIGKILL');
      source.destroy();
      plaintext.destroy(e);
      throw e;
    });
    const consuming = consumer(plaintext).finally(() => plaintext.resume());
    const waiting = pipeline?.wait() ?? Promise.resolve();
    const [f, w, c] = await Promise.allSettled([feeding, waiting, consuming]);
    if (signal?.aborted) throw signal.reason;
    if (f.status === 'rejected') throw f.reason;
    if (w.status === 'rejected') throw w.reason;
    if (c.status === 'rejected') throw c.reason;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    progress.stop();
  }
}

/** A buffer as a stream. */
export function streamOf(b: Buffer): Readable {
  return Readable.from([b]);
}
