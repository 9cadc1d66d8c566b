/**
 * The migrator: capabilities' migrations merged into one ordered list and applied with Kysely's
 * Migrator. It knows no capability: the list of capabilities is made above the platform
 * (src/capabilities.ts) and handed here. The provider is in code (not a folder of files) so the same
 * list works from src/ through tsx and compiled in dist/.
 */
import { Migrator, sql, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import { PledgeError } from '../errors.js';
import type { Database } from './database.js';
import { currentPostgresSchema } from './dialects/postgres.js';
import { withoutStatementTimeout } from './dialects/postgres-pool.js';

/** A migration with its name. */
export type NamedMigration = readonly [name: string, migration: Migration];

/** What `migrateToLatest` did. */
export interface MigrateResult {
  /** Names of the migrations applied by this run, in order; empty when the database was up to date. */
  applied: string[];
}

/** `YYYY_MM_DD_NNN_what`: the date and sequence make the names sort in the order they must run. */
const MIGRATION_NAME = /^\d{4}_\d{2}_\d{2}_\d{3}_[a-z0-9_]+$/;

/**
 * Merges capabilities' migrations into one list sorted by name. Throws when a name is malformed or
 * used twice, which would otherwise silently drop a migration.
 */
export function collectMigrations(...sources: Record<string, Migration>[]): NamedMigration[] {
  const seen = new Map<string, Migration>();
  for (const source of sources) {
    for (const [name, migration] of Object.entries(source)) {
      if (!MIGRATION_NAME.test(name)) {
        throw new PledgeError(
          'db.migration_name_invalid',
          `migration name "${name}" must look like 2026_11_29_001_what_it_does (date, sequence, lower-case words)`,
        );
      }
      if (seen.has(name)) {
        throw new PledgeError('db.migration_duplicate', `two migrations are named "${name}"; rename one`);
      }
      seen.set(name, migration);
    }
  }
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Applies every pending migration. Pending migrations run in one transaction on both engines, so a
 * failure leaves the database as it was; it throws a PledgeError `db.migration_failed` naming the
 * migration. On PostgreSQL concurrent runs (several servers starting) wait on a lock, and the later
 * ones apply nothing.
 */
export async function migrateToLatest(
  database: Database,
  migrations: readonly NamedMigration[],
): Promise<MigrateResult> {
  let resultSet: MigrationResultSet;
  const run = async (db: Kysely<object>): Promise<MigrationResultSet> => {
    const migrator = new Migrator({
      db,
      provider: { getMigrations: () => Promise.resolve(Object.fromEntries(migrations)) },
      migrationTableSchema: database.dialect === 'postgres' ? await currentPostgresSchema(db) : undefined,
    });
    return migrator.migrateToLatest();
  };
  try {
    resultSet =
      database.dialect === 'postgres'
        ? await withSchemaChangeLock(database.kysely, run)
        : await run(database.kysely);
  } catch (error) {
    // The Migrator reports failures in its result; this is the set-up before it (finding the schema).
    resultSet = { error };
  }
  if (resultSet.error !== undefined) throw migrationFailed(resultSet, database);
  return { applied: (resultSet.results ?? []).map((r) => r.migrationName) };
}

function migrationFailed({ error, results }: MigrationResultSet, database: Database): PledgeError {
  const failed = results?.find((r) => r.status === 'Error')?.migrationName;
  const reason = error instanceof Error ? error.message : String(error);
  const message =
    failed !== undefined
      ? `migration "${failed}" failed on ${database.dialect} (${database.location}): ${reason}; ` +
        `no migration of this run was applied, fix the cause and run \`pledge migrate\` again`
      : // Kysely's own checks, e.g. the database has a migration this version of Pledge does not know.
        `migrations could not run on ${database.dialect} (${database.location}): ${reason}`;
  return new PledgeError('db.migration_failed', message, {
    details: { migration: failed ?? null },
    cause: error,
  });
}

/** The advisory lock that serializes Pledge's schema changes on a PostgreSQL server. */
export const SCHEMA_CHANGE_LOCK = 7_411_019_001;

/**
 * Runs `work` on one connection holding {@link SCHEMA_CHANGE_LOCK}. Kysely's Migrator introspects
 * the tables of every schema of the database before it takes its own lock, and that introspection
 * fails ("schema ... does not exist") when another schema is dropped at the same moment. Migrations,
 * and whatever drops a schema (tests' clean-up), take this lock first.
 */
export async function withSchemaChangeLock<T>(
  db: Kysely<object>,
  work: (db: Kysely<object>) => Promise<T>,
): Promise<T> {
  // Without the statement timeout: waiting for another instance's migration, or building an index
  // on a large table, may rightly take longer than any request should.
  return withoutStatementTimeout(() =>
    db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(${sql.lit(SCHEMA_CHANGE_LOCK)})`.execute(conn);
      try {
        return await work(conn);
      } finally {
        await sql`select pg_advisory_unlock(${sql.lit(SCHEMA_CHANGE_LOCK)})`.execute(conn);
      }
    }),
  );
}
