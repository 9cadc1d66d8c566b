/** The beacons' tables: raw beacon events and the daily salts of cookieless counts. */
import type { Kysely, Migration } from 'kysely';

/** Migrations of the beacons (main database), keyed by ordered name. */
export const beaconMigrations: Record<string, Migration> = {
  '2026_12_15_001_beacons': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('beacon_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('site', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('visitor', 'text', (c) => c.notNull())
        .addColumn('cookieless', 'integer', (c) => c.notNull())
        .addColumn('campaign_id', 'text')
        .execute();
      // The roll-up reads a day's events; expiry deletes by time (ids are UUIDv7, so id order is
      // time order within a day).
      await db.schema
        .createIndex('beacon_events_day_idx')
        .on('beacon_events')
        .columns(['day', 'id'])
        .execute();
      await db.schema.createIndex('beacon_events_at_idx').on('beacon_events').column('at').execute();
      await db.schema
        .createTable('beacon_salts')
        .addColumn('day', 'text', (c) => c.primaryKey())
        .addColumn('salt', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('beacon_salts').execute();
      await db.schema.dropTable('beacon_events').execute();
    },
  },
};
