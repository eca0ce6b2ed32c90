// Chains kept whole without delete rights (real PostgreSQL archiving its WAL to S3 through the
// runner, moto S3): a dependant whose base would expire first raises the base's tier tags;
// verify fails (exit 3) on a dependant whose base is gone. The full backup is taken by a runner
// whose clock is set two days back (a Date shim loaded with NODE_OPTIONS): the one thing no real
// component here can give, a base written on an earlier day than its dependant.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectTaggingCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { Moto, startMoto } from '../harness/moto';
import { dbbackup, logLines } from '../harness/runner';
import { startArchivingPostgres, switchAndWait } from './pitr-harness';

describe('incremental backups keep their chain whole on S3', () => {
  let moto: Moto;
  let pg: LocalPostgres;
  let s3: S3Client;
  const bucket = 'chains';
  const url = `s3://${bucket}/app`;
  const saved: Record<string, string | undefined> = {};

  let shim: string;
  const backup = (type: string, ...extra: string[]) =>
    dbbackup(
      [
        'backup',
        '--engine',
        'postgres',
        '--method',
        'physical',
        '--type',
        type,
        '--source',
        pg.url('app'),
        '--to',
        url,
        '--json',
        ...extra,
      ],
      { env: { ...pg.env, ...moto.env } },
    );
  const backupTwoDaysAgo = (type: string, ...extra: string[]) =>
    dbbackup(
      [
        'backup',
        '--engine',
        'postgres',
        '--method',
        'physical',
        '--type',
        type,
        '--source',
        pg.url('app'),
        '--to',
        url,
        '--json',
        ...extra,
      ],
      { env: { ...pg.env, ...moto.env, NODE_OPTIONS: `--import ${shim}` } },
    );
  const objectsOf = async (id: string) =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `app/${id}/` }))).Contents ?? []).map(
      (o) => o.Key!,
    );
  const tierOf = async (key: string) =>
    ((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }))).TagSet ?? []).find(
      (t) => t.Key === 'dbbackup-tier',
    )?.Value;

  beforeAll(async () => {
    shim = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-clock-')), 'two-days-ago.mjs');
    fs.writeFileSync(
      shim,
      'const Real = Date; const shift = -2 * 86400000;\n' +
        'globalThis.Date = class extends Real { constructor(...a) { if ' +
        '(a.length === 0) super(Real.now() + shift); else super(...a); } ' +
        'static now() { return Real.now() + shift; } };\n',
    );
    moto = await startMoto();
    s3 = new S3Client({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    // The server's archive_command inherits this environment: it reaches moto.
    for (const [k, v] of Object.entries(moto.env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    pg = await startArchivingPostgres(url);
    await pg.sql('CREATE DATABASE app');
    await pg.sql('CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 10)', 'app');
  });
  afterAll(async () => {
    await pg?.stop();
    s3?.destroy();
    await moto?.stop();
    if (shim) fs.rmSync(path.dirname(shim), { recursive: true, force: true });
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  test('a daily full is raised to weekly when an incremental needs it; the incremental stays daily', async () => {
    const full = await backupTwoDaysAgo('full', '--tier', 'daily');
    assert.equal(full.code, 0, full.stderr);
    const fullId = JSON.parse(full.stdout).id;
    await pg.sql('INSERT INTO a VALUES (11)', 'app');
    await switchAndWait(pg);

    // Without the tiers' days the runner cannot know; it says so in the manifest.
    const blind = await backupTwoDaysAgo('incremental');
    assert.equal(blind.code, 0, blind.stderr);
    assert.match(
      JSON.parse(blind.stdout).warnings.join(' '),
      new RegExp(`depends on ${fullId} in the daily tier.*--tier-days`),
    );
    for (const key of await objectsOf(fullId)) assert.equal(await tierOf(key), 'daily', key);

    await pg.sql('INSERT INTO a VALUES (12)', 'app');
    await switchAndWait(pg);
    const inc = await backup('incremental', '--tier-days', 'daily=7,weekly=28,monthly=372');
    assert.equal(inc.code, 0, inc.stderr);
    const incResult = JSON.parse(inc.stdout);
    assert.equal(incResult.tier, 'daily');
    const raised = logLines(inc.stderr).filter((l) => l.event === 'tier-raised');
    assert.deepEqual(
      raised.map((l) => [l.id, l.from, l.to]).sort(),
      [
        [fullId, 'daily', 'weekly'],
        [JSON.parse(blind.stdout).id, 'daily', 'weekly'],
      ].sort(),
    );
    const fullKeys = await objectsOf(fullId);
    assert.ok(fullKeys.some((k) => k.endsWith('/manifest.json')) && fullKeys.length >= 2, fullKeys.join(', '));
    for (const key of fullKeys) assert.equal(await tierOf(key), 'weekly', key);
    for (const key of await objectsOf(incResult.id)) assert.equal(await tierOf(key), 'daily', key);
    const v = await dbbackup(['verify', '--from', url, '--all', '--json'], { env: moto.env });
    assert.equal(v.code, 0, v.stderr);

    // The tier as stored now counts (the manifests still say daily), and a base of the same UTC
    // day expires at the same midnight: a second incremental raises nothing.
    await pg.sql('INSERT INTO a VALUES (13)', 'app');
    await switchAndWait(pg);
    const again = await backup('incremental', '--tier-days', 'daily=7,weekly=28,monthly=372');
    assert.equal(again.code, 0, again.stderr);
    const second = logLines(again.stderr)
      .filter((l) => l.event === 'tier-raised')
      .map((l) => l.id);
    assert.deepEqual(second, []);
  });

  test('verify fails with exit 3 on an incremental whose base is gone, for --all and for --id', async () => {
    const list = JSON.parse((await dbbackup(['list', '--from', url, '--json'], { env: moto.env })).stdout);
    const backups = list.backups as { id: string; type: string }[];
    const full = backups.find((b) => b.type === 'full')!;
    const inc = backups.find((b) => b.type === 'incremental')!;
    // What a lifecycle rule does to a base that expired first.
    const keys = await objectsOf(full.id);
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    const all = await dbbackup(['verify', '--from', url, '--all'], { env: moto.env });
    assert.equal(all.code, 3, all.stderr);
    assert.match(
      all.stderr + all.stdout,
      new RegExp(
        `incremental backup ${inc.id} depends on its (parent|full backup) ${full.id}, which is not in the storage`,
      ),
    );
    const one = await dbbackup(['verify', '--from', url, '--id', inc.id], { env: moto.env });
    assert.equal(one.code, 3, one.stderr);
    assert.match(
      one.stderr + one.stdout,
      new RegExp(`depends on its (parent|full backup) ${full.id}, which is not in the storage`),
    );
  });
});
