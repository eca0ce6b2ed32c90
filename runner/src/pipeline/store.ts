/**
 * `store`: one object written through the pipeline producer → compress → encrypt → sha256 →
 * storage.upload. Used by backup (each artifact), wal-push and binlog-stream (each log object).
 */
import { Compression, RetentionTier } from '../../../lib/core/model';
import { Progress } from '../log';
import { Storage } from '../storage';
import { guarded } from './abort';
import { compressStage } from './compress';
import { PreparedEncryption } from './encrypt';
import { CommandSpec, Pipeline } from './stages';
import { GatedDigest } from './stream';

/**
 * The shared pipeline: producer → compress → encrypt → sha256 → storage.upload (also used by
 * wal-push and binlog-stream). Interrupted, it kills the stages and aborts the upload (abort.ts).
 */
export async function runPipeline(
  storage: Storage,
  key: string,
  producer: CommandSpec,
  cfg: { readonly compression: Compression },
  enc: PreparedEncryption,
  tier: RetentionTier | undefined,
  signal: AbortSignal,
  onProducerStderr?: (text: string) => void,
): Promise<{ size: number; sha256: string }> {
  const stages = [producer, compressStage(cfg.compression), enc.stage].filter((s): s is CommandSpec => s !== undefined);
  const pipeline = new Pipeline(stages, { kind: 'none' }, { stallGuard: true });
  if (onProducerStderr !== undefined)
    pipeline.children[0].process.stderr?.on('data', (d: Buffer) => onProducerStderr(d.toString('utf8')));
  const progress = new Progress(`${key}`, { object: key });
  const digest = new GatedDigest(
    () => pipeline.wait(),
    (n) => {
      progress.add(n);
      pipeline.activity();
    },
  );
  // Failures are reported through the promises below; an error emitted after the upload has
  // already let go of the stream (an interrupt as the run starts) must not crash the process.
  digest.on('error', () => undefined);
  const controller = new AbortController();
  // The side that failed first is the cause; the other then fails because it was stopped (a
  // stage killed after a refused upload, an upload aborted after a stage failed).
  let first: 'upload' | 'stages' | undefined;
  const parts = { signal, pipeline, progress, onAbort: () => controller.abort(signal.reason) };
  return guarded(parts, async () => {
    pipeline.stdout.pipe(digest);
    const uploading = storage.upload(key, digest, { tier, signal: controller.signal }).catch((e) => {
      first ??= 'upload';
      pipeline.kill();
      throw e;
    });
    const waiting = pipeline.wait().catch((e) => {
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
  });
}
