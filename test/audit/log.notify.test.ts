/**
 * Appends of one instance wake the integrator of another (PostgreSQL LISTEN/NOTIFY): two logs on one
 * database, each with its own queue, a slot and a poll of a minute each, so nothing but the
 * notification can bring an entry of the instance not running the integrate job into the tree
 * within the second the issue allows. PostgreSQL only: SQLite is one process's database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as poll } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createAuditCapability, type AuditCapability } from '../../src/audit/log.setup.js';
import { createContext } from '../../src/platform/context.js';
import { openDatabase, type Database } from '../../src/platform/db/database.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { UseKeys, type KeyUse } from '../../src/vault/use-keys.js';
import {
  getTestDatabaseUrlOrThrow,
  openMigratedTestDatabase,
  type TestDatabase,
} from '../helpers/databases.js';
import { distinctEntry, TEST_LOG_ORIGIN } from '../helpers/log-db.js';

const ctx = createContext({ kind: 'job', id: 'test' });
/** Longer than the test: neither a new slot nor a poll can integrate an entry in time. */
const QUIET_MS = 120_000;

describe('appends on one instance wake the integrator of another (PostgreSQL)', () => {
  let database: TestDatabase;
  let second: Database;
  let dir: string;
  const logs: Array<{ cap: AuditCapability; queue: JobQueue }> = [];

  before(async () => {
    database = await openMigratedTestDatabase('postgres');
    second = await openDatabase({
      databaseUrl: getTestDatabaseUrlOrThrow(),
      dataDir: os.tmpdir(),
      schema: database.schema,
    });
    dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-log-notify-'));
    const secrets = { subjects: randomBytes(32), checkpoints: randomBytes(32) };
    const keys = (use: KeyUse, secret: Buffer) =>
      new UseKeys(use, [{ version: 1, secret, createdAt: undefined }]);
    for (const [name, db] of [
      ['a', database],
      ['b', second],
    ] as const) {
      const queue = new JobQueue({ db: db.db });
      const cap = createAuditCapability({
        db: db.db,
        queue,
        subjectKeys: keys('log_subjects', secrets.subjects),
        checkpointKeys: keys('log_checkpoints', secrets.checkpoints),
        settings: {
          origin: TEST_LOG_ORIGIN,
          checkpointFile: path.join(dir, `${name}.jsonl`),
          checkpointWebhook: undefined,
          publicTiles: false,
        },
        log: { info: () => undefined, warn: () => undefined },
        notifications: db,
        slotMs: QUIET_MS,
        pollMs: QUIET_MS,
        // No linger: after each pass the integrator waits for a wake, which for the other
        // instance's entries only the notification gives.
        lingerMs: 0,
      });
      logs.push({ cap, queue });
    }
    for (const { cap, queue } of logs) {
      await cap.start(ctx);
      queue.start();
    }
  });
  after(async () => {
    for (const { cap, queue } of logs) {
      cap.stop();
      await queue.stop({ abortAfterMs: 0 });
      await cap.flush();
    }
    await second?.close();
    await database?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  test('every append, on either instance, is integrated within a second of its commit', async (t) => {
    const head = () => logs[0]!.cap.log.head(ctx);
    // The integrate job runs on one of the two; the first pass of its slot signs the first checkpoint.
    const deadline = performance.now() + 10_000;
    while ((await logs[0]!.cap.log.checkpointText(ctx)) === undefined) {
      assert.ok(performance.now() < deadline, 'the integrate job never ran');
      await poll(10);
    }
    let expected = (await head()).size;
    const lags: number[] = [];
    for (let i = 0; i < 8; i++) {
      const { cap } = logs[i % 2]!;
      await (i % 2 === 0 ? database : second).db.transaction(ctx, (trx) =>
        cap.audit.append(trx, [distinctEntry(i)]),
      );
      const committed = performance.now();
      expected++;
      while ((await head()).size < expected) {
        assert.ok(
          performance.now() - committed < 1000,
          `append ${i} (instance ${i % 2 === 0 ? 'a' : 'b'}) was not integrated within a second`,
        );
        await poll(5);
      }
      lags.push(performance.now() - committed);
    }
    // Both instances appended, and the job ran on only one: the other's entries came by NOTIFY.
    t.diagnostic(`commit to leaf index: ${lags.map((l) => Math.round(l)).join(', ')} ms`);
  });
});
