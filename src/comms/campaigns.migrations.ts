/**
 * Campaigns and their sends. No personal data: a campaign holds its templates (placeholders, never
 * a rendered body) and its audience (subject ids or a segment); a send names its subject by id and
 * says where it stands, never an address.
 */
import { sql, type Kysely, type Migration } from 'kysely';

/** Migrations of campaigns, keyed by ordered name. */
export const campaignMigrations: Record<string, Migration> = {
  '2026_12_10_001_campaigns': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('campaigns')
        .addColumn('id', 'text', (c) => c.primaryKey())
        // marketing (the full pipeline) or service (a notice needed for the service).
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        // The purpose the messages are sent for (the list of a marketing campaign).
        .addColumn('list', 'text', (c) => c.notNull())
        .addColumn('subject_template', 'text', (c) => c.notNull())
        .addColumn('text_template', 'text', (c) => c.notNull())
        .addColumn('html_template', 'text', (c) => c.notNull())
        // JSON: { "subjects": [ids] } or { "segment": { "jurisdiction"?, "kind"? } }.
        .addColumn('audience', 'text', (c) => c.notNull())
        // draft, sending or done.
        .addColumn('status', 'text', (c) => c.notNull())
        // Set on a policy-change notice: the manifest version it announces (one notice per version).
        .addColumn('policy_version_id', 'integer', (c) => c.unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema
        .createTable('campaign_sends')
        .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id'))
        .addColumn('subject_id', 'text', (c) => c.notNull())
        // pending, sending, sent, skipped, failed or uncertain.
        .addColumn('status', 'text', (c) => c.notNull())
        // Why it was skipped or failed (a decision reason, no_address, suppressed, smtp_550 ...).
        .addColumn('reason', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        // Pending: when the next attempt is due, or the end of a claim's lease; sending: the lease.
        .addColumn('next_attempt_at', 'text', (c) => c.notNull())
        // Deterministic per campaign and recipient (a keyed hash, not the subject id).
        .addColumn('message_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('campaign_sends_pk', ['campaign_id', 'subject_id'])
        .execute();
      // The runner's query: pending or sending rows by due time.
      await db.schema
        .createIndex('campaign_sends_due_idx')
        .on('campaign_sends')
        .columns(['status', 'next_attempt_at'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('campaign_sends').execute();
      await db.schema.dropTable('campaigns').execute();
    },
  },
  // Sends used to be claimed from campaign_sends by a runner of their own; they are jobs of the
  // platform's queue now (keyed campaign:subject, as new ones are). The sends still pending or in
  // flight when the database is upgraded become jobs, so none is dropped on the way; one found in
  // flight is made uncertain by its job, never sent twice. Runs after the queue's own migration.
  '2026_12_11_003_campaign_send_jobs': {
    async up(db: Kysely<unknown>) {
      await sql`
        insert into jobs (id, type, key, payload, state, run_at, attempts, max_attempts,
                          enqueued_by, request_id, created_at, updated_at)
        select 'migrated:' || campaign_id || ':' || subject_id, 'campaigns.send',
               campaign_id || ':' || subject_id,
               '{"campaignId":"' || campaign_id || '","subjectId":"' || subject_id || '"}',
               'pending', next_attempt_at, attempts, 8, '{"kind":"system","job":"migration"}',
               'migration', created_at, updated_at
        from campaign_sends
        where status in ('pending', 'sending')
      `.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await sql`delete from jobs where type = 'campaigns.send'`.execute(db);
    },
  },
  // A segment's subjects are queued in pages, each page a job of its own (campaigns.expand), not
  // all in the transaction that starts the campaign; the flag keeps the campaign from being done
  // while pages are still to come. Campaigns started before had their whole audience queued.
  '2026_12_14_001_campaign_expanding': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('campaigns')
        .addColumn('expanding', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('campaigns').dropColumn('expanding').execute();
    },
  },
};
