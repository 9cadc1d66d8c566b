/**
 * The PostgreSQL engine of the connectors: a small pg pool of its own per dataset (the company's
 * database, not Pledge's) and the live schema of the URL's current schema (its search_path).
 */
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Dataset } from '../../manifest/dataset.schema.js';
import { liveTablesFrom, SqlConnector, type EngineAdapter } from './connector.js';

/** Connections per connected PostgreSQL dataset: a request touches one subject at a time. */
const POOL_SIZE = 4;

/** The PostgreSQL adapter for `url`. */
export function postgresAdapter(url: string): EngineAdapter {
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: POOL_SIZE }) }),
  });
  return {
    db,
    sqlStateOf: (err) =>
      typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
        ? ((err as { code: string }).code.match(/^[0-9A-Z]{5}$/)?.[0] ?? undefined)
        : undefined,
    async liveTables() {
      const columns = await sql<{ table_name: string; column_name: string; data_type: string }>`
        select table_name, column_name, data_type from information_schema.columns
        where table_schema = current_schema() order by table_name, ordinal_position`.execute(db);
      const keys = await sql<{
        table_name: string;
        column_name: string;
        kind: string;
        ref_table: string | null;
        ref_column: string | null;
      }>`
        select cl.relname as table_name, a.attname as column_name, c.contype as kind,
               rcl.relname as ref_table, ra.attname as ref_column
        from pg_constraint c
        join pg_class cl on cl.oid = c.conrelid
        join pg_namespace n on n.oid = cl.relnamespace and n.nspname = current_schema()
        cross join lateral unnest(c.conkey) with ordinality as k(attnum, pos)
        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum
        left join pg_class rcl on rcl.oid = c.confrelid
        left join pg_attribute ra on ra.attrelid = c.confrelid and ra.attnum = c.confkey[k.pos]
        where c.contype in ('p', 'f')
        order by cl.relname, c.conname, k.pos`.execute(db);
      return liveTablesFrom(columns.rows, keys.rows, (k) => k.kind === 'p');
    },
  };
}

/** A connector for the PostgreSQL dataset `dataset` (manifest position `index`) at `url`. */
export function postgresConnector(dataset: Dataset, index: number, url: string): SqlConnector {
  return new SqlConnector(dataset, index, postgresAdapter(url));
}
