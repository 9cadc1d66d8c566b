/**
 * Two app instances on one PostgreSQL database, each appending while both integrate (their own
 * background integrators and explicit passes at once): every entry is integrated exactly once, the
 * leaf indexes are 0..n-1 with no gap, and both instances agree on one order (the same root from
 * each, the root of the leaves in index order). PostgreSQL only: SQLite is one process's database.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { leafHash, rootOf } from '../../src/audit/merkle.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { openDatabase, type Database } from '../../src/platform/db/database.js';
import { getTestDatabaseUrlOrThrow, openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, openTestKeystore, type TestKeystore } from '../helpers/vault.js';

const cli = createContext({ kind: 'cli', id: 'test' });

describe('two instances on one PostgreSQL database', () => {
  let database: TestDatabase;
  let second: Database;
  let keystore: TestKeystore;
  let dataDir: string;
  let a: App;
  let b: App;

  before(async () => {
    database = await openTestDatabase('postgres');
    second = await openDatabase({
      databaseUrl: getTestDatabaseUrlOrThrow(),
      dataDir: os.tmpdir(),
      schema: database.schema,
    });
    // One data directory for both: they share the key file, as instances of one deployment share PLEDGE_KEYS.
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-log-two-'));
    keystore = await openTestKeystore(database, dataDir);
    const config = (name: string) => ({
      ...loadConfig(
        {
          PLEDGE_DATA_DIR: dataDir,
          PLEDGE_LOG_LEVEL: 'silent',
          PLEDGE_LOG_CHECKPOINT_FILE: path.join(dataDir, `${name}.jsonl`),
        },
        { manifest: EXAMPLE_MANIFEST },
      ),
      retentionIntervalSeconds: 0,
      rateLimitPerMinute: 100_000,
    });
    a = await createApp(config('a'), { database, keystore: keystore.keystore });
    b = await createApp(config('b'), { database: second, keystore: keystore.keystore });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await second?.close();
    await keystore?.cleanup();
    await database?.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('every entry is integrated once, 0..n-1 with no gap, in one order both agree on', async () => {
    const rounds = 40;
    const perAppend = 25;
    // What the instances recorded at start (the processors' acknowledgements by agreement).
    const atStart = Number(
      (
        await database.tables
          .selectFrom('audit_events')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
    const writer = (app: App, name: string) =>
      (async () => {
        for (let r = 0; r < rounds; r++) {
          await app.audit.append(
            cli,
            Array.from({ length: perAppend }, (_, i) => ({
              action: 'test.concurrent',
              details: { name, r, i },
            })),
          );
          // Explicit passes from both instances race the background integrators.
          if (r % 4 === 0) await app.log.integrateNow(cli);
        }
      })();
    await Promise.all([writer(a, 'a'), writer(b, 'b'), writer(a, 'a2'), writer(b, 'b2')]);
    await Promise.all([a.log.integrateNow(cli), b.log.integrateNow(cli)]);

    const rows = await database.tables
      .selectFrom('audit_events')
      .select(['id', 'leaf_index', 'entry'])
      .orderBy('leaf_index')
      .execute();
    const n = atStart + 4 * rounds * perAppend;
    assert.equal(rows.length, n, 'every append is a row');
    assert.deepEqual(
      rows.map((r) => Number(r.leaf_index)),
      Array.from({ length: n }, (_, i) => i),
      'leaf indexes 0..n-1, each once, no gap',
    );
    const expected = rootOf(rows.map((r) => leafHash(Buffer.from(r.entry ?? '', 'utf8'))));
    const [headA, headB] = await Promise.all([a.log.head(cli), b.log.head(cli)]);
    assert.equal(headA.size, n);
    assert.equal(headB.size, n);
    assert.deepEqual(headA.root, expected, "instance a's root is the root of the leaves in index order");
    assert.deepEqual(headB.root, expected, 'instance b agrees');
    // Both serve the same proof for the same leaf.
    const [pa, pb] = await Promise.all([a.log.inclusion(cli, 17, n), b.log.inclusion(cli, 17, n)]);
    assert.deepEqual(pa.proof, pb.proof);
  });
});
