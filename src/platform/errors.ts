/**
 * The one error model. Every error that reaches a person or a client has a stable `code`, an HTTP
 * status, and says whether its message may be shown; the HTTP error handler turns it into
 * `{ error: { code, message, details } }`.
 */

/** Details attached to an error: where the problem is and how to fix it. */
export type ErrorDetails = Record<string, unknown>;

/** The base of every error Pledge raises on purpose. */
export class PledgeError extends Error {
  /** Stable machine-readable code, e.g. `auth.scope_missing`. */
  readonly code: string;
  readonly status: number;
  /** False for internal errors whose message must not leave the server. */
  readonly expose: boolean;
  readonly details: ErrorDetails | undefined;
  /** Seconds after which the same request may succeed; sent as `Retry-After`. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: string,
    message: string,
    options: {
      status?: number;
      expose?: boolean;
      details?: ErrorDetails;
      cause?: unknown;
      retryAfterSeconds?: number;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.expose = options.expose ?? this.status < 500;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** Input that does not meet the rules (400 or 422). */
export class ValidationError extends PledgeError {
  constructor(code: string, message: string, details?: ErrorDetails, status = 400) {
    super(code, message, { status, details });
  }
}

/** No credentials, or credentials that match nothing (401). */
export class AuthenticationError extends PledgeError {
  constructor(code: string, message: string) {
    super(code, message, { status: 401 });
  }
}

/** Valid credentials without the right (403). */
export class ForbiddenError extends PledgeError {
  constructor(code: string, message: string, details?: ErrorDetails) {
    super(code, message, { status: 403, details });
  }
}

/** Something named in the request does not exist (404). */
export class NotFoundError extends PledgeError {
  constructor(code: string, message: string, details?: ErrorDetails) {
    super(code, message, { status: 404, details });
  }
}

/** A state conflict, such as a duplicate (409). */
export class ConflictError extends PledgeError {
  constructor(code: string, message: string, details?: ErrorDetails) {
    super(code, message, { status: 409, details });
  }
}

/** Configuration that cannot run; every problem listed (exit at boot). */
export class ConfigError extends PledgeError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super('config.invalid', `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`, {
      status: 500,
      expose: false,
    });
    this.problems = problems;
  }
}

/**
 * How long a client is asked to wait after `database.unavailable`. Short: most faults are a restart
 * or a failover that heals within seconds, and a retry costs the server at most one bounded wait.
 */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

/**
 * The database cannot be used right now (503 `database.unavailable`): unreachable, a connection lost
 * in the middle of the request, a statement or connection timeout, too many connections; on SQLite a
 * lock not released in time, an I/O error or a full disk. Nothing was acknowledged, so the request
 * may be retried. Which driver errors count is decided in `platform/db/dialects/unavailable.ts`.
 */
export class DatabaseUnavailableError extends PledgeError {
  constructor(options: { cause?: unknown } = {}) {
    super(
      'database.unavailable',
      `the database is unavailable at the moment; retry in ${DATABASE_RETRY_AFTER_SECONDS} seconds`,
      { status: 503, expose: true, cause: options.cause, retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS },
    );
  }
}

/**
 * The page size of a list: `limit` when given, else `fallback`; throws a ValidationError `code`
 * (e.g. `jobs.limit_invalid`) for a limit that is not a whole number from 1 to `max`.
 */
export function pageLimitOrThrow(
  code: string,
  limit: number | undefined,
  max: number,
  fallback: number,
): number {
  const n = limit ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ValidationError(code, `limit must be a whole number from 1 to ${max}, got ${n}`, { limit: n });
  }
  return n;
}
