/**
 * Throwaway PostgreSQL databases for tests and benches that run real `pledge serve` processes. No
 * side effects at import, so a bench can use it without the test runner's hooks.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { getTestDatabaseUrlOrThrow } from './databases.js';

/** A database made by {@link createPostgresDatabase}. */
export interface PostgresDatabase {
  /** Its URL: the server's URL with the database's name as its path. */
  url: string;
  /** Drops it, even with sessions still open. */
  drop(): Promise<void>;
}

/**
 * A PostgreSQL database of its own, named `prefix_<random>` on the server at `serverUrl` (not a
 * schema: the server keeps its key store in a schema of its own, pledge_keystore, which a
 * search_path in the URL would override). Several servers can share it.
 */
export async function createPostgresDatabase(
  prefix: string,
  serverUrl: string = getTestDatabaseUrlOrThrow(),
): Promise<PostgresDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        // FORCE: a killed server's sessions may not have been reaped yet.
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}
