import * as net from 'node:net';

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Wait until `check` resolves true, polling every `everyMs`, or fail after `timeoutMs`. The
 * default is generous: a server starting on a loaded 2-core CI machine can take a while, and a
 * server that has exited fails at once (`check` throws an error whose `fatal` is true).
 * `what` may be a function, read when the wait fails (e.g. to include the server's stderr).
 */
export async function waitFor(
  what: string | (() => string),
  check: () => Promise<boolean>,
  timeoutMs = 120_000,
  everyMs = 100,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  const describe = () => (typeof what === 'function' ? what() : what);
  for (;;) {
    const ok = await check().catch((e: unknown) => {
      if ((e as { fatal?: boolean })?.fatal) throw new Error(`${describe()}: ${(e as Error).message}`);
      return false;
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
