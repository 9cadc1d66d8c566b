/** The share capability's table: the record of bulk exports (share.tables.ts). */
import type { Kysely, Migration } from 'kysely';

/** Migrations of the share capability, keyed by ordered name. */
export const shareMigrations: Record<string, Migration> = {
  '2026_12_15_001_share_exports': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('share_exports')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('recipient', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('categories', 'text', (c) => c.notNull())
        .addColumn('fields', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('subject_count', 'integer', (c) => c.notNull())
        .addColumn('refused_count', 'integer', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema
        .createIndex('share_exports_recipient_idx')
        .on('share_exports')
        .columns(['recipient', 'started_at'])
        .execute();
    },
  },
};
