/**
 * A database's schema as comparable text: tables, columns, indexes, constraints and triggers, with
 * the test's own schema name left out, so two databases made different ways can be compared (a
 * database created by an earlier Pledge and migrated, against one created fresh).
 */
import { sql } from 'kysely';
import type { Database } from '../../src/platform/db/database.js';

/** One line per object of the schema, sorted. */
export async function describeSchema(database: Pick<Database, 'kysely' | 'dialect'>): Promise<string[]> {
  const db = database.kysely;
  switch (database.dialect) {
    case 'sqlite': {
      const { rows } = await sql<{ type: string; name: string; sql: string | null }>`
        select type, name, sql from sqlite_master where name not like 'sqlite_%'`.execute(db);
      return rows.map((r) => `${r.type} ${r.name}: ${(r.sql ?? '').replace(/\s+/g, ' ')}`).sort();
    }
    case 'postgres': {
      const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s ?? '';
      const anon = (text: string) => text.split(`${schema}.`).join('');
      const columns = await sql<Record<string, string | null>>`
        select table_name, column_name, data_type, is_nullable, column_default
        from information_schema.columns where table_schema = current_schema()`.execute(db);
      const indexes = await sql<{ indexname: string; indexdef: string }>`
        select indexname, indexdef from pg_indexes where schemaname = current_schema()`.execute(db);
      // PostgreSQL 18 lists NOT NULL as constraints too; the columns' null= already says it, and
      // leaving them out keeps one fixture valid on every server version.
      const constraints = await sql<{ conname: string; def: string; tbl: string }>`
        select c.conname, pg_get_constraintdef(c.oid) as def, t.relname as tbl
        from pg_constraint c join pg_class t on t.oid = c.conrelid
        join pg_namespace n on n.oid = t.relnamespace
        where n.nspname = current_schema() and c.contype <> 'n'`.execute(db);
      const triggers = await sql<Record<string, string>>`
        select trigger_name, event_manipulation, event_object_table, action_statement
        from information_schema.triggers where trigger_schema = current_schema()`.execute(db);
      return [
        ...columns.rows.map(
          (c) =>
            `column ${c.table_name}.${c.column_name}: ${c.data_type} null=${c.is_nullable} default=${anon(c.column_default ?? '')}`,
        ),
        ...indexes.rows.map((i) => `index ${i.indexname}: ${anon(i.indexdef)}`),
        ...constraints.rows.map((c) => `constraint ${c.tbl}.${c.conname}: ${anon(c.def)}`),
        ...triggers.rows.map(
          (t) =>
            `trigger ${t.event_object_table}.${t.trigger_name} ${t.event_manipulation}: ${anon(t.action_statement ?? '')}`,
        ),
      ].sort();
    }
  }
}
