/**
 * The tables of processors' acknowledgements of the policy (acknowledgements.tables.ts). Names sort
 * after every other capability's, so a database made by an earlier version gains them on upgrade.
 */
import type { Kysely, Migration } from 'kysely';
import { idColumn } from '../platform/db/schema.js';

/** Migrations of the acknowledgements part of the share capability, keyed by ordered name. */
export const acknowledgementMigrations: Record<string, Migration> = {
  '2026_12_16_200_share_acknowledgements': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('share_acknowledgements')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('recipient', 'text', (c) => c.notNull())
        .addColumn('policy_version', 'text', (c) => c.notNull())
        .addColumn('manifest_version_id', 'integer', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('acknowledged_by', 'text', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('acknowledged_at', 'text', (c) => c.notNull())
        .execute();
      // A recipient's standing is its newest acknowledgement, asked at every disclosure.
      await db.schema
        .createIndex('share_acknowledgements_recipient_idx')
        .on('share_acknowledgements')
        .columns(['recipient', 'acknowledged_at'])
        .execute();
      await db.schema
        .createTable('share_pauses')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('recipient', 'text', (c) => c.notNull())
        .addColumn('policy_version', 'text', (c) => c.notNull())
        .addColumn('manifest_version_id', 'integer', (c) => c.notNull())
        .addColumn('previous_manifest_version_id', 'integer', (c) => c.notNull())
        .addColumn('changes', 'text', (c) => c.notNull())
        .addColumn('paused_at', 'text', (c) => c.notNull())
        .addColumn('lifted_at', 'text')
        .addColumn('lifted_by', 'text')
        .execute();
      await db.schema
        .createIndex('share_pauses_recipient_idx')
        .on('share_pauses')
        .columns(['recipient', 'lifted_at'])
        .execute();
      await db.schema
        .createTable('share_notices')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('pause_id', 'text', (c) => c.notNull())
        .addColumn('recipient', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_status', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('sent_at', 'text')
        .execute();
      await db.schema.createIndex('share_notices_pause_idx').on('share_notices').column('pause_id').execute();
      await db.schema
        .createTable('share_recipients')
        .addColumn('recipient', 'text', (c) => c.primaryKey())
        .addColumn('first_manifest_version_id', 'integer', (c) => c.notNull())
        .addColumn('first_seen_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('share_activations')
        .addColumn('id', 'integer', idColumn(db))
        .addColumn('manifest_version_id', 'integer', (c) => c.notNull())
        .addColumn('previous_manifest_version_id', 'integer', (c) => c.notNull())
        .addColumn('in_force_from', 'text', (c) => c.notNull())
        .addColumn('activated_at', 'text', (c) => c.notNull())
        .execute();
      // Two instances starting with the same new manifest weigh the change once; a rollback to a
      // version seen before moves its in_force_from, so it is weighed again.
      await db.schema
        .createIndex('share_activations_change_idx')
        .on('share_activations')
        .columns(['manifest_version_id', 'in_force_from'])
        .unique()
        .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const table of [
        'share_activations',
        'share_recipients',
        'share_notices',
        'share_pauses',
        'share_acknowledgements',
      ])
        await db.schema.dropTable(table).execute();
    },
  },
  // The signatory is a person's name: sealed from now on. The flag tells the rows written before
  // (plaintext) from sealed ones; the first start with the keyring seals them (the migrator has no
  // keys: AcknowledgementsRepository.sealPlaintext, run by the share capability's start).
  '2026_12_17_101_share_signatories_sealed': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('share_acknowledgements')
        .addColumn('sealed', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('share_acknowledgements').dropColumn('sealed').execute();
    },
  },
};
