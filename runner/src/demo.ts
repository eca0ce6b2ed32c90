// The local demo (`npm run demo`): start a throwaway PostgreSQL, fill it with sample data, back it
// up to ./backups with the real `dbbackup` CLI, verify it deeply, restore it into a second
// database and prove the two identical, printing each step.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startLocalPostgres } from './local/postgres-server';

const dbbackup = path.join(__dirname, 'dbbackup.js');

function step(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

function run(args: string[], env: Record<string, string>, echo = true): Promise<string> {
  process.stdout.write(`$ dbbackup ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [dbbackup, ...args], {
      env: { ...process.env, ...env, DBBACKUP_LOG_FORMAT: 'text' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (echo) process.stdout.write(d);
    });
    child.stderr.on('data', (d: Buffer) =>
      process.stdout.write(`  ${d.toString().trimEnd().split('\n').join('\n  ')}\n`),
    );
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`dbbackup ${args[0]} exited with ${code}`)),
    );
  });
}

const SAMPLE = `
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id serial PRIMARY KEY, name text NOT NULL, country text, since date);
INSERT INTO shop.customers (name, country, since)
  SELECT 'customer ' || i || ' – ' || (ARRAY['Zoë','Jürgen','Aiko','Søren','Ana'])[1 + i % 5],
    (ARRAY['DE','JP','DK','BR','FR'])[1 + i % 5], date '2020-01-01' + i
  FROM generate_series(1, 20000) i;
CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer_id int REFERENCES shop.customers(id),
  total numeric(10,2), items jsonb, created timestamptz);
INSERT INTO shop.orders (customer_id, total, items, created)
  SELECT 1 + i % 20000, (i * 13.37) % 900,
    jsonb_build_array(jsonb_build_object('sku', 'SKU-' || i % 97, 'qty', 1 + i % 4)),
    timestamptz '2026-01-01' + i * interval '5 minutes'
  FROM generate_series(1, 100000) i;
CREATE VIEW shop.revenue_by_country AS SELECT c.country, sum(o.total) AS revenue
  FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id GROUP BY c.country;
`;

const FINGERPRINT = `SELECT (SELECT count(*) FROM shop.customers) || ' customers, '
  || (SELECT count(*) FROM shop.orders) || ' orders, md5 '
  || md5((SELECT string_agg(x::text, '|' ORDER BY x.id) FROM shop.customers x)
    || (SELECT string_agg(y::text, '|' ORDER BY y.id) FROM shop.orders y))`;

async function main(): Promise<void> {
  const backups = path.resolve('backups');
  fs.mkdirSync(backups, { recursive: true });
  step('Starting a throwaway PostgreSQL server');
  const pg = await startLocalPostgres();
  try {
    process.stdout.write(
      `PostgreSQL on 127.0.0.1:${pg.port} (data in ${pg.dataDir}); the password is passed in ` +
        'DBBACKUP_SOURCE_PASSWORD, never on a command line\n',
    );
    await pg.sql('CREATE DATABASE demo');
    await pg.sql(SAMPLE, 'demo');
    const original = await pg.sql(FINGERPRINT, 'demo');
    process.stdout.write(`sample database 'demo': ${original}\n`);

    step(`Backing up to file://${backups}`);
    const manifest = JSON.parse(
      await run(
        ['backup', '--engine', 'postgres', '--source', pg.url('demo'), '--to', `file://${backups}`, '--json'],
        pg.env,
        false,
      ),
    );
    const artifacts = manifest.artifacts.map((a: { name: string; size: number }) => `${a.name} (${a.size} bytes)`);
    const tables = manifest.tables.map((t: { name: string; rows: number }) => `${t.name}=${t.rows}`);
    process.stdout.write(
      `committed backup ${manifest.id}: ${artifacts.join(', ')}; tables recorded: ${tables.join(', ')}\n`,
    );

    step('Verifying it (sha256 of every stored object, then pg_restore reads the whole archive)');
    await run(['verify', '--from', `file://${backups}`, '--id', manifest.id, '--deep'], pg.env);

    step('Listing the backups');
    await run(['list', '--from', `file://${backups}`], pg.env);

    step("Restoring it into a second database, 'demo_restored'");
    await run(
      ['restore', '--from', `file://${backups}`, '--id', manifest.id, '--target', pg.url('demo_restored')],
      pg.env,
    );

    step('Comparing');
    const restored = await pg.sql(FINGERPRINT, 'demo_restored');
    process.stdout.write(`original: ${original}\nrestored: ${restored}\n`);
    if (restored !== original) throw new Error('the restored database differs from the original');
    process.stdout.write(
      `\nThe restored database is identical. The backup stays in ${path.join(backups, manifest.id)}; ` +
        'its manifest.json shows how to restore it with standard tools.\n',
    );
  } finally {
    await pg.stop();
  }
}

main().catch((e) => {
  process.stderr.write(`demo failed: ${(e as Error).message}\n`);
  process.exit(1);
});
