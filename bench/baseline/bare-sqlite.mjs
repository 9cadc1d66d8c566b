// What the durable references (fastify-sqlite-collect.mjs, fastify-sqlite-beacon.mjs) share, so
// that both do the durable part of the work the same way Pledge's SQLite store does it and nothing
// more: a database file set up as Pledge's is (WAL, synchronous=FULL, 8 KiB pages, 32 MiB cache),
// writes that arrive in one turn of the event loop committed in one transaction (group commit) with
// each answered only after that commit, and the start and stop of the other baselines (`--port P`,
// or PORT; HOST, default 127.0.0.1; a file in a new directory under DATA_DIR, removed on stop).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

/** The port of `--port P`, else PORT, else 8080. */
export function listenPort() {
  const flag = process.argv.indexOf('--port');
  return Number(flag >= 0 ? process.argv[flag + 1] : (process.env.PORT ?? 8080));
}

/** A new database file in a new directory `prefix…` under DATA_DIR (else the system's tmp). */
export function openBareSqlite(prefix) {
  const dir = mkdtempSync(path.join(process.env.DATA_DIR ?? os.tmpdir(), prefix));
  const db = new BetterSqlite3(path.join(dir, 'bare.db'));
  db.pragma('page_size = 8192');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('cache_size = -32768');
  return { db, dir };
}

/**
 * A `write(row)` that queues the row and resolves once `insertAll` (one transaction) has committed
 * it with every other row queued in the same turn of the event loop; rejects if that commit fails.
 */
export function groupCommitted(insertAll) {
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
  return (row) =>
    new Promise((resolve, reject) => {
      queue.push({ ...row, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}

/** Listens on `port`; on SIGTERM or SIGINT closes the server and the database, removes the file. */
export async function serveUntilStopped(app, port, { db, dir }) {
  await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });
  const stop = () =>
    void app.close().then(() => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
