// The second baseline for bench/collect.bench.ts: bare Fastify and bare better-sqlite3 doing the
// durable part of a collect request and nothing else. POST /api/v1/collect/:source parses the JSON
// body, and answers 201 only after the commit that holds a row with the plaintext body, as Pledge
// answers after its commit. Writes that arrive in one turn of the event loop share a transaction
// (group commit, as Pledge does). The database is set up as Pledge's SQLite database is: WAL,
// synchronous=FULL, 8 KiB pages, 32 MiB cache, a records table indexed by (subject_id, id).
// No validation, no encryption, no audit, no consent, no logging. Started like the other baseline
// (`--port P`; HOST, default 127.0.0.1; DATA_DIR for the file); /healthz answers once it is ready.
// The file, the group commit and the start and stop are shared with the beacon reference
// (bare-sqlite.mjs).
//
// With `--sealed` it also does, naively and inline, the rest of what Pledge must store for the
// request, so the difference to Pledge is Pledge's own overhead and not the work the policy asks
// for: the bearer key checked (SHA-256 and timingSafeEqual), each value of `data` sealed on its own
// with AES-256-GCM under its subject's key with an AAD binding subject, record and field (Pledge's
// envelope), the record row with Pledge's indexes (subject, retention deadline), and one audit row
// per request with its subject index. Still no validation, consent or logging.
import { createCipheriv, createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import { groupCommitted, listenPort, openBareSqlite, serveUntilStopped } from './bare-sqlite.mjs';

const store = openBareSqlite('bare-collect-');
const { db } = store;
const sealed = process.argv.includes('--sealed');
db.exec(`create table records (id text primary key, subject_id text not null, source text not null,
  fields text not null, collected_at text not null${sealed ? ', retain_until text not null' : ''});
  create index records_subject_idx on records (subject_id, id);`);
if (sealed) {
  db.exec(`create index records_retain_until_idx on records (retain_until);
    create table audit_events (id integer primary key autoincrement, at text not null, actor text not null,
      action text not null, subject_id text, details text not null);
    create index audit_events_subject_idx on audit_events (subject_id, id);`);
}
const insert = db.prepare(
  sealed
    ? 'insert into records (id, subject_id, source, fields, collected_at, retain_until) values (?, ?, ?, ?, ?, ?)'
    : 'insert into records (id, subject_id, source, fields, collected_at) values (?, ?, ?, ?, ?)',
);
const audit = sealed
  ? db.prepare('insert into audit_events (at, actor, action, subject_id, details) values (?, ?, ?, ?, ?)')
  : undefined;
const insertAll = db.transaction((rows) => {
  for (const r of rows) {
    if (!audit) {
      insert.run(r.id, r.subjectId, r.source, r.fields, r.at);
      continue;
    }
    insert.run(r.id, r.subjectId, r.source, r.fields, r.at, r.at);
    audit.run(r.at, '{"kind":"api_key"}', 'vault.write', r.subjectId, JSON.stringify({ records: [r.id] }));
  }
});

// --sealed: the bearer key's verifier, and a data key per subject, made on first sight.
const verifier = createHash('sha256')
  .update(process.env.BEARER ?? '')
  .digest();
const keys = new Map();
function aad(subjectId, recordId, field) {
  const parts = ['pledge.field.v1', subjectId, recordId, field, '1'].map((p) => Buffer.from(p));
  const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.writeUInt32BE(p.length, at);
    p.copy(out, at + 4);
    at += 4 + p.length;
  }
  return out;
}
function sealFields(subjectId, recordId, data) {
  let key = keys.get(subjectId);
  if (!key) keys.set(subjectId, (key = randomBytes(32)));
  const fields = {};
  for (const [name, value] of Object.entries(data)) {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    cipher.setAAD(aad(subjectId, recordId, name));
    const body = Buffer.concat([cipher.update(JSON.stringify(value)), cipher.final()]);
    fields[name] = {
      c: 'user',
      v: Buffer.concat([Buffer.from([1]), nonce, body, cipher.getAuthTag()]).toString('base64'),
    };
  }
  return JSON.stringify(fields);
}

const write = groupCommitted(insertAll);

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/api/v1/collect/:source', async (request, reply) => {
  const body = request.body ?? {};
  const subjectId = body.subject?.id ?? randomUUID();
  const id = randomUUID();
  if (sealed) {
    const token = (request.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!timingSafeEqual(createHash('sha256').update(token).digest(), verifier)) {
      return reply.status(401).send({ error: 'unauthorized' });
    }
  }
  await write({
    id,
    subjectId,
    source: request.params.source,
    fields: sealed ? sealFields(subjectId, id, body.data ?? {}) : JSON.stringify(body.data ?? {}),
    at: new Date().toISOString(),
  });
  return reply.status(201).send({ subject: { id: subjectId, created: false }, record: { id } });
});
await serveUntilStopped(app, listenPort(), store);
