/**
 * The steps' engine on the platform job queue, on each engine, with a fake clock: a request resumes
 * after its process stops between steps without repeating a finished one; a step whose worker died
 * mid-way is re-queued by another instance's watchdog only once its lease expired, runs again there
 * and is flagged; a failed step keeps its error and is retried by hand; a request with no progress
 * is flagged stalled and staff are told.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { AuditLog } from '../../src/audit/audit.service.js';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext, type Context } from '../../src/platform/context.js';
import type { MailMessage } from '../../src/platform/mail/mail.transport.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import type { RequestRecord } from '../../src/rights/requests.repository.js';
import { createRequests, type Requests } from '../../src/rights/requests.setup.js';
import type { StepExecutor, StepResult } from '../../src/rights/steps.engine.js';
import { UseKeys, type KeyUse } from '../../src/vault/use-keys.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';

const key = (use: KeyUse) =>
  new UseKeys(use, [{ version: 1, secret: randomBytes(32), createdAt: undefined }]);

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

for (const dialect of DIALECTS) {
  describe(`request steps (${dialect})`, () => {
    let database: TestDatabase;
    const clock = fixedClock(new Date('2027-01-29T10:00:00Z'));
    const keys = { requests: key('requests'), codes: key('request_codes'), links: key('request_links') };
    const subjectKeys = key('log_subjects');
    const mails: MailMessage[] = [];
    const stalled: string[] = [];
    const queues: JobQueue[] = [];
    let ctx: Context;

    beforeEach(async () => {
      database = await openMigratedTestDatabase(dialect);
      ctx = createContext({ kind: 'cli', id: 'test' }, { clock });
    });
    afterEach(async () => {
      for (const q of queues.splice(0)) await q.stop({ abortAfterMs: 0 });
      await database.cleanup();
    });

    /** One instance of the server's requests capability (its own queue and registry). */
    function instance(
      executors: Record<string, StepExecutor> = {},
      webhookTasks?: Parameters<typeof createRequests>[0]['webhookTasks'],
    ): { requests: Requests; queue: JobQueue } {
      const queue = new JobQueue({ db: database.db, clock, random: () => 0.5 });
      queues.push(queue);
      const requests = createRequests({
        db: database.db,
        queue,
        audit: AuditLog.over(database.db, subjectKeys),
        keys,
        mail: {
          send: (_c, m) => {
            mails.push(m);
            return Promise.resolve({ sent: true, messageId: 'test' });
          },
        },
        matchSubject: () => Promise.resolve(undefined),
        site: { name: 'Example', website: 'https://example.test', privacyContact: 'privacy@example.test' },
        jurisdictions: ['EU'],
        publicUrl: 'https://example.test',
        stallAfterMs: 3_600_000,
        manifest: { manifest: {} },
        webhookTasks,
        onStalled: (_c, r) => {
          stalled.push(r.id);
          return Promise.resolve();
        },
      });
      for (const [name, executor] of Object.entries(executors)) requests.registry.register(name, executor);
      return { requests, queue };
    }

    /** A counting executor answering `answer` (or what `run` gives). */
    function counting(
      run: () => Promise<StepResult> = () => Promise.resolve({ outcome: 'done', summary: { records: 3 } }),
    ) {
      const calls: string[] = [];
      const executor: StepExecutor = {
        run: async (_r, _request, step) => {
          calls.push(step.store);
          return run();
        },
      };
      return { calls, executor };
    }

    /** A verified, approved access request. */
    async function approvedRequest(requests: Requests): Promise<RequestRecord> {
      const address = `p${randomBytes(4).toString('hex')}@example.test`;
      const { requestId } = await requests.service.receive(
        ctx,
        { type: 'access', email: address },
        { agent: 'person', ip: '192.0.2.1' },
      );
      const code =
        /verification code is (\d{6})/.exec(mails.filter((m) => m.to === address).at(-1)?.text ?? '')?.[1] ??
        '';
      const verified = await requests.service.verify(ctx, requestId, { email: code });
      assert.equal(verified.request.status, 'verified');
      await requests.service.approve(ctx, requestId);
      return requests.service.getOrThrow(ctx, requestId);
    }

    async function drain(queue: JobQueue): Promise<void> {
      for (let i = 0; i < 20; i++) if ((await queue.runDue()).claimed === 0) return;
    }

    test('a process stopped between steps: another resumes, and no finished step runs again', async () => {
      const collectA = counting();
      const assembleA = counting();
      const a = instance({
        collect: collectA.executor,
        assemble: assembleA.executor,
        deliver: counting().executor,
      });
      const r = await approvedRequest(a.requests);
      // Process A runs the collect step, then stops before anything else runs.
      assert.equal((await a.queue.runDue()).done, 1);
      await a.queue.stop();
      assert.deepEqual(collectA.calls, ['pledge']);
      assert.deepEqual(assembleA.calls, []);

      const collectB = counting();
      const assembleB = counting();
      const deliverB = counting();
      const b = instance({
        collect: collectB.executor,
        assemble: assembleB.executor,
        deliver: deliverB.executor,
      });
      await drain(b.queue);
      const view = await b.requests.service.view(ctx, r.id);
      assert.equal(view.request.status, 'done');
      assert.deepEqual(collectB.calls, [], 'the finished collect step is not repeated');
      assert.equal(assembleB.calls.length, 1);
      assert.equal(deliverB.calls.length, 1);
      assert.deepEqual(
        view.steps.map((s) => [s.name, s.status, s.attempts]),
        [
          ['verify', 'done', 0],
          ['collect', 'done', 1],
          ['assemble', 'done', 1],
          ['deliver', 'done', 1],
        ],
      );
      assert.deepEqual(view.steps[1]?.result, { records: 3 });
      assert.equal(view.request.requeued, false);
    });

    test('a worker that dies mid-step: its lease expires, another re-queues it, runs it and flags it', async () => {
      const started = deferred();
      const release = deferred();
      const dead = instance({
        collect: {
          run: async () => {
            started.resolve();
            await release.promise;
            return { outcome: 'done' };
          },
        },
      });
      const r = await approvedRequest(dead.requests);
      const deadPass = dead.queue.runDue();
      await started.promise;

      const assemble = counting();
      const collect = counting();
      const alive = instance({
        collect: collect.executor,
        assemble: assemble.executor,
        deliver: counting().executor,
      });
      // Within the lease (60 s) and the allowance for clock skew, nothing is taken from the live worker.
      clock.advance(60_000);
      assert.equal((await alive.queue.watchdog()).requeued, 0);
      clock.advance(6_000);
      assert.equal((await alive.queue.watchdog()).requeued, 1);
      clock.advance(3_600_000);
      await drain(alive.queue);
      const view = await alive.requests.service.view(ctx, r.id);
      assert.equal(view.request.status, 'done');
      assert.equal(view.request.requeued, true, 'the request is flagged');
      assert.equal(view.steps[1]?.requeued, 1, 'the step is flagged');
      assert.ok(view.events.some((e) => e.kind === 'requeued'));
      assert.deepEqual(collect.calls, ['pledge']);
      assert.equal(assemble.calls.length, 1);

      // The dead worker wakes: its late result is fenced out and changes nothing.
      release.resolve();
      await deadPass;
      const after = await alive.requests.service.view(ctx, r.id);
      assert.deepEqual(
        after.steps.map((s) => s.attempts),
        view.steps.map((s) => s.attempts),
      );
      assert.equal(after.events.filter((e) => e.kind === 'done').length, 1);
    });

    test('a failed step keeps its error after the policy’s attempts, and staff retry it', async () => {
      let broken = true;
      const collect = counting(() =>
        Promise.resolve(
          broken ? { outcome: 'failed', error: 'connection refused (billing-db)' } : { outcome: 'done' },
        ),
      );
      const { requests, queue } = instance({
        collect: collect.executor,
        assemble: counting().executor,
        deliver: counting().executor,
      });
      const r = await approvedRequest(requests);
      for (let i = 0; i < 6; i++) {
        await queue.runDue();
        clock.advance(2 * 3_600_000);
      }
      let view = await requests.service.view(ctx, r.id);
      assert.equal(view.request.status, 'failed');
      assert.equal(view.steps[1]?.status, 'failed');
      assert.equal(view.steps[1]?.error, 'connection refused (billing-db)');
      assert.equal(collect.calls.length, 5, 'the job policy tried 5 times');
      await assert.rejects(requests.service.approve(ctx, r.id), { code: 'requests.not_verified' });

      broken = false;
      await requests.service.retry(ctx, r.id);
      await drain(queue);
      view = await requests.service.view(ctx, r.id);
      assert.equal(view.request.status, 'done');
      assert.equal(view.steps[1]?.error, undefined);
      assert.ok(view.events.some((e) => e.kind === 'retried'));
      await assert.rejects(requests.service.retry(ctx, r.id), { code: 'requests.nothing_to_retry' });
    });

    test('a system without a reachable database gets its step as a webhook task, completed by its callback', async () => {
      const tasks: Array<{ system: string; stepId: string; step: string }> = [];
      const { requests, queue } = instance(
        { collect: counting().executor, assemble: counting().executor, deliver: counting().executor },
        {
          systems: ['support-desk'],
          deliver: (_c, system, task) => {
            tasks.push({ system, stepId: task.stepId, step: task.step });
            return Promise.resolve(1);
          },
        },
      );
      const r = await approvedRequest(requests);
      await drain(queue);
      let view = await requests.service.view(ctx, r.id);
      assert.deepEqual(
        view.steps.map((s) => [s.name, s.store, s.status]),
        [
          ['verify', '', 'done'],
          ['collect', 'pledge', 'done'],
          ['collect', 'support-desk', 'waiting'],
          ['assemble', '', 'pending'],
          ['deliver', '', 'pending'],
        ],
      );
      const step = view.steps[2];
      assert.ok(step?.dueAt, 'the task has its deadline');
      assert.deepEqual(tasks, [{ system: 'support-desk', stepId: step.id, step: 'collect' }]);
      // The system's callback.
      await requests.service.completeTask(ctx, r.id, step.id);
      await drain(queue);
      view = await requests.service.view(ctx, r.id);
      assert.equal(view.request.status, 'done');
    });

    test('no progress for the configured time: flagged stalled, staff told; an unverified request is closed', async () => {
      // No executor for collect: a manual task, which nobody confirms.
      const { requests, queue } = instance();
      await requests.start(ctx);
      const r = await approvedRequest(requests);
      await drain(queue);
      assert.equal((await requests.service.getOrThrow(ctx, r.id)).status, 'waiting');
      const abandoned = await requests.service.receive(
        ctx,
        { type: 'erasure', email: 'x@example.test' },
        { agent: 'person', ip: '192.0.2.2' },
      );

      clock.advance(30 * 60_000);
      await drain(queue);
      assert.equal((await requests.service.getOrThrow(ctx, r.id)).stalled, false, 'not yet');

      clock.advance(31 * 60_000);
      await drain(queue);
      const flagged = await requests.service.getOrThrow(ctx, r.id);
      assert.equal(flagged.stalled, true);
      assert.deepEqual(
        stalled.filter((id) => id === r.id),
        [r.id],
        'staff are told once',
      );
      assert.ok((await requests.service.list(ctx, { stalled: true })).some((x) => x.id === r.id));
      const closed = await requests.service.getOrThrow(ctx, abandoned.requestId);
      assert.equal(closed.status, 'rejected');
      assert.equal(closed.reason, 'unverified');

      // Staff confirm the task: progress clears the flag.
      await requests.service.completeTask(ctx, r.id, undefined);
      assert.equal((await requests.service.getOrThrow(ctx, r.id)).stalled, false);
    });
  });
}
