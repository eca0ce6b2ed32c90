// The az:// pieces that need no server: URL parsing, the block-size ladder, the credential chain's
// choices and refusals. None of these touches the network (no DefaultAzureCredential is built).
import * as assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { ConfigError } from '../../lib/core/errors';
import { parseStorageUrl, StorageKind } from '../../lib/core/urls';
import { AZURE_LIMITS, blockSizeFor } from '../../runner/src/storage/azure';
import { azureAccess, scrub } from '../../runner/src/storage/azure-auth';

const MiB = 1024 * 1024;
const TiB = 1024 * 1024 * MiB;
const KEY = Buffer.alloc(64, 7).toString('base64');

describe('az:// URLs', () => {
  test('az:// and the https form parse to account, container and prefix', () => {
    assert.deepEqual(parseStorageUrl('az://prodbackups/db-vault/prod/shop/'), {
      kind: StorageKind.AZURE,
      account: 'prodbackups',
      bucket: 'db-vault',
      path: 'prod/shop',
      endpoint: undefined,
      display: 'az://prodbackups/db-vault/prod/shop/',
    });
    const https = parseStorageUrl('https://prodbackups.blob.core.windows.net/db-vault/prod', '--from');
    assert.equal(https.kind, StorageKind.AZURE);
    assert.equal(https.account, 'prodbackups');
    assert.equal(https.bucket, 'db-vault');
    assert.equal(https.path, 'prod');
    assert.equal(https.endpoint, 'https://prodbackups.blob.core.windows.net');
    assert.equal(parseStorageUrl('az://abc/c12').path, '');
  });

  test('bad names exit 2 naming the value and the rule; a SAS token in the URL is refused and not echoed', () => {
    const cases: [string, RegExp][] = [
      ['az://ab/container', /account name 'ab'.*3 to 24 lower-case letters and digits/],
      ['az://a-b-c/container', /account name 'a-b-c'/],
      ['az://waytoolongaccountname12345/container', /account name 'waytoolongaccountname12345'/],
      ['az://account/Container', /container name 'Container'.*lower-case/],
      ['az://account/-abc', /container name '-abc'/],
      ['az://account/abc-', /container name 'abc-'/],
      ['az://account/a--bc', /container name 'a--bc'.*single hyphens/],
      ['az://account/ab', /container name 'ab'/],
      [`az://account/${'c'.repeat(64)}`, /container name 'c{64}'/],
      ['az://account', /no container/],
      ['az://account/container/a/../b', /prefix 'a\/..\/b'.*Use az:\/\/account\/container\/a\/b/],
      ['https://account.blob.example.com/container', /not of an Azure blob service/],
      ['az://account/container/x?sv=2024-01-01&sig=SECRETSIG', /has a query \(a SAS token\?\)/],
    ];
    for (const [raw, message] of cases) {
      assert.throws(() => parseStorageUrl(raw), (e: Error) => {
        assert.ok(e instanceof ConfigError, raw);
        assert.match(e.message, message, raw);
        assert.ok(!e.message.includes('SECRETSIG'), 'the SAS signature is not echoed');
        return true;
      });
    }
  });
});

describe('block sizes', () => {
  test('blocks grow so that 50,000 of them hold more than 25 TiB, each within Azure\'s 4000 MiB limit', () => {
    assert.equal(blockSizeFor(1), 8 * MiB);
    assert.equal(blockSizeFor(10000), 8 * MiB);
    assert.equal(blockSizeFor(10001), 32 * MiB);
    let total = 0;
    let previous = 0;
    for (let n = 1; n <= AZURE_LIMITS.maxBlocks; n++) {
      const size = blockSizeFor(n);
      assert.ok(size >= previous && size <= AZURE_LIMITS.maxBlockSize, `block ${n}: ${size}`);
      previous = size;
      total += size;
    }
    assert.ok(total > 25 * TiB, `50,000 blocks hold ${(total / TiB).toFixed(1)} TiB`);
    // Small backups stay in small blocks: 1 GiB takes 128 blocks of 8 MiB.
    let blocks = 0;
    for (let held = 0; held < 1024 * MiB; held += blockSizeFor(++blocks));
    assert.equal(blocks, 128);
  });
});

describe('credential chain', () => {
  const url = parseStorageUrl('az://dbbackuptest/backups/prod');

  test('connection string, then shared key, then SAS token; endpoint from the variable or connection string', () => {
    const cs =
      `DefaultEndpointsProtocol=http;AccountName=dbbackuptest;AccountKey=${KEY};` +
      'BlobEndpoint=http://127.0.0.1:10000/dbbackuptest;';
    const a = azureAccess(url, {
      AZURE_STORAGE_CONNECTION_STRING: cs,
      AZURE_STORAGE_KEY: KEY,
      AZURE_STORAGE_SAS_TOKEN: 'sv=1&sig=x',
    });
    assert.equal(a.endpoint, 'http://127.0.0.1:10000/dbbackuptest');
    assert.match(a.description, /shared key in AZURE_STORAGE_CONNECTION_STRING/);
    const k = azureAccess(url, { AZURE_STORAGE_KEY: KEY, AZURE_STORAGE_SAS_TOKEN: 'sv=1&sig=x' });
    assert.equal(k.endpoint, 'https://dbbackuptest.blob.core.windows.net');
    assert.match(k.description, /AZURE_STORAGE_KEY/);
    const s = azureAccess(url, {
      AZURE_STORAGE_SAS_TOKEN: '?sv=1&sig=abc',
      AZURE_STORAGE_BLOB_ENDPOINT: 'http://127.0.0.1:1/dbbackuptest/',
    });
    assert.equal(s.endpoint, 'http://127.0.0.1:1/dbbackuptest');
    assert.match(s.description, /SAS token in AZURE_STORAGE_SAS_TOKEN/);
    assert.equal(s.client.url, 'http://127.0.0.1:1/dbbackuptest?sv=1&sig=abc');
    const devUrl = parseStorageUrl('az://devstoreaccount1/c12');
    const dev = azureAccess(devUrl, { AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true' });
    assert.equal(dev.endpoint, 'http://127.0.0.1:10000/devstoreaccount1');
    const govUrl = parseStorageUrl('https://dbbackuptest.blob.core.usgovcloudapi.net/c12');
    const https = azureAccess(govUrl, { AZURE_STORAGE_KEY: KEY });
    assert.equal(https.endpoint, 'https://dbbackuptest.blob.core.usgovcloudapi.net');
  });

  test('refusals name the variable and the fix, never the secret', () => {
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      [
        { AZURE_STORAGE_CONNECTION_STRING: `AccountName=other;AccountKey=${KEY}` },
        /for the storage account 'other', but .* names 'dbbackuptest'/,
      ],
      [
        { AZURE_STORAGE_CONNECTION_STRING: 'BlobEndpoint=https://other.blob.core.windows.net;SharedAccessSignature=x' },
        /for the storage account 'other'/,
      ],
      [{ AZURE_STORAGE_CONNECTION_STRING: 'AccountName=dbbackuptest' }, /neither AccountKey nor SharedAccessSignature/],
      [
        { AZURE_STORAGE_CONNECTION_STRING: 'AccountName=dbbackuptest;AccountKey=p@ss word' },
        /AccountKey that is not base64/,
      ],
      [{ AZURE_STORAGE_KEY: KEY, AZURE_STORAGE_ACCOUNT: 'other' }, /AZURE_STORAGE_ACCOUNT is 'other', but/],
      [{ AZURE_STORAGE_KEY: 'p@ss word' }, /AZURE_STORAGE_KEY is not base64/],
      [{ AZURE_STORAGE_SAS_TOKEN: 'sv=1&sp=r' }, /no sig= parameter/],
      [
        { AZURE_STORAGE_KEY: KEY, AZURE_STORAGE_BLOB_ENDPOINT: 'http://127.0.0.1:1/x?sig=abc' },
        /AZURE_STORAGE_BLOB_ENDPOINT carries a query/,
      ],
      [
        { AZURE_STORAGE_KEY: KEY, AZURE_STORAGE_BLOB_ENDPOINT: 'not a url' },
        /AZURE_STORAGE_BLOB_ENDPOINT 'not a url' is not a URL/,
      ],
    ];
    for (const [env, message] of cases) {
      assert.throws(() => azureAccess(url, env), (e: Error) => {
        assert.ok(e instanceof ConfigError, message.source);
        assert.match(e.message, message);
        assert.ok(!e.message.includes(KEY) && !e.message.includes('p@ss') && !e.message.includes('sig=abc'), e.message);
        return true;
      });
    }
  });

  test('scrub hides SAS signatures and account keys in messages', () => {
    assert.equal(
      scrub('GET https://a.blob.core.windows.net/c?sv=1&sig=abc%2Fdef&se=2 failed'),
      'GET https://a.blob.core.windows.net/c?sv=1&sig=***&se=2 failed',
    );
    assert.equal(scrub(`AccountName=a;AccountKey=${KEY};`), 'AccountName=a;AccountKey=***;');
  });
});
