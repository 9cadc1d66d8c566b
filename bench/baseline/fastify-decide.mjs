// The baseline for bench/consent.bench.ts: a bare Fastify server whose routes parse the same JSON
// bodies as POST /api/v1/decisions (one subject, or a batch) and answer the same shapes from a
// constant, with no authentication, validation, cache or database. Started the way `pledge serve`
// is (`--port P`, or PORT; HOST, default 127.0.0.1); /healthz answers once it is ready.
import Fastify from 'fastify';

const flag = process.argv.indexOf('--port');
const port = Number(flag >= 0 ? process.argv[flag + 1] : (process.env.PORT ?? 8080));
const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/api/v1/decisions', async (request) => {
  const body = request.body ?? {};
  if (Array.isArray(body.subjects)) {
    return {
      purpose: body.purpose,
      channel: body.channel ?? null,
      decisions: body.subjects.map((subject) => ({ subject, allowed: true, reason: 'opt_out_default' })),
    };
  }
  return {
    decision: {
      subject: body.subject,
      purpose: body.purpose,
      channel: body.channel ?? null,
      allowed: true,
      reason: 'opt_out_default',
    },
  };
});
await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });

const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
