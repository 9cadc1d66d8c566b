/** The daily aggregates of beacon events (analytics.tables.ts). */
import type { Kysely, Migration } from 'kysely';

/** Migrations of the analytics aggregates (main database), keyed by ordered name. */
export const analyticsMigrations: Record<string, Migration> = {
  '2026_12_15_010_beacon_daily': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('beacon_daily')
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('site', 'text', (c) => c.notNull())
        .addColumn('dimension', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('views', 'integer', (c) => c.notNull())
        .addColumn('visitors', 'integer', (c) => c.notNull())
        // The API reads a purpose's (and site's) days in order: the key serves it as a range scan.
        .addPrimaryKeyConstraint('beacon_daily_pk', ['purpose', 'site', 'day', 'dimension', 'value'])
        .execute();
      // The roll-up replaces one day's rows at a time.
      await db.schema.createIndex('beacon_daily_day_idx').on('beacon_daily').column('day').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('beacon_daily').execute();
    },
  },
};
