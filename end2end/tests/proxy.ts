import * as net from 'net';

/**
 * A TCP proxy between the browser and the server that a test can cut: `cut()` resets every open
 * connection and refuses new ones (recording when each attempt came) until `restore()`. This is
 * a real network loss as the browser sees it, not a mocked response.
 */
export class CuttableProxy {
  private server?: net.Server;
  private open = new Set<net.Socket>();
  private down = false;
  /** Milliseconds since the epoch of each connection attempt refused while down. */
  refused: number[] = [];

  constructor(private targetPort: number) {}

  async start(): Promise<number> {
    this.server = net.createServer((client) => {
      if (this.down) {
        this.refused.push(Date.now());
        client.resetAndDestroy();
        return;
      }
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      this.open.add(client);
      this.open.add(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.open.delete(client);
        this.open.delete(upstream);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return (this.server!.address() as net.AddressInfo).port;
  }

  cut() {
    this.down = true;
    for (const s of this.open) s.resetAndDestroy();
    this.open.clear();
  }

  restore() {
    this.down = false;
  }

  async stop() {
    this.cut();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
