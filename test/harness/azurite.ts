import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, waitFor } from './ports';

/**
 * Azurite, Microsoft's Azure Storage emulator (the npm package `azurite`), blob service only,
 * on a free loopback port with its data in a temporary directory. It serves one account of our
 * own with a random key (AZURITE_ACCOUNTS), so a test can check the key never shows in output.
 * Its URLs are path-style: `http://127.0.0.1:PORT/ACCOUNT/CONTAINER/BLOB`.
 */
export interface Azurite {
  readonly port: number;
  readonly account: string;
  /** The account's shared key (base64): a secret as far as the runner is concerned. */
  readonly key: string;
  /** The account's blob endpoint, `http://127.0.0.1:PORT/ACCOUNT`. */
  readonly endpoint: string;
  /** A standard connection string for the account. */
  readonly connectionString: string;
  /** A client with the shared key, for tests to look at what was stored. */
  readonly client: BlobServiceClient;
  readonly process: ChildProcess;
  /** An endpoint on another port (a proxy in front of Azurite): `http://127.0.0.1:PORT/ACCOUNT`. */
  endpointVia(port: number): string;
  createContainer(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startAzurite(account = 'dbbackuptest'): Promise<Azurite> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbbackup-azurite-'));
  const key = crypto.randomBytes(64).toString('base64');
  const main = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  const child = spawn(
    process.execPath,
    [
      main,
      ...['--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dir],
      ...['--skipApiVersionCheck', '--loose', '--disableTelemetry', '--silent'],
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, AZURITE_ACCOUNTS: `${account}:${key}` } },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpointVia = (p: number) => `http://127.0.0.1:${p}/${account}`;
  const endpoint = endpointVia(port);
  const client = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account, key), {
    retryOptions: { maxTries: 2, retryDelayInMs: 100 },
  });
  await waitFor(
    () => `Azurite on port ${port} (stderr: ${stderr})`,
    async () => {
      if (child.exitCode !== null)
        throw Object.assign(new Error(`Azurite exited with ${child.exitCode}: ${stderr}`), { fatal: true });
      await client.getProperties();
      return true;
    },
  );
  const connectionString = [
    'DefaultEndpointsProtocol=http',
    `AccountName=${account}`,
    `AccountKey=${key}`,
    `BlobEndpoint=${endpoint}`,
  ].join(';');
  return {
    port,
    account,
    key,
    endpoint,
    connectionString,
    client,
    process: child,
    endpointVia,
    createContainer: async (name) => {
      await client.getContainerClient(name).createIfNotExists();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
      }),
  };
}
