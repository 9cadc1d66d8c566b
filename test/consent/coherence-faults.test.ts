/**
 * Two `pledge serve` processes on one PostgreSQL database, the second behind a TCP proxy that cuts
 * or black-holes its connections. While the second cannot hear the first's notifications it must not
 * answer from its cache: it asks the database (and answers 503 while that is out of reach) or gives
 * the fresh decision. A cut is noticed at once; a silent partition within the listener's trust
 * window (LISTEN_TRUST_MS, docs/consent.md), after which no stale decision is given.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { LISTEN_TRUST_MS } from '../../src/platform/db/dialects/postgres-listen.js';
import { getTestDatabaseUrlOrThrow } from '../helpers/databases.js';
import {
  assertUnavailable,
  registerSubject,
  timedRequest,
  waitFor,
  type TimedAnswer,
} from '../helpers/faults.js';
import { createPostgresDatabase, type PostgresDatabase } from '../helpers/postgres.js';
import { buildIfStale, createTestSystemKey, startServer, type Server } from '../helpers/serve.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { exampleWithTestSystem } from '../helpers/manifests.js';

describe('two instances on PostgreSQL, the second cut off from it', () => {
  let database: PostgresDatabase;
  let proxy: TcpProxy;
  let dataDir: string;
  let a: Server;
  let b: Server;
  let key: string;

  before(async () => {
    buildIfStale();
    database = await createPostgresDatabase('pledge_coherence_faults');
    const target = new URL(getTestDatabaseUrlOrThrow());
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-coherence-faults-'));
    const env = {
      PLEDGE_DATA_DIR: dataDir,
      PLEDGE_MANIFEST: exampleWithTestSystem(),
      DATABASE_URL: database.url,
      PLEDGE_LOG_LEVEL: 'info',
      PLEDGE_RATE_LIMIT: '1000000',
      PLEDGE_DB_STATEMENT_TIMEOUT: '1000',
      PLEDGE_DB_CONNECT_TIMEOUT: '1000',
    };
    key = createTestSystemKey(env, 'coherence', ['consent:read', 'consent:write', 'collect:write']);
    a = await startServer(env);
    b = await startServer({ ...env, DATABASE_URL: proxy.urlFor(database.url) });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await proxy?.close();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const decide = (server: Server, subject: string): Promise<TimedAnswer> =>
    timedRequest(server.base, 'POST', '/api/v1/decisions', key, {
      subject,
      purpose: 'marketing-email',
      channel: 'email',
    });
  const reasonOf = (answer: TimedAnswer): string | undefined =>
    answer.status === 200 ? (answer.body as { decision: { reason: string } }).decision.reason : undefined;
  const choose = async (server: Server, subject: string, state: 'withdrawn' | 'granted') => {
    const res = await timedRequest(server.base, 'POST', '/api/v1/consent', key, {
      subject,
      choices: [{ purpose: 'marketing-email', channel: 'email', state, method: 'preference_center' }],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  };
  /** An answer of `b` that is neither 503 database.unavailable nor `fresh`, described; or undefined. */
  const stale = (answer: TimedAnswer, fresh: string): string | undefined => {
    if (answer.status === 503) {
      assertUnavailable(answer, 'the cut-off instance');
      return undefined;
    }
    const reason = reasonOf(answer);
    assert.ok(reason !== undefined, `${answer.status} ${JSON.stringify(answer.body)}`);
    return reason === fresh ? undefined : reason;
  };

  /** Both instances' consent LISTEN connections have listened and answered a heartbeat since. */
  const bothListening = async (): Promise<true | undefined> => {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ n: string }>(
        `select count(*) as n from pg_stat_activity
          where datname = current_database() and application_name like 'pledge-listen pledge_consent%' and query = 'select 1'`,
      );
      return Number(rows[0]?.n) === 2 ? true : undefined;
    } finally {
      await admin.end();
    }
  };

  /** After restore, `b` gives the fresh decision (never the stale one) within a deadline. */
  const freshAfterRestore = async (subject: string, fresh: string): Promise<void> => {
    proxy.restore();
    await waitFor(`the second instance answers "${fresh}" after the restore`, 15_000, async () => {
      const answer = await decide(b, subject);
      const wrong = stale(answer, fresh);
      assert.equal(wrong, undefined, `after the restore the second instance answered "${wrong}"`);
      return reasonOf(answer) === fresh ? true : undefined;
    });
  };

  test('black-holed: no stale decision once the trust window has passed, the fresh one after restore', async (t) => {
    const subject = await registerSubject(a.base, key);
    await waitFor('both instances listen', 10_000, bothListening);
    // The second instance holds the person in its cache, trusted.
    assert.equal(reasonOf(await decide(a, subject)), 'opt_out_default');
    assert.equal(reasonOf(await decide(b, subject)), 'opt_out_default');

    proxy.blackhole();
    const cutAt = performance.now();
    await choose(a, subject, 'withdrawn');
    // Every answer to a request sent after the window must be a 503 or the fresh decision; before,
    // the cache may still answer (the documented bound). Watched until a 503 after the window.
    const windowEnds = cutAt + LISTEN_TRUST_MS;
    let staleInWindow = 0;
    let lastStaleMs = 0;
    await waitFor('the second instance answers 503 after the trust window', 15_000, async () => {
      const answer = await decide(b, subject);
      const wrong = stale(answer, 'withdrawn');
      if (answer.sentAt > windowEnds) {
        assert.equal(
          wrong,
          undefined,
          `${Math.round(answer.sentAt - cutAt)} ms into the partition the second instance answered "${wrong}"`,
        );
        return answer.status === 503 ? true : undefined;
      }
      if (wrong !== undefined) {
        staleInWindow++;
        lastStaleMs = answer.sentAt - cutAt;
      }
      return undefined;
    });
    await freshAfterRestore(subject, 'withdrawn');
    t.diagnostic(
      `trust window ${LISTEN_TRUST_MS} ms: ${staleInWindow} cached answers inside it (the last ${Math.round(lastStaleMs)} ms ` +
        `into the partition), none after`,
    );
  });

  test('cut: never a stale decision, the fresh one after restore', async () => {
    const subject = await registerSubject(a.base, key);
    // After the previous test, the second instance's listener may still be reconnecting.
    await waitFor('both instances listen', 15_000, bothListening);
    assert.equal(reasonOf(await decide(a, subject)), 'opt_out_default');
    assert.equal(reasonOf(await decide(b, subject)), 'opt_out_default');

    proxy.cut();
    await choose(a, subject, 'withdrawn');
    // A reset is heard at once: over the whole window the cache may not answer even once.
    const until = performance.now() + LISTEN_TRUST_MS + 1000;
    let unavailable = 0;
    while (performance.now() < until) {
      const answer = await decide(b, subject);
      const wrong = stale(answer, 'withdrawn');
      assert.equal(wrong, undefined, `the cut-off instance answered "${wrong}" from its cache`);
      if (answer.status === 503) unavailable++;
    }
    assert.ok(unavailable > 0, 'the cut-off instance asked the database, which it could not reach');
    await freshAfterRestore(subject, 'withdrawn');
    assert.equal(b.child.exitCode, null);
  });
});
