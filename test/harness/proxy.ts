import * as net from 'node:net';
import { Transform } from 'node:stream';

/**
 * A TCP proxy on loopback in front of a server (moto), to slow uploads down and to make the
 * storage "go away" mid-upload and come back, as a real network or endpoint does.
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Bytes sent towards the server so far. */
  public bytesUp = 0;

  constructor(
    private readonly targetPort: number,
    /** Upload rate limit in bytes per second (0: none). */
    public bytesPerSecond = 0,
  ) {}

  public port = 0;

  public async start(port = 0): Promise<number> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client).add(upstream);
      const forget = () => {
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('close', forget).on('error', () => upstream.destroy());
      upstream.on('close', forget).on('error', () => client.destroy());
      const throttle = new Transform({
        transform: (chunk: Buffer, _enc, cb) => {
          this.bytesUp += chunk.length;
          if (this.bytesPerSecond <= 0) return cb(null, chunk);
          setTimeout(() => cb(null, chunk), (chunk.length / this.bytesPerSecond) * 1000);
        },
      });
      client.pipe(throttle).pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Cut every connection and refuse new ones. */
  public async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}
