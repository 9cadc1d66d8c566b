/**
 * The pool handed to Kysely on PostgreSQL: pg's Pool, made safe against a server that goes away or
 * goes silent. pg-pool listens for errors only on idle clients; a client's socket that dies while it
 * is checked out emits an 'error' nobody hears, and an unheard 'error' event ends the process. Here
 * every client is listened to for its whole life, every statement has a client-side bound besides
 * the server's statement_timeout (a silent server cancels nothing), and a client that failed or
 * timed out is destroyed on release instead of going back to the pool. Failures that mean "the
 * database is unavailable" leave as {@link DatabaseUnavailableError}.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import type { Pool, PoolClient, PoolConfig, QueryConfig } from 'pg';
import { DatabaseUnavailableError } from '../../errors.js';
import { isPostgresUnavailable, leavesPostgresConnectionUsable } from './unavailable.js';

/** How long Pledge waits on PostgreSQL. */
export interface DatabaseTimeouts {
  /** The server's statement_timeout; the client gives up {@link CLIENT_GRACE_MS} later. */
  statementTimeoutMs: number;
  /** Waiting for a connection: a new one to open, or a busy pool to hand one over. */
  connectTimeoutMs: number;
}

/**
 * Five seconds each: far above what any statement Pledge issues needs on a healthy server (batched
 * work keeps each statement small), and short enough that a client gets its 503 well before the
 * 30 to 60 s after which load balancers and proxies give up on their own.
 */
export const DEFAULT_DATABASE_TIMEOUTS: Readonly<DatabaseTimeouts> = Object.freeze({
  statementTimeoutMs: 5_000,
  connectTimeoutMs: 5_000,
});

/**
 * How much longer than statement_timeout the client waits for an answer. On a live server the
 * server cancels first (57014) and the connection stays usable; only a server that cannot answer at
 * all trips the client's bound, and that connection is then discarded.
 */
export const CLIENT_GRACE_MS = 1_000;

/**
 * A session left idle inside a transaction (its client vanished mid-transaction in a partition) is
 * ended by the server after this long, so the row locks it held do not block other instances until
 * the server's TCP keepalive notices. Pledge never waits on anything but the database inside a
 * transaction, so a live session never comes near it.
 */
const IDLE_IN_TRANSACTION_MS = 60_000;

/** TCP keepalive probes start after this much silence; the probe interval and count are the OS's. */
export const KEEPALIVE_DELAY_MS = 10_000;

/** The pg settings every pooled connection is opened with. */
export function boundedPoolConfig(timeouts: DatabaseTimeouts): PoolConfig {
  return {
    statement_timeout: timeouts.statementTimeoutMs,
    connectionTimeoutMillis: timeouts.connectTimeoutMs,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  };
}

const unbounded = new AsyncLocalStorage<true>();

/**
 * Runs `work` with no statement timeout on the connections it uses (server- or client-side): for
 * schema changes, where an index build or a wait for another instance's migration may rightly take
 * minutes. The connections it touched are closed when released, so a session without a timeout
 * never returns to the pool. TCP keepalive still notices a dead server.
 */
export function withoutStatementTimeout<T>(work: () => Promise<T>): Promise<T> {
  return unbounded.run(true, work);
}

/** pg's Pool behind Kysely's PostgresPool interface, with the guarantees described above. */
export class BoundedPool implements PostgresPool {
  readonly #pool: Pool;
  readonly #readTimeoutMs: number;
  readonly #clients = new WeakMap<PoolClient, BoundedClient>();

  constructor(pool: Pool, timeouts: DatabaseTimeouts) {
    this.#pool = pool;
    this.#readTimeoutMs = timeouts.statementTimeoutMs + CLIENT_GRACE_MS;
    // 'connect' is emitted for each new client before it is first handed out, so no client is ever
    // without an 'error' listener, idle or checked out.
    pool.on('connect', (client) => {
      const bounded = new BoundedClient(client, this.#readTimeoutMs);
      this.#clients.set(client, bounded);
      client.on('error', () => bounded.markBroken());
    });
    // An idle client that dies has already been removed by pg-pool; the next checkout connects
    // afresh and reports there if the server is still away.
    pool.on('error', () => {});
  }

  /** Checks out a connection; rejects with DatabaseUnavailableError when none comes in time. */
  async connect(): Promise<PostgresPoolClient> {
    let client: PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw isPostgresUnavailable(err) ? new DatabaseUnavailableError({ cause: err }) : err;
    }
    let bounded = this.#clients.get(client);
    if (bounded === undefined) {
      // Not seen connecting (cannot happen with pg-pool 3); wrap it now rather than run unguarded.
      bounded = new BoundedClient(client, this.#readTimeoutMs);
      this.#clients.set(client, bounded);
      const b = bounded;
      client.on('error', () => b.markBroken());
    }
    return bounded;
  }

  /** Closes every connection. */
  end(): Promise<void> {
    return this.#pool.end();
  }
}

/** One pooled connection as Kysely uses it. */
class BoundedClient implements PostgresPoolClient {
  readonly #client: PoolClient;
  readonly #readTimeoutMs: number;
  /** Failed in a way that leaves the connection dead or in an unknown state. */
  #broken = false;
  /** Had its statement timeout turned off ({@link withoutStatementTimeout}). */
  #unbounded = false;

  constructor(client: PoolClient, readTimeoutMs: number) {
    this.#client = client;
    this.#readTimeoutMs = readTimeoutMs;
  }

  markBroken(): void {
    this.#broken = true;
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(
    sqlOrCursor: string | PostgresCursor<R>,
    parameters?: ReadonlyArray<unknown>,
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof sqlOrCursor !== 'string') {
      // Streaming through a cursor (not configured by Pledge today) keeps pg's own behaviour.
      return (this.#client as unknown as { query(c: PostgresCursor<R>): PostgresCursor<R> }).query(
        sqlOrCursor,
      );
    }
    return this.#run<R>(sqlOrCursor, parameters ?? []);
  }

  async #run<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
    if (this.#broken) {
      // Typically the rollback after a failed statement: answered at once instead of queueing
      // behind a statement that will never finish.
      throw new DatabaseUnavailableError({
        cause: new Error('the connection failed earlier in this transaction and was discarded'),
      });
    }
    const bounded = unbounded.getStore() !== true;
    if (!bounded && !this.#unbounded) {
      this.#unbounded = true;
      await this.#send('set statement_timeout = 0', [], false);
    }
    return this.#send<R>(sql, parameters, bounded);
  }

  async #send<R>(
    sql: string,
    parameters: ReadonlyArray<unknown>,
    bounded: boolean,
  ): Promise<PostgresQueryResult<R>> {
    // query_timeout is pg's client-side bound (pg 8); @types/pg leaves it out of QueryConfig.
    const config = {
      text: sql,
      values: [...parameters],
      ...(bounded ? { query_timeout: this.#readTimeoutMs } : {}),
    } as QueryConfig;
    try {
      return (await this.#client.query(config)) as unknown as PostgresQueryResult<R>;
    } catch (err) {
      // A read timeout leaves the statement running on a connection that still looks usable; pg
      // would queue the next statement behind it. Anything but a statement's own error breaks it.
      if (!leavesPostgresConnectionUsable(err)) this.#broken = true;
      throw isPostgresUnavailable(err) ? new DatabaseUnavailableError({ cause: err }) : err;
    }
  }

  release(destroy?: boolean): void {
    // pg-pool closes a client released with a truthy argument instead of keeping it idle.
    const discard = destroy === true || this.#broken || this.#unbounded;
    this.#client.release(discard ? true : undefined);
  }
}
