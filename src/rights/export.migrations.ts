/** The export deliveries' tables (export.tables.ts). */
import type { Kysely, Migration } from 'kysely';
import { dialectOf } from '../platform/db/schema.js';

/** Migrations of export deliveries (main database), keyed by ordered name. */
export const exportMigrations: Record<string, Migration> = {
  '2026_12_20_110_export_deliveries': {
    async up(db: Kysely<unknown>) {
      const bytes = dialectOf(db) === 'postgres' ? 'bytea' : 'blob';
      await db.schema
        .createTable('export_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('subject_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('max_downloads', 'integer', (c) => c.notNull())
        .addColumn('downloads', 'integer', (c) => c.notNull())
        .addColumn('key_version', 'integer', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('deleted_at', 'text')
        .execute();
      await db.schema
        .createTable('export_chunks')
        .addColumn('delivery_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('data', bytes, (c) => c.notNull())
        .addPrimaryKeyConstraint('export_chunks_pk', ['delivery_id', 'seq'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('export_chunks').execute();
      await db.schema.dropTable('export_deliveries').execute();
    },
  },
};
