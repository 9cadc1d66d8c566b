/**
 * The consent ledger (append-only events) and its projection (the current state of every choice).
 * The ledger is the truth; the projection can be rebuilt from it at any time.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import { dialectOf } from '../platform/db/schema.js';

/** Migrations of the consent capability, keyed by ordered name. */
export const consentMigrations: Record<string, Migration> = {
  '2026_11_29_005_consent_ledger': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('consent_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        // "s:<subject id>" or "b:<browser id>": who the choice belongs to.
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('subject_id', 'text', (c) => c.references('subjects.id'))
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('notice_version', 'text')
        .addColumn('policy_version_id', 'integer', (c) => c.notNull().references('manifest_versions.id'))
        .addColumn('jurisdiction', 'text')
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('evidence', 'text')
        .addColumn('merged_from', 'text')
        .execute();
      await db.schema
        .createIndex('consent_events_holder_idx')
        .on('consent_events')
        .columns(['holder', 'at', 'id'])
        .execute();
      await db.schema
        .createTable('consent_state')
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('consent_state_pk', ['holder', 'purpose', 'channel'])
        .execute();
      // Append-only in the database: an UPDATE always fails, and a DELETE fails unless the event's
      // subject has been erased (erasure is the one thing that removes a person's choices).
      switch (dialectOf(db)) {
        case 'sqlite':
          await sql`create trigger consent_events_no_update before update on consent_events
            begin select raise(abort, 'consent_events is append-only'); end`.execute(db);
          await sql`create trigger consent_events_no_delete before delete on consent_events
            when old.subject_id is null
              or not exists (select 1 from subjects where id = old.subject_id and erased_at is not null)
            begin select raise(abort, 'consent_events is append-only: only an erased subject''s events may be deleted'); end`.execute(
            db,
          );
          break;
        case 'postgres':
          await sql`create or replace function consent_events_append_only() returns trigger language plpgsql as $$
            begin
              if tg_op = 'DELETE' and old.subject_id is not null and exists (
                select 1 from subjects where id = old.subject_id and erased_at is not null) then
                return old;
              end if;
              raise exception 'consent_events is append-only: only an erased subject''s events may be deleted';
            end $$`.execute(db);
          await sql`create trigger consent_events_append_only before update or delete on consent_events
            for each row execute function consent_events_append_only()`.execute(db);
          break;
      }
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('consent_state').execute();
      await db.schema.dropTable('consent_events').execute();
    },
  },
  '2026_12_12_101_link_generations': {
    async up(db: Kysely<unknown>) {
      // No foreign key to subjects: an erased subject's row stays (its generation raised), so a
      // link made before the erasure is refused even if the id were ever seen again.
      await db.schema
        .createTable('link_generations')
        .addColumn('subject_id', 'text', (c) => c.primaryKey())
        .addColumn('generation', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('link_generations').execute();
    },
  },
};
