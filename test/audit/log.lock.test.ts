/**
 * The integrator's advisory lock does not outlive an instance that froze mid-pass (PostgreSQL): a
 * session that took the lock and then sits idle in its transaction, as a stopped process or one cut
 * off from the network would, is ended by PostgreSQL after INTEGRATION_IDLE_TIMEOUT_MS, and another
 * instance's integrator, waiting on the lock, then integrates. (A killed process's session ends at
 * once: test/audit/log.takeover.test.ts.) PostgreSQL only: SQLite has one writer and no such lock.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { INTEGRATION_IDLE_TIMEOUT_MS, LogRepository } from '../../src/audit/log.repository.js';
import { openDatabase, type Database } from '../../src/platform/db/database.js';
import {
  getTestDatabaseUrlOrThrow,
  openMigratedTestDatabase,
  type TestDatabase,
} from '../helpers/databases.js';
import { distinctEntry, openTestLog, type TestLog } from '../helpers/log-db.js';

describe('the integration lock of a frozen instance (PostgreSQL)', () => {
  let database: TestDatabase;
  let frozen: Database;
  let log: TestLog;

  before(async () => {
    database = await openMigratedTestDatabase('postgres');
    frozen = await openDatabase({
      databaseUrl: getTestDatabaseUrlOrThrow(),
      dataDir: os.tmpdir(),
      schema: database.schema,
    });
    log = await openTestLog(database);
  });
  after(async () => {
    await frozen?.close();
    await log?.cleanup();
    await database?.cleanup();
  });

  test('is released once its session sits idle in the transaction, and the other integrates', async () => {
    await database.db.transaction(log.ctx, (trx) => log.audit.append(trx, [distinctEntry(1)]));
    let thaw!: () => void;
    const thawed = new Promise<void>((resolve) => (thaw = resolve));
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));
    // The frozen instance: takes the lock in a pass of its own, then does nothing until thawed.
    const stuck = frozen.db.transaction(log.ctx, async (trx) => {
      await new LogRepository(frozen.db).lockIntegration(trx);
      locked();
      await thawed;
      await new LogRepository(frozen.db).getState(trx);
    });
    const settled = stuck.then(
      () => undefined,
      (err: unknown) => err,
    );
    await lockTaken;
    const start = performance.now();
    // As the integrate job would: a pass that waited on the lock past the statement timeout (5 s)
    // fails, and is tried again.
    let r: Awaited<ReturnType<TestLog['integrateNow']>> | undefined;
    const failures: string[] = [];
    while (r === undefined) {
      try {
        r = await log.integrateNow(log.ctx);
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
        assert.ok(performance.now() - start < INTEGRATION_IDLE_TIMEOUT_MS + 10_000, failures.join('; '));
      }
    }
    const waited = performance.now() - start;
    thaw();
    assert.equal(r.size, 1, "the other instance's integrator integrated the entry");
    assert.ok(
      waited >= INTEGRATION_IDLE_TIMEOUT_MS - 1000,
      `it waited for the lock (${Math.round(waited)} ms)`,
    );
    assert.ok(
      waited < INTEGRATION_IDLE_TIMEOUT_MS + 10_000,
      `it waited ${Math.round(waited)} ms, not about the idle timeout`,
    );
    const err = await settled;
    assert.ok(err instanceof Error, 'the frozen pass cannot go on: its session was ended');
    // The frozen instance's pool recovers: its next transaction works.
    const state = await frozen.db.transaction(log.ctx, (trx) => new LogRepository(frozen.db).getState(trx));
    assert.equal(state?.size, 1);
  });
});
