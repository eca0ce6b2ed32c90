// The checks around a parallel dump that need no server: the spool's free space against the
// caller's estimate (refused before the tool starts), a tool that fills the spool's filesystem
// named as TMPDIR's, the tools a MySQL/MariaDB plan names for --jobs N (mydumper, myloader), and
// --jobs above 1 refused for MongoDB, which takes no jobs (the option table's engines field).
import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Manifest } from '../../lib/core/manifest';
import { BackupMethod, BackupType } from '../../lib/core/model';
import { parseInvocation } from '../../runner/src/config';
import { ToolPurpose } from '../../runner/src/engines';
import { MySQLDriver } from '../../runner/src/engines/mysql/driver';
import { classifyMydumperFile } from '../../runner/src/engines/mysql/parallel-restore';
import { checkSpoolSpace, spoolTarProducer } from '../../runner/src/pipeline/spool-tar';
import { ProducedStream } from '../../runner/src/pipeline/stages';

/** Run a spool-tar producer to its end; the archive's bytes, or the error it failed with. */
async function drain(producer: ReturnType<typeof spoolTarProducer>): Promise<{ bytes: number; error?: Error }> {
  let started: ProducedStream;
  try {
    started = producer.start(() => undefined);
  } catch (e) {
    return { bytes: 0, error: e as Error };
  }
  let bytes = 0;
  started.stdout.on('data', (d: Buffer) => (bytes += d.length));
  try {
    await started.done;
    return { bytes };
  } catch (e) {
    return { bytes, error: e as Error };
  }
}

describe('the spool of a parallel dump', () => {
  const spoolWith = (tool: string, expectBytes?: number) => {
    const spool = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-units-spool-'));
    const dir = path.join(spool, 'database.test');
    let cleaned = 0;
    const producer = spoolTarProducer({
      tool: { cmd: 'sh', args: ['-c', tool, 'sh', dir], label: 'the-tool' },
      dir,
      top: 'database.test',
      expectBytes,
      cleanup: () => {
        cleaned++;
        fs.rmSync(spool, { recursive: true, force: true });
      },
    });
    return { spool, dir, producer, cleaned: () => cleaned };
  };

  test('more than the filesystem has free: refused before the tool starts, naming TMPDIR, bytes, fix', async () => {
    const free = fs.statfsSync(os.tmpdir());
    const needed = free.bavail * free.bsize * 2 + 1;
    const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-units-ran-')), 'ran');
    const s = spoolWith(`touch '${marker}'; mkdir "$1"`, needed);
    const r = await drain(s.producer);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fs.existsSync(marker)).toBe(false);
    fs.rmSync(path.dirname(marker), { recursive: true, force: true });
    expect(r.error?.name).toBe('ConfigError');
    expect(r.error?.message).toMatch(/the spool of the-tool in TMPDIR \(.*dbbackup-units-spool-/);
    expect(r.error?.message).toContain(`(${needed} bytes)`);
    expect(r.error?.message).toMatch(
      /bytes\) free; give TMPDIR a directory .* more free space, fewer --jobs, or --jobs 1/,
    );
    // The spool was removed (the tool never ran: no marker above).
    expect(fs.existsSync(s.spool)).toBe(false);
    expect(s.cleaned()).toBe(1);
  });

  test('an estimate the filesystem holds: the tool runs and its files are streamed', async () => {
    const s = spoolWith('mkdir "$1" && printf hello > "$1/a.sql"', 4096);
    const r = await drain(s.producer);
    expect(r.error).toBeUndefined();
    // The directory header, one file's header and data block, the two end blocks.
    expect(r.bytes).toBe(512 * 5);
    expect(fs.existsSync(s.spool)).toBe(false);
    expect(() => checkSpoolSpace(os.tmpdir(), undefined, 'x')).not.toThrow();
    expect(() => checkSpoolSpace(os.tmpdir(), 1, 'x')).not.toThrow();
  });

  test('a tool that runs out of space: the error says it was the spool on TMPDIR, and how to fix it', async () => {
    // /dev/full fails every write with ENOSPC, as a full TMPDIR does.
    const s = spoolWith('mkdir "$1" && printf x > "$1/a.sql" && dd if=/dev/zero of=/dev/full bs=512 count=1');
    const r = await drain(s.producer);
    expect(r.error?.name).toBe('BackupError');
    expect(r.error?.message).toMatch(/^the spool in TMPDIR \(.*\) filled its filesystem: the-tool could not write/);
    expect(r.error?.message).toMatch(/fewer --jobs, or --jobs 1 \(one stream, no spool\)/);
    expect(r.error?.message).toMatch(/the-tool exited with code 1: .*No space left on device/);
    expect(fs.existsSync(s.spool)).toBe(false);
  });

  test('any other failure of the tool stays as it is', async () => {
    const s = spoolWith('mkdir "$1" && echo "Access denied" >&2 && exit 2');
    const r = await drain(s.producer);
    expect(r.error?.message).toMatch(/^the-tool exited with code 2: Access denied/);
  });
});

describe('the tools of a MySQL/MariaDB plan', () => {
  const driver = new MySQLDriver();
  const labels = (tools: readonly { label: string }[]) => tools.map((t) => t.label);
  test('an explicit --jobs N above 1 of a full logical backup needs mydumper, named with its package', () => {
    const tools = driver.tools(ToolPurpose.BACKUP, BackupMethod.LOGICAL, { type: BackupType.FULL, jobs: 2 });
    const mydumper = tools.find((t) => t.label === 'mydumper');
    expect(mydumper?.why).toBe('--jobs 2');
    expect(mydumper?.fix).toMatch(/apt-get install mydumper.*or give --jobs 1/);
    expect(labels(driver.tools(ToolPurpose.BACKUP, BackupMethod.LOGICAL, {}))).not.toContain('mydumper');
    expect(labels(driver.tools(ToolPurpose.BACKUP, BackupMethod.LOGICAL, { jobs: 1 }))).not.toContain('mydumper');
    const incremental = { type: BackupType.INCREMENTAL, jobs: 2 };
    expect(labels(driver.tools(ToolPurpose.BACKUP, BackupMethod.LOGICAL, incremental))).not.toContain('mydumper');
  });
  test("a restore of a backup dumped by mydumper needs myloader, whatever the restore's --jobs", () => {
    const manifest = (format: string) =>
      ({ id: 'b1', artifacts: [{ name: 'database', role: 'database', format }] }) as unknown as Manifest;
    const tools = driver.tools(ToolPurpose.RESTORE, BackupMethod.LOGICAL, {
      manifest: manifest('mydumper-directory-tar'),
    });
    expect(tools.find((t) => t.label === 'myloader')?.fix).toMatch(/apt-get install mydumper/);
    const single = driver.tools(ToolPurpose.RESTORE, BackupMethod.LOGICAL, { manifest: manifest('mysql-sql') });
    expect(labels(single)).not.toContain('myloader');
  });
});

describe('--jobs for MongoDB', () => {
  const mongo = 'mongodb://u@h1:27017/app';
  test('above 1 is refused for backup, restore and drill, naming the option; 1 and none are taken', () => {
    const backup = ['backup', '--engine', 'mongodb', '--source', mongo, '--to', 'file:///tmp/x'];
    expect(() => parseInvocation([...backup, '--jobs', '4'], {})).toThrow(
      new RegExp(
        /--jobs is '4', but it applies to PostgreSQL and MySQL\/MariaDB only, not to MongoDB /.source +
          /\(the mongodb backup here\); leave --jobs \(and DBBACKUP_JOBS\) out, or give --jobs 1\./.source,
      ),
    );
    expect(() => parseInvocation(backup, { DBBACKUP_JOBS: '2' })).toThrow(/--jobs is '2', but .* not to MongoDB/);
    expect(parseInvocation([...backup, '--jobs', '1'], {})).toMatchObject({ jobs: 1 });
    expect(parseInvocation(backup, {})).toMatchObject({ jobs: undefined });
    const restore = ['restore', '--from', 'file:///tmp/x', '--latest', '--target', mongo, '--jobs', '2'];
    expect(() => parseInvocation(restore, {})).toThrow(/--jobs is '2', but .* not to MongoDB \(the mongodb restore/);
    const drill = ['drill', '--from', 'file:///tmp/x', '--target', mongo, '--jobs', '2'];
    expect(() => parseInvocation(drill, {})).toThrow(/--jobs is '2', but .* not to MongoDB \(the mongodb drill/);
    // The other engines keep taking it.
    const pg = ['backup', '--engine', 'postgres', '--source', 'postgres://u@h/db', '--to', 'file:///tmp/x'];
    expect(parseInvocation([...pg, '--jobs', '4'], {})).toMatchObject({ jobs: 4 });
  });
});

describe("the files of mydumper 0.10's directory, as the streaming restore loads them", () => {
  test('definitions, row files (chunked or not), views and the rest, by name', () => {
    const c = (name: string) => classifyMydumperFile(name, 'shop');
    expect(c('metadata')).toEqual({ kind: 'metadata' });
    expect(c('metadata.partial')).toEqual({ kind: 'metadata' });
    expect(c('shop-schema-create.sql')).toEqual({ kind: 'database' });
    expect(c('shop.orders-schema.sql')).toEqual({ kind: 'schema', table: 'orders' });
    expect(c('shop.Tàble ñ 表-schema.sql')).toEqual({ kind: 'schema', table: 'Tàble ñ 表' });
    expect(c('shop.orders.sql')).toEqual({ kind: 'rows', table: 'orders', exact: 'orders' });
    expect(c('shop.orders.00003.sql')).toEqual({ kind: 'rows', table: 'orders', exact: 'orders.00003' });
    // A table whose own name has dots: the database prefix is cut, not split on.
    expect(c('shop.a.b-schema.sql')).toEqual({ kind: 'schema', table: 'a.b' });
    expect(c('shop.a.b.sql')).toEqual({ kind: 'rows', table: 'a.b', exact: 'a.b' });
    for (const last of ['shop.v-schema-view.sql', 'shop.t-schema-triggers.sql', 'shop-schema-post.sql', 'x.sql']) {
      expect(c(last)).toEqual({ kind: 'last' });
    }
    // Another database's files are not this one's tables.
    expect(c('shopping.orders-schema.sql')).toEqual({ kind: 'last' });
  });
});
