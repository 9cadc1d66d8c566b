/** The audit table: append-only, enforced by the database itself. */
import { sql, type Kysely, type Migration } from 'kysely';
import { dialectOf, idColumn } from '../platform/db/schema.js';

/** Migrations of the audit capability, keyed by ordered name. */
export const auditMigrations: Record<string, Migration> = {
  '2026_11_29_004_audit_events': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('audit_events')
        .addColumn('id', 'integer', idColumn(db))
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('subject_id', 'text')
        .addColumn('purpose', 'text')
        .addColumn('request_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('audit_events_subject_idx')
        .on('audit_events')
        .columns(['subject_id', 'id'])
        .execute();
      // Append-only in the database, not only by convention: an UPDATE or DELETE fails whoever runs it.
      switch (dialectOf(db)) {
        case 'sqlite':
          await sql`create trigger audit_events_no_update before update on audit_events
            begin select raise(abort, 'audit_events is append-only'); end`.execute(db);
          await sql`create trigger audit_events_no_delete before delete on audit_events
            begin select raise(abort, 'audit_events is append-only'); end`.execute(db);
          break;
        case 'postgres':
          await sql`create or replace function audit_events_append_only() returns trigger language plpgsql as
            $$ begin raise exception 'audit_events is append-only'; end $$`.execute(db);
          await sql`create trigger audit_events_append_only before update or delete on audit_events
            for each row execute function audit_events_append_only()`.execute(db);
          break;
      }
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('audit_events').execute();
    },
  },
};
