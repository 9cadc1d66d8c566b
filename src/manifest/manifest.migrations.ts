/** The manifest capability's tables. Names sort in the order they must run across all capabilities. */
import type { Kysely, Migration } from 'kysely';
import { idColumn } from '../platform/db/schema.js';

/** Migrations of the manifest capability, keyed by ordered name. */
export const manifestMigrations: Record<string, Migration> = {
  '2026_11_29_001_manifest_versions': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('manifest_versions')
        .addColumn('id', 'integer', idColumn(db))
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('effective', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('first_seen_at', 'text', (c) => c.notNull())
        .addColumn('in_force_from', 'text', (c) => c.notNull())
        .execute();
      // "Which manifest is in force" is asked at every boot and by every record written.
      await db.schema
        .createIndex('manifest_versions_in_force_from_idx')
        .on('manifest_versions')
        .columns(['in_force_from', 'id'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('manifest_versions').execute();
    },
  },
};
