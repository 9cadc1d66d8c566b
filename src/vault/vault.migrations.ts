/** The vault's tables: subjects, their blind index, and encrypted records. */
import type { Kysely, Migration } from 'kysely';

/** Migrations of the vault (main database), keyed by ordered name. */
export const vaultMigrations: Record<string, Migration> = {
  '2026_11_29_003_subjects_and_records': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('subjects')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('jurisdiction', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('erased_at', 'text')
        .execute();
      await db.schema
        .createTable('subject_identifiers')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('subject_id', 'text', (c) => c.notNull().references('subjects.id'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('subject_identifiers_pk', ['kind', 'hash'])
        .execute();
      await db.schema
        .createIndex('subject_identifiers_subject_idx')
        .on('subject_identifiers')
        .column('subject_id')
        .execute();
      await db.schema
        .createTable('records')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('subject_id', 'text', (c) => c.notNull().references('subjects.id'))
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('categories', 'text', (c) => c.notNull())
        .addColumn('purposes', 'text', (c) => c.notNull())
        .addColumn('policy_version_id', 'integer', (c) => c.notNull().references('manifest_versions.id'))
        .addColumn('collected_at', 'text', (c) => c.notNull())
        .addColumn('retain_until', 'text', (c) => c.notNull())
        .addColumn('key_version', 'integer', (c) => c.notNull())
        .addColumn('fields', 'text', (c) => c.notNull())
        .execute();
      // The use gate reads a subject's records in id order (ids are UUIDv7: the order they were written);
      // the sweeper scans by deadline.
      await db.schema
        .createIndex('records_subject_idx')
        .on('records')
        .columns(['subject_id', 'id'])
        .execute();
      await db.schema.createIndex('records_retain_until_idx').on('records').column('retain_until').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('records').execute();
      await db.schema.dropTable('subject_identifiers').execute();
      await db.schema.dropTable('subjects').execute();
    },
  },
};

/** Migrations of the key store (a database of its own), keyed by ordered name. */
export const keystoreMigrations: Record<string, Migration> = {
  '2026_11_29_001_data_keys': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('data_keys')
        .addColumn('subject_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('wrapped', 'text', (c) => c.notNull())
        .addColumn('kek_version', 'integer', (c) => c.notNull())
        .addColumn('encryptions', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('data_keys_pk', ['subject_id', 'version'])
        .execute();
      // Rotation rewraps by KEK version and retirement counts what still uses one.
      await db.schema.createIndex('data_keys_kek_idx').on('data_keys').column('kek_version').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('data_keys').execute();
    },
  },
};
