/**
 * The job queue's administration: the HTTP routes (on both engines: the jobs:admin scope is
 * enforced, errors have the project's shape, the presenter lets out ids and never the rest of a
 * payload) and the `pledge jobs` CLI, run as a user would.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { MIGRATIONS } from '../../src/capabilities.js';
import { ApiKeyRepository } from '../../src/platform/auth/api-keys.repository.js';
import { ApiKeyService } from '../../src/platform/auth/api-keys.service.js';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { openDatabase } from '../../src/platform/db/database.js';
import { migrateToLatest } from '../../src/platform/db/migrations.js';
import { requireApiKey } from '../../src/platform/http/auth.js';
import { createHttpServer } from '../../src/platform/http/server.js';
import { jobDead, jobDone } from '../../src/platform/jobs/jobs.definition.js';
import { JOB_VIEW_FIELDS } from '../../src/platform/jobs/jobs.presenter.js';
import { registerJobRoutes } from '../../src/platform/jobs/jobs.routes.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { runPledge } from '../helpers/cli.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';

const T0 = new Date('2026-12-03T09:00:00.000Z');

/** A payload as a capability might (wrongly) fill it: only its ids may leave the server. */
const PAYLOAD = {
  subjectId: 'sub-1',
  campaignId: 42,
  recipientIds: ['r-1', 'r-2'],
  note: 'not an id: stays inside',
  nested: { subjectId: 'sub-2' },
};

/** Defines the types the tests use: one that dies (with an error), one that finishes. */
function defineTypes(queue: JobQueue): void {
  queue.define({ type: 'test.fail', handle: () => Promise.resolve(jobDead('the receiver refused it')) });
  queue.define({ type: 'test.ok', handle: () => Promise.resolve(jobDone()) });
}

for (const dialect of DIALECTS) {
  describe(`jobs API on ${dialect}`, () => {
    let database: TestDatabase;
    let queue: JobQueue;
    let http: FastifyInstance;
    let ctx: Context;
    let keys: { admin: string; jobs: string; reader: string };

    beforeEach(async () => {
      database = await openMigratedTestDatabase(dialect);
      const clock = fixedClock(T0);
      ctx = createContext({ kind: 'cli', id: 'ops' }, { clock, requestId: 'req-7' });
      queue = new JobQueue({ db: database.db, clock });
      defineTypes(queue);
      const apiKeys = new ApiKeyService({ keys: new ApiKeyRepository(database.db) });
      keys = {
        admin: (await apiKeys.createKey(ctx, { name: 'root', scopes: ['admin'] })).key,
        jobs: (await apiKeys.createKey(ctx, { name: 'ops', scopes: ['jobs:admin'] })).key,
        reader: (
          await apiKeys.createKey(ctx, { name: 'reader', system: 'web-app', scopes: ['consent:read'] })
        ).key,
      };
      http = await createHttpServer({ logLevel: 'silent', bodyLimitBytes: 65_536, rateLimitPerMinute: 1000 });
      registerJobRoutes(http, { queue, auth: requireApiKey(apiKeys) });
    });
    afterEach(async () => {
      await http.close();
      await queue.stop();
      await database.cleanup();
    });

    const get = (url: string, key: string | undefined) =>
      http.inject({ url, headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });

    test('the routes need the jobs:admin scope (or admin)', async () => {
      const missing = await get('/api/v1/jobs', undefined);
      assert.equal(missing.statusCode, 401);
      assert.equal(missing.json<{ error: { code: string } }>().error.code, 'auth.key_missing');
      const forbidden = await get('/api/v1/jobs', keys.reader);
      assert.equal(forbidden.statusCode, 403);
      assert.match(String(forbidden.headers['www-authenticate']), /scope="jobs:admin"/);
      const retry = await http.inject({
        method: 'POST',
        url: '/api/v1/jobs/anything/retry',
        headers: { authorization: `Bearer ${keys.reader}` },
      });
      assert.equal(retry.statusCode, 403);
      assert.equal((await get('/api/v1/jobs', keys.jobs)).statusCode, 200);
      assert.equal((await get('/api/v1/jobs/counts', keys.admin)).statusCode, 200);
    });

    test('a job leaves with its listed fields and its payload’s ids only', async () => {
      const { id } = await queue.enqueue(ctx, 'test.fail', PAYLOAD, { key: 'campaign:42' });
      const list = await get('/api/v1/jobs?state=pending', keys.jobs);
      assert.equal(list.statusCode, 200, list.body);
      const { jobs } = list.json<{ jobs: Array<Record<string, unknown>> }>();
      assert.equal(jobs.length, 1);
      assert.deepEqual(Object.keys(jobs[0] ?? {}).sort(), [...JOB_VIEW_FIELDS].sort());
      assert.deepEqual(jobs[0], {
        id,
        type: 'test.fail',
        key: 'campaign:42',
        state: 'pending',
        ids: { subjectId: 'sub-1', campaignId: 42, recipientIds: ['r-1', 'r-2'] },
        attempts: 0,
        maxAttempts: 10,
        runAt: T0.toISOString(),
        leaseUntil: null,
        worker: null,
        lastError: null,
        enqueuedBy: { kind: 'cli', id: 'ops' },
        requestId: 'req-7',
        createdAt: T0.toISOString(),
        updatedAt: T0.toISOString(),
        startedAt: null,
        finishedAt: null,
      });
      assert.doesNotMatch(list.body, /stays inside|sub-2/);
      assert.deepEqual((await get('/api/v1/jobs?state=dead', keys.jobs)).json(), { jobs: [] });
    });

    test('a dead job is shown with its error and retried over HTTP; errors have the project’s shape', async () => {
      const { id } = await queue.enqueue(ctx, 'test.fail', { subjectId: 'sub-1' });
      await queue.runDue();
      const shown = await get(`/api/v1/jobs/${id}`, keys.jobs);
      assert.equal(shown.statusCode, 200, shown.body);
      const { job } = shown.json<{ job: { state: string; lastError: string; attempts: number } }>();
      assert.equal(job.state, 'dead');
      assert.equal(job.lastError, 'the receiver refused it');
      assert.equal(job.attempts, 1);

      const retry = () =>
        http.inject({
          method: 'POST',
          url: `/api/v1/jobs/${id}/retry`,
          headers: { authorization: `Bearer ${keys.jobs}` },
        });
      const retried = await retry();
      assert.equal(retried.statusCode, 200, retried.body);
      assert.equal(retried.json<{ job: { state: string; attempts: number } }>().job.state, 'pending');
      const again = await retry();
      assert.equal(again.statusCode, 409);
      assert.deepEqual(
        again.json<{ error: { code: string; details: unknown } }>().error.code,
        'jobs.not_dead',
      );
      assert.deepEqual(again.json<{ error: { details: unknown } }>().error.details, { id, state: 'pending' });

      const unknown = await get('/api/v1/jobs/no-such-job', keys.jobs);
      assert.equal(unknown.statusCode, 404);
      assert.deepEqual(unknown.json(), {
        error: {
          code: 'jobs.not_found',
          message: 'there is no job "no-such-job" (done jobs are deleted after their retention)',
          details: { id: 'no-such-job' },
        },
      });
      const bad = await get('/api/v1/jobs?state=lost', keys.jobs);
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json<{ error: { code: string } }>().error.code, 'request.invalid');
    });

    test('counts by state, overall and per type, for metrics and health', async () => {
      await queue.enqueue(ctx, 'test.fail', {});
      await queue.enqueue(ctx, 'test.ok', {});
      await queue.runDue({ types: ['test.ok'] });
      const counts = await get('/api/v1/jobs/counts', keys.jobs);
      assert.equal(counts.statusCode, 200, counts.body);
      assert.deepEqual(counts.json(), {
        states: { pending: 1, running: 0, done: 1, dead: 0 },
        types: [
          {
            type: 'test.fail',
            states: { pending: 1, running: 0, done: 0, dead: 0 },
            oldestPendingRunAt: T0.toISOString(),
          },
          { type: 'test.ok', states: { pending: 0, running: 0, done: 1, dead: 0 }, oldestPendingRunAt: null },
        ],
      });
      const metrics = await get('/api/v1/metrics', keys.jobs);
      assert.equal(metrics.statusCode, 200, metrics.body);
      assert.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      const lines = metrics.body.split('\n');
      assert.ok(lines.includes('pledge_jobs{type="test.fail",state="pending"} 1'));
      assert.ok(lines.includes('pledge_jobs{type="test.ok",state="done"} 1'));
      assert.ok(lines.includes('pledge_jobs_oldest_pending_seconds{type="test.ok"} 0'));
      assert.ok(lines.some((l) => /^pledge_jobs_oldest_pending_seconds\{type="test\.fail"\} \d/.test(l)));
    });
  });
}

describe('pledge jobs', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-jobs-cli-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });
  const env = () => ({ PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '', PLEDGE_KEYS: '' });

  /** Enqueues one job that dies and one that waits, as a server would have. */
  async function fill(): Promise<{ dead: string; pending: string }> {
    const database = await openDatabase({ dataDir });
    try {
      await migrateToLatest(database, MIGRATIONS);
      const queue = new JobQueue({ db: database.db });
      defineTypes(queue);
      const ctx = createContext({ kind: 'job', id: 'test' });
      const dead = await queue.enqueue(ctx, 'test.fail', { subjectId: 'sub-1', note: 'stays inside' });
      await queue.runDue({ types: ['test.fail'] });
      const pending = await queue.enqueue(
        ctx,
        'test.ok',
        { subjectId: 'sub-2' },
        { runAt: new Date('2100-01-01') },
      );
      return { dead: dead.id, pending: pending.id };
    } finally {
      await database.close();
    }
  }

  test('`list` shows the queue, filtered, as a table or JSON', async () => {
    const empty = await runPledge(['jobs', 'list', '--format', 'json'], { env: env() });
    assert.equal(empty.code, 0, empty.stderr);
    assert.deepEqual(JSON.parse(empty.stdout), []);
    const { dead, pending } = await fill();
    const all = await runPledge(['jobs', 'list'], { env: env() });
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^ID\s+TYPE\s+STATE\s+ATTEMPTS/);
    assert.match(
      all.stdout,
      new RegExp(`${dead}\\s+test\\.fail\\s+dead\\s+1/10\\s+\\S+\\s+the receiver refused it`),
    );
    assert.match(
      all.stdout,
      new RegExp(`${pending}\\s+test\\.ok\\s+pending\\s+0/10\\s+2100-01-01T00:00:00\\.000Z`),
    );
    const deadOnly = await runPledge(['jobs', 'list', '--state', 'dead', '--format', 'json'], { env: env() });
    const list = JSON.parse(deadOnly.stdout) as Array<{ id: string; ids: unknown }>;
    assert.deepEqual(
      list.map((j) => j.id),
      [dead],
    );
    assert.deepEqual(list[0]?.ids, { subjectId: 'sub-1' });
    assert.doesNotMatch(deadOnly.stdout, /stays inside/);
    const bad = await runPledge(['jobs', 'list', '--state', 'lost'], { env: env() });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /pending, running, done, dead/);
  });

  test('`show` prints one job; an unknown id is an error', async () => {
    const { dead } = await fill();
    const shown = await runPledge(['jobs', 'show', dead], { env: env() });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /state:\s+dead/);
    assert.match(shown.stdout, /attempts:\s+1 of 10/);
    assert.match(shown.stdout, /ids:\s+subjectId=sub-1/);
    assert.match(shown.stdout, /enqueued by:\s+job test/);
    assert.match(shown.stdout, /last error:\s+the receiver refused it/);
    const unknown = await runPledge(['jobs', 'show', 'no-such-job'], { env: env() });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /there is no job "no-such-job"/);
  });

  test('`retry` puts dead jobs back in the queue and says which it could not', async () => {
    const { dead, pending } = await fill();
    const retried = await runPledge(['jobs', 'retry', dead], { env: env() });
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /1 of 1 job queued again/);
    const shown = await runPledge(['jobs', 'show', dead, '--format', 'json'], { env: env() });
    const job = JSON.parse(shown.stdout) as { state: string; attempts: number; lastError: string };
    assert.deepEqual([job.state, job.attempts, job.lastError], ['pending', 0, 'the receiver refused it']);
    const refused = await runPledge(['jobs', 'retry', pending, 'no-such-job'], { env: env() });
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /0 of 2 jobs queued again/);
    assert.match(refused.stderr, new RegExp(`${pending}: job ${pending} is pending, not dead`));
    assert.match(refused.stderr, /no-such-job: there is no job/);
  });

  test('`counts` shows jobs per type and state', async () => {
    await fill();
    const counts = await runPledge(['jobs', 'counts'], { env: env() });
    assert.equal(counts.code, 0, counts.stderr);
    assert.match(counts.stdout, /^TYPE\s+PENDING\s+RUNNING\s+DONE\s+DEAD\s+OLDEST PENDING/);
    assert.match(counts.stdout, /test\.fail\s+0\s+0\s+0\s+1\s+-/);
    assert.match(counts.stdout, /test\.ok\s+1\s+0\s+0\s+0\s+2100-01-01T00:00:00\.000Z/);
    assert.match(counts.stdout, /\(all\)\s+1\s+0\s+0\s+1/);
  });
});
