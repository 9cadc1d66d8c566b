/** The data-subject requests' tables (requests.tables.ts). */
import type { Kysely, Migration } from 'kysely';

/** Migrations of data-subject requests (main database), keyed by ordered name. */
export const rightsMigrations: Record<string, Migration> = {
  '2026_12_20_100_dsr_requests': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('dsr_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('jurisdiction', 'text', (c) => c.notNull())
        .addColumn('received_at', 'text', (c) => c.notNull())
        .addColumn('due_at', 'text', (c) => c.notNull())
        .addColumn('extended_due_at', 'text', (c) => c.notNull())
        .addColumn('confirm_by', 'text')
        .addColumn('extended_at', 'text')
        .addColumn('email_hash', 'text')
        .addColumn('phone_hash', 'text')
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('subject_id', 'text')
        .addColumn('agent', 'text', (c) => c.notNull())
        .addColumn('stalled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('requeued', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('reason', 'text')
        .addColumn('progressed_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .execute();
      // The staff queue lists open requests by due date; the watchdog scans them by progress.
      await db.schema
        .createIndex('dsr_requests_due_idx')
        .on('dsr_requests')
        .columns(['status', 'due_at'])
        .execute();
      await db.schema
        .createIndex('dsr_requests_progress_idx')
        .on('dsr_requests')
        .columns(['finished_at', 'progressed_at'])
        .execute();
      await db.schema
        .createTable('dsr_steps')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('store', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('runs', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('error', 'text')
        .addColumn('requeued', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('due_at', 'text')
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('result', 'text')
        .addUniqueConstraint('dsr_steps_position_uq', ['request_id', 'position'])
        .execute();
      await db.schema
        .createTable('dsr_verifications')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('identifier_hash', 'text', (c) => c.notNull())
        .addColumn('code_hmac', 'text')
        .addColumn('key_version', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('verified_at', 'text')
        .addColumn('ip_hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('dsr_verifications_request_idx')
        .on('dsr_verifications')
        .column('request_id')
        .execute();
      // The rate limits count an address's and a client's codes in the last hour.
      await db.schema
        .createIndex('dsr_verifications_identifier_idx')
        .on('dsr_verifications')
        .columns(['identifier_hash', 'created_at'])
        .execute();
      await db.schema
        .createIndex('dsr_verifications_ip_idx')
        .on('dsr_verifications')
        .columns(['ip_hash', 'created_at'])
        .execute();
      await db.schema
        .createTable('dsr_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('dsr_events_request_idx')
        .on('dsr_events')
        .columns(['request_id', 'id'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('dsr_events').execute();
      await db.schema.dropTable('dsr_verifications').execute();
      await db.schema.dropTable('dsr_steps').execute();
      await db.schema.dropTable('dsr_requests').execute();
    },
  },
  // The dates of the manifest's rule in force at receipt, kept with the request so that a later
  // manifest does not move them; nullable, as requests received before this migration have none.
  '2026_12_21_100_dsr_request_deadlines': {
    async up(db: Kysely<unknown>) {
      for (const column of ['answer_by', 'extension_notice_by', 'deadline_rule', 'confirmed_at'] as const) {
        await db.schema.alterTable('dsr_requests').addColumn(column, 'text').execute();
      }
      await db.schema
        .alterTable('dsr_requests')
        .addColumn('due_notices', 'text', (c) => c.notNull().defaultTo('[]'))
        .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const column of [
        'due_notices',
        'confirmed_at',
        'deadline_rule',
        'extension_notice_by',
        'answer_by',
      ] as const) {
        await db.schema.alterTable('dsr_requests').dropColumn(column).execute();
      }
    },
  },
  // Authorized agents (Data Rights Protocol 1.0) and the signed messages seen, so a replay is refused.
  '2026_12_22_100_dsr_agents': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('dsr_agents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('registered_by', 'text', (c) => c.notNull())
        .addColumn('registered_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema
        .createTable('dsr_agent_messages')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('dsr_agent_messages').execute();
      await db.schema.dropTable('dsr_agents').execute();
    },
  },
};
