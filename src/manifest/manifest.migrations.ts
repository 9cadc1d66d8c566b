/** The manifest capability's tables. Names sort in the order they must run across all capabilities. */
import { sql, type Kysely, type Migration } from 'kysely';
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
  // A rollback moves a version's in_force_from, so the versions alone lose the order they were in
  // force in (and the processors' feed had no entry for a rollback). Rows written before: each
  // version came into force when first seen, and once more at its in_force_from when that differs
  // (the rollback that made it current, as far as it can still be told).
  '2026_12_17_102_manifest_activations': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('manifest_activations')
        .addColumn('id', 'integer', idColumn(db))
        .addColumn('manifest_version_id', 'integer', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('manifest_activations_at_idx')
        .on('manifest_activations')
        .columns(['at', 'id'])
        .execute();
      await sql`insert into manifest_activations (manifest_version_id, at)
        select id, at from (
          select id, first_seen_at as at from manifest_versions
          union all
          select id, in_force_from as at from manifest_versions where in_force_from <> first_seen_at
        ) as known
        order by at, id`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('manifest_activations').execute();
    },
  },
};
