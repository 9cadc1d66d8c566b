// The baseline for bench/collect.bench.ts: a bare Fastify server with one route,
// POST /api/v1/collect/:source, that parses the JSON body and answers 201 with a small JSON the
// shape of Pledge's answer. No validation, no database, no logging. Started the way `pledge serve`
// is (`--port P`, or PORT; HOST, default 127.0.0.1); /healthz answers once it is ready.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';

const flag = process.argv.indexOf('--port');
const port = Number(flag >= 0 ? process.argv[flag + 1] : (process.env.PORT ?? 8080));
const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/api/v1/collect/:source', async (request, reply) => {
  const body = request.body ?? {};
  return reply.status(201).send({
    subject: { id: body.subject?.id ?? randomUUID(), created: false },
    record: { id: randomUUID() },
  });
});
await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });

const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
