// The function as Lambda runs it: bundled by esbuild with the options of scripts/build.mjs,
// loaded with require() in a fresh Node process whose environment points at moto, `handler`
// called with an EventBridge event and a context.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, test } from '@jest/globals';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import * as esbuild from 'esbuild';
import { METRICS, VERIFIED_TAG_KEY } from '../../lib/core/metrics';
import { Moto, startMoto } from '../harness/moto';
import { createBucket, randomArtifact, s3For, tagsOf, Upload, writeBackup } from './fixtures';

const root = path.join(__dirname, '..', '..');
let moto: Moto;
let s3: S3Client;
let dir: string;

beforeAll(async () => {
  moto = await startMoto();
  s3 = s3For(moto.endpoint);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-bundle-'));
});

afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the esbuild bundle loads with require() and its handler verifies a backup', async () => {
  const outfile = path.join(dir, 'index.js');
  await esbuild.build({
    entryPoints: [path.join(root, 'lambda', 'verify', 'index.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    legalComments: 'none',
    logLevel: 'error',
  });
  await createBucket(s3, 'bundle-backups');
  const b = await writeBackup(s3, 'bundle-backups', 'p', {
    id: '20261120T030000Z-bundle',
    databaseId: 'bundled',
    artifacts: [
      { name: 'database.dump.zst', data: randomArtifact() },
      { name: 'globals.sql.zst', data: Buffer.from('x'), upload: Upload.PUT },
    ],
  });
  const event = { source: 'aws.s3', 'detail-type': 'Object Created', detail: { bucket: { name: 'bundle-backups' }, object: { key: b.manifestKey } } };
  const script = `
    const { handler } = require(${JSON.stringify(outfile)});
    handler(${JSON.stringify(event)}, { getRemainingTimeInMillis: () => 60000 })
      .then((r) => process.stdout.write('RESULT ' + JSON.stringify(r) + '\\n'))
      .catch((e) => { console.error(e); process.exit(1); });`;
  // Only the variables a Lambda environment would have, plus moto's endpoint and credentials.
  const env = { PATH: process.env.PATH ?? '', ...moto.env, DBBACKUP_METRIC_NAMESPACE: 'Bundled' };
  const { stdout } = await promisify(execFile)(process.execPath, ['--no-warnings', '-e', script], { env, cwd: dir });
  const lines = stdout.split('\n').filter((l) => l !== '');
  const result = JSON.parse(lines.find((l) => l.startsWith('RESULT '))!.slice(7));
  assert.equal(result.verifications[0].ok, true, JSON.stringify(result));
  const emf = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.equal(emf.length, 1);
  assert.equal(emf[0]._aws.CloudWatchMetrics[0].Namespace, 'Bundled');
  assert.equal(emf[0][METRICS.VERIFICATION_SUCCEEDED], 1);
  assert.equal((await tagsOf(s3, 'bundle-backups', b.manifestKey))[VERIFIED_TAG_KEY], 'passed');
});
