import { ChildProcess, spawn } from 'node:child_process';
import { freePort, waitFor } from './ports';

/** A moto server (S3, KMS, SNS, … in one process) on a free loopback port. */
export interface Moto {
  readonly endpoint: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Environment for an AWS SDK client or the runner to use this server. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/** The credentials and region every test uses against moto (they are not secrets). */
export const MOTO_ENV = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: 'us-east-1',
  AWS_DEFAULT_REGION: 'us-east-1',
};

/** Start `python3 -m moto.server` and wait until it answers. */
export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitFor(
    () => `moto on ${endpoint} (stderr: ${stderr})`,
    async () => {
      if (child.exitCode !== null)
        throw Object.assign(new Error(`moto exited with ${child.exitCode}: ${stderr}`), { fatal: true });
      const res = await fetch(`${endpoint}/moto-api/`);
      return res.ok;
    },
  );
  return {
    endpoint,
    port,
    process: child,
    env: { ...MOTO_ENV, AWS_ENDPOINT_URL: endpoint },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
