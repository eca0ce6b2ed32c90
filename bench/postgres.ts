// The PostgreSQL benchmark (issues 3 and 18): `dbbackup backup` and `dbbackup restore` to and from
// file:// against the plain shell pipelines and the tools alone, at --jobs 1, 2 and 4, on a
// generated database of realistic, not-too-compressible data in four tables (pg_dump -j and
// pg_restore -j work table by table).
//   npm run bench                 (builds, then runs this with tsx)
//   BENCH_GB=2 BENCH_RUNS=5       (size of the generated database; repetitions of each variant)
//   BENCH_JOBS=1,2,4              (the --jobs values measured)
//   npx tsx bench/postgres.ts --10gb   (10 GB: once, late, the machine is shared)
//   BENCH_DBBACKUP=FILE           (a copy of dist/runner/dbbackup.js to measure)
// Prints tables of wall time, ratio to the matching shell pipeline, stored size and peak RSS;
// nothing here is asserted.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLocalPostgres } from '../runner/src/local/postgres-server';
import { pgTool } from '../runner/src/engines/postgres/tools';
import { measure, Measurement } from './measure';

const GB = process.argv.includes('--10gb') ? 10 : Number(process.env.BENCH_GB ?? '1');
const RUNS = Number(process.env.BENCH_RUNS ?? '3');
const JOBS = (process.env.BENCH_JOBS ?? '1,2,4').split(',').map(Number);
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
  readonly label: string;
  /** The label of the variant this one's ratio is taken against. */
  readonly base: string;
  readonly cmd: string;
  readonly args: string[];
  /** Run before each measurement (not timed): clear the output, make the target. */
  readonly before?: () => Promise<void>;
  /** The bytes it stored (after the run). */
  readonly stored?: () => number;
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

const sh = (script: string): [string, string[]] => ['bash', ['-o', 'pipefail', '-c', script]];

async function main(): Promise<void> {
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
    const backupArgs = (store: string, ...extra: string[]) => [
      dbbackup,
      'backup',
      '--engine',
      'postgres',
      '--source',
      pg.url('bench'),
      '--to',
      `file://${out(store)}`,
      ...extra,
    ];

    // Backups.
    const backups: Variant[] = [
      { label: 'pg_dump -Fc -Z0 > /dev/null (producer alone)', base: 'b1', ...cmd(sh(`${dump} -Fc -Z0 > /dev/null`)) },
      {
        label: 'b1',
        base: 'b1',
        ...cmd(sh(`${dump} -Fc -Z0 | zstd -q -T0 > ${out('b1.zst')}`)),
        stored: () => sizeOf(out('b1.zst')),
      },
      {
        label: 'dbbackup backup --jobs 1',
        base: 'b1',
        cmd: process.execPath,
        args: backupArgs('s1', '--jobs', '1'),
        before: clear('s1'),
        stored: () => sizeOf(out('s1')),
      },
      {
        label: 'dbbackup backup --jobs 1 --row-counts estimate',
        base: 'b1',
        cmd: process.execPath,
        args: backupArgs('s1e', '--jobs', '1', '--row-counts', 'estimate'),
        before: clear('s1e'),
        stored: () => sizeOf(out('s1e')),
      },
    ];
    for (const n of JOBS.filter((j) => j > 1)) {
      backups.push(
        {
          label: `pg_dump -Fd -j ${n} -Z0 to a directory (producer alone)`,
          base: `b${n}`,
          ...cmd(sh(`${dump} -Fd -j ${n} -Z0 --no-sync -f ${out(`p${n}`)}`)),
          before: clear(`p${n}`),
        },
        {
          label: `b${n}`,
          base: `b${n}`,
          ...cmd(
            sh(
              `${dump} -Fd -j ${n} -Z0 --no-sync -f ${out(`d${n}`)} && tar -cf - -C ${work} d${n} | ` +
                `zstd -q -T0 > ${out(`b${n}.tar.zst`)} && rm -rf ${out(`d${n}`)}`,
            ),
          ),
          before: clear(`d${n}`),
          stored: () => sizeOf(out(`b${n}.tar.zst`)),
        },
        {
          label: `dbbackup backup --jobs ${n}`,
          base: `b${n}`,
          cmd: process.execPath,
          args: backupArgs(`s${n}`, '--jobs', String(n)),
          before: clear(`s${n}`),
          stored: () => sizeOf(out(`s${n}`)),
        },
      );
    }

    // Restores: the tools from a local file or directory (made once, untimed) against dbbackup
    // from the stored backups above, into a new database each time.
    const newTarget = async () => {
      await pg.sql('DROP DATABASE IF EXISTS r WITH (FORCE)');
    };
    const restores: Variant[] = [];
    for (const n of JOBS) {
      restores.push(
        {
          label: `r${n}`,
          base: `r${n}`,
          ...cmd(sh(`${psql} -X -q -c 'CREATE DATABASE r' && ${restore} -j ${n} -d r ${out('local.pgdump')}`)),
          before: newTarget,
        },
        {
          label: `dbbackup restore --jobs ${n} (of the --jobs 1 backup)`,
          base: `r${n}`,
          cmd: process.execPath,
          args: [
            dbbackup,
            'restore',
            '--from',
            `file://${out('s1')}`,
            '--latest',
            '--target',
            pg.url('r'),
            '--jobs',
            String(n),
          ],
          before: newTarget,
        },
      );
      if (n > 1) {
        restores.push(
          {
            label: `rd${n}`,
            base: `rd${n}`,
            ...cmd(sh(`${psql} -X -q -c 'CREATE DATABASE r' && ${restore} -j ${n} -d r ${out(`p${n}`)}`)),
            before: newTarget,
          },
          {
            label: `dbbackup restore --jobs ${n} (of the --jobs ${n} backup)`,
            base: `rd${n}`,
            cmd: process.execPath,
            args: [
              dbbackup,
              'restore',
              '--from',
              `file://${out(`s${n}`)}`,
              '--latest',
              '--target',
              pg.url('r'),
              '--jobs',
              String(n),
            ],
            before: newTarget,
          },
        );
      }
    }

    const results = new Map<string, Measurement[]>();
    const stored = new Map<string, number>();
    const runAll = async (variants: Variant[]) => {
      for (let run = 0; run < RUNS; run++) {
        for (const v of variants) {
          await v.before?.();
          const m = await measure(v.label, v.cmd, v.args, env, serverPid);
          results.set(v.label, [...(results.get(v.label) ?? []), m]);
          if (v.stored !== undefined) stored.set(v.label, v.stored());
          process.stderr.write(`run ${run + 1}: ${v.label}: ${m.seconds.toFixed(2)} s\n`);
        }
      }
    };
    await runAll(backups);
    // The restores' inputs: the plain custom-format dump, and the directories of the producers above.
    await measure('local dump', ...sh(`${dump} -Fc -Z0 -f ${out('local.pgdump')}`), env);
    await runAll(restores);

    const names: Record<string, string> = {
      b1: '(b1) pg_dump -Fc -Z0 | zstd -T0 > file',
      r1: '(r1) pg_restore -d (new database) local file',
    };
    for (const n of JOBS.filter((j) => j > 1)) {
      names[`b${n}`] = `(b${n}) pg_dump -Fd -j ${n} -Z0 && tar -c | zstd -T0 > file`;
      names[`r${n}`] = `(r${n}) pg_restore -j ${n} (new database) local file`;
      names[`rd${n}`] = `(rd${n}) pg_restore -j ${n} (new database) local directory`;
    }
    const table = (title: string, variants: Variant[]) => {
      console.log(`\n${title}\n`);
      console.log(
        '| variant | wall | ratio | vs | CPU (client + server) | CPU ratio | stored | peak RSS, top process | ' +
          'peak RSS, process tree |',
      );
      console.log('|---|---|---|---|---|---|---|---|---|');
      for (const v of variants) {
        const m = median(results.get(v.label)!);
        const base = median(results.get(v.base)!);
        const s = stored.get(v.label);
        console.log(
          `| ${names[v.label] ?? v.label} | ${m.seconds.toFixed(2)} s | ${(m.seconds / base.seconds).toFixed(2)}x | ` +
            `(${v.base}) | ${m.cpuSeconds!.toFixed(2)} s | ${(m.cpuSeconds! / base.cpuSeconds!).toFixed(2)}x | ` +
            `${s === undefined ? '' : `${(s / 2 ** 20).toFixed(0)} MiB`} | ` +
            `${m.topPeakMiB.toFixed(0)} MiB | ${m.treePeakMiB.toFixed(0)} MiB |`,
        );
      }
    };
    console.log(
      `\nPostgreSQL ${await pg.sql('SHOW server_version')}, database ${size} on disk in ${TABLES} tables, ` +
        `${os.cpus().length} cores, median of ${RUNS} runs; ratio = wall ` +
        `time / wall time of the variant named in 'vs'; ` +
        'CPU = user + system seconds of the command and of the server',
    );
    table('Backups (file:// storage, zstd -3 -T0)', backups);
    table('Restores (into a new database)', restores);
  } finally {
    await pg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function cmd([c, args]: [string, string[]]): { cmd: string; args: string[] } {
  return { cmd: c, args };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
