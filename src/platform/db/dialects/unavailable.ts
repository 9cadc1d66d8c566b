/**
 * Which driver errors mean "the database cannot be used right now" (503 `database.unavailable`, the
 * request may be retried) rather than "this statement is wrong" (a constraint violation stays what it
 * is). The one place that knows the engines' codes and messages: the PostgreSQL pool converts what
 * it sees at the driver boundary (src/platform/db/dialects/postgres-pool.ts), and everything above
 * asks {@link asDatabaseUnavailable}.
 */
import { DatabaseUnavailableError } from '../../errors.js';

/**
 * SQLSTATEs of a server that is going away, cannot take the session or gave up on the statement:
 * 57P01 admin_shutdown (also pg_terminate_backend), 57P02 crash_shutdown, 57P03 cannot_connect_now
 * (starting up, recovering), 57P05 idle_session_timeout, 25P03 idle_in_transaction_session_timeout,
 * 57014 query_canceled (statement_timeout), 53xxx insufficient resources (53300 too many
 * connections, 53100 disk full, 53200 out of memory), 58000 system_error, 58030 io_error. Class 08
 * (connection exception) is matched as a class.
 */
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '57P05',
  '25P03',
  '57014',
  '53000',
  '53100',
  '53200',
  '53300',
  '58000',
  '58030',
]);

/** Socket and name-resolution errors of a connection to the server. */
const SOCKET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * pg's and pg-pool's own errors carry no code, only these messages (pg 8, pg-pool 3): a socket that
 * ended, a connection or checkout that timed out, the client-side read timeout, a client already
 * broken or closed, a pool being shut down.
 */
const PG_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'timeout expired',
  'Query read timeout',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end on the pool',
];

/**
 * better-sqlite3's codes for a lock held past busy_timeout (SQLITE_BUSY and its extended codes), a
 * failed read or write of the file (SQLITE_IOERR_*), and a full disk (SQLITE_FULL). SQLITE_CORRUPT
 * and the like are not here: retrying does not help them.
 */
function isSqliteCode(code: string): boolean {
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_FULL';
}

/** The error and what it wraps (`cause`, an AggregateError's errors), a few levels deep. */
function* chain(err: unknown, depth = 0): Generator<unknown> {
  if (depth > 4 || err === null || err === undefined) return;
  yield err;
  if (err instanceof AggregateError) for (const e of err.errors) yield* chain(e, depth + 1);
  if (err instanceof Error && err.cause !== undefined) yield* chain(err.cause, depth + 1);
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A server-reported error of pg (pg-protocol's DatabaseError): it has a severity and a SQLSTATE. */
function isServerError(err: unknown): boolean {
  return typeof (err as { severity?: unknown } | null)?.severity === 'string' && codeOf(err) !== undefined;
}

function isUnavailableSqlstate(code: string): boolean {
  return code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code);
}

/**
 * True when an error raised by pg or pg-pool means the server is unreachable, went away, timed out
 * or cannot take the session. Only for errors of the driver: the socket codes it accepts would be
 * ambiguous anywhere else (a webhook or SMTP server refusing a connection is not the database).
 */
export function isPostgresUnavailable(err: unknown): boolean {
  for (const e of chain(err)) {
    if (e instanceof DatabaseUnavailableError) return true;
    const code = codeOf(e);
    if (isServerError(e)) {
      if (code !== undefined && isUnavailableSqlstate(code)) return true;
      continue;
    }
    if (code !== undefined && SOCKET_CODES.has(code)) return true;
    if (e instanceof Error && PG_MESSAGES.some((m) => e.message.startsWith(m))) return true;
  }
  return false;
}

/**
 * True when pg's error leaves its connection usable: the server reported an error of the statement
 * (a constraint violation, a statement timeout) and the session goes on. Any other error (a socket
 * error, a client-side timeout, a FATAL from the server) leaves the connection dead or in an unknown
 * state, so it must not be used again.
 */
export function leavesPostgresConnectionUsable(err: unknown): boolean {
  const severity = (err as { severity?: unknown } | null)?.severity;
  return isServerError(err) && severity !== 'FATAL' && severity !== 'PANIC';
}

/** True when a better-sqlite3 error is a lock not released in time, an I/O error or a full disk. */
export function isSqliteUnavailable(err: unknown): boolean {
  for (const e of chain(err)) {
    const code = codeOf(e);
    if (code !== undefined && isSqliteCode(code)) return true;
  }
  return false;
}

/**
 * The error as a {@link DatabaseUnavailableError} when it is one: already converted by the
 * PostgreSQL pool (possibly wrapped), or one of SQLite's unavailable codes; `undefined` for every
 * other error, which keeps its own meaning.
 */
export function asDatabaseUnavailable(err: unknown): DatabaseUnavailableError | undefined {
  for (const e of chain(err)) {
    if (e instanceof DatabaseUnavailableError) return e;
  }
  return isSqliteUnavailable(err) ? new DatabaseUnavailableError({ cause: err }) : undefined;
}
