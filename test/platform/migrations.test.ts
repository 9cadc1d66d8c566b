import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql, type Kysely, type Migration } from 'kysely';
import { MIGRATIONS } from '../../src/capabilities.js';
import { openDatabase } from '../../src/platform/db/database.js';
import {
  collectMigrations,
  migrateToLatest,
  withSchemaChangeLock,
} from '../../src/platform/db/migrations.js';
import { PledgeError } from '../../src/platform/errors.js';
import {
  DIALECTS,
  openMigratedTestDatabase,
  openTestDatabase,
  tablesOf,
  type TestDatabase,
} from '../helpers/databases.js';
import { describeSchema } from '../helpers/schema.js';

/**
 * What the release before the capabilities owned their tables (commit 95b14af) made: its list of
 * migrations and the schema they produced on each engine, dumped by that release's own code.
 */
const PREVIOUS = JSON.parse(
  readFileSync(new URL('../fixtures/schema-95b14af.json', import.meta.url), 'utf8'),
) as {
  migrations: string[];
  sqlite: string[];
  postgres: string[];
};

const createTable = (name: string): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.createTable(name).addColumn('id', 'integer').execute();
  },
});

async function tableNames(database: TestDatabase): Promise<string[]> {
  // PostgreSQL's introspection lists every schema, including parallel tests' schemas, and fails if
  // one is dropped meanwhile: read it under the lock that test clean-ups take to drop theirs.
  const tables =
    database.dialect === 'postgres'
      ? await withSchemaChangeLock(database.kysely, (db) => db.introspection.getTables())
      : await database.kysely.introspection.getTables();
  return tables
    .filter((t) => t.schema === database.schema)
    .map((t) => t.name)
    .sort();
}

for (const dialect of DIALECTS) {
  void describe(dialect, () => {
    let database: TestDatabase;
    before(async () => {
      database = await openTestDatabase(dialect);
    });
    after(async () => {
      await database?.cleanup();
    });

    void test('the first run applies every migration in order, the second applies nothing', async () => {
      const first = await migrateToLatest(database, MIGRATIONS);
      assert.deepEqual(
        first.applied,
        MIGRATIONS.map(([name]) => name),
      );
      assert.ok((await tableNames(database)).includes('manifest_versions'));
      assert.ok((await tableNames(database)).includes('api_keys'));

      const second = await migrateToLatest(database, MIGRATIONS);
      assert.deepEqual(second.applied, []);
    });

    void test('a database made by the previous release migrates with nothing to redo, to the schema of a fresh one, its queued work adopted', async () => {
      // The earlier migrations keep their names and order, and still make exactly the schema they made.
      const previous = MIGRATIONS.filter(([name]) => PREVIOUS.migrations.includes(name));
      assert.deepEqual(
        previous.map(([name]) => name),
        PREVIOUS.migrations,
      );
      const old = await openTestDatabase(dialect);
      const fresh = await openMigratedTestDatabase(dialect);
      try {
        await migrateToLatest(old, previous);
        assert.deepEqual(await describeSchema(old), PREVIOUS[dialect]);
        // Work the previous release had queued: a webhook delivery and two campaign sends, one of
        // them in flight when it stopped.
        const at = '2026-12-01T09:00:00.000Z';
        const db = tablesOf(old);
        await db
          .insertInto('webhook_deliveries')
          .values({
            id: '00000000-0000-7000-8000-000000000001',
            webhook: 'crm',
            event_id: 'e1',
            event_type: 'consent.changed',
            payload: '{}',
            status: 'pending',
            attempts: 2,
            next_attempt_at: at,
            created_at: at,
          })
          .execute();
        await db
          .insertInto('campaigns')
          .values({
            id: 'c1',
            kind: 'marketing',
            name: 'n',
            list: 'marketing-email',
            subject_template: 's',
            text_template: 't',
            html_template: 'h',
            audience: '{"subjects":["s1","s2","s3"]}',
            status: 'sending',
            policy_version_id: null,
            created_at: at,
            started_at: at,
            finished_at: null,
          })
          .execute();
        await db
          .insertInto('campaign_sends')
          .values(
            (['pending', 'sending', 'sent'] as const).map((status, i) => ({
              campaign_id: 'c1',
              subject_id: `s${i + 1}`,
              status,
              reason: null,
              attempts: 0,
              next_attempt_at: at,
              message_id: null,
              created_at: at,
              updated_at: at,
            })),
          )
          .execute();

        const upgraded = await migrateToLatest(old, MIGRATIONS);
        assert.deepEqual(
          upgraded.applied,
          MIGRATIONS.map(([name]) => name).filter((name) => !PREVIOUS.migrations.includes(name)),
          'only the new migrations run',
        );
        assert.deepEqual(await describeSchema(old), await describeSchema(fresh));
        const jobs = await db
          .selectFrom('jobs')
          .select(['type', 'key', 'state', 'attempts'])
          .orderBy('key')
          .execute();
        assert.deepEqual(
          jobs.map((j) => ({ ...j, attempts: Number(j.attempts) })),
          [
            {
              type: 'webhooks.deliver',
              key: '00000000-0000-7000-8000-000000000001',
              state: 'pending',
              attempts: 2,
            },
            { type: 'campaigns.send', key: 'c1:s1', state: 'pending', attempts: 0 },
            { type: 'campaigns.send', key: 'c1:s2', state: 'pending', attempts: 0 },
          ],
          'the work it had queued is jobs now; what was sent stays sent',
        );
      } finally {
        await old.cleanup();
        await fresh.cleanup();
      }
    });

    void test('a failing migration is named and nothing of its run is applied', async () => {
      const migrations = collectMigrations({
        '2099_01_01_001_good': createTable('good_table'),
        '2099_01_01_002_bad': {
          async up(db: Kysely<unknown>) {
            await sql`select * from no_such_table`.execute(db);
          },
        },
      });
      await assert.rejects(migrateToLatest(database, [...MIGRATIONS, ...migrations]), (err: unknown) => {
        assert.ok(err instanceof PledgeError);
        assert.equal(err.code, 'db.migration_failed');
        assert.match(err.message, /2099_01_01_002_bad/);
        assert.deepEqual(err.details, { migration: '2099_01_01_002_bad' });
        return true;
      });
      // All-or-nothing on both engines: the good migration of the same run was rolled back too.
      assert.ok(!(await tableNames(database)).includes('good_table'));
      assert.deepEqual((await migrateToLatest(database, MIGRATIONS)).applied, []);
    });
  });
}

void describe('collectMigrations', () => {
  void test('sorts by name across capabilities', () => {
    const list = collectMigrations(
      { '2026_12_01_001_b': createTable('b') },
      { '2026_11_30_001_a': createTable('a'), '2026_12_01_002_c': createTable('c') },
    );
    assert.deepEqual(
      list.map(([name]) => name),
      ['2026_11_30_001_a', '2026_12_01_001_b', '2026_12_01_002_c'],
    );
  });

  void test('refuses a name used twice and a name without its ordering prefix', () => {
    assert.throws(
      () =>
        collectMigrations({ '2026_12_01_001_a': createTable('a') }, { '2026_12_01_001_a': createTable('a') }),
      { code: 'db.migration_duplicate' },
    );
    assert.throws(() => collectMigrations({ add_things: createTable('a') }, {}), {
      code: 'db.migration_name_invalid',
    });
  });
});

void describe('openDatabase', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-open-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  void test('SQLite: creates the data directory 0700 and sets durability pragmas', async () => {
    const dataDir = path.join(dir, 'nested', 'data');
    const database = await openDatabase({ dataDir });
    try {
      assert.equal(database.dialect, 'sqlite');
      assert.equal(database.location, path.join(dataDir, 'pledge.db'));
      assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
      const pragma = async (name: string) => {
        const { rows } = await sql<Record<string, unknown>>`${sql.raw(`pragma ${name}`)}`.execute(
          database.kysely,
        );
        // The result column is not always named after the pragma (busy_timeout answers "timeout").
        return Object.values(rows[0] ?? {})[0];
      };
      assert.equal(await pragma('journal_mode'), 'wal');
      assert.equal(await pragma('synchronous'), 2); // FULL
      assert.equal(await pragma('foreign_keys'), 1);
      assert.equal(await pragma('busy_timeout'), 5000);
    } finally {
      await database.close();
      await database.close(); // closing twice is harmless
    }
  });

  void test('PostgreSQL unreachable: db.unreachable names host:port and never the password', async () => {
    await assert.rejects(
      openDatabase({ databaseUrl: 'postgres://pledge:hunter2-secret@127.0.0.1:1/pledge', dataDir: dir }),
      (err: unknown) => {
        assert.ok(err instanceof PledgeError);
        assert.equal(err.code, 'db.unreachable');
        assert.match(err.message, /127\.0\.0\.1:1\/pledge/);
        assert.doesNotMatch(err.message, /hunter2/);
        assert.doesNotMatch(JSON.stringify(err.details), /hunter2/);
        return true;
      },
    );
  });
});
