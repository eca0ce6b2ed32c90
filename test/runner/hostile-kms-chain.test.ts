// A kms: incremental over WAL archived under the archive's own KMS key (real PostgreSQL archiving
// through `dbbackup wal-push --encrypt kms:`, moto KMS): the manifest's MAC is made under the key
// its pipeline records, and verify authenticates it.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { manifestDigest } from '../../lib/core/manifest';
import { LocalPostgres } from '../../runner/src/local/postgres-server';
import { Moto, startMoto } from '../harness/moto';
import { dbbackup } from '../harness/runner';
import { sharedTempDir, startArchivingPostgres } from './pitr-harness';

describe('kms: incremental backups of PostgreSQL', () => {
  let moto: Moto;
  let pg: LocalPostgres;
  let dir: string;
  let url: string;
  let keyId: string;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    moto = await startMoto();
    const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
    const kms = new KMSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials });
    keyId = (await kms.send(new CreateKeyCommand({ Description: 'backups' }))).KeyMetadata!.KeyId!;
    kms.destroy();
    // The server's archive_command inherits this environment: it reaches moto's KMS.
    for (const [k, v] of Object.entries(moto.env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    dir = sharedTempDir('dbbackup-kms-chain-');
    const store = path.join(dir, 'store');
    fs.mkdirSync(store);
    fs.chownSync(store, fs.statSync(dir).uid, fs.statSync(dir).gid);
    url = `file://${store}`;
    pg = await startArchivingPostgres(url, ` --encrypt kms:${keyId}`);
    await pg.sql('CREATE DATABASE app');
    await pg.sql('CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 10)', 'app');
  });
  afterAll(async () => {
    await pg?.stop();
    await moto?.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an incremental is MACed under the archive key it records and verifies authenticated', async () => {
    const env = { ...pg.env, ...moto.env };
    const args = (type: string) => [
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
      '--encrypt',
      `kms:${keyId}`,
      '--json',
    ];
    const full = await dbbackup(args('full'), { env });
    assert.equal(full.code, 0, full.stderr);
    await pg.sql('INSERT INTO a VALUES (11)', 'app');
    const inc = await dbbackup(args('incremental'), { env });
    assert.equal(inc.code, 0, inc.stderr);
    const id = JSON.parse(inc.stdout).id;
    const m = JSON.parse(fs.readFileSync(path.join(url.slice('file://'.length), id, 'manifest.json'), 'utf8'));
    assert.equal(m.pipeline.encryption.scheme, 'kms');
    // Stored under the archive's key, not one made for this backup: the MAC key came from KMS unwrapping it.
    assert.notDeepEqual(m.pipeline.encryption.encryptionContext, { 'dbbackup-backup-id': id });
    assert.match(m.digest.hmacSha256, /^[0-9a-f]{64}$/);
    const v = await dbbackup(['verify', '--from', url, '--id', id, '--json'], { env });
    assert.equal(v.code, 0, v.stderr);
    assert.equal(JSON.parse(v.stdout)[0].authenticated, true);

    // Someone with write access to the store alone changes a field and recomputes the plain
    // digest (anyone can), but cannot make the HMAC: a physical restore refuses before it lays
    // anything down, and verify calls it damaged.
    const file = path.join(url.slice('file://'.length), id, 'manifest.json');
    const { digest: _old, ...body } = m;
    const forged = { ...body, startedAt: new Date(Date.parse(m.startedAt) - 1000).toISOString() };
    const digest = { ...manifestDigest(forged), hmacSha256: m.digest.hmacSha256 };
    fs.writeFileSync(file, JSON.stringify({ ...forged, digest }, null, 2));
    const target = path.join(dir, 'forged-restore');
    const r = await dbbackup(['restore', '--from', url, '--id', id, '--target-dir', target], { env });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /HMAC does not match/);
    assert.equal(fs.existsSync(target) && fs.readdirSync(target).length > 0, false, 'nothing was laid down');
    const v2 = await dbbackup(['verify', '--from', url, '--id', id], { env });
    assert.equal(v2.code, 3, v2.stderr);
  });
});
