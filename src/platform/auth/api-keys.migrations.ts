/** The API keys table. Names sort in the order they must run across all capabilities. */
import type { Kysely, Migration } from 'kysely';

/** Migrations of API keys, keyed by ordered name. */
export const apiKeyMigrations: Record<string, Migration> = {
  '2026_11_29_002_api_keys': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('api_keys').execute();
    },
  },
  // Keys are made for a declared system; a key made before has none and keeps management scopes only.
  '2026_12_12_001_api_key_systems': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('api_keys').addColumn('system', 'text').execute();
      await db.schema.alterTable('api_keys').addColumn('holder', 'text').execute();
      await db.schema.alterTable('api_keys').addColumn('expires_at', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('api_keys').dropColumn('expires_at').execute();
      await db.schema.alterTable('api_keys').dropColumn('holder').execute();
      await db.schema.alterTable('api_keys').dropColumn('system').execute();
    },
  },
};
