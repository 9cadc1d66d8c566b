/**
 * Databases for tests, on every engine Pledge supports. Each call gets its own SQLite directory or
 * PostgreSQL schema, so test files run in parallel without seeing each other's rows. PostgreSQL is
 * required: when it cannot be reached, opening fails and so do the tests (they are never skipped).
 * The server is the one `PLEDGE_TEST_DATABASE_URL` names: scripts/run-tests.mjs starts one for its
 * run when the variable is unset (test/helpers/embedded-postgres.mjs) and sets it for the tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { MIGRATIONS, type Tables } from '../../src/capabilities.js';
import { createPostgresSchema, openDatabase, type Database } from '../../src/platform/db/database.js';
import { migrateToLatest, withSchemaChangeLock } from '../../src/platform/db/migrations.js';

/** The engines every repository test runs on. */
export const DIALECTS = ['sqlite', 'postgres'] as const;

/** One of {@link DIALECTS}. */
export type TestDialect = (typeof DIALECTS)[number];

/**
 * A test database and how to remove it; `schema` is the PostgreSQL schema it lives in, `tables` the
 * raw handle typed with every capability's tables (for tests that look at what is at rest).
 */
export type TestDatabase = Database & {
  schema: string | undefined;
  tables: Kysely<Tables>;
  cleanup(): Promise<void>;
};

/** The raw handle of a database, typed with every capability's tables (tests only). */
export function tablesOf(database: Pick<Database, 'kysely'>): Kysely<Tables> {
  return database.kysely as unknown as Kysely<Tables>;
}

/**
 * The URL of the PostgreSQL server tests use, `PLEDGE_TEST_DATABASE_URL`; throws, saying how to run
 * the file, when it is unset (a test file run with `node --test` alone has no server).
 */
export function getTestDatabaseUrlOrThrow(): string {
  const url = process.env.PLEDGE_TEST_DATABASE_URL;
  if (url !== undefined && url !== '') return url;
  throw new Error(
    'PLEDGE_TEST_DATABASE_URL is not set, so these tests have no PostgreSQL server. Run test files ' +
      'through `node scripts/run-tests.mjs FILE...` (as `npm test` does), which starts a PostgreSQL ' +
      'server for the run, or set PLEDGE_TEST_DATABASE_URL to a server to use, for example ' +
      'postgres://postgres@127.0.0.1:5432/test.',
  );
}

/** Opens an empty database on `dialect`; `cleanup()` closes it and deletes everything it held. */
export async function openTestDatabase(dialect: TestDialect): Promise<TestDatabase> {
  switch (dialect) {
    case 'sqlite': {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-test-'));
      const database = await openDatabase({ dataDir });
      return {
        ...database,
        schema: undefined,
        tables: tablesOf(database),
        async cleanup() {
          await database.close();
          await rm(dataDir, { recursive: true, force: true });
        },
      };
    }
    case 'postgres': {
      const schema = `test_${randomBytes(8).toString('hex')}`;
      const databaseUrl = getTestDatabaseUrlOrThrow();
      // The schema exists before any connection has it on its search_path (see createPostgresSchema).
      await createPostgresSchema(databaseUrl, schema);
      // dataDir is not used with PostgreSQL; nothing is written there.
      const database = await openDatabase({ databaseUrl, dataDir: os.tmpdir(), schema });
      return {
        ...database,
        schema,
        tables: tablesOf(database),
        async cleanup() {
          try {
            await dropTestSchema(database.kysely, schema);
          } finally {
            await database.close();
          }
        },
      };
    }
  }
}

/** Opens an empty database on `dialect` with every migration applied. */
export async function openMigratedTestDatabase(dialect: TestDialect): Promise<TestDatabase> {
  const database = await openTestDatabase(dialect);
  try {
    await migrateToLatest(database, MIGRATIONS);
  } catch (err) {
    await database.cleanup();
    throw err;
  }
  return database;
}

/**
 * Drops a test schema under the schema-change lock, so a migration running at the same moment in
 * another test file does not meet a schema that vanishes in the middle of its introspection.
 */
export async function dropTestSchema(db: Database['kysely'], schema: string): Promise<void> {
  await withSchemaChangeLock(db, (conn) =>
    sql`drop schema if exists ${sql.id(schema)} cascade`.execute(conn),
  );
}
