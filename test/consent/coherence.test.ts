/**
 * Two `pledge serve` processes on one PostgreSQL database: each decides from its own in-process
 * cache, and a choice recorded through one is obeyed by the other within a second (LISTEN/NOTIFY).
 * PostgreSQL only: SQLite is one process's database by design.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPostgresDatabase, type PostgresDatabase } from '../helpers/postgres.js';
import {
  buildIfStale,
  createTestSystemKey,
  jsonRequest,
  startServer,
  type Server,
} from '../helpers/serve.js';
import { randomLetters } from '../helpers/vault.js';
import { exampleWithTestSystem } from '../helpers/manifests.js';

describe('two instances on PostgreSQL', () => {
  let a: Server;
  let b: Server;
  let key: string;
  let dataDir: string;
  let database: PostgresDatabase;

  before(async () => {
    buildIfStale();
    database = await createPostgresDatabase('pledge_coherence');
    // One data directory for both: they share the key file, as instances of one deployment share
    // PLEDGE_KEYS.
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-coherence-'));
    const env = {
      PLEDGE_DATA_DIR: dataDir,
      PLEDGE_MANIFEST: exampleWithTestSystem(),
      DATABASE_URL: database.url,
      PLEDGE_LOG_LEVEL: 'info',
    };
    a = await startServer(env);
    b = await startServer(env);
    key = createTestSystemKey(env, 'coherence', ['consent:read', 'consent:write', 'collect:write']);
    assert.match(key, /^pledge_/, 'keys create prints the key');
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const decide = async (server: Server, subject: string) => {
    const res = await jsonRequest(server.base, 'POST', '/api/v1/decisions', key, {
      subject,
      purpose: 'marketing-email',
      channel: 'email',
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body as { decision: { reason: string } }).decision.reason;
  };

  /** Asks `server` until it gives `reason`; returns how long that took (fails after 1 s). */
  const obeyedWithin = async (server: Server, subject: string, reason: string): Promise<number> => {
    const start = performance.now();
    let last = '';
    while (performance.now() - start < 1000) {
      last = await decide(server, subject);
      if (last === reason) return performance.now() - start;
    }
    assert.fail(`after 1 s the other instance still answers "${last}", not "${reason}"`);
  };

  test('a withdrawal through one instance is obeyed by the other within 1 s, and back', async () => {
    const registered = await jsonRequest(a.base, 'POST', '/api/v1/collect/registration', key, {
      jurisdiction: 'US',
      data: {
        email: `coherence-${randomLetters(12)}@example.test`,
        first_name: 'Ada',
        last_name: 'Lovelace',
        password: 'correct horse battery',
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const subject = (registered.body as { subject: { id: string } }).subject.id;

    // Both instances decide once, so both hold the person in their caches.
    assert.equal(await decide(a, subject), 'opt_out_default');
    assert.equal(await decide(b, subject), 'opt_out_default');

    const withdrawn = await jsonRequest(a.base, 'POST', '/api/v1/consent', key, {
      subject,
      choices: [
        { purpose: 'marketing-email', channel: 'email', state: 'withdrawn', method: 'unsubscribe_link' },
      ],
    });
    assert.equal(withdrawn.status, 201, JSON.stringify(withdrawn.body));
    assert.equal(await decide(a, subject), 'withdrawn', 'the instance that recorded it obeys at once');
    const ms = await obeyedWithin(b, subject, 'withdrawn');
    assert.ok(ms < 1000);

    const granted = await jsonRequest(b.base, 'POST', '/api/v1/consent', key, {
      subject,
      choices: [
        { purpose: 'marketing-email', channel: 'email', state: 'granted', method: 'preference_center' },
      ],
    });
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    await obeyedWithin(a, subject, 'opt_in_granted');
  });
});
