/**
 * Opens the database: the embedded SQLite file by default, PostgreSQL when a URL is given. The
 * capabilities see only a {@link Db} (the executor of a context, and transactions) and the engine's
 * name; the raw Kysely instance is for the platform (migrations, health) and tests.
 */
import { Kysely, sql } from 'kysely';
import { Db } from './db.js';
import { createPostgresDialect } from './dialects/postgres.js';
import { createSqliteDialect } from './dialects/sqlite.js';
import { listenPostgres, type ListenHandlers, type Listener } from './dialects/postgres-listen.js';
import { DEFAULT_DATABASE_TIMEOUTS, type DatabaseTimeouts } from './dialects/postgres-pool.js';

export type { DatabaseTimeouts, ListenHandlers, Listener };

/** The engines Pledge runs on. */
export type DialectName = 'sqlite' | 'postgres';

/** An open database. */
export interface Database {
  /** What repositories and services are given: executors of contexts, and transactions. */
  db: Db;
  /** The raw handle, over no known table: for migrations, health checks and tests. */
  kysely: Kysely<object>;
  dialect: DialectName;
  /** Where the data lives, for messages: the SQLite file, or PostgreSQL's host:port/database (no password). */
  location: string;
  /** Closes every connection; calling it again does nothing. */
  close(): Promise<void>;
  /**
   * The name of a notification channel for this database: on PostgreSQL the schema is part of it, so
   * two deployments (or two tests) in one database do not hear each other.
   */
  channel: (name: string) => string;
  /** PostgreSQL only: listens on a channel named by {@link Database.channel}. Closed with the database. */
  listen?: (channel: string, handlers: ListenHandlers) => Listener;
}

/** Where to find the database. */
export interface OpenDatabaseOptions {
  /** A PostgreSQL URL; absent means SQLite in `dataDir`. */
  databaseUrl?: string | undefined;
  /** The directory of the SQLite file `pledge.db` (created with mode 0700 when missing). */
  dataDir: string;
  /** PostgreSQL only: a schema to use through search_path (tests give each run its own). */
  schema?: string | undefined;
  /** PostgreSQL only: create `schema` when it does not exist (the key store's own schema). */
  createSchema?: boolean;
  /** SQLite only: the file's name in `dataDir` (default pledge.db; the key store uses keys.db). */
  sqliteFile?: string;
  /** SQLite only: checkpoint the write-ahead log on a worker thread (default true). */
  checkpointInBackground?: boolean;
  /** PostgreSQL only: how long to wait on the server (PLEDGE_DB_STATEMENT_TIMEOUT, PLEDGE_DB_CONNECT_TIMEOUT). */
  timeouts?: DatabaseTimeouts | undefined;
}

/**
 * Opens the database. With PostgreSQL it checks that the server answers and throws a PledgeError
 * `db.unreachable` naming host:port when it does not; with SQLite `db.open_failed` naming the file.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.databaseUrl !== undefined) {
    if (options.createSchema === true && options.schema !== undefined) {
      await createPostgresSchema(options.databaseUrl, options.schema);
    }
    const timeouts = options.timeouts ?? DEFAULT_DATABASE_TIMEOUTS;
    const { dialect, location } = await createPostgresDialect({
      databaseUrl: options.databaseUrl,
      schema: options.schema,
      timeouts,
    });
    const listeners = new Set<Listener>();
    const databaseUrl = options.databaseUrl;
    const suffix = options.schema ?? 'public';
    return wrap(new Kysely<object>({ dialect }), 'postgres', location, {
      channel: (name) => `${name}_${suffix}`.slice(0, 63),
      listen: (channel, handlers) => {
        const listener = listenPostgres(
          { databaseUrl, schema: options.schema, connectTimeoutMs: timeouts.connectTimeoutMs },
          channel,
          handlers,
        );
        listeners.add(listener);
        return {
          ready: listener.ready,
          close: async () => {
            listeners.delete(listener);
            await listener.close();
          },
        };
      },
      beforeClose: async () => {
        await Promise.all([...listeners].map((l) => l.close()));
      },
    });
  }
  const { dialect, file, checkpoints } = createSqliteDialect(options.dataDir, {
    ...(options.sqliteFile === undefined ? {} : { fileName: options.sqliteFile }),
    ...(options.checkpointInBackground === undefined
      ? {}
      : { checkpointInBackground: options.checkpointInBackground }),
  });
  return wrap(new Kysely<object>({ dialect }), 'sqlite', file, {
    channel: (name) => name,
    ...(checkpoints ? { beforeClose: () => checkpoints.close() } : {}),
  });
}

interface WrapExtras {
  channel: (name: string) => string;
  listen?: Database['listen'];
  beforeClose?: () => Promise<void>;
}

function wrap(kysely: Kysely<object>, dialect: DialectName, location: string, extras: WrapExtras): Database {
  let closing: Promise<void> | undefined;
  return {
    db: new Db(kysely, dialect),
    kysely,
    dialect,
    location,
    channel: extras.channel,
    ...(extras.listen ? { listen: extras.listen } : {}),
    // pg's Pool throws when ended twice; shutdown paths (signal handler and finally) may both call this.
    close: () =>
      (closing ??= (async () => {
        await extras.beforeClose?.();
        await kysely.destroy();
      })()),
  };
}

/**
 * Creates a PostgreSQL schema (if missing) over a connection of its own, before any connection with
 * that schema on its search_path exists: a backend that resolved its search_path while the schema
 * was missing may keep resolving it to nothing for a while.
 */
export async function createPostgresSchema(databaseUrl: string, schema: string): Promise<void> {
  const { dialect } = await createPostgresDialect({ databaseUrl });
  const db = new Kysely<object>({ dialect });
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } finally {
    await db.destroy();
  }
}
