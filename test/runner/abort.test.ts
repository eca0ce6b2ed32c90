/**
 * The one abort/cleanup helper of the pipeline (runner/src/pipeline/abort.ts), on real child
 * processes: an interruption kills the stages, the end of a run kills whatever still runs and
 * removes its listener, and haltNow kills with SIGKILL before the streams are destroyed.
 */
import * as assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from '@jest/globals';
import { guarded, haltNow } from '../../runner/src/pipeline/abort';
import { Pipeline } from '../../runner/src/pipeline/stages';

const SLEEPER = { cmd: 'sleep', args: ['30'], label: 'sleep' };

function exited(p: Pipeline): Promise<(NodeJS.Signals | null)[]> {
  return Promise.all(
    p.children.map((c) =>
      c.process.exitCode !== null || c.process.signalCode !== null
        ? Promise.resolve(c.process.signalCode)
        : new Promise<NodeJS.Signals | null>((r) => c.process.once('exit', (_code, sig) => r(sig))),
    ),
  );
}

describe('guarded', () => {
  test('an abort kills every stage and runs onAbort; the listener is removed when the run ends', async () => {
    const pipeline = new Pipeline([SLEEPER, SLEEPER], { kind: 'none' });
    pipeline.stdout.resume();
    const controller = new AbortController();
    let aborted = 0;
    const run = guarded({ signal: controller.signal, pipeline, onAbort: () => aborted++ }, async () => {
      await pipeline.wait();
      return 'finished';
    });
    setImmediate(() => controller.abort(new Error('interrupted')));
    await assert.rejects(run, (e: Error) => e.name === 'ChildProcessError' || /sleep/.test(e.message));
    assert.deepEqual(await exited(pipeline), ['SIGTERM', 'SIGTERM']);
    assert.equal(aborted, 1);
    controller.signal.dispatchEvent(new Event('abort'));
    assert.equal(aborted, 1, 'the listener outlived the run');
  });

  test('a signal that has already aborted interrupts at once', async () => {
    const pipeline = new Pipeline([SLEEPER], { kind: 'none' });
    pipeline.stdout.resume();
    let aborted = false;
    const signal = AbortSignal.abort(new Error('before the start'));
    await guarded({ signal, pipeline, onAbort: () => (aborted = true) }, async () => undefined);
    assert.equal(aborted, true);
    assert.deepEqual(await exited(pipeline), ['SIGTERM']);
  });

  test('a body that throws leaves no stage running and its error is what the caller gets', async () => {
    const pipeline = new Pipeline([SLEEPER], { kind: 'none' });
    pipeline.stdout.resume();
    let stopped = 0;
    const progress = { stop: () => stopped++ } as unknown as Parameters<typeof guarded>[0]['progress'];
    const boom = new Error('the storage refused');
    await assert.rejects(
      guarded({ pipeline, progress }, async () => {
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.deepEqual(await exited(pipeline), ['SIGTERM']);
    assert.equal(stopped, 1);
  });
});

describe('haltNow', () => {
  test('kills with SIGKILL, then destroys each stream, with the error where one is given', async () => {
    const pipeline = new Pipeline([SLEEPER], { kind: 'none' });
    pipeline.stdout.resume();
    const plain = new PassThrough();
    const carrying = new PassThrough();
    const damage = new Error('damaged');
    const seen: unknown[] = [];
    carrying.on('error', (e) => seen.push(e));
    haltNow(pipeline, plain, [carrying, damage]);
    assert.deepEqual(await exited(pipeline), ['SIGKILL']);
    assert.ok(plain.destroyed && carrying.destroyed);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, [damage]);
  });
});

describe('a consumer that exits early', () => {
  // `sh` reads its input and stays (as age can, still decrypting), `yes` dies of the broken pipe
  // once `head` has what it needs and exits 0; the pipeline then kills `sh` with SIGTERM.
  function readerYesHead(): Pipeline {
    const pipeline = new Pipeline(
      [
        { cmd: 'sh', args: ['-c', 'cat > /dev/null; exec sleep 30'], label: 'reader' },
        { cmd: 'yes', args: [], label: 'yes' },
        { cmd: 'head', args: ['-c', '10'], label: 'head' },
      ],
      { kind: 'pipe' },
    );
    pipeline.stdout.resume();
    pipeline.stdin!.end('input');
    return pipeline;
  }

  test('with consumerMayExitEarly, a stage killed after the broken pipe of the one after it is success', async () => {
    const pipeline = readerYesHead();
    await pipeline.wait({ consumerMayExitEarly: true });
    // yes: SIGPIPE, or exit 1 saying "Broken pipe" where it inherits SIGPIPE ignored.
    assert.deepEqual(await exited(pipeline).then((s) => [s[0], s[2]]), ['SIGTERM', null]);
    assert.equal(pipeline.children[2].process.exitCode, 0);
  });

  test('without it, the same run names the consumer that stopped reading', async () => {
    await assert.rejects(readerYesHead().wait(), /head exited 0 before reading all of its input; yes /);
  });
});
