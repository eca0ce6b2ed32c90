// A parallel dump's spool streamed out compressed (spool-tar.ts, `compress`): a large file is read by
// a compressor of its own (its bytes never pass through the runner), the headers and small files by
// one compressor per run of them; the concatenated frames decode, with each codec's own tool, to the
// same tar archive, every file whole and in place; a compressor that fails fails the stream. In a
// backup's pipeline to file:// with no encryption, the compressors write the stored file themselves
// (the runner's own stall guard still stops a tool that writes nothing).
import { afterAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Compression } from '../../lib/core/model';
import { EncryptionScheme, parseStorageUrl } from '../../lib/core/urls';
import { pipelineSettings } from '../../runner/src/config';
import { runPipeline } from '../../runner/src/pipeline/store';
import { openStorage } from '../../runner/src/storage';
import { compressStage, decompressStage } from '../../runner/src/pipeline/compress';
import { spoolTarProducer } from '../../runner/src/pipeline/spool-tar';
import { CommandSpec } from '../../runner/src/pipeline/stages';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-spool-compress-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** The size from which a file gets a compressor of its own, here (the runner's is 32 MiB). */
const OWN = 4 << 20;
/** Files of every kind of size: two large (one not a multiple of 512), small ones, an empty one. */
const FILES: Record<string, number> = {
  'toc.dat': 3000,
  '3001.dat': OWN + 123,
  '3002.dat': 512,
  '3003.dat': 0,
  '3004.dat': OWN * 2,
  '3005.dat': 70_000,
};

/** The reference copies, and a tool that writes the same files into the spool directory `dir`. */
function makeTool(tag: string, dir: string): CommandSpec {
  const reference = path.join(work, `ref-${tag}`);
  fs.mkdirSync(reference);
  for (const [name, size] of Object.entries(FILES)) {
    // Half text, half random: compressible, but not trivially.
    const half = Math.floor(size / 2);
    const text = Buffer.from('row\t2026-12-01 12:00:00+00\t{"k": 1}\n'.repeat(Math.ceil(half / 30) + 1));
    fs.writeFileSync(path.join(reference, name), Buffer.concat([text.subarray(0, half), randomBytes(size - half)]));
  }
  return {
    cmd: 'sh',
    args: ['-c', 'mkdir "$1" && for f in "$2"/*; do cat "$f" > "$1/${f##*/}"; done', 'sh', dir, reference],
    label: 'the-tool',
  };
}

/** A compressor that logs whether its stdin is a regular file (a file of its own) or a pipe, then runs `real`. */
function logged(real: CommandSpec, log: string, failOnFile = false): CommandSpec {
  const script =
    `if [ -f /proc/self/fd/0 ]; then echo file >> '${log}'; ` +
    `${failOnFile ? 'echo "cannot compress" >&2; exit 7;' : ''} ` +
    `else echo pipe >> '${log}'; fi; exec "$0" "$@"`;
  return { cmd: 'sh', args: ['-c', script, real.cmd, ...real.args], label: real.label ?? path.basename(real.cmd) };
}

async function run(compress: CommandSpec | undefined, tag: string): Promise<{ out: Buffer; error?: Error }> {
  const spool = fs.mkdtempSync(path.join(work, `spool-${tag}-`));
  const dir = path.join(spool, 'database.pgdir');
  const tool = makeTool(tag, dir);
  const started = spoolTarProducer({
    tool,
    dir,
    top: 'database.pgdir',
    ownCompressorBytes: OWN,
    cleanup: () => fs.rmSync(spool, { recursive: true, force: true }),
  }).start(() => undefined, compress);
  expect(started.compressed).toBe(compress !== undefined);
  const chunks: Buffer[] = [];
  started.stdout.on('data', (d: Buffer) => chunks.push(d));
  try {
    await started.done;
    return { out: Buffer.concat(chunks) };
  } catch (e) {
    return { out: Buffer.concat(chunks), error: e as Error };
  } finally {
    expect(fs.existsSync(spool)).toBe(false);
  }
}

/** Decode with the codec's own tool, extract with GNU tar: each file equal to its reference. */
function expectWhole(archive: Buffer, c: Compression, tag: string): void {
  const dec = decompressStage(c);
  const tar =
    dec === undefined ? archive : execFileSync(dec.cmd, [...dec.args], { input: archive, maxBuffer: 1 << 30 });
  const into = path.join(work, `out-${tag}`);
  fs.mkdirSync(into);
  execFileSync('tar', ['-x', '-f', '-', '-C', into], { input: tar });
  const reference = path.join(work, `ref-${tag}`);
  expect(fs.readdirSync(path.join(into, 'database.pgdir')).sort()).toEqual(Object.keys(FILES).sort());
  for (const name of Object.keys(FILES)) {
    const got = fs.readFileSync(path.join(into, 'database.pgdir', name));
    expect(got.length).toBe(FILES[name]);
    expect(got.equals(fs.readFileSync(path.join(reference, name)))).toBe(true);
  }
}

describe('a spool streamed out compressed', () => {
  for (const c of [Compression.ZSTD, Compression.GZIP, Compression.LZ4]) {
    test(`${c}: large files by compressors of their own reading them; decodes to the same files`, async () => {
      const log = path.join(work, `log-${c}`);
      const r = await run(logged(compressStage(c)!, log), c);
      expect(r.error).toBeUndefined();
      expectWhole(r.out, c, c);
      const kinds = fs.readFileSync(log, 'utf8').trim().split('\n');
      // The two large files each read from their file; the rest through a few piped segments.
      expect(kinds.filter((k) => k === 'file')).toHaveLength(2);
      expect(kinds.filter((k) => k === 'pipe').length).toBeGreaterThanOrEqual(1);
      expect(kinds.filter((k) => k === 'pipe').length).toBeLessThanOrEqual(3);
      // Compressed: well under the files' size (their halves of text).
      const total = Object.values(FILES).reduce((a, b) => a + b, 0);
      expect(r.out.length).toBeLessThan(total * 0.8);
    });
  }

  test('without a compressor: the plain tar archive, as before', async () => {
    const r = await run(undefined, 'plain');
    expect(r.error).toBeUndefined();
    expectWhole(r.out, Compression.NONE, 'plain');
  });

  test('a compressor that fails on a large file fails the stream with its own error; no spool left', async () => {
    const log = path.join(work, 'log-fail');
    const r = await run(logged(compressStage(Compression.ZSTD)!, log, true), 'fail');
    expect(r.error?.message).toMatch(/zstd exited with code 7: cannot compress/);
  });
});

describe("a compressing spool in a backup's pipeline (file://, no encryption)", () => {
  const none = { manifest: { scheme: EncryptionScheme.NONE } } as const;

  test('the compressors write the stored file; its size and sha256 are those of the file', async () => {
    const spool = fs.mkdtempSync(path.join(work, 'spool-direct-'));
    const dir = path.join(spool, 'database.pgdir');
    const producer = spoolTarProducer({
      tool: makeTool('direct', dir),
      dir,
      top: 'database.pgdir',
      ownCompressorBytes: OWN,
      cleanup: () => fs.rmSync(spool, { recursive: true, force: true }),
    });
    const storeDir = path.join(work, 'store-direct');
    const storage = openStorage(parseStorageUrl(`file://${storeDir}`));
    const key = 'b1/database.pgdir.tar.zst';
    const stored = await runPipeline(
      storage,
      key,
      producer,
      { compression: Compression.ZSTD },
      none,
      undefined,
      new AbortController().signal,
    );
    const file = fs.readFileSync(path.join(storeDir, key));
    expect(stored.size).toBe(file.length);
    expect(stored.sha256).toBe(createHash('sha256').update(file).digest('hex'));
    expectWhole(file, Compression.ZSTD, 'direct');
    expect(fs.existsSync(spool)).toBe(false);
  });

  test('a tool that writes nothing for --stall-timeout: stopped, the error says so, nothing stored', async () => {
    const spool = fs.mkdtempSync(path.join(work, 'spool-stall-'));
    const dir = path.join(spool, 'database.pgdir');
    const producer = spoolTarProducer({
      tool: { cmd: 'sh', args: ['-c', 'mkdir "$1" && exec sleep 60', 'sh', dir], label: 'the-tool' },
      dir,
      top: 'database.pgdir',
      cleanup: () => fs.rmSync(spool, { recursive: true, force: true }),
    });
    const storeDir = path.join(work, 'store-stall');
    const storage = openStorage(parseStorageUrl(`file://${storeDir}`));
    const before = pipelineSettings.stallTimeoutSeconds;
    pipelineSettings.stallTimeoutSeconds = 1;
    const t0 = Date.now();
    try {
      await expect(
        runPipeline(
          storage,
          'b2/database.pgdir.tar.zst',
          producer,
          { compression: Compression.ZSTD },
          none,
          undefined,
          new AbortController().signal,
        ),
      ).rejects.toThrow(/no bytes moved through the-tool for \d+ s .*raise --stall-timeout SECONDS/);
    } finally {
      pipelineSettings.stallTimeoutSeconds = before;
    }
    expect(Date.now() - t0).toBeLessThan(20000);
    expect(fs.existsSync(path.join(storeDir, 'b2/database.pgdir.tar.zst'))).toBe(false);
    expect(fs.existsSync(spool)).toBe(false);
  });
});
