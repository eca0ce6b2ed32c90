/**
 * `store`: one object written through the pipeline producer → compress → encrypt → sha256 →
 * storage.upload. Used by backup (each artifact), wal-push and binlog-stream (each log object).
 */
import { buffer } from 'node:stream/consumers';
import { Compression, RetentionTier } from '../../../lib/core/model';
import { BackupError } from '../errors';
import { Progress } from '../log';
import { Storage } from '../storage';
import { guarded } from './abort';
import { compressStage } from './compress';
import { PreparedEncryption } from './encrypt';
import { CommandSpec, Pipeline, StallGuard, StreamProducer } from './stages';
import { GatedDigest } from './stream';

/**
 * What an empty stream is stored as through the compress and encrypt stages of a backup (zstd's
 * empty frame; age's header and its one empty chunk): an artifact stored at exactly this size came
 * from a producer that wrote nothing. Every scheme's output length depends only on its input's
 * length, so the sizes compare; 0 without stages.
 */
export async function emptyStoredSize(
  cfg: { readonly compression: Compression },
  enc: PreparedEncryption,
): Promise<number> {
  const stages = [compressStage(cfg.compression), enc.stage].filter((s): s is CommandSpec => s !== undefined);
  if (stages.length === 0) return 0;
  const pipeline = new Pipeline(stages, { kind: 'pipe' });
  pipeline.stdin!.end();
  const [out] = await Promise.all([buffer(pipeline.stdout), pipeline.wait()]);
  return out.length;
}

/** The name a producer's failures carry (ChildProcessError.tool). */
export function producerLabel(p: CommandSpec | StreamProducer): string {
  return 'start' in p ? p.label : (p.label ?? p.cmd);
}

/**
 * The shared pipeline: producer → compress → encrypt → sha256 → storage.upload (also used by
 * wal-push and binlog-stream). The producer is a command (its stdout joined to the next stage by
 * the operating system) or a stream made in this process (a parallel dump's tar stream).
 * Interrupted, it kills the stages and the producer and aborts the upload (abort.ts).
 *
 * Where the storage takes a descriptor (file://: `openDirect`), the last stage writes the object's
 * temporary file itself and the sha256 is read back from the file once every stage exited 0: the
 * stored bytes never pass through this process (which costs CPU for every byte otherwise), and
 * the object is put in place only then, as an upload is only completed then.
 */
export async function runPipeline(
  storage: Storage,
  key: string,
  producer: CommandSpec | StreamProducer,
  cfg: { readonly compression: Compression },
  enc: PreparedEncryption,
  tier: RetentionTier | undefined,
  signal: AbortSignal,
  onProducerStderr?: (text: string) => void,
): Promise<{ size: number; sha256: string }> {
  const inProcess = 'start' in producer ? producer : undefined;
  const compress = compressStage(cfg.compression);
  // A producer that compresses its own stream (a spool's large files, read by their compressor).
  const ownCompressor = inProcess?.compresses === true ? compress : undefined;
  const stages = [
    inProcess === undefined ? (producer as CommandSpec) : undefined,
    ownCompressor === undefined ? compress : undefined,
    enc.stage,
  ].filter((s): s is CommandSpec => s !== undefined);
  if (signal.aborted) throw signal.reason;
  // With no stage after a producer that compresses its own stream, its compressors write the
  // stored object's file themselves where the storage takes a descriptor.
  const direct =
    (stages.length > 0 || ownCompressor !== undefined) && storage.openDirect !== undefined
      ? await storage.openDirect(key)
      : undefined;
  const producerWritesFile = direct !== undefined && stages.length === 0;
  let guard: StallGuard | undefined;
  const activity = () => {
    pipeline?.activity();
    guard?.activity();
  };
  let produced: ReturnType<StreamProducer['start']> | undefined;
  try {
    produced = inProcess?.start(activity, ownCompressor, producerWritesFile ? direct.fd : undefined);
    if (ownCompressor !== undefined && produced?.compressed !== true) {
      // Never store a plain stream under a compressed name (the manifest would say it is compressed).
      produced?.kill();
      throw new BackupError(`${inProcess!.label}: its stream did not take the compressor it was given`);
    }
  } catch (e) {
    // Refused before it started (e.g. no room for its spool): nothing was written.
    await direct?.discard();
    throw e;
  }
  const pipeline =
    stages.length > 0
      ? new Pipeline(stages, produced !== undefined ? { kind: 'pipe' } : { kind: 'none' }, {
          stallGuard: true,
          outputFd: direct?.fd,
          producerPipe: inProcess === undefined,
        })
      : undefined;
  // No stage to hold the stall guard: the producer has its own.
  if (pipeline === undefined && produced !== undefined) {
    const stalling = produced;
    guard = new StallGuard(inProcess!.label, () => stalling.kill('SIGKILL'));
  }
  if (onProducerStderr !== undefined && produced === undefined)
    pipeline!.children[0].process.stderr?.on('data', (d: Buffer) => onProducerStderr(d.toString('utf8')));
  // Every stage, the in-process producer first: its failure is the cause of the stages' (killed) ends.
  const settle = async (): Promise<void> => {
    const [p, w] = await Promise.allSettled([produced?.done, pipeline?.wait()]);
    guard?.stop();
    if (guard?.stalled !== undefined) throw guard.stalled;
    if (p.status === 'rejected') throw p.reason;
    if (w.status === 'rejected') throw w.reason;
  };
  let settled: Promise<void> | undefined;
  const wait = () => (settled ??= settle());
  produced?.done.catch(() => pipeline?.kill());
  const kill = () => {
    produced?.kill();
    pipeline?.kill();
  };
  const progress = new Progress(`${key}`, { object: key });
  if (direct !== undefined) {
    return guarded({ signal, pipeline, progress, onAbort: () => produced?.kill() }, async () => {
      // The file's growth is the bytes moving: progress, and the stall guard's activity.
      let seen = 0;
      const watch = setInterval(() => {
        const n = direct.written();
        if (n <= seen) return;
        progress.add(n - seen);
        seen = n;
        activity();
      }, 500);
      try {
        if (produced !== undefined && pipeline !== undefined) produced.stdout.pipe(pipeline.stdin!);
        else produced?.stdout.resume(); // the producer writes the file: nothing comes out here
        await wait();
        if (signal.aborted) throw signal.reason;
        const stored = await direct.commit();
        progress.add(stored.size - seen);
        return stored;
      } catch (e) {
        produced?.kill();
        await direct.discard();
        throw signal.aborted ? signal.reason : e;
      } finally {
        clearInterval(watch);
      }
    });
  }
  const digest = new GatedDigest(wait, (n) => {
    progress.add(n);
    activity();
  });
  // Failures are reported through the promises below; an error emitted after the upload has
  // already let go of the stream (an interrupt as the run starts) must not crash the process.
  digest.on('error', () => undefined);
  const controller = new AbortController();
  // The side that failed first is the cause; the other then fails because it was stopped (a
  // stage killed after a refused upload, an upload aborted after a stage failed).
  let first: 'upload' | 'stages' | undefined;
  const onAbort = () => {
    produced?.kill();
    controller.abort(signal.reason);
  };
  return guarded({ signal, pipeline, progress, onAbort }, async () => {
    try {
      if (produced !== undefined && pipeline !== undefined) produced.stdout.pipe(pipeline.stdin!);
      (pipeline?.stdout ?? produced!.stdout).pipe(digest);
      const uploading = storage.upload(key, digest, { tier, signal: controller.signal }).catch((e) => {
        first ??= 'upload';
        kill();
        throw e;
      });
      const waiting = wait().catch((e) => {
        first ??= 'stages';
        digest.destroy(e);
        throw e;
      });
      const [u, w] = await Promise.allSettled([uploading, waiting]);
      if (signal.aborted) throw signal.reason;
      if (u.status === 'rejected' && (first === 'upload' || w.status === 'fulfilled')) throw u.reason;
      if (w.status === 'rejected') throw w.reason;
      if (u.status === 'rejected') throw u.reason;
      return { size: digest.size, sha256: digest.digest() };
    } catch (e) {
      // guarded kills the stages; the in-process producer is stopped here.
      produced?.kill();
      throw e;
    }
  });
}
