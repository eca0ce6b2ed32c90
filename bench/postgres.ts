// The PostgreSQL benchmark (issue 3): `dbbackup backup` to file:// against plain shell
// pipelines on a generated database of realistic, not-too-compressible data.
//   npm run bench            (builds, then runs this with tsx)
//   BENCH_GB=2 BENCH_RUNS=5  (size of the generated database; repetitions of each variant)
// Prints a table and the ratios; nothing here is asserted.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLocalPostgres } from '../runner/src/local/postgres-server';
import { pgTool } from '../runner/src/engines/postgres/tools';
import { measure, Measurement } from './measure';

const GB = Number(process.env.BENCH_GB ?? '1');
const RUNS = Number(process.env.BENCH_RUNS ?? '3');
const ROWS_PER_GB = 3_800_000;

const GENERATE = (rows: number) => `
CREATE TABLE events (
  id bigint PRIMARY KEY, at timestamptz NOT NULL, account int NOT NULL, kind text NOT NULL,
  amount numeric(12,2), payload jsonb, note text);
INSERT INTO events
SELECT i,
  timestamptz '2025-01-01' + (i::bigint * 7919 % 31536000) * interval '1 second',
  ((i::bigint * 2654435761) % 100000)::int,
  (ARRAY['order.created','order.paid','order.shipped','refund','login','logout','cart.updated'])[1 + i % 7],
  ((i::bigint * 48271) % 1000000) / 100.0,
  jsonb_build_object('ip', ((i * 17) % 256) || '.' || ((i * 31) % 256) || '.' || ((i * 7) % 256) || '.' || (i % 256),
                     'agent', (ARRAY['Mozilla/5.0 (X11; Linux x86_64)','Mozilla/5.0 (Macintosh)','curl/8.5.0','okhttp/4.12'])[1 + i % 4],
                     'session', md5(i::text), 'items', (i % 9)),
  'customer ' || (i % 50000) || ' ' || substr(md5((i * 3)::text) || md5((i * 5)::text), 1, 20 + i % 40)
FROM generate_series(1, ${rows}) AS i;`;

function row(m: Measurement, base: Measurement): string {
  return `| ${m.label.padEnd(44)} | ${m.seconds.toFixed(2).padStart(7)} s | ${(m.seconds / base.seconds).toFixed(2).padStart(5)}x | ${m.topPeakMiB.toFixed(0).padStart(5)} MiB | ${m.treePeakMiB.toFixed(0).padStart(5)} MiB |`;
}

function median(ms: Measurement[]): Measurement {
  const sorted = [...ms].sort((a, b) => a.seconds - b.seconds);
  const mid = sorted[Math.floor(sorted.length / 2)];
  return {
    ...mid,
    topPeakMiB: Math.max(...ms.map((m) => m.topPeakMiB)),
    treePeakMiB: Math.max(...ms.map((m) => m.treePeakMiB)),
  };
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-bench-'));
  const pg = await startLocalPostgres({ settings: { shared_buffers: '256MB', max_wal_size: '4GB' } });
  try {
    process.stderr.write(`generating ~${GB} GB of data…\n`);
    await pg.sql('CREATE DATABASE bench');
    await pg.sql(GENERATE(Math.round(GB * ROWS_PER_GB)), 'bench');
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
    };
    const dump = pgTool('pg_dump');
    const out = (n: string) => path.join(work, n);
    const variants: [string, string, string[]][] = [
      ['pg_dump -Fc -Z0 > /dev/null (producer alone)', 'bash', ['-o', 'pipefail', '-c', `${dump} -Fc -Z0 > /dev/null`]],
      [
        'pg_dump -Fc -Z0 | zstd -T0 > file (b)',
        'bash',
        ['-o', 'pipefail', '-c', `${dump} -Fc -Z0 | zstd -q -T0 > ${out('b.zst')}`],
      ],
      ['pg_dump -Fc | gzip > file (a)', 'bash', ['-o', 'pipefail', '-c', `${dump} -Fc | gzip > ${out('a.gz')}`]],
      [
        'dbbackup backup (zstd) to file://',
        process.execPath,
        [
          path.join(__dirname, '..', 'dist', 'runner', 'dbbackup.js'),
          'backup',
          '--engine',
          'postgres',
          '--source',
          pg.url('bench'),
          '--to',
          `file://${out('store')}`,
        ],
      ],
    ];
    const results = new Map<string, Measurement[]>();
    for (let run = 0; run < RUNS; run++) {
      for (const [label, cmd, args] of variants) {
        const m = await measure(label, cmd, args, env);
        results.set(label, [...(results.get(label) ?? []), m]);
        fs.rmSync(out('store'), { recursive: true, force: true });
        process.stderr.write(`run ${run + 1}: ${label}: ${m.seconds.toFixed(2)} s\n`);
      }
    }
    const med = variants.map(([label]) => median(results.get(label)!));
    const base = med[1];
    console.log(
      `\nPostgreSQL ${await pg.sql('SHOW server_version')}, database ${size} on disk, ${os.cpus().length} cores, median of ${RUNS} runs; ratio = time / time of (b)\n`,
    );
    console.log('| variant | wall | vs (b) | peak RSS (top process) | peak RSS (process tree) |');
    console.log('|---|---|---|---|---|');
    for (const m of med) console.log(row(m, base));
  } finally {
    await pg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
