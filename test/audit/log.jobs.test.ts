/**
 * The integrator as a job of the platform queue, on every engine: a chain of slots, each slot's job
 * enqueued once however many instances schedule it, each run enqueuing the next slot's when it is
 * recorded; inside its slot it integrates what commits, woken by the append; it ends at once when
 * the log stops (shutdown), not at the end of its slot.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { INTEGRATE_JOB } from '../../src/audit/log.jobs.js';
import { createAuditCapability, type AuditCapability } from '../../src/audit/log.setup.js';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext } from '../../src/platform/context.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { Keyring } from '../../src/vault/keyring.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { waitFor } from '../helpers/faults.js';

const SLOT_MS = 300;

for (const dialect of DIALECTS) {
  describe(`the integrate job on ${dialect}`, () => {
    let database: TestDatabase;
    let dataDir: string;
    let keyring: Keyring;
    const clock = fixedClock(new Date('2026-12-07T12:00:00.000Z'));
    const ctx = createContext({ kind: 'cli', id: 'test' }, { clock });

    const build = (queue: JobQueue, slotMs = SLOT_MS): AuditCapability =>
      createAuditCapability({
        db: database.db,
        queue,
        subjectKeys: keyring.use('log_subjects'),
        checkpointKeys: keyring.use('log_checkpoints'),
        settings: {
          origin: 'pledge.test/log',
          checkpointFile: path.join(dataDir, 'checkpoints.jsonl'),
          checkpointWebhook: undefined,
          publicTiles: false,
        },
        log: { info: () => undefined, warn: () => undefined },
        slotMs,
        pollMs: 50,
      });

    before(async () => {
      database = await openMigratedTestDatabase(dialect);
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-log-jobs-'));
      keyring = await Keyring.load({ dataDir });
    });
    after(async () => {
      await database?.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    });

    test('one job per slot for any number of instances; each run integrates and enqueues the next slot', async () => {
      const queue = new JobQueue({ db: database.db, clock });
      const a = build(queue);
      // A second instance's capability on the same database (its own queue object, same table).
      const b = build(new JobQueue({ db: database.db, clock }));
      await Promise.all([a.start(ctx), b.start(ctx), a.start(ctx)]);
      const pending = await queue.list(ctx, { type: INTEGRATE_JOB, state: 'pending', limit: 10 });
      assert.equal(pending.length, 1, 'the current slot has one job');
      const slot = (pending[0]?.payload as { slot: string }).slot;

      await a.audit.append(ctx, [{ action: 'test.job', details: {} }]);
      const run = await queue.runDue({ types: [INTEGRATE_JOB] });
      assert.equal(run.done, 1);
      assert.equal(await a.log.size(ctx), 1, 'the run integrated what had committed');
      const next = await queue.list(ctx, { type: INTEGRATE_JOB, state: 'pending', limit: 10 });
      assert.deepEqual(
        next.map((j) => j.key),
        [new Date(Date.parse(slot) + SLOT_MS).toISOString()],
        'the next slot is enqueued by the run, keyed by its slot',
      );
    });

    test('inside its slot it integrates each append as it commits, and ends at once when the log stops', async () => {
      const queue = new JobQueue({ db: database.db, clock });
      // A long slot: only the stop may end this run early.
      const cap = build(queue, 60_000);
      await cap.start(
        createContext(
          { kind: 'cli', id: 'test' },
          { clock: fixedClock(new Date('2026-12-08T00:00:00.000Z')) },
        ),
      );
      const sizeBefore = await cap.log.size(ctx);
      const running = queue.runDue({ types: [INTEGRATE_JOB] });
      for (let i = 1; i <= 3; i++) {
        await cap.audit.append(ctx, [{ action: 'test.woken', details: { i } }]);
        await waitFor(`append ${i} integrated`, 1000, async () =>
          (await cap.log.size(ctx)) >= sizeBefore + i ? true : undefined,
        );
      }
      const stoppedAt = performance.now();
      cap.stop();
      const result = await running;
      assert.equal(result.done, 1);
      assert.ok(performance.now() - stoppedAt < 1000, 'the run ended promptly after the stop');
    });
  });
}
