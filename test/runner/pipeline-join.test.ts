import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { ChildProcessError } from '../../runner/src/errors';
import { osPipe, Pipeline } from '../../runner/src/pipeline/stages';

/** This process's descriptors of an osPipe() FIFO (they link to its removed path). */
const fifoFds = (): string[] =>
  fs.readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const to = fs.readlinkSync(`/proc/self/fd/${fd}`);
      return to.includes('dbbackup-pipe-') ? [`${fd} -> ${to}`] : [];
    } catch {
      return []; // the listing's own descriptor, gone
    }
  });

/**
 * Writes what its stdout is (stat's %F: fifo, socket), then 3 MB; the next stage says what its own
 * stdout is and counts the rest.
 */
const PRODUCER = {
  cmd: 'sh',
  args: ['-c', 'stat -L -c %F /proc/self/fd/1; head -c 3000000 /dev/zero'],
  label: 'producer',
};
const COUNTER = {
  cmd: 'sh',
  args: ['-c', 'IFS= read -r first; echo "$first"; stat -L -c %F /proc/self/fd/1; wc -c'],
  label: 'counter',
};

describe("a dump tool's output reaches the next stage through a pipe of the operating system", () => {
  let tmp: string;
  const realTmp = process.env.TMPDIR;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-join-'));
    process.env.TMPDIR = tmp;
  });
  afterAll(() => {
    if (realTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = realTmp;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('producerPipe: the first join is a pipe, the others socket pairs; every byte and the end arrive', async () => {
    const p = new Pipeline([PRODUCER, COUNTER], { kind: 'none' }, { producerPipe: true });
    const [first, second, count] = (await text(p.stdout)).trim().split('\n');
    await p.wait();
    assert.equal(first, 'fifo');
    assert.equal(second, 'socket');
    // The line the counter read first is not counted: 3 MB of the producer's, nothing lost.
    assert.equal(Number(count), 3000000);
    assert.deepEqual(fifoFds(), [], 'a descriptor of the pipe was left open here');
    assert.deepEqual(fs.readdirSync(tmp), [], 'the FIFO (or its directory) was left behind');
  });

  test('without it the join is the socket pair Node makes', async () => {
    const p = new Pipeline([PRODUCER, COUNTER], { kind: 'none' });
    const [first, , count] = (await text(p.stdout)).trim().split('\n');
    await p.wait();
    assert.equal(first, 'socket');
    assert.equal(Number(count), 3000000);
  });

  test("a producer's failure is the pipeline's, named by its label", async () => {
    const failing = { cmd: 'sh', args: ['-c', 'head -c 100000 /dev/zero; exit 3'], label: 'producer' };
    const p = new Pipeline([failing, { cmd: 'wc', args: ['-c'] }], { kind: 'none' }, { producerPipe: true });
    assert.equal((await text(p.stdout)).trim(), '100000');
    await assert.rejects(p.wait(), (e: unknown) => e instanceof ChildProcessError && /producer/.test(e.message));
    assert.deepEqual(fifoFds(), []);
  });

  test('the next stage gone: the producer ends (broken pipe), and the first failure is named', async () => {
    const endless = { cmd: 'sh', args: ['-c', 'exec cat /dev/zero'], label: 'producer' };
    const quits = { cmd: 'sh', args: ['-c', 'head -c 10 >/dev/null; exit 4'], label: 'quitter' };
    const p = new Pipeline([endless, quits], { kind: 'none' }, { producerPipe: true });
    p.stdout.resume();
    await assert.rejects(p.wait(), /quitter/);
  });

  test('osPipe: both ends block and carry bytes; its FIFO is gone at once', () => {
    const pipe = osPipe();
    assert.ok(pipe !== undefined, 'mkfifo is missing from PATH');
    try {
      assert.deepEqual(fs.readdirSync(tmp), []);
      assert.ok(fs.fstatSync(pipe.read).isFIFO() && fs.fstatSync(pipe.write).isFIFO());
      fs.writeSync(pipe.write, 'abc');
      const buf = Buffer.alloc(3);
      assert.equal(fs.readSync(pipe.read, buf), 3);
      assert.equal(buf.toString(), 'abc');
    } finally {
      fs.closeSync(pipe.write);
      fs.closeSync(pipe.read);
    }
  });
});
