/** The suppression list and soft-bounce counts: keyed hashes of addresses, never the addresses. */
import type { Kysely, Migration } from 'kysely';

/** Migrations of the suppression list, keyed by ordered name. */
export const suppressionMigrations: Record<string, Migration> = {
  '2026_11_29_007_suppressions': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('suppressions')
        // HMAC-SHA256(index key, "email:" + normalized address): the blind index of the vault.
        .addColumn('address_hash', 'text', (c) => c.notNull())
        // A marketing purpose (list), or "*" for every marketing message.
        .addColumn('list', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('suppressions_pk', ['address_hash', 'list'])
        .execute();
      await db.schema
        .createTable('soft_bounces')
        .addColumn('address_hash', 'text', (c) => c.primaryKey())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('last_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('soft_bounces').execute();
      await db.schema.dropTable('suppressions').execute();
    },
  },
};
