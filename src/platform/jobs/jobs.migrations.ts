/**
 * The job queue's table. Its indexes follow its queries: the claim (pending jobs of one type whose
 * time has come, oldest first), the watchdog (running jobs whose lease ran out), the idempotency key,
 * and the administrators' lists and counts by state.
 */
import { sql, type Kysely, type Migration } from 'kysely';

/** Migrations of the job queue, keyed by ordered name. */
export const jobMigrations: Record<string, Migration> = {
  '2026_12_11_001_jobs': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('key', 'text')
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('run_at', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('lease_token', 'text')
        .addColumn('lease_until', 'text')
        .addColumn('worker', 'text')
        .addColumn('last_error', 'text')
        .addColumn('enqueued_by', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .execute();
      // One job per type and key: enqueueing a key again does nothing. Rows without a key (NULL) are
      // distinct from each other on both engines, so they never conflict.
      await db.schema.createIndex('jobs_type_key_idx').on('jobs').columns(['type', 'key']).unique().execute();
      // The claim: an index range scan over one type's pending jobs in run_at order. Partial, so the
      // index holds only what is waiting and stays small however many finished jobs the table keeps;
      // the claim query names the state as a literal so that both planners can use it.
      await db.schema
        .createIndex('jobs_due_idx')
        .on('jobs')
        .columns(['type', 'run_at'])
        .where(sql.ref('state'), '=', sql.lit('pending'))
        .execute();
      // The watchdog: running jobs in lease order, so the expired ones are a range at the start.
      await db.schema
        .createIndex('jobs_lease_idx')
        .on('jobs')
        .columns(['lease_until'])
        .where(sql.ref('state'), '=', sql.lit('running'))
        .execute();
      // Lists by state (and type), newest first; counts per state and type read only this index.
      await db.schema.createIndex('jobs_state_idx').on('jobs').columns(['state', 'type', 'id']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('jobs').execute();
    },
  },
};
