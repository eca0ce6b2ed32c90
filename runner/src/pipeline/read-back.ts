import * as fs from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { Manifest, ManifestArtifact } from '../../../lib/core/manifest';
import { BackupError, ChildProcessError, StageError } from '../errors';
import { Progress } from '../log';
import { guarded, haltNow } from './abort';
import { decompressStage } from './compress';
import { PreparedDecryption } from './encrypt';
import { FeedOptions, feedVerified } from './stream';
import { CommandSpec, Pipeline } from './stages';
import { Storage } from '../storage';

/** Plaintext artifacts read into memory (globals scripts) are capped at this size. */
const MAX_BUFFERED = 256 << 20;

/** A consumer in this process: reads the whole plaintext stream, rejects when it is not right. */
export type StreamConsumer = (plaintext: Readable) => Promise<void>;

/**
 * The plaintext written to a new file (`file`, mode 0600, refused if it exists) by the last stage
 * that decrypts or decompresses, so no byte of it passes through this process (by `dd` when there
 * is no such stage). Like every consumer it sees the end only once the stored bytes matched.
 */
export interface FileConsumer {
  readonly file: string;
}

function isFileConsumer(c: unknown): c is FileConsumer {
  return typeof c === 'object' && c !== null && 'file' in c;
}

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
  consumer: CommandSpec | 'buffer' | StreamConsumer | FileConsumer,
  signal?: AbortSignal,
  feed: FeedOptions = {},
): Promise<Buffer | undefined> {
  if (typeof consumer === 'function') {
    await readInto(storage, manifest, artifact, dec, consumer, signal);
    return undefined;
  }
  const file = isFileConsumer(consumer) ? consumer.file : undefined;
  let stages = [
    dec.stage,
    decompressStage(manifest.pipeline.compression),
    consumer === 'buffer' || isFileConsumer(consumer) ? undefined : consumer,
  ].filter((s): s is CommandSpec => s !== undefined);
  // The consumer that runs a command and may exit before the end (pg_restore skips the last bytes).
  const command = consumer !== 'buffer' && file === undefined;
  let outputFd: number | undefined;
  if (file !== undefined && stages.length === 0)
    stages = [{ cmd: 'dd', args: [`of=${file}`, 'bs=1M', 'status=none', 'conv=excl'], label: 'dd' }];
  else if (file !== undefined) outputFd = fs.openSync(file, 'wx', 0o600);
  try {
    return await readThrough(
      storage,
      manifest,
      artifact,
      stages,
      consumer === 'buffer',
      command,
      outputFd,
      signal,
      command ? feed : {},
    );
  } finally {
    if (outputFd !== undefined) fs.closeSync(outputFd);
  }
}

/** readBack through `stages` (the last one writing `outputFd` when given). */
async function readThrough(
  storage: Storage,
  manifest: Manifest,
  artifact: ManifestArtifact,
  stages: CommandSpec[],
  buffer: boolean,
  command: boolean,
  outputFd: number | undefined,
  signal?: AbortSignal,
  feed: FeedOptions = {},
): Promise<Buffer | undefined> {
  const key = `${manifest.id}/${artifact.name}`;
  if (signal?.aborted) throw signal.reason;
  const source = await storage.read(key);
  const progress = new Progress(`reading ${key}`, { object: key });
  if (stages.length === 0) {
    // Nothing to transform: the stored bytes are the plaintext.
    const chunks: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => chunks.push(c));
    await feedVerified(source, sink, artifact, (n) => progress.add(n)).finally(() => progress.stop());
    return Buffer.concat(chunks);
  }
  const pipeline = new Pipeline(
    stages,
    { kind: 'pipe' },
    { stallGuard: true, onStall: (e) => source.destroy(e), outputFd },
  );
  const collected: Buffer[] = [];
  let collectedSize = 0;
  pipeline.stdout.on('data', (c: Buffer) => {
    pipeline.activity();
    if (!buffer) return;
    collectedSize += c.length;
    if (collectedSize > MAX_BUFFERED) {
      pipeline.kill();
      return;
    }
    collected.push(c);
  });
  return guarded({ signal, pipeline, progress }, async () => {
    const feeding = feedVerified(
      source,
      pipeline.stdin!,
      artifact,
      (n) => {
        progress.add(n);
        pipeline.activity();
      },
      undefined,
      feed,
    ).then(
      (fed) => {
        // All input delivered: a consumer may now work for long without reading (indexes).
        if (command) pipeline.inputComplete();
        return fed;
      },
      (e) => {
        // Damaged or unreadable: stop the consumer before it sees the end of the stream.
        haltNow(pipeline, source);
        throw e;
      },
    );
    const waiting = pipeline.wait({ consumerMayExitEarly: command });
    const [f, w] = await Promise.allSettled([feeding, waiting]);
    if (signal?.aborted) throw signal.reason;
    if (pipeline.stalled !== undefined) throw pipeline.stalled;
    if (f.status === 'rejected' && (f.reason as Error).name === 'DamagedError') throw f.reason;
    if (collectedSize > MAX_BUFFERED)
      throw new BackupError(`${artifact.name} is larger than ${MAX_BUFFERED} bytes of plaintext`);
    const exitedEarly = f.status === 'fulfilled' && !f.value.delivered && pipeline.children[0].process.exitCode === 0;
    if (w.status === 'rejected') {
      throw exitedEarly ? notRead(pipeline, artifact, f.value.written, w.reason as Error) : w.reason;
    }
    if (f.status === 'rejected') throw f.reason;
    // The first stage stopped taking input before the end, yet every stage exited 0: success
    // only for a consumer that read what it needs (pg_restore skips the archive's last bytes).
    if (!f.value.delivered && !command) throw notRead(pipeline, artifact, f.value.written);
    return buffer ? Buffer.concat(collected) : undefined;
  }).catch((e) => {
    if (signal?.aborted === true) throw e;
    throw asStageError(e, command ? pipeline.children[stages.length - 1].label : undefined);
  });
}

/**
 * A failure of a stage that decrypts or decompresses (or of the run's own guard), once the stored
 * bytes matched the manifest: a StageError (exit 1), never damage. The consumer's own failure
 * (`consumer`, e.g. pg_restore reading the archive) stays as it is, unless it was not installed
 * or was killed by a signal.
 */
function asStageError(e: unknown, consumer?: string): unknown {
  if (!(e instanceof BackupError) || e instanceof StageError) return e;
  if (e instanceof ChildProcessError && e.tool === consumer && e.exitCode !== 127 && e.signal === null) return e;
  return new StageError(e.message);
}

/** The first stage exited 0 without reading all of its input. */
function notRead(pipeline: Pipeline, artifact: ManifestArtifact, written: number, then?: Error): BackupError {
  const first = pipeline.children[0];
  return new BackupError(
    `${first.label} exited before reading all of ${artifact.name} (it took ${written} of ${artifact.size} bytes)` +
      (first.stderr.trim() !== '' ? `: ${first.stderr.trim().split('\n').slice(-3).join(' | ')}` : '') +
      `; the stages were ${pipeline.description}` +
      (then !== undefined ? `; then ${then.message}` : `. Check that ${first.process.spawnfile} is the real tool.`),
  );
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
  const stages = [dec.stage, decompressStage(manifest.pipeline.compression)].filter(
    (s): s is CommandSpec => s !== undefined,
  );
  const key = `${manifest.id}/${artifact.name}`;
  if (signal?.aborted) throw signal.reason;
  const source = await storage.read(key);
  const progress = new Progress(`reading ${key}`, { object: key });
  const pipeline =
    stages.length > 0
      ? new Pipeline(stages, { kind: 'pipe' }, { stallGuard: true, onStall: (e) => stop(e) })
      : undefined;
  const input = pipeline?.stdin ?? new PassThrough();
  const plaintext = pipeline?.stdout ?? (input as PassThrough);
  const stop = (e: Error) => {
    source.destroy(e);
    plaintext.destroy(e);
  };
  const onAbort = () => plaintext.destroy(new BackupError('interrupted'));
  let consumerError: unknown;
  return guarded({ signal, pipeline, progress, onAbort }, async () => {
    const feeding = feedVerified(source, input, artifact, (n) => {
      progress.add(n);
      pipeline?.activity();
    }).catch((e) => {
      haltNow(pipeline, source, [plaintext, e]);
      throw e;
    });
    const consuming = consumer(plaintext).finally(() => plaintext.resume());
    const waiting = pipeline?.wait() ?? Promise.resolve();
    const [f, w, c] = await Promise.allSettled([feeding, waiting, consuming]);
    if (signal?.aborted) throw signal.reason;
    if (pipeline?.stalled !== undefined) throw pipeline.stalled;
    if (f.status === 'rejected' && (f.reason as Error).name === 'DamagedError') throw f.reason;
    const exitedEarly = f.status === 'fulfilled' && !f.value.delivered && pipeline?.children[0].process.exitCode === 0;
    if (w.status === 'rejected') {
      throw exitedEarly ? notRead(pipeline!, artifact, f.value.written, w.reason as Error) : w.reason;
    }
    if (f.status === 'rejected') throw f.reason;
    if (c.status === 'rejected') {
      consumerError = c.reason;
      throw c.reason;
    }
    if (!f.value.delivered) {
      if (pipeline !== undefined) throw notRead(pipeline, artifact, f.value.written);
      throw new BackupError(
        `the reader of ${artifact.name} stopped before the end ` +
          `(it took ${f.value.written} of ${artifact.size} bytes)`,
      );
    }
  }).catch((e) => {
    throw signal?.aborted === true || e === consumerError ? e : asStageError(e);
  });
}

/** A buffer as a stream. */
export function streamOf(b: Buffer): Readable {
  return Readable.from([b]);
}
