// The second baseline for bench/collect.bench.ts: bare Fastify and bare better-sqlite3 doing the
// durable part of a collect request and nothing else. POST /api/v1/collect/:source parses the JSON
// body, and answers 201 only after the commit that holds a row with the plaintext body, as Pledge
// answers after its commit. Writes that arrive in one turn of the event loop share a transaction
// (group commit, as Pledge does). The database is set up as Pledge's SQLite database is: WAL,
// synchronous=FULL, 8 KiB pages, 32 MiB cache, a records table indexed by (subject_id, id).
// No validation, no encryption, no audit, no consent, no logging. Started like the other baseline
// (`--port P`; HOST, default 127.0.0.1; DATA_DIR for the file); /healthz answers once it is ready.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import Fastify from 'fastify';

const flag = process.argv.indexOf('--port');
const port = Number(flag >= 0 ? process.argv[flag + 1] : (process.env.PORT ?? 8080));
const dir = mkdtempSync(path.join(process.env.DATA_DIR ?? os.tmpdir(), 'bare-collect-'));
const db = new BetterSqlite3(path.join(dir, 'bare.db'));
db.pragma('page_size = 8192');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('cache_size = -32768');
db.exec(`create table records (id text primary key, subject_id text not null, source text not null,
  fields text not null, collected_at text not null);
  create index records_subject_idx on records (subject_id, id);`);
const insert = db.prepare(
  'insert into records (id, subject_id, source, fields, collected_at) values (?, ?, ?, ?, ?)',
);
const insertAll = db.transaction((rows) => {
  for (const r of rows) insert.run(r.id, r.subjectId, r.source, r.fields, r.at);
});

let queue = [];
let scheduled = false;
function flush() {
  scheduled = false;
  const group = queue;
  queue = [];
  try {
    insertAll(group);
    for (const w of group) w.resolve();
  } catch (err) {
    for (const w of group) w.reject(err);
  }
}
function write(row) {
  return new Promise((resolve, reject) => {
    queue.push({ ...row, resolve, reject });
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
}

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/api/v1/collect/:source', async (request, reply) => {
  const body = request.body ?? {};
  const subjectId = body.subject?.id ?? randomUUID();
  const id = randomUUID();
  await write({
    id,
    subjectId,
    source: request.params.source,
    fields: JSON.stringify(body.data ?? {}),
    at: new Date().toISOString(),
  });
  return reply.status(201).send({ subject: { id: subjectId, created: false }, record: { id } });
});
await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });

const stop = () =>
  void app.close().then(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
