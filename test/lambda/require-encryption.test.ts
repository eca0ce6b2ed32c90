// The verification function of a kms: vault (DBBACKUP_REQUIRE_ENCRYPTION=kms), against moto S3
// and KMS: someone with only write access to the bucket cannot replace a kms: backup by a plain
// forged one (encryption none, or manifest version 1 without a digest) that verifies.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { CreateKeyCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { verifierSettings } from '../../lambda/verify/handle';
import { verifyBackup } from '../../lambda/verify/verify';
import { Manifest, manifestDigest, manifestMacKey } from '../../lib/core/manifest';
import { EncryptionScheme } from '../../lib/core/urls';
import { Moto, startMoto } from '../harness/moto';
import { createBucket, randomArtifact, s3For, writeBackup } from './fixtures';

const BUCKET = 'backups-require';
let moto: Moto;
let s3: S3Client;
let kms: KMSClient;
let keyId: string;
const secret = Buffer.from('AGE-SECRET-KEY-1TESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTESTTEST\n');

beforeAll(async () => {
  moto = await startMoto();
  s3 = s3For(moto.endpoint);
  await createBucket(s3, BUCKET);
  const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  kms = new KMSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials });
  keyId = (await kms.send(new CreateKeyCommand({ Description: 'backups' }))).KeyMetadata!.KeyId!;
});

afterAll(async () => {
  s3?.destroy();
  kms?.destroy();
  await moto?.stop();
});

/** A kms: backup as the runner writes it: the wrapped secret, the digest and its HMAC. */
async function kmsBackup(id: string) {
  const context = { 'dbbackup-backup-id': id };
  const wrapped = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: secret, EncryptionContext: context })))
    .CiphertextBlob!;
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
      return JSON.stringify({ ...withKms, digest: manifestDigest(withKms, manifestMacKey(secret, id)) });
    },
  });
}

/** A forged plain backup, well formed, its digest made by the forger (no key needed). */
function forged(id: string, version: number) {
  return writeBackup(s3, BUCKET, 'k', {
    id,
    databaseId: 'db1',
    artifacts: [{ name: 'database.pgdump.zst', data: randomArtifact(1 << 12) }],
    manifest: (m) => {
      const plain = { ...m, version, pipeline: { compression: 'zstd', encryption: { scheme: 'none' } } };
      return JSON.stringify(version >= 2 ? { ...plain, digest: manifestDigest(plain) } : plain);
    },
  });
}

describe('DBBACKUP_REQUIRE_ENCRYPTION=kms in the verification function', () => {
  const settings = verifierSettings({ DBBACKUP_REQUIRE_ENCRYPTION: 'kms' });

  test('the setting is read from the environment; a value that is no scheme is refused', () => {
    assert.equal(settings.requireEncryption, EncryptionScheme.KMS);
    assert.equal(verifierSettings({}).requireEncryption, undefined);
    assert.throws(() => verifierSettings({ DBBACKUP_REQUIRE_ENCRYPTION: 'none' }), /'none'; use one of: age, kms/);
  });

  test('a genuine kms: backup passes, with its HMAC checked', async () => {
    const b = await kmsBackup('20261122T010000Z-genuine');
    const r = await verifyBackup(s3, BUCKET, b.manifestKey, { kms, requireEncryption: settings.requireEncryption });
    assert.equal(r.ok, true, JSON.stringify(r.failures));
    assert.equal(r.mac, 'checked');
  });

  test('a forged encryption: none manifest (version 2, its own digest) fails, naming the schemes', async () => {
    const b = await forged('20261122T020000Z-forged-plain', 2);
    // Without the policy it verifies: that is the hole the policy closes.
    assert.equal((await verifyBackup(s3, BUCKET, b.manifestKey, { kms })).ok, true);
    const r = await verifyBackup(s3, BUCKET, b.manifestKey, { kms, requireEncryption: settings.requireEncryption });
    assert.equal(r.ok, false);
    assert.match(r.failures[0].reason, /encrypted with 'none', not 'kms' as required/);
  });

  test('a forged version 1 manifest (no digest) fails', async () => {
    const b = await forged('20261122T030000Z-forged-v1', 1);
    assert.equal((await verifyBackup(s3, BUCKET, b.manifestKey, { kms })).ok, true);
    const r = await verifyBackup(s3, BUCKET, b.manifestKey, { kms, requireEncryption: settings.requireEncryption });
    assert.equal(r.ok, false);
    assert.match(r.failures.map((f) => f.reason).join('\n'), /encrypted with 'none'/);
  });

  test(
    'a kms: manifest whose HMAC cannot be checked (no ' + 'KMS client) fails instead of passing unauthenticated',
    async () => {
      const b = await kmsBackup('20261122T040000Z-unchecked');
      assert.equal((await verifyBackup(s3, BUCKET, b.manifestKey)).ok, true);
      const r = await verifyBackup(s3, BUCKET, b.manifestKey, { requireEncryption: settings.requireEncryption });
      assert.equal(r.ok, false);
      assert.match(r.failures[0].reason, /HMAC could not be checked/);
    },
  );
});
