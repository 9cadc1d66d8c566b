/** The legal requests' tables (legal.tables.ts). */
import type { Kysely, Migration } from 'kysely';

/** Migrations of legal requests (main database), keyed by ordered name. */
export const legalMigrations: Record<string, Migration> = {
  '2026_12_16_300_legal_requests': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('legal_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('received_at', 'text', (c) => c.notNull())
        .addColumn('authority_name', 'text', (c) => c.notNull())
        .addColumn('authority_type', 'text', (c) => c.notNull())
        .addColumn('legal_basis', 'text', (c) => c.notNull())
        .addColumn('citation', 'text')
        .addColumn('reference', 'text', (c) => c.notNull())
        .addColumn('scope_subjects', 'text', (c) => c.notNull())
        .addColumn('scope_categories', 'text', (c) => c.notNull())
        .addColumn('deadline', 'text', (c) => c.notNull())
        .addColumn('notice_prohibited', 'integer', (c) => c.notNull())
        .addColumn('notice_prohibited_until', 'text')
        .addColumn('decision', 'text')
        .addColumn('approved_subjects', 'text')
        .addColumn('approved_categories', 'text')
        .addColumn('reject_reason', 'text')
        .addColumn('intake_by', 'text', (c) => c.notNull())
        .addColumn('reviewed_at', 'text')
        .addColumn('reviewed_by', 'text')
        .addColumn('disclosed_at', 'text')
        .addColumn('closed_at', 'text')
        .addColumn('closed_by', 'text')
        .execute();
      // The transparency report counts a period's requests by when they arrived.
      await db.schema
        .createIndex('legal_requests_received_idx')
        .on('legal_requests')
        .column('received_at')
        .execute();
      await db.schema
        .createTable('legal_notices')
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('subject_id', 'text', (c) => c.notNull())
        .addColumn('disclosed_at', 'text', (c) => c.notNull())
        .addColumn('notice_at', 'text')
        .addColumn('notice_status', 'text')
        .addPrimaryKeyConstraint('legal_notices_pk', ['request_id', 'subject_id'])
        .execute();
      // "Who got my data" asks, per person, which legal disclosures are still held back.
      await db.schema
        .createIndex('legal_notices_subject_idx')
        .on('legal_notices')
        .column('subject_id')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('legal_notices').execute();
      await db.schema.dropTable('legal_requests').execute();
    },
  },
  // The free text of a request can name people: sealed from now on. The flag tells the rows
  // written before (plaintext) from sealed ones; the first start with the keyring seals them (the
  // migrator has no keys: LegalRepository.sealPlaintext, run by the legal requests' start).
  '2026_12_17_100_legal_requests_sealed': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('legal_requests')
        .addColumn('sealed', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('legal_requests').dropColumn('sealed').execute();
    },
  },
};
