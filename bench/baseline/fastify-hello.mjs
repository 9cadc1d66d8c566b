// The baseline for bench/serve.bench.ts: a bare Fastify server with one /healthz route, started
// the way `pledge serve` is (`--port P`, or PORT; HOST, default 127.0.0.1). Nothing else loaded.
import Fastify from 'fastify';

const flag = process.argv.indexOf('--port');
const port = Number(flag >= 0 ? process.argv[flag + 1] : (process.env.PORT ?? 8080));
const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });

const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
