/**
 * The MySQL and MariaDB engine of the connectors: a mysql2 pool of its own per dataset and the live
 * schema of the URL's database. MySQL's quirks stay here: its information_schema names the
 * referenced table of a foreign key in key_column_usage, and its driver errors carry the SQLSTATE
 * in `sqlState` (23000 for a foreign-key or duplicate-key failure alike).
 */
import { Kysely, MysqlDialect, sql } from 'kysely';
import { createPool } from 'mysql2';
import type { Dataset } from '../../manifest/dataset.schema.js';
import { liveTablesFrom, SqlConnector, type EngineAdapter } from './connector.js';

const POOL_SIZE = 4;

/** The MySQL/MariaDB adapter for `url` (`mysql://user:password@host:port/database`). */
export function mysqlAdapter(url: string): EngineAdapter {
  const u = new URL(url);
  // mysql2 reads only mysql://; mariadb:// is the same protocol.
  if (u.protocol === 'mariadb:') u.protocol = 'mysql:';
  const db = new Kysely<unknown>({
    dialect: new MysqlDialect({
      pool: createPool({
        uri: u.href,
        connectionLimit: POOL_SIZE,
        supportBigNumbers: true,
        bigNumberStrings: true,
      }),
    }),
  });
  return {
    db,
    sqlStateOf: (err) =>
      typeof err === 'object' && err !== null && typeof (err as { sqlState?: unknown }).sqlState === 'string'
        ? (err as { sqlState: string }).sqlState
        : undefined,
    async liveTables() {
      const columns = await sql<{ table_name: string; column_name: string; data_type: string }>`
        select table_name as table_name, column_name as column_name, data_type as data_type
        from information_schema.columns where table_schema = database()
        order by table_name, ordinal_position`.execute(db);
      const keys = await sql<{
        table_name: string;
        column_name: string;
        constraint_name: string;
        ref_table: string | null;
        ref_column: string | null;
      }>`
        select k.table_name as table_name, k.column_name as column_name, k.constraint_name as constraint_name,
               k.referenced_table_name as ref_table, k.referenced_column_name as ref_column
        from information_schema.key_column_usage k
        where k.table_schema = database()
        order by k.table_name, k.constraint_name, k.ordinal_position`.execute(db);
      return liveTablesFrom(columns.rows, keys.rows, (k) => k.constraint_name === 'PRIMARY');
    },
  };
}

/** A connector for the MySQL/MariaDB dataset `dataset` (manifest position `index`) at `url`. */
export function mysqlConnector(dataset: Dataset, index: number, url: string): SqlConnector {
  return new SqlConnector(dataset, index, mysqlAdapter(url));
}
