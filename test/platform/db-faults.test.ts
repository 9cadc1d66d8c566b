/**
 * Database faults as a client of `pledge serve` sees them: PostgreSQL connections terminated under
 * load, a network partition that resets nothing (black-holed through a TCP proxy), a SQLite write
 * lock held by another process. The process stays up; a request the fault caught ends with 503
 * `database.unavailable` and Retry-After within the configured bound; nothing answered 201 is lost;
 * everything works again once the database is back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { loadConfig } from '../../src/platform/config.js';
import { ConfigError } from '../../src/platform/errors.js';
import { openCollectApp, type CollectTestApp } from '../collect/collect-app.js';
import { getTestDatabaseUrlOrThrow } from '../helpers/databases.js';
import {
  assertUnavailable,
  errorCode,
  registerSubject,
  registrationBody,
  timedRequest,
  waitFor,
  type TimedAnswer,
} from '../helpers/faults.js';
import { createPostgresDatabase, type PostgresDatabase } from '../helpers/postgres.js';
import { buildIfStale, createTestSystemKey, startServer, type Server } from '../helpers/serve.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { exampleWithTestSystem } from '../helpers/manifests.js';

/** Concurrent streams of collect requests. */
const STREAMS = 10;

interface Acked {
  recordId: string;
  subjectId: string;
  message: string;
}

interface ReadAnswer {
  records: Array<{ id: string; source: string; fields: Record<string, { value: unknown }> }>;
  unreadable: number;
  /** The cursor of the next page; null on the last. */
  nextCursor: string | null;
}

/** Reads every subject through the use gate; every acknowledged record must be there, as sent. */
async function assertAllReadable(base: string, key: string, acked: readonly Acked[]): Promise<void> {
  const found = new Map<string, ReadAnswer['records'][number]>();
  for (const subjectId of new Set(acked.map((a) => a.subjectId))) {
    // The use gate answers a page at a time (at most 1,000 records): every page is read.
    let cursor: string | undefined;
    do {
      const page = cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await timedRequest(
        base,
        'GET',
        `/api/v1/subjects/${subjectId}/data?purpose=provide-service${page}`,
        key,
      );
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
      const body = res.body as ReadAnswer;
      assert.equal(body.unreadable, 0);
      for (const r of body.records) found.set(r.id, r);
      cursor = body.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }
  const missing = acked.filter((a) => !found.has(a.recordId));
  assert.deepEqual(
    missing.slice(0, 5),
    [],
    `${missing.length} of ${acked.length} acknowledged records are missing`,
  );
  for (const a of acked) assert.equal(found.get(a.recordId)?.fields.message?.value, a.message);
}

/** Streams of feedback requests until stopped; every answer is sorted. */
class CollectStreams {
  readonly acked: Acked[] = [];
  readonly unavailable: TimedAnswer[] = [];
  readonly unexpected: string[] = [];
  #stopped = false;
  #running: Promise<void>[] = [];

  constructor(base: string, key: string, subjects: readonly string[]) {
    this.#running = subjects.map(async (subjectId, i) => {
      for (let n = 0; !this.#stopped; n++) {
        const message = `stream ${i} message ${n}`;
        let res: TimedAnswer;
        try {
          res = await timedRequest(base, 'POST', '/api/v1/collect/feedback', key, {
            subject: { id: subjectId },
            data: { message, rating: 4 },
          });
        } catch (err) {
          this.unexpected.push(`stream ${i}: the request failed without an answer: ${String(err)}`);
          return;
        }
        if (res.status === 201) {
          this.acked.push({
            recordId: (res.body as { record: { id: string } }).record.id,
            subjectId,
            message,
          });
        } else if (res.status === 503 && errorCode(res.body) === 'database.unavailable') {
          assertUnavailable(res, `stream ${i}`);
          this.unavailable.push(res);
        } else {
          this.unexpected.push(`stream ${i}: ${res.status} ${JSON.stringify(res.body)}`);
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#running);
  }
}

/** Terminates the server sessions of `pledge` (pool and LISTEN) on the database at `url`. */
async function terminatePledgeSessions(url: string): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: string }>(
      `select count(*) filter (where pg_terminate_backend(pid)) as n from pg_stat_activity
        where datname = current_database() and application_name like 'pledge%' and pid <> pg_backend_pid()`,
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    await admin.end();
  }
}

describe('pledge serve on PostgreSQL whose connections are terminated under load', () => {
  let database: PostgresDatabase;
  let dataDir: string;
  let server: Server;
  let key: string;

  before(async () => {
    buildIfStale();
    database = await createPostgresDatabase('pledge_faults');
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-faults-'));
    const env = {
      PLEDGE_DATA_DIR: dataDir,
      PLEDGE_MANIFEST: exampleWithTestSystem(),
      DATABASE_URL: database.url,
      PLEDGE_LOG_LEVEL: 'info',
      PLEDGE_RATE_LIMIT: '1000000',
      // The background loops run during the faults too.
      PLEDGE_RETENTION_INTERVAL: '1',
    };
    key = createTestSystemKey(env, 'faults', ['collect:write', 'subjects:read']);
    server = await startServer(env);
  });
  after(async () => {
    await server?.stop();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('the process stays up, requests caught end in 503, later ones succeed, nothing acknowledged is lost', async (t) => {
    const subjects: string[] = [];
    for (let i = 0; i < STREAMS; i++) subjects.push(await registerSubject(server.base, key));
    const streams = new CollectStreams(server.base, key, subjects);
    let terminated = 0;
    try {
      for (let round = 0; round < 3; round++) {
        const before = streams.acked.length;
        await waitFor('50 more requests answered 201', 20_000, () =>
          streams.acked.length >= before + 50 || streams.unexpected.length > 0 ? true : undefined,
        );
        terminated += await terminatePledgeSessions(database.url);
      }
      const before = streams.acked.length;
      await waitFor('50 requests answered 201 after the last termination', 20_000, () =>
        streams.acked.length >= before + 50 || streams.unexpected.length > 0 ? true : undefined,
      );
    } finally {
      await streams.stop();
    }
    assert.deepEqual(streams.unexpected, [], server.stderr());
    assert.ok(terminated >= 3, `sessions were terminated (${terminated})`);
    assert.equal(server.child.exitCode, null, `the server is still running:\n${server.stderr()}`);
    const health = await timedRequest(server.base, 'GET', '/healthz', undefined);
    assert.equal(health.status, 200);
    await assertAllReadable(server.base, key, streams.acked);
    t.diagnostic(
      `${terminated} sessions terminated in 3 rounds; ${streams.acked.length} requests answered 201 (all readable), ` +
        `${streams.unavailable.length} answered 503 database.unavailable`,
    );
  });
});

describe('pledge serve on PostgreSQL behind a silent partition', () => {
  const STATEMENT_TIMEOUT_MS = 1000;
  const CONNECT_TIMEOUT_MS = 1000;
  /**
   * The documented bound: a connection within the connect timeout, then a statement within the
   * statement timeout plus the client's grace of 1 s. The slack is for a loaded test machine.
   */
  const BOUND_MS = CONNECT_TIMEOUT_MS + STATEMENT_TIMEOUT_MS + 1000;
  const SLACK_MS = 1000;
  /** /healthz's ping waits the shortest of the timeouts. */
  const HEALTH_BOUND_MS = Math.min(STATEMENT_TIMEOUT_MS, CONNECT_TIMEOUT_MS);

  let database: PostgresDatabase;
  let proxy: TcpProxy;
  let dataDir: string;
  let server: Server;
  let key: string;

  before(async () => {
    buildIfStale();
    database = await createPostgresDatabase('pledge_partition');
    const target = new URL(getTestDatabaseUrlOrThrow());
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-partition-'));
    const env = {
      PLEDGE_DATA_DIR: dataDir,
      PLEDGE_MANIFEST: exampleWithTestSystem(),
      DATABASE_URL: proxy.urlFor(database.url),
      PLEDGE_LOG_LEVEL: 'info',
      PLEDGE_RATE_LIMIT: '1000000',
      PLEDGE_RETENTION_INTERVAL: '1',
      PLEDGE_DB_STATEMENT_TIMEOUT: String(STATEMENT_TIMEOUT_MS),
      PLEDGE_DB_CONNECT_TIMEOUT: String(CONNECT_TIMEOUT_MS),
    };
    key = createTestSystemKey({ ...env, DATABASE_URL: database.url }, 'partition', [
      'collect:write',
      'subjects:read',
      'consent:read',
    ]);
    server = await startServer(env);
  });
  after(async () => {
    await server?.stop();
    await proxy?.close();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('API calls and /healthz answer 503 database.unavailable within the bound, and work again after', async (t) => {
    const subject = await registerSubject(server.base, key);
    const feedback = (message: string) =>
      timedRequest(server.base, 'POST', '/api/v1/collect/feedback', key, {
        subject: { id: subject },
        data: { message, rating: 2 },
      });
    const decision = () =>
      timedRequest(server.base, 'POST', '/api/v1/decisions', key, {
        subject,
        purpose: 'marketing-email',
        channel: 'email',
      });
    assert.equal((await feedback('before the partition')).status, 201);
    assert.equal((await decision()).status, 200);

    proxy.blackhole();
    const figures: string[] = [];
    // Round one meets the pool's open connections, stuck now; round two needs new connections,
    // which hang. Ten writes at once: they share group commits, which must fail together rather
    // than one after another. A decision joins in round two only: until the listener's last
    // confirmation runs out (test/consent/coherence-faults.test.ts), it may come from the cache.
    for (const round of ['open connections', 'new connections']) {
      const [health, ...answers] = await Promise.all([
        timedRequest(server.base, 'GET', '/healthz', undefined),
        ...(round === 'new connections' ? [decision()] : []),
        ...Array.from({ length: STREAMS }, (_, i) => feedback(`during the partition ${round} ${i}`)),
      ]);
      assert.ok(health);
      assertUnavailable(health, `/healthz (${round})`);
      assert.ok(health.ms <= HEALTH_BOUND_MS + SLACK_MS, `/healthz took ${Math.round(health.ms)} ms`);
      for (const a of answers) {
        assertUnavailable(a, `an API call (${round})`);
        assert.ok(a.ms <= BOUND_MS + SLACK_MS, `an API call took ${Math.round(a.ms)} ms (${round})`);
      }
      const slowest = Math.max(...answers.map((a) => a.ms));
      figures.push(
        `${round}: API calls 503 within ${Math.round(slowest)} ms, /healthz 503 within ${Math.round(health.ms)} ms`,
      );
    }
    assert.equal(server.child.exitCode, null, `the server is still running:\n${server.stderr()}`);

    proxy.restore();
    await waitFor('/healthz answers 200 after the partition', 15_000, async () =>
      (await timedRequest(server.base, 'GET', '/healthz', undefined)).status === 200 ? true : undefined,
    );
    const written = await feedback('after the partition');
    assert.equal(written.status, 201, JSON.stringify(written.body));
    assert.equal((await decision()).status, 200);
    await assertAllReadable(server.base, key, [
      {
        recordId: (written.body as { record: { id: string } }).record.id,
        subjectId: subject,
        message: 'after the partition',
      },
    ]);
    assert.equal(server.child.exitCode, null);
    t.diagnostic(`bound ${BOUND_MS} ms (/healthz ${HEALTH_BOUND_MS} ms); ${figures.join('; ')}`);
  });
});

describe('SQLite whose write lock another process holds', () => {
  let t: CollectTestApp;
  let subject: string;

  before(async () => {
    t = await openCollectApp('sqlite');
    const res = await t.app.http.inject({
      method: 'POST',
      url: '/api/v1/collect/registration',
      headers: { authorization: `Bearer ${t.key}` },
      payload: registrationBody(),
    });
    assert.equal(res.statusCode, 201, res.body);
    subject = res.json<{ subject: { id: string } }>().subject.id;
  });
  after(async () => {
    await t?.cleanup();
  });

  test('a write that cannot take the write lock answers 503 database.unavailable, and succeeds once it is released', async () => {
    const other = new BetterSqlite3(t.database.location);
    try {
      other.exec('begin immediate');
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/api/v1/collect/feedback',
        headers: { authorization: `Bearer ${t.key}` },
        payload: { subject: { id: subject }, data: { message: 'while locked', rating: 1 } },
      });
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(errorCode(res.json()), 'database.unavailable');
      assert.match(String(res.headers['retry-after']), /^\d+$/);
      other.exec('commit');
    } finally {
      other.close();
    }
    const res = await t.app.http.inject({
      method: 'POST',
      url: '/api/v1/collect/feedback',
      headers: { authorization: `Bearer ${t.key}` },
      payload: { subject: { id: subject }, data: { message: 'after the lock', rating: 1 } },
    });
    assert.equal(res.statusCode, 201, res.body);
  });
});

describe('database timeouts in the configuration', () => {
  test('default to 5000 ms, accept milliseconds, and every bad value is listed at boot', () => {
    assert.deepEqual(loadConfig({}).databaseTimeouts, { statementTimeoutMs: 5000, connectTimeoutMs: 5000 });
    assert.deepEqual(
      loadConfig({ PLEDGE_DB_STATEMENT_TIMEOUT: '250', PLEDGE_DB_CONNECT_TIMEOUT: '2000' }).databaseTimeouts,
      { statementTimeoutMs: 250, connectTimeoutMs: 2000 },
    );
    assert.throws(
      () => loadConfig({ PLEDGE_DB_STATEMENT_TIMEOUT: '0', PLEDGE_DB_CONNECT_TIMEOUT: 'soon' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.problems.length, 2, err.problems.join('\n'));
        assert.match(err.problems[0]!, /PLEDGE_DB_STATEMENT_TIMEOUT must be a whole number from 100/);
        assert.match(err.problems[1]!, /PLEDGE_DB_CONNECT_TIMEOUT must be a whole number from 100/);
        return true;
      },
    );
  });
});
