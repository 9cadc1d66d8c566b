/**
 * The webhook delivery log: one row per delivery of one event to one webhook, inserted in the
 * transaction of the change it reports, then updated as its job is attempted.
 */
import { sql, type Kysely, type Migration } from 'kysely';

/** Migrations of the webhooks part of the consent capability, keyed by ordered name. */
export const webhookMigrations: Record<string, Migration> = {
  '2026_12_06_001_webhook_deliveries': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('webhook', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'text', (c) => c.notNull())
        .addColumn('last_attempt_at', 'text')
        .addColumn('last_status', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('delivered_at', 'text')
        .execute();
      // One delivery per event and webhook: an event queued twice is still sent once.
      await db.schema
        .createIndex('webhook_deliveries_event_idx')
        .on('webhook_deliveries')
        .columns(['webhook', 'event_id'])
        .unique()
        .execute();
      // The dispatcher's query: pending rows whose time has come, oldest first.
      await db.schema
        .createIndex('webhook_deliveries_due_idx')
        .on('webhook_deliveries')
        .columns(['status', 'next_attempt_at'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('webhook_deliveries').execute();
    },
  },
  // Deliveries used to be claimed from this table by a dispatcher of their own; they are jobs of the
  // platform's queue now. The deliveries still pending when the database is upgraded become jobs
  // (keyed by the delivery's id, as new ones are), so none is dropped on the way. Runs after the
  // queue's own migration, which sorts before it.
  '2026_12_11_002_webhook_delivery_jobs': {
    async up(db: Kysely<unknown>) {
      await sql`
        insert into jobs (id, type, key, payload, state, run_at, attempts, max_attempts,
                          enqueued_by, request_id, created_at, updated_at)
        select id, 'webhooks.deliver', id, '{"deliveryId":"' || id || '"}', 'pending', next_attempt_at,
               attempts, 15, '{"kind":"system","job":"migration"}', 'migration', created_at, created_at
        from webhook_deliveries
        where status = 'pending'
      `.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await sql`delete from jobs where type = 'webhooks.deliver'`.execute(db);
    },
  },
};
