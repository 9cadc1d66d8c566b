/**
 * The job queue on both engines, as a capability using it would notice: a job exists if and only if
 * the change that enqueued it committed; keys make enqueueing idempotent; two queues (two instances)
 * never run a job twice; a job whose worker heart-beats is never taken from it, and one whose worker
 * stopped is re-queued and runs elsewhere while the old worker is fenced out; retries back off
 * exponentially with jitter; dead jobs keep their last error and can be retried; `record` commits
 * with the job's state; a graceful stop gives back what it had not started. Time is an injected
 * clock; the worker's heartbeat and watchdog are called directly after moving it.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { openDatabase, type Database } from '../../src/platform/db/database.js';
import type { Db } from '../../src/platform/db/db.js';
import { PledgeError } from '../../src/platform/errors.js';
import {
  jobDead,
  jobDone,
  jobRetry,
  type Job,
  type JobFinalState,
  type JobRecorder,
} from '../../src/platform/jobs/jobs.definition.js';
import { JobQueue, type JobQueueOptions } from '../../src/platform/jobs/jobs.service.js';
import {
  DIALECTS,
  openMigratedTestDatabase,
  getTestDatabaseUrlOrThrow,
  type TestDatabase,
} from '../helpers/databases.js';

const T0 = new Date('2026-12-03T09:00:00.000Z');

/** A promise and the functions that settle it. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves when `signal` aborts. */
function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** A table of a pretend capability, written by `record` functions in the job's transaction. */
interface OutcomeTables {
  job_outcomes: { job_id: string; state: string; run_at: string | null };
}

function codeOf(err: unknown): string | undefined {
  return err instanceof PledgeError ? err.code : undefined;
}

for (const dialect of DIALECTS) {
  describe(`job queue on ${dialect}`, () => {
    let database: TestDatabase;
    let db: Db;
    let clock: ReturnType<typeof fixedClock>;
    let ctx: Context;
    const queues: JobQueue[] = [];
    const extraDatabases: Database[] = [];

    beforeEach(async () => {
      database = await openMigratedTestDatabase(dialect);
      db = database.db;
      clock = fixedClock(T0);
      ctx = createContext({ kind: 'system', id: 'web-app', key: 'key-1' }, { clock, requestId: 'req-1' });
    });
    afterEach(async () => {
      for (const q of queues.splice(0)) await q.stop({ abortAfterMs: 0 });
      for (const d of extraDatabases.splice(0)) await d.close();
      await database.cleanup();
    });

    function newQueue(options: Partial<JobQueueOptions> = {}): JobQueue {
      const queue = new JobQueue({ db, clock, random: () => 0.5, ...options });
      queues.push(queue);
      return queue;
    }

    /** Another connection pool on the same database: what a second instance has. */
    async function secondDb(): Promise<Db> {
      const other =
        dialect === 'postgres'
          ? await openDatabase({
              databaseUrl: getTestDatabaseUrlOrThrow(),
              dataDir: os.tmpdir(),
              schema: database.schema,
            })
          : await openDatabase({ dataDir: path.dirname(database.location) });
      extraDatabases.push(other);
      return other.db;
    }

    async function createOutcomeTable(): Promise<void> {
      await database.kysely.schema
        .createTable('job_outcomes')
        .addColumn('job_id', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('run_at', 'text')
        .execute();
    }

    function recordOutcome(jobId: string, fail?: string): JobRecorder {
      return async (rctx, final) => {
        assert.ok(db.inTransaction(rctx), 'record runs in the transaction of the job state change');
        await db
          .executor<OutcomeTables>(rctx)
          .insertInto('job_outcomes')
          .values({
            job_id: jobId,
            state: final.state,
            run_at: final.state === 'pending' ? final.runAt.toISOString() : null,
          })
          .execute();
        if (fail !== undefined) throw new Error(fail);
      };
    }

    async function outcomes(): Promise<Map<string, { state: string; run_at: string | null }>> {
      const rows = await db.executor<OutcomeTables>(ctx).selectFrom('job_outcomes').selectAll().execute();
      return new Map(rows.map((r) => [r.job_id, { state: r.state, run_at: r.run_at }]));
    }

    test('a job enqueued in a transaction that rolls back does not exist; one that commits runs, as the system, under the request id', async () => {
      const queue = newQueue();
      const seen: Array<{ ctx: Context; job: Job<{ subjectId: string }> }> = [];
      queue.define<{ subjectId: string }>({
        type: 'test.echo',
        handle: (hctx, job) => {
          seen.push({ ctx: hctx, job });
          return Promise.resolve(jobDone());
        },
      });
      await assert.rejects(
        db.transaction(ctx, async (tctx) => {
          await queue.enqueue(tctx, 'test.echo', { subjectId: 's-1' });
          throw new Error('the change failed');
        }),
        /the change failed/,
      );
      assert.deepEqual(await queue.list(ctx), []);
      assert.deepEqual(await queue.runDue(), {
        claimed: 0,
        done: 0,
        retried: 0,
        dead: 0,
        lost: 0,
        released: 0,
      });

      const { id, created } = await db.transaction(ctx, (tctx) =>
        queue.enqueue(tctx, 'test.echo', { subjectId: 's-2' }),
      );
      assert.equal(created, true);
      const pending = await queue.getOrThrow(ctx, id);
      assert.equal(pending.state, 'pending');
      assert.deepEqual(pending.enqueuedBy, ctx.actor);
      assert.equal(pending.requestId, 'req-1');

      assert.deepEqual(await queue.runDue(), {
        claimed: 1,
        done: 1,
        retried: 0,
        dead: 0,
        lost: 0,
        released: 0,
      });
      assert.equal(seen.length, 1);
      const [{ ctx: hctx, job } = assert.fail('the handler ran')] = seen;
      assert.deepEqual(job.payload, { subjectId: 's-2' });
      assert.equal(job.attempt, 1);
      assert.deepEqual(job.enqueuedBy, ctx.actor);
      assert.deepEqual(hctx.actor, { kind: 'job', id: 'test.echo' });
      assert.equal(hctx.requestId, 'req-1');
      const done = await queue.getOrThrow(ctx, id);
      assert.equal(done.state, 'done');
      assert.equal(done.attempts, 1);
      assert.deepEqual(done.finishedAt, T0);
    });

    test('a type that acts as the enqueuer gets the enqueuing actor', async () => {
      const queue = newQueue();
      const actors: Context['actor'][] = [];
      queue.define({
        type: 'test.as-enqueuer',
        actAs: 'enqueuer',
        handle: (hctx) => {
          actors.push(hctx.actor);
          return Promise.resolve(jobDone());
        },
      });
      await queue.enqueue(ctx, 'test.as-enqueuer', { subjectId: 's-1' });
      await queue.runDue();
      assert.deepEqual(actors, [ctx.actor]);
    });

    test('a job acts for the system whose call enqueued it, also when a CLI command named the system', async () => {
      const queue = newQueue();
      const seen: Array<{ actor: Context['actor']; system: string | undefined }> = [];
      queue.define({
        type: 'test.for-system',
        handle: (hctx) => {
          seen.push({ actor: hctx.actor, system: hctx.system });
          return Promise.resolve(jobDone());
        },
      });
      const cli = createContext({ kind: 'cli', id: 'ops' }, { clock, system: 'billing' });
      await queue.enqueue(ctx, 'test.for-system', { subjectId: 's-1' });
      await queue.runDue();
      await queue.enqueue(cli, 'test.for-system', { subjectId: 's-2' });
      await queue.runDue();
      await queue.enqueue(createContext({ kind: 'job', id: 'retention' }, { clock }), 'test.for-system', {});
      await queue.runDue();
      assert.deepEqual(seen, [
        { actor: { kind: 'job', id: 'test.for-system' }, system: 'web-app' },
        { actor: { kind: 'job', id: 'test.for-system' }, system: 'billing' },
        { actor: { kind: 'job', id: 'test.for-system' }, system: undefined },
      ]);
    });

    test('the started worker runs a job as soon as its transaction commits, and finds other instances’ jobs on its poll', async () => {
      const queue = newQueue({ pollIntervalMs: 3_600_000 });
      const ran = new Map<string, () => void>();
      const waitFor = (name: string): Promise<void> => new Promise((resolve) => ran.set(name, resolve));
      const calls: string[] = [];
      queue.define<{ name: string }>({
        type: 'test.wake',
        handle: (_c, job) => {
          calls.push(job.payload.name);
          ran.get(job.payload.name)?.();
          return Promise.resolve(jobDone());
        },
      });
      queue.start();
      const first = waitFor('first');
      await queue.enqueue(ctx, 'test.wake', { name: 'first' });
      await first;
      // With an hour between polls, only the wake after the commit can pick this one up.
      const second = waitFor('second');
      await db.transaction(ctx, async (tctx) => {
        await queue.enqueue(tctx, 'test.wake', { name: 'second' });
        assert.deepEqual(calls, ['first'], 'nothing runs before the commit');
      });
      await second;

      // Another instance (its own pool) polls: it finds what this one enqueued.
      const other = newQueue({ db: await secondDb(), pollIntervalMs: 20 });
      const third = deferred();
      other.define<{ name: string }>({
        type: 'test.elsewhere',
        handle: () => {
          third.resolve();
          return Promise.resolve(jobDone());
        },
      });
      // This instance knows the type (to enqueue it) but has stopped running jobs.
      queue.define({ type: 'test.elsewhere', handle: () => Promise.resolve(jobDone()) });
      await queue.stop();
      other.start();
      await queue.enqueue(ctx, 'test.elsewhere', { name: 'third' });
      await third.promise;
    });

    test('an idempotency key is unique per type: enqueueing it again does nothing and says so', async () => {
      const queue = newQueue();
      queue.define({ type: 'test.a', handle: () => Promise.resolve(jobDone()) });
      queue.define({ type: 'test.b', handle: () => Promise.resolve(jobDone()) });
      const first = await queue.enqueue(ctx, 'test.a', { eventId: 'e-1' }, { key: 'event:e-1' });
      const again = await queue.enqueue(ctx, 'test.a', { eventId: 'e-1' }, { key: 'event:e-1' });
      assert.deepEqual(again, { id: first.id, created: false });
      const otherType = await queue.enqueue(ctx, 'test.b', { eventId: 'e-1' }, { key: 'event:e-1' });
      assert.equal(otherType.created, true);

      const many = await queue.enqueueMany(ctx, [
        { type: 'test.a', payload: { eventId: 'e-1' }, key: 'event:e-1' },
        { type: 'test.a', payload: { eventId: 'e-2' }, key: 'event:e-2' },
        { type: 'test.a', payload: { eventId: 'e-2' }, key: 'event:e-2' },
        { type: 'test.a', payload: { eventId: 'e-3' } },
      ]);
      assert.equal(many.created, 2);
      assert.equal(many.existing, 2);
      assert.equal(many.ids[0], first.id);
      assert.equal(many.ids[1], many.ids[2]);
      assert.equal((await queue.list(ctx, { type: 'test.a' })).length, 3);
      // Once run, the key stays taken: the work is not done twice.
      await queue.runDue();
      assert.equal(
        (await queue.enqueue(ctx, 'test.a', { eventId: 'e-1' }, { key: 'event:e-1' })).created,
        false,
      );
    });

    test('tens of thousands of jobs go in with one transaction, or none do', async () => {
      const queue = newQueue();
      queue.define({
        type: 'test.send',
        batchSize: 64,
        concurrency: 8,
        handleMany: (_c, jobs) => Promise.resolve(jobs.map(() => jobDone())),
      });
      const items = Array.from({ length: 20_000 }, (_, i) => ({
        type: 'test.send',
        payload: { recipientId: `r-${i}` },
      }));
      await assert.rejects(
        db.transaction(ctx, async (tctx) => {
          await queue.enqueueMany(tctx, items);
          throw new Error('the campaign could not start');
        }),
      );
      assert.equal((await queue.counts(ctx)).states.pending, 0);
      const result = await db.transaction(ctx, (tctx) => queue.enqueueMany(tctx, items));
      assert.equal(result.created, 20_000);
      assert.equal(new Set(result.ids).size, 20_000);
      assert.equal((await queue.counts(ctx)).states.pending, 20_000);
      const first = await queue.runDue();
      assert.equal(first.claimed, 8 * 64);
      assert.equal(first.done, 8 * 64);
    });

    test('two queues on two pools claim disjoint jobs concurrently, and every job runs once', async () => {
      const ranBy = new Map<string, string[]>();
      const define = (queue: JobQueue, name: string): void => {
        queue.define({
          type: 'test.share',
          concurrency: 10,
          handle: (_c, job) => {
            ranBy.set(job.id, [...(ranBy.get(job.id) ?? []), name]);
            return Promise.resolve(jobDone());
          },
        });
      };
      const one = newQueue();
      const two = newQueue({ db: await secondDb() });
      define(one, 'one');
      define(two, 'two');
      const { ids } = await one.enqueueMany(
        ctx,
        Array.from({ length: 200 }, (_, i) => ({ type: 'test.share', payload: { n: i } })),
      );
      const totals = { one: 0, two: 0 };
      for (;;) {
        const [a, b] = await Promise.all([one.runDue(), two.runDue()]);
        totals.one += a.done;
        totals.two += b.done;
        assert.equal(a.lost + b.lost, 0);
        if (a.claimed + b.claimed === 0) break;
      }
      assert.equal(totals.one + totals.two, 200);
      assert.ok(totals.one > 0 && totals.two > 0, `both queues ran jobs (${totals.one} and ${totals.two})`);
      for (const id of ids) assert.equal(ranBy.get(id)?.length, 1, `job ${id} ran once`);
      assert.equal((await one.counts(ctx)).states.done, 200);
    });

    test('a job whose worker heart-beats is never taken by another worker’s watchdog, however long it runs', async () => {
      const worker = newQueue();
      const watchdog = newQueue({ db: await secondDb() });
      const started = deferred<AbortSignal>();
      const release = deferred();
      worker.define({
        type: 'test.slow',
        leaseMs: 30_000,
        timeoutMs: 3_600_000,
        handle: async (_c, _job, signal) => {
          started.resolve(signal);
          await release.promise;
          return jobDone();
        },
      });
      watchdog.define({ type: 'test.slow', leaseMs: 30_000, handle: () => Promise.resolve(jobDone()) });
      const { id } = await worker.enqueue(ctx, 'test.slow', { n: 1 });
      const pass = worker.runDue();
      const signal = await started.promise;
      for (let i = 0; i < 10; i++) {
        clock.advance(20_000);
        await worker.heartbeat();
        assert.deepEqual(await watchdog.watchdog(), { requeued: 0, dead: 0, pruned: 0 });
      }
      const running = await worker.getOrThrow(ctx, id);
      assert.equal(running.state, 'running');
      assert.ok((running.leaseUntil?.getTime() ?? 0) > clock.now().getTime());
      assert.equal(signal.aborted, false);
      release.resolve();
      assert.deepEqual(await pass, { claimed: 1, done: 1, retried: 0, dead: 0, lost: 0, released: 0 });
      const done = await worker.getOrThrow(ctx, id);
      assert.equal(done.state, 'done');
      assert.equal(done.attempts, 1);
    });

    test('a stopped worker’s job is re-queued by another’s watchdog and runs there; the old worker is fenced out and its signal aborts', async () => {
      const dead = newQueue({ workerName: 'dead-worker' });
      const alive = newQueue({ db: await secondDb(), workerName: 'alive-worker' });
      const started = deferred<AbortSignal>();
      const release = deferred();
      const retry = { baseDelayMs: 1000, maxDelayMs: 60_000, jitter: 0 };
      dead.define({
        type: 'test.work',
        leaseMs: 30_000,
        retry,
        handle: async (_c, _job, signal) => {
          started.resolve(signal);
          await release.promise;
          return jobDone();
        },
      });
      const attemptsSeen: number[] = [];
      alive.define({
        type: 'test.work',
        leaseMs: 30_000,
        retry,
        handle: (_c, job) => {
          attemptsSeen.push(job.attempt);
          return Promise.resolve(jobDone());
        },
      });
      const { id } = await dead.enqueue(ctx, 'test.work', { n: 1 });
      const deadPass = dead.runDue();
      const signal = await started.promise;

      // The lease ran out, but not yet by the allowance for clock skew (5 s): still not taken.
      clock.advance(30_001);
      assert.equal((await alive.watchdog()).requeued, 0);
      clock.advance(5_000);
      assert.equal((await alive.watchdog()).requeued, 1);
      const requeued = await alive.getOrThrow(ctx, id);
      assert.equal(requeued.state, 'pending');
      assert.equal(requeued.attempts, 1);
      assert.match(requeued.lastError ?? '', /worker \(dead-worker\) stopped heart-beating/);
      assert.deepEqual(requeued.runAt, new Date(clock.now().getTime() + 1000));

      clock.advance(1000);
      assert.equal((await alive.runDue()).done, 1);
      assert.deepEqual(attemptsSeen, [2]);

      // The old worker wakes up: its heartbeat finds the job gone and aborts its handler.
      await dead.heartbeat();
      assert.equal(signal.aborted, true);
      assert.equal(codeOf(signal.reason), 'jobs.lease_lost');
      release.resolve();
      assert.deepEqual(await deadPass, { claimed: 1, done: 0, retried: 0, dead: 0, lost: 1, released: 0 });
      const done = await alive.getOrThrow(ctx, id);
      assert.equal(done.state, 'done');
      assert.equal(done.attempts, 2);
      assert.equal(done.worker, 'alive-worker');
    });

    test('a worker that lost its lease cannot complete or fail the job, and is told', async () => {
      const slow = newQueue();
      const other = newQueue({ db: await secondDb() });
      const started = deferred<AbortSignal>();
      const release = deferred<'done' | 'fail'>();
      slow.define({
        type: 'test.fenced',
        leaseMs: 30_000,
        handle: async (_c, _job, signal) => {
          started.resolve(signal);
          return (await release.promise) === 'done' ? jobDone() : jobRetry('late failure');
        },
      });
      other.define({ type: 'test.fenced', leaseMs: 30_000, handle: () => Promise.resolve(jobDone()) });
      const { id } = await slow.enqueue(ctx, 'test.fenced', { n: 1 });
      const pass = slow.runDue();
      const signal = await started.promise;
      clock.advance(60_000);
      await other.watchdog();
      // The handler finishes without a heartbeat in between: its outcome is refused.
      release.resolve('done');
      assert.deepEqual(await pass, { claimed: 1, done: 0, retried: 0, dead: 0, lost: 1, released: 0 });
      assert.equal(signal.aborted, true);
      const job = await slow.getOrThrow(ctx, id);
      assert.equal(job.state, 'pending', 'the job is the watchdog’s re-queued one, not done');
      assert.match(job.lastError ?? '', /stopped heart-beating/);
    });

    test('a job whose type must not run twice goes dead when its worker stops heart-beating', async () => {
      const worker = newQueue();
      const watchdog = newQueue({ db: await secondDb() });
      const started = deferred<AbortSignal>();
      const definition = {
        type: 'test.mail',
        leaseMs: 30_000,
        rerunAfterLeaseLoss: false,
        handle: async (_c: Context, _j: Job, signal: AbortSignal) => {
          started.resolve(signal);
          await untilAborted(signal);
          return jobRetry('aborted');
        },
      };
      worker.define(definition);
      watchdog.define(definition);
      const { id } = await worker.enqueue(ctx, 'test.mail', { messageId: 'm-1' });
      const pass = worker.runDue();
      await started.promise;
      clock.advance(40_000);
      assert.deepEqual(await watchdog.watchdog(), { requeued: 0, dead: 1, pruned: 0 });
      const job = await watchdog.getOrThrow(ctx, id);
      assert.equal(job.state, 'dead');
      assert.equal(job.attempts, 1);
      assert.match(job.lastError ?? '', /stopped heart-beating.*must not run twice/);
      await worker.heartbeat();
      assert.equal((await pass).lost, 1);
      assert.equal((await worker.getOrThrow(ctx, id)).state, 'dead');
    });

    test('a handler that hangs past its timeout has its signal aborted and the attempt fails with that reason', async () => {
      const queue = newQueue();
      const started = deferred<AbortSignal>();
      queue.define({
        type: 'test.hang',
        leaseMs: 30_000,
        timeoutMs: 60_000,
        // Ignores its signal and never answers: the queue must not wait for it.
        handle: (_c, _job, signal) => {
          started.resolve(signal);
          return new Promise(() => undefined);
        },
      });
      const { id } = await queue.enqueue(ctx, 'test.hang', { n: 1 });
      const pass = queue.runDue();
      const signal = await started.promise;
      clock.advance(30_000);
      await queue.heartbeat();
      assert.equal(signal.aborted, false);
      clock.advance(30_000);
      await queue.heartbeat();
      assert.equal(signal.aborted, true);
      assert.equal(codeOf(signal.reason), 'jobs.timeout');
      assert.equal((await pass).retried, 1);
      const job = await queue.getOrThrow(ctx, id);
      assert.equal(job.state, 'pending');
      assert.match(job.lastError ?? '', /did not finish within 60 s/);
    });

    test('retry delays grow exponentially from the base, with jitter inside its bounds, up to the maximum; then the job is dead with its last error', async () => {
      const randoms = [0, 0.5, 0.999, 0.25, 0.75];
      const queue = newQueue({ random: () => randoms.shift() ?? 0 });
      const policy = { baseDelayMs: 1000, maxDelayMs: 6000, maxAttempts: 6, jitter: 0.5 };
      let attempt = 0;
      queue.define({
        type: 'test.flaky',
        retry: policy,
        handle: () => {
          attempt++;
          throw new Error(`receiver answered 503 (attempt ${attempt})`);
        },
      });
      const { id } = await queue.enqueue(ctx, 'test.flaky', { deliveryId: 'd-1' });
      const delays: number[] = [];
      const expected = [0, 0.5, 0.999, 0.25, 0.75].map((r, i) =>
        Math.min(6000, Math.round(1000 * 2 ** i * (1 + 0.5 * r))),
      );
      for (let i = 0; i < 5; i++) {
        assert.equal((await queue.runDue()).retried, 1);
        const job = await queue.getOrThrow(ctx, id);
        const delay = job.runAt.getTime() - clock.now().getTime();
        const exponential = 1000 * 2 ** i;
        assert.ok(
          delay >= Math.min(6000, exponential) && delay <= Math.min(6000, exponential * 1.5),
          `delay ${delay}`,
        );
        delays.push(delay);
        // Not due before its time.
        clock.advance(delay - 1);
        assert.equal((await queue.runDue()).claimed, 0);
        clock.advance(1);
      }
      assert.deepEqual(delays, expected);
      // 1000 × 2^n × (1 + 0.5 × random), at most 6000.
      assert.deepEqual(delays, [1000, 2500, 5998, 6000, 6000]);
      assert.deepEqual(await queue.runDue(), {
        claimed: 1,
        done: 0,
        retried: 0,
        dead: 1,
        lost: 0,
        released: 0,
      });
      const dead = await queue.getOrThrow(ctx, id);
      assert.equal(dead.state, 'dead');
      assert.equal(dead.attempts, 6);
      assert.equal(dead.lastError, 'receiver answered 503 (attempt 6) (the last of 6 attempts)');
    });

    test('a dead job is retried with a fresh set of attempts; only dead jobs are retried', async () => {
      const queue = newQueue();
      let failures = 2;
      queue.define({
        type: 'test.recover',
        retry: { baseDelayMs: 1000, jitter: 0 },
        handle: () => {
          if (failures-- > 0) return Promise.resolve(jobRetry('the receiver is down'));
          return Promise.resolve(jobDone());
        },
      });
      const { id } = await queue.enqueue(ctx, 'test.recover', { n: 1 }, { maxAttempts: 2 });
      await queue.runDue();
      clock.advance(1000);
      assert.equal((await queue.runDue()).dead, 1);
      assert.equal(
        (await queue.getOrThrow(ctx, id)).lastError,
        'the receiver is down (the last of 2 attempts)',
      );

      const retried = await queue.retry(ctx, id);
      assert.equal(retried.state, 'pending');
      assert.equal(retried.attempts, 0);
      assert.deepEqual(retried.runAt, clock.now());
      assert.equal((await queue.runDue()).done, 1);
      const done = await queue.getOrThrow(ctx, id);
      assert.equal(done.state, 'done');
      assert.equal(done.attempts, 1);

      await assert.rejects(queue.retry(ctx, id), (err) => codeOf(err) === 'jobs.not_dead');
      await assert.rejects(queue.retry(ctx, 'no-such-job'), (err) => codeOf(err) === 'jobs.not_found');
    });

    test('a handler can say dead at once, or when to retry', async () => {
      const queue = newQueue();
      const later = new Date(T0.getTime() + 120_000);
      queue.define<{ mode: string }>({
        type: 'test.answers',
        concurrency: 2,
        handle: (_c, job) =>
          Promise.resolve(
            job.payload.mode === 'dead'
              ? jobDead('the subject was erased')
              : jobRetry('HTTP 429', { runAt: later }),
          ),
      });
      const dead = await queue.enqueue(ctx, 'test.answers', { mode: 'dead' });
      const retry = await queue.enqueue(ctx, 'test.answers', { mode: 'retry' });
      assert.deepEqual(await queue.runDue(), {
        claimed: 2,
        done: 0,
        retried: 1,
        dead: 1,
        lost: 0,
        released: 0,
      });
      const d = await queue.getOrThrow(ctx, dead.id);
      assert.equal(d.state, 'dead');
      assert.equal(d.attempts, 1);
      assert.equal(d.lastError, 'the subject was erased');
      assert.deepEqual((await queue.getOrThrow(ctx, retry.id)).runAt, later);
    });

    test('record(ctx) commits with the job’s state, is told that state, and rolls back with it', async () => {
      await createOutcomeTable();
      const queue = newQueue();
      queue.define<{ mode: string }>({
        type: 'test.deliver',
        concurrency: 3,
        retry: { baseDelayMs: 1000, jitter: 0 },
        handle: (_c, job) => {
          switch (job.payload.mode) {
            case 'ok':
              return Promise.resolve(jobDone(recordOutcome(job.id)));
            case 'fail':
              return Promise.resolve(jobRetry('HTTP 502', { record: recordOutcome(job.id) }));
            default:
              return Promise.resolve(jobDone(recordOutcome(job.id, 'the delivery log is full')));
          }
        },
      });
      const ok = await queue.enqueue(ctx, 'test.deliver', { mode: 'ok' });
      const fail = await queue.enqueue(ctx, 'test.deliver', { mode: 'fail' });
      const broken = await queue.enqueue(ctx, 'test.deliver', { mode: 'broken' });
      assert.deepEqual(await queue.runDue(), {
        claimed: 3,
        done: 1,
        retried: 2,
        dead: 0,
        lost: 0,
        released: 0,
      });
      const rows = await outcomes();
      assert.deepEqual(rows.get(ok.id), { state: 'done', run_at: null });
      assert.equal((await queue.getOrThrow(ctx, ok.id)).state, 'done');
      const failed = await queue.getOrThrow(ctx, fail.id);
      assert.equal(failed.state, 'pending');
      assert.deepEqual(rows.get(fail.id), { state: 'pending', run_at: failed.runAt.toISOString() });
      // The record threw: neither its row nor "done" committed; the attempt failed with its error.
      assert.equal(rows.has(broken.id), false);
      const b = await queue.getOrThrow(ctx, broken.id);
      assert.equal(b.state, 'pending');
      assert.equal(b.lastError, 'recording the outcome failed: the delivery log is full');
    });

    test('a batch handler gets up to batchSize jobs and each job gets its own outcome', async () => {
      await createOutcomeTable();
      const queue = newQueue();
      const calls: number[][] = [];
      queue.define<{ n: number }>({
        type: 'test.batch',
        batchSize: 3,
        concurrency: 2,
        handleMany: (hctx, jobs) => {
          assert.deepEqual(hctx.actor, { kind: 'job', id: 'test.batch' });
          calls.push(jobs.map((j) => j.payload.n));
          return Promise.resolve(
            jobs.map((j) =>
              j.payload.n % 3 === 0
                ? jobDone(recordOutcome(j.id))
                : j.payload.n % 3 === 1
                  ? jobRetry('mailbox full')
                  : jobDead('no such mailbox'),
            ),
          );
        },
      });
      const { ids } = await queue.enqueueMany(
        ctx,
        Array.from({ length: 7 }, (_, n) => ({ type: 'test.batch', payload: { n } })),
      );
      assert.deepEqual(await queue.runDue(), {
        claimed: 6,
        done: 2,
        retried: 2,
        dead: 2,
        lost: 0,
        released: 0,
      });
      assert.deepEqual(
        calls.map((c) => [...c].sort()),
        [
          [0, 1, 2],
          [3, 4, 5],
        ],
      );
      const states = await Promise.all(ids.map(async (id) => (await queue.getOrThrow(ctx, id)).state));
      assert.deepEqual(states, ['done', 'pending', 'dead', 'done', 'pending', 'dead', 'pending']);
      assert.deepEqual([...(await outcomes()).keys()].sort(), [ids[0], ids[3]].sort());
      assert.equal((await queue.runDue()).done, 1);
      assert.deepEqual(calls[2], [6]);
    });

    test('a batch handler that answers the wrong number of results fails the attempt of each job', async () => {
      const queue = newQueue();
      queue.define({ type: 'test.short', batchSize: 4, handleMany: () => Promise.resolve([jobDone()]) });
      const { ids } = await queue.enqueueMany(ctx, [
        { type: 'test.short', payload: { n: 1 } },
        { type: 'test.short', payload: { n: 2 } },
      ]);
      assert.equal((await queue.runDue()).retried, 2);
      for (const id of ids) {
        assert.match((await queue.getOrThrow(ctx, id)).lastError ?? '', /answered 1 results for 2 jobs/);
      }
    });

    test('a graceful stop gives back claims it had not started, without counting an attempt, and claims nothing more', async () => {
      const queue = newQueue();
      let calls = 0;
      queue.define({
        type: 'test.echo',
        concurrency: 5,
        handle: () => {
          calls++;
          return Promise.resolve(jobDone());
        },
      });
      const { ids } = await queue.enqueueMany(
        ctx,
        [1, 2, 3].map((n) => ({ type: 'test.echo', payload: { n } })),
      );
      const pass = queue.runDue();
      const stopped = queue.stop();
      assert.deepEqual(await pass, { claimed: 3, done: 0, retried: 0, dead: 0, lost: 0, released: 3 });
      await stopped;
      assert.equal(calls, 0);
      for (const id of ids) {
        const job = await queue.getOrThrow(ctx, id);
        assert.equal(job.state, 'pending');
        assert.equal(job.attempts, 0);
      }
      assert.equal((await queue.runDue()).claimed, 0);
      // Another instance runs them at once.
      const other = newQueue();
      other.define({ type: 'test.echo', concurrency: 5, handle: () => Promise.resolve(jobDone()) });
      assert.equal((await other.runDue()).done, 3);
    });

    test('a graceful stop lets running handlers finish and records them; with no grace, their signals abort', async () => {
      const queue = newQueue({ pollIntervalMs: 3_600_000 });
      const started = deferred<AbortSignal>();
      const release = deferred();
      queue.define({
        type: 'test.finish',
        handle: async (_c, _job, signal) => {
          started.resolve(signal);
          await release.promise;
          return jobDone();
        },
      });
      const { ids } = await queue.enqueueMany(ctx, [
        { type: 'test.finish', payload: { n: 1 } },
        { type: 'test.finish', payload: { n: 2 } },
      ]);
      queue.start();
      const signal = await started.promise;
      const order: string[] = [];
      const stopping = queue.stop().then(() => order.push('stopped'));
      assert.equal(signal.aborted, false, 'a handler gets its grace period');
      order.push('handler finished');
      release.resolve();
      await stopping;
      assert.deepEqual(order, ['handler finished', 'stopped']);
      const states = await Promise.all(ids.map(async (id) => (await queue.getOrThrow(ctx, id)).state));
      assert.deepEqual(
        [...states].sort(),
        ['done', 'pending'],
        'one ran (concurrency 1); the other was never claimed',
      );

      const impatient = newQueue();
      const seen = deferred<AbortSignal>();
      impatient.define({
        type: 'test.finish',
        handle: async (_c, _job, s) => {
          seen.resolve(s);
          await untilAborted(s);
          return jobRetry(`stopped: ${(s.reason as Error).message}`);
        },
      });
      const pass = impatient.runDue();
      await seen.promise;
      await impatient.stop({ abortAfterMs: 0 });
      assert.equal((await pass).retried, 1);
      const pending = await impatient.list(ctx, { state: 'pending' });
      assert.equal(pending[0]?.lastError, 'stopped: the job queue is stopping');
    });

    test('list pages newest first and filters; get; counts per type and state', async () => {
      const queue = newQueue();
      queue.define({ type: 'test.a', handle: () => Promise.resolve(jobDead('no')) });
      queue.define({ type: 'test.b', concurrency: 5, handle: () => Promise.resolve(jobDone()) });
      const a = await queue.enqueueMany(
        ctx,
        [1, 2, 3].map((n) => ({ type: 'test.a', payload: { n } })),
      );
      clock.advance(1000);
      const b = await queue.enqueueMany(
        ctx,
        [1, 2].map((n) => ({ type: 'test.b', payload: { n } })),
      );
      await queue.runDue({ types: ['test.b'] });
      const page1 = await queue.list(ctx, { limit: 2 });
      assert.deepEqual(
        page1.map((j) => j.id),
        [b.ids[1], b.ids[0]],
      );
      const page2 = await queue.list(ctx, { limit: 2, before: page1[1]?.id });
      assert.deepEqual(
        page2.map((j) => j.id),
        [a.ids[2], a.ids[1]],
      );
      assert.equal((await queue.list(ctx, { state: 'done' })).length, 2);
      assert.equal((await queue.list(ctx, { state: 'pending', type: 'test.b' })).length, 0);
      assert.equal(await queue.get(ctx, 'nope'), undefined);
      await assert.rejects(queue.list(ctx, { limit: 0 }), (err) => codeOf(err) === 'jobs.limit_invalid');

      const counts = await queue.counts(ctx);
      assert.deepEqual(counts.states, { pending: 3, running: 0, done: 2, dead: 0 });
      assert.deepEqual(counts.types, [
        { type: 'test.a', states: { pending: 3, running: 0, done: 0, dead: 0 }, oldestPendingRunAt: T0 },
        {
          type: 'test.b',
          states: { pending: 0, running: 0, done: 2, dead: 0 },
          oldestPendingRunAt: undefined,
        },
      ]);
    });

    test('enqueueing checks the type, payload and options; a definition is checked when defined', async () => {
      const queue = newQueue({ maxPayloadBytes: 100 });
      queue.define({ type: 'test.a', handle: () => Promise.resolve(jobDone()) });
      await assert.rejects(queue.enqueue(ctx, 'test.nope', {}), (err) => codeOf(err) === 'jobs.type_unknown');
      await assert.rejects(
        queue.enqueue(ctx, 'test.a', { notes: 'x'.repeat(200) }),
        (err) => codeOf(err) === 'jobs.payload_too_large',
      );
      await assert.rejects(
        queue.enqueue(ctx, 'test.a', { n: 1n } as never),
        (err) => codeOf(err) === 'jobs.payload_invalid',
      );
      await assert.rejects(
        queue.enqueue(ctx, 'test.a', {}, { maxAttempts: 0 }),
        (err) => codeOf(err) === 'jobs.options_invalid',
      );
      assert.throws(
        () => queue.define({ type: 'test.a', handle: () => Promise.resolve(jobDone()) }),
        (err) => codeOf(err) === 'jobs.type_duplicate',
      );
      assert.throws(
        () =>
          queue.define({
            type: 'Bad Name',
            concurrency: 0,
            leaseMs: 10,
            handle: () => Promise.resolve(jobDone()),
          }),
        (err) =>
          codeOf(err) === 'jobs.definition_invalid' &&
          /type "Bad Name".*concurrency.*leaseMs/.test((err as Error).message),
      );
      assert.deepEqual(await queue.list(ctx), []);
    });

    test('the watchdog deletes done jobs past their retention, and keeps dead ones', async () => {
      const queue = newQueue({ retainDoneMs: 86_400_000 });
      queue.define<{ ok: boolean }>({
        type: 'test.prune',
        concurrency: 2,
        handle: (_c, job) => Promise.resolve(job.payload.ok ? jobDone() : jobDead('no')),
      });
      const done = await queue.enqueue(ctx, 'test.prune', { ok: true });
      const dead = await queue.enqueue(ctx, 'test.prune', { ok: false });
      await queue.runDue();
      clock.advance(86_400_000);
      assert.equal((await queue.watchdog()).pruned, 0);
      clock.advance(1);
      assert.equal((await queue.watchdog()).pruned, 1);
      assert.equal(await queue.get(ctx, done.id), undefined);
      assert.equal((await queue.getOrThrow(ctx, dead.id)).state, 'dead');
    });

    test("a type's own retention of done jobs: shorter or longer than the queue's, and its keys go with them", async () => {
      const day = 86_400_000;
      const queue = newQueue({ retainDoneMs: day });
      const handle = () => Promise.resolve(jobDone());
      queue.define({ type: 'test.frequent', keepDoneMs: 3_600_000, handle });
      queue.define({ type: 'test.kept_long', keepDoneMs: 2 * day, handle });
      queue.define({ type: 'test.default', handle });
      const frequent = await queue.enqueue(ctx, 'test.frequent', {}, { key: 'slot-1' });
      const long = await queue.enqueue(ctx, 'test.kept_long', {});
      const plain = await queue.enqueue(ctx, 'test.default', {});
      assert.equal((await queue.runDue()).done, 3);

      clock.advance(3_600_000);
      assert.equal((await queue.watchdog()).pruned, 0, 'kept for exactly its hour');
      clock.advance(1);
      assert.equal((await queue.watchdog()).pruned, 1);
      assert.equal(await queue.get(ctx, frequent.id), undefined, 'the frequent type is gone after an hour');
      assert.equal((await queue.getOrThrow(ctx, plain.id)).state, 'done', "others keep the queue's day");
      const again = await queue.enqueue(ctx, 'test.frequent', {}, { key: 'slot-1' });
      assert.equal(again.created, true, 'its key went with it: enqueueing it again makes a job');

      clock.advance(day);
      assert.equal((await queue.watchdog()).pruned, 1);
      assert.equal(await queue.get(ctx, plain.id), undefined, "the default type goes after the queue's day");
      assert.equal((await queue.getOrThrow(ctx, long.id)).state, 'done', 'a longer retention outlives it');
      assert.equal((await queue.getOrThrow(ctx, again.id)).state, 'pending', 'pending jobs are never pruned');
      clock.advance(day);
      assert.equal((await queue.watchdog()).pruned, 1);
      assert.equal(await queue.get(ctx, long.id), undefined);

      assert.throws(
        () => queue.define({ type: 'test.keep_none', keepDoneMs: 0, handle }),
        (err) => codeOf(err) === 'jobs.definition_invalid' && /keepDoneMs/.test((err as Error).message),
      );
    });

    test('a final state is what the record is told', async () => {
      const queue = newQueue();
      const told: JobFinalState[] = [];
      queue.define({
        type: 'test.told',
        retry: { maxAttempts: 1 },
        handle: () =>
          Promise.resolve(
            jobRetry('HTTP 500', { record: (_c, final) => Promise.resolve(void told.push(final)) }),
          ),
      });
      await queue.enqueue(ctx, 'test.told', {});
      await queue.runDue();
      assert.deepEqual(told, [{ state: 'dead', error: 'HTTP 500 (the last of 1 attempts)' }]);
    });
  });
}
