/**
 * A TCP proxy for fault tests: put it between Pledge and PostgreSQL (point DATABASE_URL at it) and
 * cut the network (every connection reset, new ones refused), black-hole it (a silent partition:
 * connections stay open, nothing gets through, new connections hang) or restore it (held
 * connections resume with what was sent meanwhile, as after a healed partition). No side effects at
 * import.
 */
import net from 'node:net';

/** What the proxy does with traffic. */
export type ProxyState = 'open' | 'cut' | 'blackhole';

/** A running proxy. */
export interface TcpProxy {
  /** The port it listens on, on 127.0.0.1. */
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  /** What it does now. */
  readonly state: ProxyState;
  /** Connections accepted so far, whatever became of them. */
  readonly accepted: number;
  /** Resets every connection, and every new one at once, until {@link TcpProxy.restore}. */
  cut(): void;
  /** Stops forwarding in both directions; connections stay open and new ones are held. */
  blackhole(): void;
  /** Forwards again: held connections go through, with whatever was waiting on either side. */
  restore(): void;
  /** Closes everything. */
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  /** Connected once traffic may flow (a connection accepted while black-holed waits for it). */
  upstream: net.Socket | undefined;
}

/** Starts a proxy to `target` on a free port of 127.0.0.1. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let state: ProxyState = 'open';
  let accepted = 0;
  const pairs = new Set<Pair>();

  const destroy = (pair: Pair, reset: boolean): void => {
    pairs.delete(pair);
    for (const s of [pair.client, pair.upstream]) {
      if (s === undefined || s.destroyed) continue;
      if (reset) s.resetAndDestroy();
      else s.destroy();
    }
  };

  const forward = (pair: Pair): void => {
    if (pair.upstream === undefined) {
      const upstream = net.connect(target.port, target.host);
      pair.upstream = upstream;
      upstream.on('error', () => destroy(pair, true));
      upstream.on('close', () => destroy(pair, false));
      // Written by hand rather than piped, so pausing a side stops the flow at once.
      upstream.on('data', (d: Buffer) => pair.client.write(d));
      pair.client.on('data', (d: Buffer) => upstream.write(d));
    }
    pair.client.resume();
    pair.upstream.resume();
  };

  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    client.on('error', () => {});
    if (state === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { client, upstream: undefined };
    pairs.add(pair);
    client.on('close', () => destroy(pair, false));
    if (state === 'open') forward(pair);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    port,
    urlFor(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.href;
    },
    get state() {
      return state;
    },
    get accepted() {
      return accepted;
    },
    cut() {
      state = 'cut';
      for (const pair of [...pairs]) destroy(pair, true);
    },
    blackhole() {
      state = 'blackhole';
      for (const pair of pairs) {
        pair.client.pause();
        pair.upstream?.pause();
      }
    },
    restore() {
      state = 'open';
      for (const pair of pairs) forward(pair);
    },
    async close() {
      for (const pair of [...pairs]) destroy(pair, false);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
