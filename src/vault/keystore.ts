/**
 * The key store lives apart from the records: a file of its own with SQLite (keys.db), a schema of
 * its own with PostgreSQL (pledge_keystore by default). A copy of pledge.db, or a dump of the main
 * schema alone, therefore carries no key that opens its records, which is what makes erasure by key
 * destruction reach backups. A dump of the whole PostgreSQL database holds both schemas: dump them
 * apart (docs/vault.md), and keep the key store's backups no longer than your erasure deadline.
 *
 * `PLEDGE_KEYSTORE_URL` puts the key store in a backup unit of its own: another PostgreSQL database,
 * or a SQLite file at another path (another disk, another volume), so that no backup of the data
 * alone, however it is taken, can undo a crypto-erasure. {@link sharedBackupUnits} says at start when
 * keys and data still share one.
 */
import path from 'node:path';
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
  /** PLEDGE_KEYSTORE_URL: a PostgreSQL URL or a SQLite file path; absent, beside the data. */
  keystoreUrl?: string | undefined;
  dataDir: string;
  /** PostgreSQL schema (default pledge_keystore); tests give each run its own. */
  schema?: string;
  /** PostgreSQL: how long to wait on the server (as for the main database). */
  timeouts?: DatabaseTimeouts | undefined;
}

/** Opens (creating and migrating when needed) the key store. */
export async function openKeystore(options: OpenKeystoreOptions): Promise<Database> {
  const own = options.keystoreUrl;
  const database =
    own !== undefined
      ? isPostgresUrl(own)
        ? await openDatabase({
            databaseUrl: own,
            dataDir: options.dataDir,
            schema: options.schema ?? KEYSTORE_PG_SCHEMA,
            createSchema: true,
            timeouts: options.timeouts,
          })
        : await openDatabase({
            dataDir: path.dirname(path.resolve(own)),
            sqliteFile: path.basename(own),
            checkpointInBackground: false,
          })
      : options.databaseUrl !== undefined
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

/** Whether PLEDGE_KEYSTORE_URL names a PostgreSQL database (otherwise it is a SQLite file path). */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/** Where the data and the keys are, as {@link sharedBackupUnits} compares them. */
export interface BackupUnitsOptions {
  databaseUrl: string | undefined;
  keystoreUrl: string | undefined;
  dataDir: string;
  /** PLEDGE_KEYS is set: the KEKs are not in the data directory. */
  keysFromEnv: boolean;
}

/**
 * What shares a backup unit with the data (no key material, only places): the key store (the same
 * PostgreSQL database, or a SQLite file in the data directory) and the key file (in the data
 * directory beside a SQLite database). Empty when keys and data are apart.
 */
export function sharedBackupUnits(options: BackupUnitsOptions): string[] {
  const shared: string[] = [];
  const dataDir = path.resolve(options.dataDir);
  const inDataDir = (file: string) => path.dirname(path.resolve(file)) === dataDir;
  const own = options.keystoreUrl;
  if (own === undefined) {
    shared.push(
      options.databaseUrl === undefined
        ? `the key store (${path.join(dataDir, KEYSTORE_SQLITE_FILE)}) is in the data directory`
        : `the key store (schema ${KEYSTORE_PG_SCHEMA}) is in the data's PostgreSQL database`,
    );
  } else if (
    isPostgresUrl(own) ? own === options.databaseUrl : options.databaseUrl === undefined && inDataDir(own)
  ) {
    shared.push('PLEDGE_KEYSTORE_URL names the place the data is in');
  }
  const keyFileApart = path.resolve(keyFileDirOf(options)) !== dataDir;
  if (!options.keysFromEnv && options.databaseUrl === undefined && !keyFileApart) {
    shared.push('the key file is in the data directory');
  }
  return shared;
}

/**
 * The folder of the key file: beside the key store when PLEDGE_KEYSTORE_URL names a SQLite file (the
 * keys' own backup unit), else the data directory.
 */
export function keyFileDirOf(config: { dataDir: string; keystoreUrl: string | undefined }): string {
  const own = config.keystoreUrl;
  return own !== undefined && !isPostgresUrl(own) ? path.dirname(path.resolve(own)) : config.dataDir;
}
