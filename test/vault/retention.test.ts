/**
 * The retention sweeper on both engines: what has passed its deadline goes, the rest stays; it works
 * in batches, each committed with its own audit entry; it is idempotent, survives a crash between or
 * inside batches, and concurrent sweepers never delete (or count) a record twice. Then the schedule
 * that runs it inside `serve`: no overlap, errors logged, stopped on close.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { createApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { PledgeError } from '../../src/platform/errors.js';
import { RecordsRepository } from '../../src/vault/records.repository.js';
import {
  RetentionSchedule,
  RetentionService,
  type RetentionBatchResult,
  type RetentionLogger,
  type RetentionRunOptions,
  type RetentionRunResult,
  type RetentionServiceDeps,
} from '../../src/vault/retention.service.js';
import { runPledge } from '../helpers/cli.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, openTestVault, randomEmail, type TestVault } from '../helpers/vault.js';

const YEAR_MS = 365.25 * 86_400_000;
const NOW = new Date();
const yearsAgo = (n: number) => new Date(NOW.getTime() - n * YEAR_MS);

/** A subject with an e-mail address; returns its id and the plaintext written for it. */
async function createSubject(t: TestVault): Promise<{ id: string; email: string }> {
  const email = randomEmail();
  const subject = await t.vault.createSubject(t.ctx, { kind: 'customer', identifiers: { email } });
  return { id: subject.id, email };
}

/** A registration record (kept 7 years) collected at `collectedAt`. */
async function writeRegistration(t: TestVault, subjectId: string, email: string, collectedAt: Date) {
  const [id] = await t.vault.write(t.ctx, [
    {
      subjectId,
      source: 'registration',
      collectedAt,
      fields: {
        email: { category: 'user.contact.email', value: email },
        first_name: { category: 'user.name.first', value: 'Grace' },
      },
    },
  ]);
  return id ?? assert.fail('no record id');
}

/** A survey answer (kept 2 years) collected at `collectedAt`. */
async function writeSurvey(t: TestVault, subjectId: string, collectedAt: Date) {
  const [id] = await t.vault.write(t.ctx, [
    {
      subjectId,
      source: 'customer-survey',
      collectedAt,
      fields: { answers: { category: 'user.survey', value: 'the dashboard is slow on Mondays' } },
    },
  ]);
  return id ?? assert.fail('no record id');
}

/** Five expired records (three registrations, two surveys) and one that is kept, for one subject. */
async function writeFiveExpired(t: TestVault) {
  const { id, email } = await createSubject(t);
  const expired = [
    await writeRegistration(t, id, email, yearsAgo(8)),
    await writeRegistration(t, id, email, yearsAgo(9)),
    await writeRegistration(t, id, email, yearsAgo(10)),
    await writeSurvey(t, id, yearsAgo(3)),
    await writeSurvey(t, id, yearsAgo(4)),
  ];
  const kept = await writeRegistration(t, id, email, yearsAgo(1));
  return { subjectId: id, email, expired, kept };
}

async function recordIds(t: TestVault): Promise<string[]> {
  const rows = await tablesOf(t.database).selectFrom('records').select('id').orderBy('id').execute();
  return rows.map((r) => r.id);
}

async function sweeps(t: TestVault) {
  const events = await t.audit.listRecent(t.ctx, 1000);
  return events.filter((e) => e.action === 'retention.sweep').reverse();
}

/** What a sweeper over the test vault's database is built from. */
function retentionDeps(t: TestVault): RetentionServiceDeps {
  return { db: t.database.db, records: new RecordsRepository(t.database.db), audit: t.audit };
}

function newRetention(t: TestVault): RetentionService {
  return new RetentionService(retentionDeps(t));
}

for (const dialect of DIALECTS) {
  describe(`retention sweeper on ${dialect}`, () => {
    let t: TestVault;
    let service: RetentionService;
    // A vault per test: every test counts what the sweeper deletes, so none may see another's records.
    beforeEach(async () => {
      t = await openTestVault(dialect);
      service = newRetention(t);
    });
    afterEach(async () => {
      await t.cleanup();
    });

    test('records past their deadline are deleted; the others stay and still read', async () => {
      const { id, email } = await createSubject(t);
      const oldRegistration = await writeRegistration(t, id, email, yearsAgo(8));
      const newRegistration = await writeRegistration(t, id, email, NOW);
      const oldSurvey = await writeSurvey(t, id, yearsAgo(3));
      const newSurvey = await writeSurvey(t, id, yearsAgo(1));

      const result = await service.run(t.ctx, { now: NOW });
      assert.deepEqual(result, {
        deleted: 2,
        batches: 1,
        sources: { registration: 1, 'customer-survey': 1 },
      });
      assert.deepEqual(await recordIds(t), [newRegistration, newSurvey].sort());
      const records = new RecordsRepository(t.database.db);
      assert.equal(await records.get(t.ctx, oldRegistration), undefined);
      assert.equal(await records.get(t.ctx, oldSurvey), undefined);
      const service7y = await t.vault.read(t.ctx, id, 'provide-service');
      assert.deepEqual(
        service7y.records.map((r) => r.id),
        [newRegistration],
      );
      assert.equal(service7y.records[0]?.fields.email?.value, email);
    });

    test('a record is kept until the very moment of its deadline, then deleted', async () => {
      const { id, email } = await createSubject(t);
      const record = await writeRegistration(t, id, email, yearsAgo(1));
      const row = await tablesOf(t.database)
        .selectFrom('records')
        .select('retain_until')
        .where('id', '=', record)
        .executeTakeFirstOrThrow();
      const deadline = new Date(row.retain_until);
      assert.equal((await service.run(t.ctx, { now: new Date(deadline.getTime() - 1) })).deleted, 0);
      assert.equal((await service.run(t.ctx, { now: deadline })).deleted, 1);
    });

    test('batches of 2 over 5 expired records make 3 batches; a second run deletes nothing', async () => {
      const { expired, kept } = await writeFiveExpired(t);
      const first = await service.run(t.ctx, { now: NOW, batchSize: 2 });
      assert.deepEqual(first, { deleted: 5, batches: 3, sources: { registration: 3, 'customer-survey': 2 } });
      assert.deepEqual(await recordIds(t), [kept]);
      for (const id of expired)
        assert.equal(await new RecordsRepository(t.database.db).get(t.ctx, id), undefined);

      const second = await service.run(t.ctx, { now: NOW, batchSize: 2 });
      assert.deepEqual(second, { deleted: 0, batches: 0, sources: {} });
      assert.deepEqual(await recordIds(t), [kept]);
      assert.equal((await sweeps(t)).length, 3, 'an empty run adds no audit entry');
    });

    test('the audit has one retention.sweep per batch, with counts and sources and no personal data', async () => {
      const { subjectId, email, expired } = await writeFiveExpired(t);
      await service.run(t.ctx, { now: NOW, batchSize: 2 });
      const entries = await sweeps(t);
      assert.deepEqual(
        entries.map((e) => e.details?.records),
        [2, 2, 1],
      );
      for (const e of entries) {
        assert.equal(e.subjectId, undefined);
        assert.deepEqual(Object.keys(e.details ?? {}).sort(), ['records', 'sources']);
        assert.deepEqual(e.actor, { kind: 'cli', id: 'test' });
      }
      const sources: Record<string, number> = {};
      for (const e of entries) {
        for (const [s, n] of Object.entries(e.details?.sources as Record<string, number>))
          sources[s] = (sources[s] ?? 0) + n;
      }
      assert.deepEqual(sources, { registration: 3, 'customer-survey': 2 });
      const dump = JSON.stringify(entries);
      for (const secret of [email, 'Grace', 'dashboard', subjectId, ...expired])
        assert.ok(!dump.includes(secret), `the sweep's audit does not mention ${secret}`);
    });

    test('a crash between batches loses nothing: the next run completes the sweep', async () => {
      const { kept } = await writeFiveExpired(t);
      // A sweeper that dies after its first batch committed.
      class CrashingService extends RetentionService {
        calls = 0;
        override sweepBatch(ctx: Context, now: Date, batchSize: number): Promise<RetentionBatchResult> {
          if (++this.calls === 2) return Promise.reject(new Error('killed'));
          return super.sweepBatch(ctx, now, batchSize);
        }
      }
      await assert.rejects(
        new CrashingService(retentionDeps(t)).run(t.ctx, { now: NOW, batchSize: 2 }),
        /killed/,
      );
      assert.equal((await recordIds(t)).length, 4, 'the first batch is committed');
      assert.equal((await sweeps(t)).length, 1, 'with its audit entry');

      const resumed = await service.run(t.ctx, { now: NOW, batchSize: 2 });
      assert.deepEqual(resumed, {
        deleted: 3,
        batches: 2,
        sources: { registration: 1, 'customer-survey': 2 },
      });
      assert.deepEqual(await recordIds(t), [kept]);
      assert.deepEqual(
        (await sweeps(t)).map((e) => e.details?.records),
        [2, 2, 1],
      );
    });

    test('a crash inside a batch rolls the whole batch back, audit included', async () => {
      const { kept } = await writeFiveExpired(t);
      await service.sweepBatch(t.ctx, NOW, 2);
      // The batch in flight when the process died: its delete never commits.
      await assert.rejects(
        t.database.db.transaction(t.ctx, async (trx) => {
          assert.equal((await new RecordsRepository(t.database.db).deleteExpired(trx, NOW, 2)).length, 2);
          throw new Error('killed');
        }),
        /killed/,
      );
      assert.equal((await recordIds(t)).length, 4, 'only the committed batch is gone');
      assert.equal((await sweeps(t)).length, 1);

      const resumed = await service.run(t.ctx, { now: NOW, batchSize: 2 });
      assert.equal(resumed.deleted, 3);
      assert.deepEqual(await recordIds(t), [kept]);
      const counted = (await sweeps(t)).reduce((n, e) => n + Number(e.details?.records), 0);
      assert.equal(counted, 5, 'the audit counts every deleted record exactly once');
    });

    test('sweepers running at once delete and count every record exactly once', async () => {
      const { kept } = await writeFiveExpired(t);
      await writeFiveExpired(t);
      const results = await Promise.all(
        [1, 2, 3].map(() => newRetention(t).run(t.ctx, { now: NOW, batchSize: 1 })),
      );
      assert.equal(
        results.reduce((n, r) => n + r.deleted, 0),
        10,
      );
      assert.equal((await recordIds(t)).includes(kept), true);
      assert.equal((await recordIds(t)).length, 2);
      const counted = (await sweeps(t)).reduce((n, e) => n + Number(e.details?.records), 0);
      assert.equal(counted, 10);
    });

    test('a sweep stops between batches once its signal aborts; a batch size out of range is refused', async () => {
      await writeFiveExpired(t);
      const aborted = new AbortController();
      aborted.abort();
      assert.deepEqual(await service.run(t.ctx, { now: NOW, batchSize: 2, signal: aborted.signal }), {
        deleted: 0,
        batches: 0,
        sources: {},
      });
      for (const batchSize of [0, -1, 1.5, 10_001]) {
        await assert.rejects(
          service.run(t.ctx, { now: NOW, batchSize }),
          (err: unknown) =>
            err instanceof PledgeError && err.code === 'retention.batch_size_invalid' && err.status === 422,
        );
      }
      assert.equal((await recordIds(t)).length, 6);
    });

    test('createApp runs the schedule when the interval is set, exposes it, and stops it on close', async () => {
      const configFor = (retentionIntervalSeconds: number): Config => ({
        ...loadConfig(
          { PLEDGE_DATA_DIR: t.dataDir, PLEDGE_LOG_LEVEL: 'silent' },
          { manifest: EXAMPLE_MANIFEST },
        ),
        retentionIntervalSeconds,
      });
      const options = { database: t.database, keystore: t.keystore };
      const withSchedule = await createApp(configFor(3600), options);
      assert.equal(withSchedule.retention?.started, true);
      await withSchedule.close();
      assert.equal(withSchedule.retention?.started, false);
      const without = await createApp(configFor(0), options);
      assert.equal(without.retention, undefined);
      await without.close();
    });
  });
}

/** A stand-in sweeper whose runs the test finishes by hand. */
class ManualSweeper {
  readonly runs: Array<{
    options: RetentionRunOptions;
    finish: (result?: RetentionRunResult) => void;
    fail: (err: Error) => void;
  }> = [];
  running = 0;
  maxRunning = 0;

  run(_ctx: Context, options: RetentionRunOptions = {}): Promise<RetentionRunResult> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise<RetentionRunResult>((resolve, reject) => {
      this.runs.push({
        options,
        finish: (result = { deleted: 0, batches: 0, sources: {} }) => resolve(result),
        fail: reject,
      });
    }).finally(() => this.running--);
  }
}

function recordingLogger() {
  const lines: Array<{ level: 'info' | 'error'; obj: object; msg: string }> = [];
  const log: RetentionLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { lines, log };
}

describe('retention schedule', () => {
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
  });
  afterEach(() => {
    mock.timers.reset();
  });

  test('sweeps after the first delay, then every interval after the previous sweep ends, never two at once', async () => {
    const sweeper = new ManualSweeper();
    const { log } = recordingLogger();
    const schedule = new RetentionSchedule(sweeper, { intervalMs: 10_000, firstDelayMs: 1_000, log });
    schedule.start();
    mock.timers.tick(999);
    assert.equal(sweeper.runs.length, 0);
    mock.timers.tick(1);
    assert.equal(sweeper.runs.length, 1);
    // A sweep slower than many intervals: no second one starts beside it.
    mock.timers.tick(100_000);
    assert.equal(sweeper.runs.length, 1);
    sweeper.runs[0]?.finish({ deleted: 3, batches: 1, sources: { registration: 3 } });
    await schedule.idle();
    mock.timers.tick(9_999);
    assert.equal(sweeper.runs.length, 1);
    mock.timers.tick(1);
    assert.equal(sweeper.runs.length, 2);
    sweeper.runs[1]?.finish();
    await schedule.idle();
    assert.equal(sweeper.maxRunning, 1);
    await schedule.stop();
  });

  test('a failed sweep is logged and the schedule goes on', async () => {
    const sweeper = new ManualSweeper();
    const { lines, log } = recordingLogger();
    const schedule = new RetentionSchedule(sweeper, { intervalMs: 5_000, firstDelayMs: 5_000, log });
    schedule.start();
    mock.timers.tick(5_000);
    sweeper.runs[0]?.fail(new Error('database restarting'));
    await schedule.idle();
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, 'error');
    assert.match(lines[0]?.msg ?? '', /retention sweep failed/);
    mock.timers.tick(5_000);
    assert.equal(sweeper.runs.length, 2, 'the next sweep still runs');
    sweeper.runs[1]?.finish({ deleted: 2, batches: 1, sources: { feedback: 2 } });
    await schedule.idle();
    assert.equal(lines[1]?.level, 'info');
    assert.deepEqual((lines[1]?.obj as { deleted: number }).deleted, 2);
    await schedule.stop();
  });

  test('stop() aborts the sweep in flight, waits for it, and no sweep follows', async () => {
    const sweeper = new ManualSweeper();
    const { log } = recordingLogger();
    const schedule = new RetentionSchedule(sweeper, { intervalMs: 1_000, log });
    schedule.start();
    mock.timers.tick(1_000);
    const inFlight = sweeper.runs[0];
    assert.equal(inFlight?.options.signal?.aborted, false);
    let stopped = false;
    const stopping = schedule.stop().then(() => (stopped = true));
    assert.equal(inFlight.options.signal?.aborted, true, 'the sweep is asked to stop after its batch');
    await Promise.resolve();
    assert.equal(stopped, false, 'stop waits for the batch in flight');
    inFlight.finish();
    await stopping;
    assert.equal(schedule.started, false);
    mock.timers.tick(60_000);
    assert.equal(sweeper.runs.length, 1);
  });

  test('the first sweep comes within a minute by default, even with a long interval', () => {
    const sweeper = new ManualSweeper();
    const schedule = new RetentionSchedule(sweeper, { intervalMs: 3_600_000, log: recordingLogger().log });
    schedule.start();
    mock.timers.tick(60_000);
    assert.equal(sweeper.runs.length, 1);
    sweeper.runs[0]?.finish();
    return schedule.stop();
  });
});

describe('pledge retention run', () => {
  let dataDir: string;
  const env = { DATABASE_URL: '', PLEDGE_KEYS: '', PLEDGE_LOG_LEVEL: 'silent' };
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-retention-cli-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test('deletes what has expired, in batches, says so, and finds nothing the second time', async () => {
    // Records written by an app on the data directory, as `pledge serve` would.
    const app = await createApp({
      ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }, { manifest: EXAMPLE_MANIFEST }),
      retentionIntervalSeconds: 0,
    });
    const ctx = createContext({ kind: 'cli', id: 'test' });
    const id = randomUUID();
    const email = randomEmail();
    await app.vault.write(
      ctx,
      [8, 9, 10, 0].map((years) => ({
        subjectId: id,
        source: 'registration',
        collectedAt: yearsAgo(years),
        fields: { email: { category: 'user.contact.email', value: email } },
      })),
      { id, kind: 'customer', jurisdiction: undefined, identifiers: { email } },
    );
    await app.close();

    const refused = await runPledge(['retention', 'run', '--data-dir', dataDir, '--batch-size', '0'], {
      env,
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--batch-size/);

    const first = await runPledge(['retention', 'run', '--data-dir', dataDir, '--batch-size', '2'], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      first.stdout,
      'deleted 3 records past their retention deadline in 2 batches:\n  registration: 3\n',
    );
    assert.ok(!first.stdout.includes(email) && !first.stdout.includes(id), 'no personal data is printed');

    const second = await runPledge(['retention', 'run', '--data-dir', dataDir, '--format', 'json'], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(JSON.parse(second.stdout), { deleted: 0, batches: 0, sources: {} });
  });
});
