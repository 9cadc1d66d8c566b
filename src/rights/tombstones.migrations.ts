/** The erasure tombstones' table (tombstones.tables.ts). */
import type { Kysely, Migration } from 'kysely';

/** Migrations of erasure tombstones (main database), keyed by ordered name. */
export const tombstoneMigrations: Record<string, Migration> = {
  '2026_12_20_100_erasure_tombstones': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('erasure_tombstones')
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('key_version', 'integer', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('erased_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('erasure_tombstones_pk', ['hash', 'key_version'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('erasure_tombstones').execute();
    },
  },
};
