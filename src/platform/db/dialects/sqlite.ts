/**
 * SQLite quirks: opening the embedded database file with the settings Pledge relies on, and the
 * DDL that differs from PostgreSQL.
 */
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  SqliteAdapter,
  SqliteDialect,
  type ColumnDefinitionBuilder,
  type DialectAdapter,
  type SqliteDatabase,
  type SqliteStatement,
} from 'kysely';
import { PledgeError } from '../../errors.js';
import { secureSqliteFileSync } from '../data-files.js';
import { BackgroundCheckpoints } from './sqlite-checkpointer.js';

/** Bytes per page of a new database file. */
const PAGE_SIZE = 8_192;
/** The page cache of each connection, in KiB. */
const CACHE_KIB = 32_768;

/** The name of the database file inside the data directory. */
export const SQLITE_FILE_NAME = 'pledge.db';

/** An opened SQLite database, ready to hand to Kysely. */
export interface SqliteDialectResult {
  dialect: SqliteDialect;
  /** The absolute path of the database file. */
  file: string;
  /** The background checkpoints, when asked for (close them before the database). */
  checkpoints: BackgroundCheckpoints | undefined;
}

/** How to open the file. */
export interface SqliteOpenOptions {
  /** The file's name in the data directory (default pledge.db). */
  fileName?: string;
  /**
   * Checkpoint the write-ahead log on a worker thread instead of inside commits (default true); the
   * key store, written a few times per subject, does without the extra thread.
   */
  checkpointInBackground?: boolean;
}

/**
 * Opens (creating when missing) `${dataDir}/pledge.db` and applies the connection settings. Throws a
 * `db.open_failed` PledgeError naming the file when it cannot be opened.
 */
export function createSqliteDialect(dataDir: string, options: SqliteOpenOptions = {}): SqliteDialectResult {
  const file = path.join(path.resolve(dataDir), options.fileName ?? SQLITE_FILE_NAME);
  let database: BetterSqlite3.Database;
  try {
    // The directory holds personal data and key material: 0700 and the files 0600, whether or not
    // the directory existed.
    secureSqliteFileSync(file, path.dirname(file));
    database = new BetterSqlite3(file);
  } catch (err) {
    throw new PledgeError(
      'db.open_failed',
      `cannot open the SQLite database ${file}: ${(err as Error).message}; check that the data directory ` +
        `(--data-dir or PLEDGE_DATA_DIR) is writable by this user`,
      { details: { file }, cause: err },
    );
  }
  // 8 KiB pages (PostgreSQL's size), set before the file has any: an existing database keeps the
  // size it was made with. A commit costs about the same per page it writes to the log whatever the
  // page's size, and the rows of a large write fill half as many 8 KiB pages as 4 KiB ones: batched
  // encrypted writes ran ~15 % faster. 16 KiB was faster still for batches but slowed the small
  // commits of single requests, which dirty as many (now larger) index pages (docs/benchmarks.md).
  database.pragma(`page_size = ${PAGE_SIZE}`);
  // WAL lets readers run while one writer commits, which is what a server with concurrent requests needs.
  database.pragma('journal_mode = WAL');
  // FULL rather than WAL's usual NORMAL: with NORMAL a commit that was already acknowledged can be
  // lost on power failure (the WAL is not fsynced at each commit). Pledge answers only after commit
  // (invariant 5), so every acknowledged write must survive power loss; issue 3 measures the cost.
  database.pragma('synchronous = FULL');
  // SQLite leaves foreign keys unenforced unless asked, per connection.
  database.pragma('foreign_keys = ON');
  // Another process (the CLI while a server runs) may hold the write lock briefly; wait instead of
  // failing with SQLITE_BUSY at once.
  database.pragma('busy_timeout = 5000');
  // 32 MiB of page cache instead of 2 MiB: the index pages a stream of writes touches stay in
  // memory instead of being read back from the file for every insert. A fixed size, so memory stays
  // flat however large the database grows.
  database.pragma(`cache_size = -${CACHE_KIB}`);
  const checkpoints =
    options.checkpointInBackground === false ? undefined : new BackgroundCheckpoints(database, file);
  return {
    dialect: new PledgeSqliteDialect({ database: withStatementCache(database, checkpoints) }),
    file,
    checkpoints,
  };
}

/**
 * SQLite does run DDL inside transactions, but Kysely's adapter says it does not, which would make its
 * Migrator run each migration without one and leave a half-applied migration behind on failure.
 * Saying yes makes a run all-or-nothing, as on PostgreSQL. The cost: `PRAGMA foreign_keys` cannot be
 * changed inside a transaction, so a future table rebuild uses `PRAGMA defer_foreign_keys = ON`.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class PledgeSqliteDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

/**
 * Makes `column` an auto-assigned integer primary key. AUTOINCREMENT rather than the bare rowid
 * alias so an id, once given out, is never handed to another row even after deletes: records name
 * rows by id.
 */
export function sqliteIdColumn(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder {
  return column.primaryKey().autoIncrement();
}

/** Prepared statements kept per connection; enough for every query shape Pledge issues. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely's SQLite driver prepares every query anew; preparing was an eighth of the server's time
 * under load. Handing it a database whose `prepare` returns a cached statement for SQL it has seen
 * is safe because better-sqlite3 runs each statement to completion synchronously, so one statement
 * object is never in use twice at once. Kysely ends every transaction it opened with `commit`, which
 * is also where the background checkpoints learn that the log has grown.
 */
function withStatementCache(
  database: BetterSqlite3.Database,
  checkpoints: BackgroundCheckpoints | undefined,
): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  const commit = checkpoints && database.prepare('commit');
  const commitAndTell: SqliteStatement | undefined = commit && {
    reader: false,
    all: (parameters) => commit.all(parameters),
    iterate: (parameters) => commit.iterate(parameters),
    run: (parameters) => {
      const result = commit.run(parameters);
      checkpoints?.committed();
      return result;
    },
  };
  return {
    close: () => {
      cache.clear();
      database.close();
    },
    prepare: (sql: string) => {
      if (sql === 'commit' && commitAndTell) return commitAndTell;
      let statement = cache.get(sql);
      if (statement) {
        // Most recently used last, so the first entry is the one to evict.
        cache.delete(sql);
      } else {
        statement = database.prepare(sql);
        if (cache.size >= STATEMENT_CACHE_SIZE) {
          const oldest = cache.keys().next().value;
          if (oldest !== undefined) cache.delete(oldest);
        }
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}
