import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { LocalPostgres, startLocalPostgres } from '../../runner/src/local/postgres-server';
import { Moto, startMoto } from '../harness/moto';
import { findDescendant, poll } from '../harness/procs';
import { TcpProxy } from '../harness/proxy';
import { dbbackup } from '../harness/runner';

describe('a failed upload is reported as itself, not as the stage the runner then stopped', () => {
  let pg: LocalPostgres;
  let moto: Moto;
  let s3: S3Client;
  let dir: string;
  const bucket = 'cause';

  beforeAll(async () => {
    [pg, moto] = await Promise.all([startLocalPostgres(), startMoto()]);
    s3 = new S3Client({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    // About 40 MB of incompressible rows: more than the upload holds in memory.
    await pg.sql('CREATE DATABASE big');
    await pg.sql(
      `CREATE TABLE noise AS SELECT i, decode(string_agg(md5(i::text || j::text), ''), 'hex') AS b ` +
        'FROM generate_series(1, 8000) i, generate_series(1, 320) j GROUP BY i',
      'big',
    );
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-cause-'));
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), moto?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test(
    'the storage refuses the upload after pg_dump finished ' + 'while zstd still writes: the error is the upload',
    async () => {
      // A zstd that reads all of its input before it writes: pg_dump is done while zstd still has
      // its whole output to write, so the upload fails while only zstd runs.
      const bin = path.join(dir, 'bin');
      fs.mkdirSync(bin);
      const zstd = execFileSync('sh', ['-c', 'command -v zstd']).toString().trim();
      const script = `#!/bin/sh\nt=$(mktemp)\ncat > "$t"\n${zstd} "$@" < "$t"\nrc=$?\nrm -f "$t"\nexit $rc\n`;
      fs.writeFileSync(path.join(bin, 'zstd'), script, { mode: 0o755 });
      const proxy = new TcpProxy(moto.port, 4 * 1024 * 1024);
      const port = await proxy.start();
      try {
        let runner = 0;
        const args = ['backup', '--engine', 'postgres', '--source', pg.url('big'), '--to', `s3://${bucket}/refused`];
        const running = dbbackup(args, {
          env: {
            ...pg.env,
            ...moto.env,
            AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
            PATH: `${bin}${path.delimiter}${process.env.PATH}`,
          },
          onSpawn: (pid) => (runner = pid),
        });
        await poll(() => findDescendant(runner, 'pg_dump'));
        const dumped = () => findDescendant(runner, 'pg_dump') === undefined && proxy.bytesUp > 8 << 20;
        await poll(() => (dumped() ? true : undefined), 60000);
        assert.ok(
          findDescendant(runner, 'zstd') !== undefined,
          'zstd had finished already; the test would prove nothing',
        );
        await proxy.stop();
        await new Promise((r) => setTimeout(r, 2000));
        await proxy.start(port);
        const r = await running;
        assert.equal(r.code, 1, r.stderr);
        const last = r.stderr.trim().split('\n').pop()!;
        assert.match(last, /^dbbackup: /);
        assert.doesNotMatch(last, /zstd|pg_dump|was killed by|SIGTERM/, last);
        assert.match(r.stderr, /nothing was committed/);
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'refused/' }));
        assert.deepEqual(
          (listed.Contents ?? []).filter((o) => o.Key!.endsWith('manifest.json')),
          [],
        );
        assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads?.length ?? 0, 0);
      } finally {
        await proxy.stop();
      }
    },
  );
});
