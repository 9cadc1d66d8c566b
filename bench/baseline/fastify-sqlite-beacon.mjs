// The durable reference of bench/beacon.bench.ts: bare Fastify and bare better-sqlite3 doing the
// durable part of a beacon and nothing else. POST /api/v1/beacon takes text/plain holding JSON (as
// navigator.sendBeacon sends it), and answers 204 only after the commit that holds a row of the same
// columns Pledge stores (beacon_events, with its indexes), the fields kept as plaintext JSON and the
// visitor as the body's cookie id or the client's address and user agent, unhashed. Writes that
// arrive in one turn of the event loop share a transaction (group commit, as Pledge does). The
// database is set up as Pledge's SQLite database is: WAL, synchronous=FULL, 8 KiB pages, 32 MiB
// cache. No validation, consent, receipts, hashing, sealing, bot check, CORS or logging.
// Started as the other baselines (`--port P`; HOST, default 127.0.0.1; DATA_DIR for the file; the
// file, the group commit and the start and stop shared with the collect reference: bare-sqlite.mjs);
// /healthz answers once it is ready, GET /count says how many rows are committed.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { groupCommitted, listenPort, openBareSqlite, serveUntilStopped } from './bare-sqlite.mjs';

const store = openBareSqlite('bare-beacon-');
const { db } = store;
db.exec(`create table beacon_events (id text primary key, at text not null, day text not null,
  purpose text not null, channel text not null, source text not null, site text not null,
  kind text not null, sealed text not null, visitor text not null, cookieless integer not null,
  campaign_id text);
  create index beacon_events_day_idx on beacon_events (day, id);
  create index beacon_events_at_idx on beacon_events (at);`);
const insert = db.prepare(
  `insert into beacon_events (id, at, day, purpose, channel, source, site, kind, sealed, visitor,
    cookieless, campaign_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
);
const insertAll = db.transaction((rows) => {
  for (const r of rows)
    insert.run(
      r.id,
      r.at,
      r.day,
      r.purpose,
      'web',
      'web-beacons',
      r.site,
      r.kind,
      r.sealed,
      r.visitor,
      r.cookieless,
      null,
    );
});
const count = db.prepare('select count(*) as n from beacon_events');

const write = groupCommitted(insertAll);

const app = Fastify({ logger: false });
app.addContentTypeParser('text/plain', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/count', async () => ({ rows: count.get().n }));
app.post('/api/v1/beacon', async (request, reply) => {
  const body = request.body ?? {};
  const at = new Date().toISOString();
  await write({
    id: randomUUID(),
    at,
    day: at.slice(0, 10),
    purpose: body.purpose ?? 'site-analytics',
    site: request.headers.origin ?? '',
    kind: body.event === undefined ? 'pageview' : 'event',
    sealed: JSON.stringify({ path: body.path, referrer: body.referrer, event: body.event }),
    visitor: body.visitor ?? `${request.ip} ${request.headers['user-agent'] ?? ''}`,
    cookieless: body.visitor === undefined ? 1 : 0,
  });
  return reply.status(204).send();
});
await serveUntilStopped(app, listenPort(), store);
