/**
 * The key store lives apart from the records: a file of its own with SQLite (keys.db), a schema of
 * its own with PostgreSQL (pledge_keystore by default). A copy of pledge.db, or a dump of the main
 * schema alone, therefore carries no key that opens its records, which is what makes erasure by key
 * destruction reach backups. A dump of the whole PostgreSQL database holds both schemas: dump them
 * apart (docs/vault.md), and keep the key store's backups no longer than your erasure deadline.
 */
import type { DatabaseTimeouts } from '../platform/db/database.js';
import { openDatabase, type Database } from '../platform/db/database.js';
import { collectMigrations, migrateToLatest, type NamedMigration } from '../platform/db/migrations.js';
import { keystoreMigrations } from './vault.migrations.js';

/** The SQLite file of the key store, inside the data directory. */
export const KEYSTORE_SQLITE_FILE = 'keys.db';
/** The PostgreSQL schema of the key store. */
export const KEYSTORE_PG_SCHEMA = 'pledge_keystore';

/** The key store's migrations: the vault's own database, apart from the main one. */
export const KEYSTORE_MIGRATIONS: readonly NamedMigration[] = collectMigrations(keystoreMigrations);

/** Where the key store is. */
export interface OpenKeystoreOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  /** PostgreSQL schema (default pledge_keystore); tests give each run its own. */
  schema?: string;
  /** PostgreSQL: how long to wait on the server (as for the main database). */
  timeouts?: DatabaseTimeouts | undefined;
}

/** Opens (creating and migrating when needed) the key store. */
export async function openKeystore(options: OpenKeystoreOptions): Promise<Database> {
  const database =
    options.databaseUrl !== undefined
      ? await openDatabase({
          databaseUrl: options.databaseUrl,
          dataDir: options.dataDir,
          schema: options.schema ?? KEYSTORE_PG_SCHEMA,
          createSchema: true,
          timeouts: options.timeouts,
        })
      : await openDatabase({
          dataDir: options.dataDir,
          sqliteFile: KEYSTORE_SQLITE_FILE,
          checkpointInBackground: false,
        });
  try {
    await migrateToLatest(database, KEYSTORE_MIGRATIONS);
  } catch (err) {
    await database.close();
    throw err;
  }
  return database;
}
