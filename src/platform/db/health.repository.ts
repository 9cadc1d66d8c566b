/** The database's health, for /healthz. */
import { sql, type Kysely } from 'kysely';

/** Asks the database to answer a trivial query; resolves with the round trip in milliseconds. */
export async function pingDatabase(db: Kysely<object>): Promise<number> {
  const started = performance.now();
  await sql`select 1`.execute(db);
  return performance.now() - started;
}
