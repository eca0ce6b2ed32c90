// The jobs rule (lib/core/parallel.ts), the --jobs / --row-counts options, and the tar headers of
// a parallel dump's archive (read back by this program's reader and by GNU tar).
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { defaultJobs, dumpJobs, MAX_DEFAULT_JOBS, restoreJobs } from '../../lib/core/parallel';
import { parseInvocation } from '../../runner/src/config';
import { compareTables } from '../../runner/src/commands/drill';
import { parseTocList } from '../../runner/src/engines/postgres/parallel-restore';
import { shareOf } from '../../runner/src/engines/shared/loaders';
import { tarHeader } from '../../runner/src/pipeline/spool-tar';
import { TarKind, TarReader } from '../../runner/src/pipeline/tar';

describe('the jobs rule', () => {
  test('the cores, at most MAX_DEFAULT_JOBS, at least 1', () => {
    expect([0, 1, 2, 3, 4, 16].map(defaultJobs)).toEqual([1, 1, 2, 3, 4, MAX_DEFAULT_JOBS]);
  });
  test('a dump: --jobs wins; else parallel only with two large tables or more, never more jobs than them', () => {
    expect(dumpJobs(3, 16, 0)).toBe(3);
    expect(dumpJobs(undefined, 16, 0)).toBe(1);
    expect(dumpJobs(undefined, 16, 1)).toBe(1);
    expect(dumpJobs(undefined, 16, 2)).toBe(2);
    expect(dumpJobs(undefined, 2, 10)).toBe(2);
    expect(dumpJobs(undefined, 16, 10)).toBe(4);
  });
  test('a restore: --jobs wins; else the cores for a parallel dump, one stream for a single-stream one', () => {
    expect(restoreJobs(2, 16, false)).toBe(2);
    expect(restoreJobs(undefined, 16, true)).toBe(4);
    expect(restoreJobs(undefined, 16, false)).toBe(1);
  });
});

describe('a table of contents as pg_restore --list prints it', () => {
  test('items by dump id, comments skipped, TABLE DATA told apart (a table may be named so)', () => {
    const list = [
      ';',
      '; Archive created at 2026-12-01 15:24:45 UTC',
      ';     TOC Entries: 3',
      ';',
      '215; 1259 16385 TABLE public events_1 postgres',
      '3339; 0 16385 TABLE DATA public events_1 postgres',
      '216; 1259 16390 TABLE public TABLE DATA postgres',
      '3340; 0 0 SEQUENCE SET public s postgres',
      '',
    ].join('\n');
    expect(parseTocList(list)).toEqual([
      { id: 215, line: '215; 1259 16385 TABLE public events_1 postgres', tableData: false },
      { id: 3339, line: '3339; 0 16385 TABLE DATA public events_1 postgres', tableData: true },
      { id: 216, line: '216; 1259 16390 TABLE public TABLE DATA postgres', tableData: false },
      { id: 3340, line: '3340; 0 0 SEQUENCE SET public s postgres', tableData: false },
    ]);
  });
});

describe('--jobs and --row-counts', () => {
  const base = ['backup', '--engine', 'postgres', '--source', 'postgres://u@h/db', '--to', 'file:///tmp/x'];
  test('parsed for backup, restore and drill; 0 is refused naming the fix', () => {
    expect(parseInvocation([...base, '--jobs', '3'], {})).toMatchObject({ jobs: 3, rowCounts: 'exact' });
    expect(parseInvocation(base, { DBBACKUP_JOBS: '2' })).toMatchObject({ jobs: 2 });
    expect(parseInvocation(base, {})).toMatchObject({ jobs: undefined });
    const restore = ['restore', '--from', 'file:///tmp/x', '--latest', '--target', 'postgres://u@h/t', '--jobs', '4'];
    expect(parseInvocation(restore, {})).toMatchObject({ jobs: 4 });
    expect(() => parseInvocation([...base, '--jobs', '0'], {})).toThrow(/--jobs is '0'; give 1 or more/);
    expect(() => parseInvocation([...base, '--jobs', 'many'], {})).toThrow(/--jobs is 'many'; use a whole number/);
  });
  test('--row-counts takes exact or estimate; a drill checks an estimated table is there, not its count', () => {
    expect(parseInvocation([...base, '--row-counts', 'estimate'], {})).toMatchObject({ rowCounts: 'estimate' });
    expect(() => parseInvocation([...base, '--row-counts', 'roughly'], {})).toThrow(/use one of: exact, estimate/);
    const recorded = [
      { schema: 'public', name: 'a', rows: 100, estimated: true },
      { schema: 'public', name: 'b', rows: 5 },
      { schema: 'public', name: 'c', rows: 7, estimated: true },
    ];
    const restored = [
      { schema: 'public', name: 'a', rows: 97 },
      { schema: 'public', name: 'b', rows: 4 },
    ];
    expect(compareTables(recorded, restored)).toEqual([
      'table public.b has 4 rows after the restore; the backup recorded 5',
      'table public.c is missing after the restore',
    ]);
  });
});

describe('tar headers of a parallel dump', () => {
  async function* chunks(...bufs: Buffer[]): AsyncIterable<Buffer> {
    for (const b of bufs) yield b;
  }
  test('a directory, a file, a size of 8 GiB and more (base-256) and a long name read back as written', async () => {
    const body = Buffer.from('hello world');
    const pad = Buffer.alloc(512 - body.length);
    const long = `database.pgdir/${'x'.repeat(90)}.dat`; // over ustar's 100: split into prefix and name
    const reader = new TarReader(
      chunks(
        tarHeader('database.pgdir/', 0, 'directory', 0),
        tarHeader(long, body.length, 'file', 0),
        body,
        pad,
        Buffer.alloc(1024),
      ),
    );
    const dir = await reader.next();
    expect(dir).toMatchObject({ name: 'database.pgdir/', kind: TarKind.DIRECTORY });
    const file = await reader.next();
    expect(file).toMatchObject({ name: long, kind: TarKind.FILE, size: body.length, mode: 0o600 });
    expect(await reader.next()).toBeUndefined();
    // GNU tar reads the same bytes (names and sizes).
    const archive = Buffer.concat([tarHeader(long, body.length, 'file', 0), body, pad, Buffer.alloc(1024)]);
    expect(execFileSync('tar', ['-t', '-v', '-f', '-'], { input: archive }).toString()).toMatch(
      / 11 .*database\.pgdir\/x{90}\.dat/,
    );
    expect(() => tarHeader(`d/${'y'.repeat(101)}`, 0, 'file', 0)).toThrow(/name too long/);
    const huge = tarHeader('database.pgdir/big.dat', 9 * 2 ** 30, 'file', 0);
    expect(huge[124]).toBe(0x80);
    const big = await new TarReader(chunks(huge)).next();
    expect(big?.size).toBe(9 * 2 ** 30);
  });
});

describe("a streaming restore's batches (engines/shared/loaders.ts)", () => {
  const files = (...sizes: number[]) => sizes.map((size, i) => ({ name: `f${i}`, size }));
  test('a loader takes at least one file, then files within a 1/jobs share of the ready bytes, in order', () => {
    expect(shareOf(files(10, 10, 10, 10), 2).map((f) => f.name)).toEqual(['f0', 'f1']);
    expect(shareOf(files(10, 10, 10, 10), 4).map((f) => f.name)).toEqual(['f0']);
    expect(shareOf(files(100, 1, 1), 4).map((f) => f.name)).toEqual(['f0']);
    expect(shareOf(files(1, 1, 100), 2).map((f) => f.name)).toEqual(['f0', 'f1']);
    expect(shareOf(files(5, 5), 1).map((f) => f.name)).toEqual(['f0', 'f1']);
    expect(shareOf([], 2)).toEqual([]);
  });
});
