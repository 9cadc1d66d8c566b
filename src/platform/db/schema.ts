/**
 * Helpers for migrations, so each migration is written once and runs on both engines: only the bits
 * that differ are looked up here, and they live in `dialects/`.
 */
import { PostgresIntrospector, SqliteIntrospector, type ColumnDefinitionBuilder, type Kysely } from 'kysely';
import { PledgeError } from '../errors.js';
import type { DialectName } from './database.js';
import { postgresIdColumn } from './dialects/postgres.js';
import { sqliteIdColumn } from './dialects/sqlite.js';

/**
 * Which engine `db` (or a transaction of it) talks to. A migration receives only a Kysely instance,
 * and its introspector is the public thing that tells the engines apart.
 */
export function dialectOf<DB>(db: Kysely<DB>): DialectName {
  const introspector = db.introspection;
  if (introspector instanceof PostgresIntrospector) return 'postgres';
  if (introspector instanceof SqliteIntrospector) return 'sqlite';
  throw new PledgeError('db.dialect_unsupported', 'Pledge runs on SQLite and PostgreSQL only');
}

/**
 * The column builder for an auto-assigned integer primary key on `db`'s engine; use it as
 * `.addColumn('id', 'integer', idColumn(db))`.
 */
export function idColumn<DB>(db: Kysely<DB>): (column: ColumnDefinitionBuilder) => ColumnDefinitionBuilder {
  const dialect = dialectOf(db);
  switch (dialect) {
    case 'sqlite':
      return sqliteIdColumn;
    case 'postgres':
      return postgresIdColumn;
  }
}
