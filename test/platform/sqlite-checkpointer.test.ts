import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { openDatabase } from '../../src/platform/db/database.js';
import {
  BackgroundCheckpoints,
  SAFETY_NET_PAGES,
  SQLITE_DEFAULT_PAGES,
  startCheckpointer,
} from '../../src/platform/db/dialects/sqlite-checkpointer.js';

/** A WAL database as Pledge opens one, written only through the returned connection. */
function openWal(file: string): BetterSqlite3.Database {
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('create table blobs (id integer primary key, body blob not null)');
  return db;
}

const autocheckpoint = (db: BetterSqlite3.Database): number =>
  db.pragma('wal_autocheckpoint', { simple: true }) as number;

void describe('background checkpoints of the SQLite write-ahead log', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-checkpointer-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  void test('a log far past SQLite’s own threshold reaches the database file, copied by the worker', async () => {
    const file = path.join(dir, 'copied.db');
    const db = openWal(file);
    const checkpointer = startCheckpointer(db, file, { busyIntervalMs: 5, idleIntervalMs: 5 });
    assert.ok(checkpointer, 'the worker starts');
    try {
      // The writing connection no longer checkpoints at 1,000 pages: only at the safety net.
      assert.equal(autocheckpoint(db), SAFETY_NET_PAGES);
      const before = (await stat(file)).size;
      // About 3,000 pages of 4 KiB, in 60 commits.
      const insert = db.prepare('insert into blobs (body) values (?)');
      const body = Buffer.alloc(200_000, 7);
      for (let i = 0; i < 60; i++) insert.run(body);
      const report = await checkpointer.checkpointNow();
      assert.equal(report.checkpointed, report.log);
      // The rows are in the database file itself, not only in the log; the writing connection
      // would not have copied them before the log reached the safety net (16,000 pages).
      assert.ok((await stat(file)).size >= before + 60 * 200_000);
    } finally {
      await checkpointer.stop();
      db.close();
    }
    const reopened = new BetterSqlite3(file, { readonly: true });
    try {
      assert.equal(reopened.prepare('select count(*) as n from blobs').get()?.['n' as never], 60);
      assert.equal(reopened.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      reopened.close();
    }
  });

  void test('once the worker stops, the writing connection checkpoints by itself again', async () => {
    const file = path.join(dir, 'stopped.db');
    const db = openWal(file);
    try {
      const checkpointer = startCheckpointer(db, file);
      assert.ok(checkpointer);
      assert.equal(autocheckpoint(db), SAFETY_NET_PAGES);
      await checkpointer.stop();
      assert.equal(autocheckpoint(db), SQLITE_DEFAULT_PAGES);
      await assert.rejects(checkpointer.checkpointNow(), /stopped/);
    } finally {
      db.close();
    }
  });

  void test('a worker starts once the log is large and stops by itself once writes stop', async () => {
    const file = path.join(dir, 'on-demand.db');
    const db = openWal(file);
    const checkpoints = new BackgroundCheckpoints(db, file, {
      startAtLogBytes: 100_000,
      idleExitMs: 20,
      busyIntervalMs: 5,
      idleIntervalMs: 5,
    });
    try {
      const insert = db.prepare('insert into blobs (body) values (?)');
      // Read through a function: each assertion below must see the property as it is then.
      const running = () => checkpoints.running;
      const commit = (bytes: number) => {
        insert.run(Buffer.alloc(bytes));
        checkpoints.committed();
      };
      commit(1_000);
      commit(1_000);
      // An idle or lightly written database has no extra thread: SQLite checkpoints as usual.
      assert.equal(running(), undefined);
      assert.equal(autocheckpoint(db), SQLITE_DEFAULT_PAGES);
      commit(200_000);
      const worker = running();
      assert.ok(worker, 'the commit that takes the log past the threshold starts a worker');
      assert.equal(autocheckpoint(db), SAFETY_NET_PAGES);
      await worker.stopped;
      assert.equal(running(), undefined);
      assert.equal(autocheckpoint(db), SQLITE_DEFAULT_PAGES);
      // It truncated the log on its way out: the next small write does not start another.
      assert.equal((await stat(`${file}-wal`)).size, 0);
      commit(1_000);
      assert.equal(running(), undefined);
      // Closed: no worker starts again, however large the log grows.
      await checkpoints.close();
      for (let i = 0; i < 5; i++) commit(200_000);
      assert.equal(running(), undefined);
    } finally {
      await checkpoints.close();
      db.close();
    }
  });

  void test('Pledge’s SQLite database runs one, and closing it leaves a whole file and no log', async () => {
    const dataDir = path.join(dir, 'pledge');
    const database = await openDatabase({ dataDir });
    await sql`create table notes (id integer primary key, body text not null)`.execute(database.kysely);
    // Enough transactions (Kysely's, as the vault's group commits are) to start the worker.
    for (let i = 0; i < 100; i++) {
      await database.kysely
        .transaction()
        .execute((trx) => sql`insert into notes (body) values (${'n'.repeat(20_000)})`.execute(trx));
    }
    await database.close();
    // The last connection to close checkpoints and removes the log: the worker's was closed first.
    assert.equal(existsSync(path.join(dataDir, 'pledge.db-wal')), false);
    const reopened = new BetterSqlite3(path.join(dataDir, 'pledge.db'), { readonly: true });
    try {
      assert.equal(reopened.pragma('page_size', { simple: true }), 8_192);
      assert.equal(reopened.prepare('select count(*) as n from notes').get()?.['n' as never], 100);
      assert.equal(reopened.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      reopened.close();
    }
  });
});
