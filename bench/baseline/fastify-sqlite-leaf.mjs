// The baseline for the inclusion-proof figure of bench/log.bench.ts: bare Fastify answering one
// indexed SELECT of the log's entry by leaf index from Pledge's own database file (DATA_DIR/pledge.db,
// opened read-only with Pledge's page cache), as JSON. Started as `pledge serve` is (`--port P`, or
// PORT; HOST, default 127.0.0.1); the file is left as it was.
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import Fastify from 'fastify';
import { listenPort } from './bare-sqlite.mjs';

const db = new BetterSqlite3(path.join(process.env.DATA_DIR ?? '.', 'pledge.db'), { readonly: true });
db.pragma('cache_size = -32768');
const select = db.prepare('select leaf_index, entry from audit_events where leaf_index = ?');
const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/leaf', async (request, reply) => {
  const index = Number(request.query.index);
  const row = Number.isSafeInteger(index) ? select.get(index) : undefined;
  if (row === undefined) return reply.code(404).send({ error: 'no such leaf' });
  return { index: row.leaf_index, entry: row.entry };
});
await app.listen({ port: listenPort(), host: process.env.HOST ?? '127.0.0.1' });
const stop = () =>
  void app.close().then(() => {
    db.close();
    process.exit(0);
  });
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
