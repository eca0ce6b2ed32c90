// The PostgreSQL benchmark (issues 3 and 18): `dbbackup backup` and `dbbackup restore` to and from
// file:// against the plain shell pipelines and the tools alone, at --jobs 1, 2 and 4, on a
// generated database of realistic, not-too-compressible data in four tables (pg_dump -j and
// pg_restore -j work table by table), and on a tiny database (one small table: the fixed cost of
// a run, apart from the cost per byte).
//   bash bench/run.sh             (checks the free disk space first; npm run bench builds, then runs it)
//   BENCH_GB=2 BENCH_RUNS=5       (size of the generated database; repetitions of each variant)
//   BENCH_JOBS=1,2,4              (the --jobs values measured)
//   BENCH_ONLY=backup|restore     (one half; restores alone first make the backups they need, untimed)
//   npx tsx bench/postgres.ts --10gb   (10 GB: once, late, the machine is shared)
//   BENCH_DBBACKUP=FILE           (a copy of dist/runner/dbbackup.js to measure)
// Prints tables of wall time, CPU seconds (the command's process tree and the server), their
// ratios to two baselines, stored size and peak RSS; nothing here is asserted.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLocalPostgres } from '../runner/src/local/postgres-server';
import { pgTool } from '../runner/src/engines/postgres/tools';
import { Conditions, measure, Measurement, underConditions } from './measure';

const GB = process.argv.includes('--10gb') ? 10 : Number(process.env.BENCH_GB ?? '1');
const RUNS = Number(process.env.BENCH_RUNS ?? '3');
/** The tiny database's runs are short and their spread large: at least 5 of them. */
const TINY_RUNS = Math.max(RUNS, 5);
const JOBS = (process.env.BENCH_JOBS ?? '1,2,4').split(',').map(Number);
const ONLY = process.env.BENCH_ONLY ?? '';
const TABLES = 4;
const ROWS_PER_GB = 3_800_000;

const GENERATE = (table: string, rows: number) => `
CREATE TABLE ${table} (
  id bigint PRIMARY KEY, at timestamptz NOT NULL, account int NOT NULL, kind text NOT NULL,
  amount numeric(12,2), payload jsonb, note text);
INSERT INTO ${table}
SELECT i,
  timestamptz '2025-01-01' + (i::bigint * 7919 % 31536000) * interval '1 second',
  ((i::bigint * 2654435761) % 100000)::int,
  (ARRAY['order.created','order.paid','order.shipped','refund','login','logout','cart.updated'])[1 + i % 7],
  ((i::bigint * 48271) % 1000000) / 100.0,
  jsonb_build_object('ip', ((i * 17) % 256) || '.' || ((i * 31) % 256) || '.' || ((i * 7) % 256) || '.' || (i % 256),
                     'agent',
                     (ARRAY['Mozilla/5.0 (X11; Linux x86_64)','Mozilla/5.0 (Macintosh)','curl/8.5.0',
                            'okhttp/4.12'])[1 + i % 4],
                     'session', md5(i::text), 'items', (i % 9)),
  'customer ' || (i % 50000) || ' ' || substr(md5((i * 3)::text) || md5((i * 5)::text), 1, 20 + i % 40)
FROM generate_series(1, ${rows}) AS i;`;

interface Variant {
  /** The short name other variants' `bases` refer to. */
  readonly key: string;
  /** What the table prints. */
  readonly name: string;
  /** The keys of the variants this one's ratios are taken against (first and second ratio column). */
  readonly bases: readonly [string, string?];
  readonly cmd: string;
  readonly args: string[];
  /** Run before each measurement (not timed): clear the output, drop the target. */
  readonly before?: () => Promise<void>;
  /** The bytes it stored (after the run). */
  readonly stored?: () => number;
  /** Run after each measurement (not timed, after `stored`): remove an output no later variant reads. */
  readonly after?: () => Promise<void>;
}

interface Table {
  readonly title: string;
  /** The size of the database measured, as PostgreSQL prints it. */
  readonly size: string;
  readonly variants: Variant[];
  readonly runs: number;
  /** The titles of the ratio columns (one per base). */
  readonly against: readonly [string, string?];
  /** Also print the difference to the first base in seconds (the fixed-cost table). */
  readonly difference?: boolean;
  conditions?: Conditions;
}

function median(ms: Measurement[]): Measurement {
  const sorted = [...ms].sort((a, b) => a.seconds - b.seconds);
  const cpu = ms.map((m) => m.cpuSeconds ?? 0).sort((a, b) => a - b);
  return {
    ...sorted[Math.floor(sorted.length / 2)],
    cpuSeconds: cpu[Math.floor(cpu.length / 2)],
    topPeakMiB: Math.max(...ms.map((m) => m.topPeakMiB)),
    treePeakMiB: Math.max(...ms.map((m) => m.treePeakMiB)),
  };
}

function sizeOf(p: string): number {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((s, f) => s + sizeOf(path.join(p, f)), 0);
}

const sh = (script: string): { cmd: string; args: string[] } => ({
  cmd: 'bash',
  args: ['-o', 'pipefail', '-c', script],
});

async function main(): Promise<void> {
  if (!['', 'backup', 'restore'].includes(ONLY)) {
    throw new Error(`BENCH_ONLY=${ONLY}: give backup, restore, or leave it unset for both`);
  }
  const started = Date.now();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-bench-'));
  const pg = await startLocalPostgres({
    settings: { shared_buffers: '256MB', max_wal_size: '8GB', checkpoint_timeout: '30min' },
  });
  try {
    process.stderr.write(`generating ~${GB} GB of data in ${TABLES} tables…\n`);
    await pg.sql('CREATE DATABASE bench');
    const rows = Math.round((GB * ROWS_PER_GB) / TABLES);
    await Promise.all(Array.from({ length: TABLES }, (_, t) => pg.sql(GENERATE(`events_${t + 1}`, rows), 'bench')));
    await pg.sql('VACUUM ANALYZE', 'bench');
    const size = await pg.sql(`SELECT pg_size_pretty(pg_database_size('bench'))`, 'bench');
    // The tiny database: one small table, so what a run costs whatever the size shows alone.
    await pg.sql('CREATE DATABASE tiny');
    await pg.sql(GENERATE('events', 100), 'tiny');
    const tinySize = await pg.sql(`SELECT pg_size_pretty(pg_database_size('tiny'))`, 'tiny');
    const env = {
      ...process.env,
      ...pg.env,
      PGHOST: '127.0.0.1',
      PGPORT: String(pg.port),
      PGUSER: 'postgres',
      PGDATABASE: 'bench',
      DBBACKUP_LOG_FORMAT: 'json',
      TMPDIR: work,
    };
    const pidFile = [path.join(pg.dataDir, 'postmaster.pid'), path.join(pg.dataDir, 'data', 'postmaster.pid')].find(
      (f) => fs.existsSync(f),
    )!;
    const serverPid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
    const dump = pgTool('pg_dump');
    const restore = pgTool('pg_restore');
    const psql = pgTool('psql');
    const out = (n: string) => path.join(work, n);
    const clear =
      (...names: string[]) =>
      async () => {
        for (const n of names) fs.rmSync(out(n), { recursive: true, force: true });
      };
    // BENCH_DBBACKUP: a copy of the bundle, so a build during a long run does not change what is measured.
    const dbbackup = process.env.BENCH_DBBACKUP ?? path.join(__dirname, '..', 'dist', 'runner', 'dbbackup.js');
    const backupArgs = (database: string, store: string, ...extra: string[]) => [
      dbbackup,
      'backup',
      '--engine',
      'postgres',
      '--source',
      pg.url(database),
      '--to',
      `file://${out(store)}`,
      ...extra,
    ];
    const restoreArgs = (store: string, target: string, jobs: number) => [
      dbbackup,
      'restore',
      '--from',
      `file://${out(store)}`,
      '--latest',
      '--target',
      pg.url(target),
      '--jobs',
      String(jobs),
    ];
    const parallel = JOBS.filter((j) => j > 1);
    const maxJobs = Math.max(...JOBS);

    // Backups: against the shell pipeline (b) and the producer alone (p).
    const backups: Variant[] = [
      {
        key: 'p1',
        name: '(p1) pg_dump -Fc -Z0 > /dev/null (producer alone)',
        bases: ['b1', 'p1'],
        ...sh(`${dump} -Fc -Z0 > /dev/null`),
      },
      {
        key: 'b1',
        name: '(b1) pg_dump -Fc -Z0 | zstd -T0 > file',
        bases: ['b1', 'p1'],
        ...sh(`${dump} -Fc -Z0 | zstd -q -T0 > ${out('b1.zst')}`),
        stored: () => sizeOf(out('b1.zst')),
      },
      {
        key: 's1',
        name: 'dbbackup backup --jobs 1',
        bases: ['b1', 'p1'],
        cmd: process.execPath,
        args: backupArgs('bench', 's1', '--jobs', '1'),
        before: clear('s1'),
        stored: () => sizeOf(out('s1')),
      },
      {
        key: 's1e',
        name: 'dbbackup backup --jobs 1 --row-counts estimate',
        bases: ['b1', 'p1'],
        cmd: process.execPath,
        args: backupArgs('bench', 's1e', '--jobs', '1', '--row-counts', 'estimate'),
        before: clear('s1e'),
        stored: () => sizeOf(out('s1e')),
        after: clear('s1e'),
      },
    ];
    for (const n of parallel) {
      backups.push(
        {
          key: `p${n}`,
          name: `(p${n}) pg_dump -Fd -j ${n} -Z0 to a directory (producer alone)`,
          bases: [`b${n}`, `p${n}`],
          ...sh(`${dump} -Fd -j ${n} -Z0 --no-sync -f ${out(`p${n}`)}`),
          before: clear(`p${n}`),
          after: clear(`p${n}`),
        },
        {
          key: `b${n}`,
          name: `(b${n}) pg_dump -Fd -j ${n} -Z0 && tar -c | zstd -T0 > file`,
          bases: [`b${n}`, `p${n}`],
          ...sh(
            `${dump} -Fd -j ${n} -Z0 --no-sync -f ${out(`d${n}`)} && tar -cf - -C ${work} d${n} | ` +
              `zstd -q -T0 > ${out(`b${n}.tar.zst`)} && rm -rf ${out(`d${n}`)}`,
          ),
          before: clear(`d${n}`),
          stored: () => sizeOf(out(`b${n}.tar.zst`)),
          after: clear(`b${n}.tar.zst`),
        },
        {
          key: `s${n}`,
          name: `dbbackup backup --jobs ${n}`,
          bases: [`b${n}`, `p${n}`],
          cmd: process.execPath,
          args: backupArgs('bench', `s${n}`, '--jobs', String(n)),
          before: clear(`s${n}`),
          stored: () => sizeOf(out(`s${n}`)),
        },
      );
    }
    const tinyBackups: Variant[] = [
      {
        key: 'tp',
        name: '(tp) pg_dump -Fc -Z0 > /dev/null (producer alone)',
        bases: ['tb', 'tp'],
        ...sh(`${dump} -Fc -Z0 tiny > /dev/null`),
      },
      {
        key: 'tb',
        name: '(tb) pg_dump -Fc -Z0 | zstd -T0 > file',
        bases: ['tb', 'tp'],
        ...sh(`${dump} -Fc -Z0 tiny | zstd -q -T0 > ${out('tiny.zst')}`),
        stored: () => sizeOf(out('tiny.zst')),
      },
      {
        key: 'ts',
        name: 'dbbackup backup --jobs 1',
        bases: ['tb', 'tp'],
        cmd: process.execPath,
        args: backupArgs('tiny', 'ts', '--jobs', '1'),
        before: clear('ts'),
        stored: () => sizeOf(out('ts')),
      },
    ];

    // Restores, into a new database each time: the tools from local inputs made once, untimed —
    // uncompressed (-Z0, the tools alone) and as a user has them (pg_dump's default compression,
    // or the zstd file of (b1)) — against dbbackup from the stored backups above.
    const newTarget = (name: string) => async () => {
      await pg.sql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    };
    const pgRestore = (jobs: number, input: string, into = 'r') =>
      sh(`${psql} -X -q -c 'CREATE DATABASE ${into}' && ${restore} -j ${jobs} -d ${into} ${out(input)}`);
    const restores: Variant[] = [];
    for (const n of JOBS) {
      restores.push(
        {
          key: `r${n}`,
          name: `(r${n}) pg_restore -j ${n} from a local -Fc -Z0 file (uncompressed)`,
          bases: [`r${n}`],
          ...pgRestore(n, 'local.pgdump'),
          before: newTarget('r'),
        },
        {
          key: `rc${n}`,
          name: `(rc${n}) pg_restore -j ${n} from a local -Fc file (default compression)`,
          bases: [`r${n}`, `rc${n}`],
          ...pgRestore(n, 'local-compressed.pgdump'),
          before: newTarget('r'),
        },
      );
      if (n === 1) {
        restores.push({
          key: 'rz1',
          name: '(rz1) zstd -dc file.zst | pg_restore -d (the file of (b1))',
          bases: ['r1', 'rz1'],
          ...sh(`${psql} -X -q -c 'CREATE DATABASE r' && zstd -q -dc ${out('b1.zst')} | ${restore} -d r`),
          before: newTarget('r'),
        });
      }
      restores.push({
        key: `sr${n}`,
        name: `dbbackup restore --jobs ${n} (of the --jobs 1 backup)`,
        bases: [`r${n}`, n === 1 ? 'rz1' : `rc${n}`],
        cmd: process.execPath,
        args: restoreArgs('s1', 'r', n),
        before: newTarget('r'),
      });
      if (n > 1) {
        restores.push(
          {
            key: `rd${n}`,
            name: `(rd${n}) pg_restore -j ${n} from a local -Fd -Z0 directory (uncompressed)`,
            bases: [`rd${n}`],
            ...pgRestore(n, 'local.dir'),
            before: newTarget('r'),
          },
          {
            key: `rdc${n}`,
            name: `(rdc${n}) pg_restore -j ${n} from a local -Fd -j ${maxJobs} directory (default compression)`,
            bases: [`rd${n}`, `rdc${n}`],
            ...pgRestore(n, 'local-compressed.dir'),
            before: newTarget('r'),
          },
          {
            key: `srd${n}`,
            name: `dbbackup restore --jobs ${n} (of the --jobs ${n} backup)`,
            bases: [`rd${n}`, `rdc${n}`],
            cmd: process.execPath,
            args: restoreArgs(`s${n}`, 'r', n),
            before: newTarget('r'),
          },
        );
      }
    }
    const tinyRestores: Variant[] = [
      {
        key: 'tr',
        name: '(tr) zstd -dc file.zst | pg_restore -d (the file of (tb))',
        bases: ['tr'],
        ...sh(`${psql} -X -q -c 'CREATE DATABASE rt' && zstd -q -dc ${out('tiny.zst')} | ${restore} -d rt`),
        before: newTarget('rt'),
      },
      {
        key: 'tsr',
        name: 'dbbackup restore --jobs 1',
        bases: ['tr'],
        cmd: process.execPath,
        args: restoreArgs('ts', 'rt', 1),
        before: newTarget('rt'),
      },
    ];

    const results = new Map<string, Measurement[]>();
    const stored = new Map<string, number>();
    const elapsed = () => `${((Date.now() - started) / 60000).toFixed(1)} min`;
    const runAll = async (table: Table) => {
      table.conditions = await underConditions(async () => {
        for (let run = 0; run < table.runs; run++) {
          for (const v of table.variants) {
            await v.before?.();
            const m = await measure(v.name, v.cmd, v.args, env, serverPid);
            results.set(v.key, [...(results.get(v.key) ?? []), m]);
            if (v.stored !== undefined) stored.set(v.key, v.stored());
            await v.after?.();
            process.stderr.write(
              `run ${run + 1}/${table.runs}: ${v.name}: ${m.seconds.toFixed(2)} s, CPU ${m.cpuSeconds!.toFixed(2)} s ` +
                `(${elapsed()} in)\n`,
            );
          }
        }
      });
    };
    /** Make an input or a backup the measured variants need, not timed. */
    const untimed = async (what: string, c: { cmd: string; args: string[] }) => {
      process.stderr.write(`making ${what} (not timed)…\n`);
      await measure(what, c.cmd, c.args, env);
    };

    const tables: Table[] = [];
    const backupTable: Table = {
      title: `Backups of ${size} (file:// storage, zstd -3 -T0)`,
      size,
      variants: backups,
      runs: RUNS,
      against: ['vs shell pipeline: wall, CPU', 'vs producer alone: wall, CPU'],
    };
    const tinyBackupTable: Table = {
      title: `Fixed cost: backups of a tiny database (one table of 100 rows, ${tinySize})`,
      size: tinySize,
      variants: tinyBackups,
      runs: TINY_RUNS,
      against: ['vs shell pipeline: wall, CPU', 'vs producer alone: wall, CPU'],
      difference: true,
    };
    if (ONLY !== 'restore') {
      await runAll(backupTable);
      await runAll(tinyBackupTable);
      tables.push(backupTable, tinyBackupTable);
    } else {
      // The restores read these backups: the zstd files of (b1) and (tb), and dbbackup's stores.
      await untimed('the zstd file of (b1)', sh(`${dump} -Fc -Z0 | zstd -q -T0 > ${out('b1.zst')}`));
      for (const n of JOBS.includes(1) ? JOBS : [1, ...JOBS]) {
        await untimed(`the --jobs ${n} backup`, {
          cmd: process.execPath,
          args: backupArgs('bench', `s${n}`, '--jobs', String(n)),
        });
      }
      await untimed('the zstd file of (tb)', sh(`${dump} -Fc -Z0 tiny | zstd -q -T0 > ${out('tiny.zst')}`));
      await untimed('the tiny backup', { cmd: process.execPath, args: backupArgs('tiny', 'ts', '--jobs', '1') });
    }
    if (ONLY !== 'backup') {
      await untimed('the local -Fc -Z0 file', sh(`${dump} -Fc -Z0 -f ${out('local.pgdump')}`));
      await untimed('the local -Fc file', sh(`${dump} -Fc -f ${out('local-compressed.pgdump')}`));
      if (parallel.length > 0) {
        await untimed('the local -Fd -Z0 directory', sh(`${dump} -Fd -j ${maxJobs} -Z0 -f ${out('local.dir')}`));
        await untimed('the local -Fd directory', sh(`${dump} -Fd -j ${maxJobs} -f ${out('local-compressed.dir')}`));
      }
      process.stderr.write(
        `disk in use now: ${(sizeOf(work) / 2 ** 30).toFixed(2)} GiB in the work directory, ` +
          `${(sizeOf(pg.dataDir) / 2 ** 30).toFixed(2)} GiB in the data directory\n`,
      );
      const restoreTable: Table = {
        title: `Restores of ${size} (into a new database)`,
        size,
        variants: restores,
        runs: RUNS,
        against: ['vs uncompressed local input (tool alone): wall, CPU', 'vs compressed input: wall, CPU'],
      };
      const tinyRestoreTable: Table = {
        title: `Fixed cost: restores of the tiny database (${tinySize}, into a new database)`,
        size: tinySize,
        variants: tinyRestores,
        runs: TINY_RUNS,
        against: ['vs shell pipeline: wall, CPU'],
        difference: true,
      };
      await runAll(restoreTable);
      await runAll(tinyRestoreTable);
      tables.push(restoreTable, tinyRestoreTable);
    }

    const version = await pg.sql('SHOW server_version');
    const ratio = (m: Measurement, key: string | undefined) => {
      if (key === undefined) return '';
      const base = median(results.get(key)!);
      return `${(m.seconds / base.seconds).toFixed(2)}x, ${(m.cpuSeconds! / base.cpuSeconds!).toFixed(2)}x (${key})`;
    };
    const difference = (m: Measurement, key: string) => {
      const base = median(results.get(key)!);
      const sign = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;
      return `${sign(m.seconds - base.seconds)} s, ${sign(m.cpuSeconds! - base.cpuSeconds!)} s`;
    };
    for (const t of tables) {
      const c = t.conditions!;
      console.log(`\n${t.title}\n`);
      console.log(
        `PostgreSQL ${version}, ${c.date}, database ${t.size} on disk, ` +
          `median of ${t.runs} runs, ${os.cpus().length} cores, load average ${c.loadAtStart} at start, ` +
          `${c.loadAtEnd} at end (1, 5, 15 min). Ratios: wall time, then CPU seconds (user + system of the ` +
          `command's processes and of the server), each over the variant named in brackets.\n`,
      );
      const against = t.against.filter((a) => a !== undefined);
      const row = (cells: string[]) => console.log(`| ${cells.join(' | ')} |`);
      const head = ['variant', 'wall', 'CPU', ...against, ...(t.difference ? ['extra over the first: wall, CPU'] : [])];
      row([...head, 'stored', 'peak RSS, top process', 'peak RSS, process tree']);
      row([...head, '', '', ''].map(() => '---'));
      for (const v of t.variants) {
        const m = median(results.get(v.key)!);
        const s = stored.get(v.key);
        row([
          v.name.replaceAll('|', '\\|'),
          `${m.seconds.toFixed(2)} s`,
          `${m.cpuSeconds!.toFixed(2)} s`,
          ...against.map((_, i) => ratio(m, v.bases[i])),
          ...(t.difference ? [difference(m, v.bases[0])] : []),
          s === undefined ? '' : `${(s / 2 ** 20).toFixed(s < 2 ** 20 ? 2 : 0)} MiB`,
          `${m.topPeakMiB.toFixed(0)} MiB`,
          `${m.treePeakMiB.toFixed(0)} MiB`,
        ]);
      }
    }
  } finally {
    await pg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
