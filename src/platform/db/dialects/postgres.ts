/**
 * PostgreSQL quirks: the connection pool, a clear error when the server cannot be reached, and the
 * DDL that differs from SQLite.
 */
import { PostgresDialect, sql, type ColumnDefinitionBuilder, type Kysely } from 'kysely';
import { DatabaseUnavailableError, PledgeError } from '../../errors.js';
import {
  BoundedPool,
  DEFAULT_DATABASE_TIMEOUTS,
  boundedPoolConfig,
  type DatabaseTimeouts,
} from './postgres-pool.js';

/** Options for connecting to PostgreSQL. */
export interface PostgresDialectOptions {
  databaseUrl: string;
  /** A schema to put first on the search_path of every connection (tests use one schema each). */
  schema?: string | undefined;
  /** How long to wait on the server (default {@link DEFAULT_DATABASE_TIMEOUTS}). */
  timeouts?: DatabaseTimeouts | undefined;
}

/** A connected pool, ready to hand to Kysely. */
export interface PostgresDialectResult {
  dialect: PostgresDialect;
  /** `host:port/database`, never the user's password; for messages. */
  location: string;
}

/** A schema name we can put in a connection option without quoting: no injection, no surprises. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Describes where a PostgreSQL URL points, as `host:port/database`, leaving out the credentials. */
export function describePostgresUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    // A Unix socket is given as ?host=/path with an empty authority.
    const host = url.hostname || url.searchParams.get('host') || 'localhost';
    const port = url.port || '5432';
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    return `${host}:${port}${database ? `/${database}` : ''}`;
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

/**
 * Creates a pool and checks that the server answers. Throws a `db.unreachable` PledgeError naming
 * host:port (never the password) when it does not.
 */
export async function createPostgresDialect(options: PostgresDialectOptions): Promise<PostgresDialectResult> {
  const location = describePostgresUrl(options.databaseUrl);
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new PledgeError(
      'db.schema_invalid',
      `schema "${options.schema}" must be lower-case letters, digits and underscores, starting with a letter or underscore`,
    );
  }
  // pg is loaded only when PostgreSQL is used: SQLite deployments and the CLI never pay for it.
  const { default: pg } = await import('pg');
  const timeouts = options.timeouts ?? DEFAULT_DATABASE_TIMEOUTS;
  const pool = new BoundedPool(
    new pg.Pool({
      connectionString: options.databaseUrl,
      application_name: 'pledge',
      ...boundedPoolConfig(timeouts),
      ...(options.schema !== undefined ? { options: `-c search_path=${options.schema}` } : {}),
    }),
    timeouts,
  );
  try {
    const client = await pool.connect();
    try {
      await client.query('select 1', []);
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => {});
    // The driver's own words (connection refused, timeout) say more than "unavailable" here.
    const reason = err instanceof DatabaseUnavailableError && err.cause !== undefined ? err.cause : err;
    throw new PledgeError(
      'db.unreachable',
      `cannot reach PostgreSQL at ${location}: ${redact(errorMessage(reason), options.databaseUrl)}; ` +
        `check DATABASE_URL and that the server is running and accepts connections`,
      { details: { location }, cause: err },
    );
  }
  return { dialect: new PostgresDialect({ pool }), location };
}

/**
 * Makes `column` an auto-assigned integer primary key. An identity column is the SQL-standard form
 * PostgreSQL recommends over `serial`.
 */
export function postgresIdColumn(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder {
  return column.primaryKey().generatedByDefaultAsIdentity();
}

/**
 * The schema unqualified tables are created in (the first existing one on the search_path). Kysely's
 * Migrator must be told it: otherwise it looks for its bookkeeping tables in every schema of the
 * database and, finding another schema's (another app, or a parallel test), skips creating its own.
 */
export async function currentPostgresSchema<DB>(db: Kysely<DB>): Promise<string> {
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  if (schema === undefined || schema === null) {
    throw new PledgeError(
      'db.schema_missing',
      'no schema on the PostgreSQL search_path exists; create one (e.g. `create schema public`) or set search_path',
    );
  }
  return schema;
}

function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    // Node reports a failed connection to every address of a host name as one AggregateError with
    // an empty message; the first inner error says what happened.
    return errorMessage(err.errors[0]);
  }
  if (err instanceof Error) return err.message || ((err as NodeJS.ErrnoException).code ?? err.name);
  return String(err);
}

/** Drivers do not put the password in their messages today; make sure it stays that way. */
function redact(message: string, databaseUrl: string): string {
  let password = '';
  try {
    password = decodeURIComponent(new URL(databaseUrl).password);
  } catch {
    // An unparsable URL has no password we could find; the message is kept as it is.
  }
  return password ? message.split(password).join('***') : message;
}
