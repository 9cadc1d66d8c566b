/** Network odds and ends for tests and benches; no side effects at import. */
import net from 'node:net';

/** A port free on 127.0.0.1 a moment ago (the OS picks it; another process could take it first). */
export async function getFreePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
