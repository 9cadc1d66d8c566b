/**
 * The audit table, append-only and enforced by the database itself, and the transparency log's tables:
 * the tree's state, its hash tiles, checkpoints and cosignatures.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import { dialectOf, idColumn } from '../platform/db/schema.js';
import { buildTilePyramid, encodeInnerRows } from './tiles.js';

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
  /**
   * The audit table becomes the transparency log's storage: each row gets its canonical entry and a
   * leaf index of its own (set once by the integrator), and its subject becomes a keyed commitment.
   * Rows of earlier versions keep their plaintext subject id until the service's start converts them
   * (the commitment needs the key, which a migration does not have); the triggers allow exactly that
   * conversion and the setting of a leaf index, once, and nothing else.
   */
  '2026_12_16_001_transparency_log': {
    async up(db: Kysely<unknown>) {
      const dialect = dialectOf(db);
      const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
      await db.schema.alterTable('audit_events').addColumn('subject', 'text').execute();
      await db.schema.alterTable('audit_events').addColumn('entry', 'text').execute();
      await db.schema.alterTable('audit_events').addColumn('leaf_index', 'integer').execute();
      await db.schema.dropIndex('audit_events_subject_idx').execute();
      await db.schema
        .createIndex('audit_events_subject_idx')
        .on('audit_events')
        .columns(['subject', 'id'])
        .execute();
      await db.schema
        .createIndex('audit_events_leaf_idx')
        .on('audit_events')
        .column('leaf_index')
        .unique()
        .execute();
      // What the integrator takes: only the rows still pending, so the index stays small.
      await db.schema
        .createIndex('audit_events_pending_idx')
        .on('audit_events')
        .column('id')
        .where(sql.ref('leaf_index'), 'is', null)
        .execute();
      await db.schema
        .createTable('log_state')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('frontier', bytes, (c) => c.notNull())
        .addColumn('root', bytes, (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('log_tiles')
        .addColumn('level', 'integer', (c) => c.notNull())
        .addColumn('tile_index', 'integer', (c) => c.notNull())
        .addColumn('width', 'integer', (c) => c.notNull())
        .addColumn('hashes', bytes, (c) => c.notNull())
        .addPrimaryKeyConstraint('log_tiles_pk', ['level', 'tile_index'])
        .execute();
      await db.schema
        .createTable('log_checkpoints')
        .addColumn('size', 'integer', (c) => c.primaryKey())
        .addColumn('root', bytes, (c) => c.notNull())
        .addColumn('note', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('log_cosignatures')
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('witness', 'text', (c) => c.notNull())
        .addColumn('line', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('log_cosignatures_pk', ['size', 'witness'])
        .execute();
      const message = 'audit_events is append-only: only the integrator may set leaf_index, once';
      switch (dialect) {
        case 'sqlite': {
          await sql`drop trigger audit_events_no_update`.execute(db);
          await sql`drop trigger audit_events_no_delete`.execute(db);
          const same = (columns: string[]) => columns.map((c) => `new.${c} is old.${c}`).join(' and ');
          const fixed = ['id', 'at', 'action', 'purpose', 'request_id', 'details'];
          await sql`create trigger audit_events_append_only_update before update on audit_events
            when not (
              (old.leaf_index is null and new.leaf_index is not null and old.entry is not null
                and ${sql.raw(same([...fixed, 'actor', 'subject_id', 'subject', 'entry']))})
              or (old.entry is null and new.entry is not null and old.leaf_index is null
                and new.leaf_index is null and old.subject is null and new.subject_id is null
                and (old.subject_id is null) = (new.subject is null) and ${sql.raw(same(fixed))})
            )
            begin select raise(abort, ${sql.lit(message)}); end`.execute(db);
          await sql`create trigger audit_events_append_only_delete before delete on audit_events
            begin select raise(abort, 'audit_events is append-only'); end`.execute(db);
          await sql`create trigger audit_events_append_only_insert before insert on audit_events
            when new.subject_id is not null or new.entry is null or new.leaf_index is not null
            begin select raise(abort, 'audit_events takes entries with no subject id and no leaf index'); end`.execute(
            db,
          );
          break;
        }
        case 'postgres':
          await sql`drop trigger audit_events_append_only on audit_events`.execute(db);
          await sql`create or replace function audit_events_append_only() returns trigger language plpgsql as $$
            begin
              if tg_op = 'DELETE' then raise exception 'audit_events is append-only'; end if;
              if tg_op = 'INSERT' then
                if new.subject_id is not null or new.entry is null or new.leaf_index is not null then
                  raise exception 'audit_events takes entries with no subject id and no leaf index';
                end if;
                return new;
              end if;
              if old.leaf_index is null and new.leaf_index is not null and old.entry is not null
                and (new.id, new.at, new.action, new.purpose, new.request_id, new.details, new.actor,
                     new.subject_id, new.subject, new.entry)
                  is not distinct from (old.id, old.at, old.action, old.purpose, old.request_id,
                     old.details, old.actor, old.subject_id, old.subject, old.entry) then
                return new;
              end if;
              if old.entry is null and new.entry is not null and old.leaf_index is null
                and new.leaf_index is null and old.subject is null and new.subject_id is null
                and (old.subject_id is null) = (new.subject is null)
                and (new.id, new.at, new.action, new.purpose, new.request_id, new.details)
                  is not distinct from (old.id, old.at, old.action, old.purpose, old.request_id, old.details) then
                return new;
              end if;
              raise exception ${sql.lit(message)};
            end $$`.execute(db);
          await sql`create trigger audit_events_append_only before insert or update or delete on audit_events
            for each row execute function audit_events_append_only()`.execute(db);
          break;
      }
    },
    async down(db: Kysely<unknown>) {
      for (const t of ['log_cosignatures', 'log_checkpoints', 'log_tiles', 'log_state'])
        await db.schema.dropTable(t).execute();
    },
  },
  '2026_12_17_001_log_tile_inner_rows': {
    // The tree levels inside each tile, stored beside its hashes so a proof reads them instead of
    // hashing a tile's 255 inner nodes; tiles already written get theirs here, a page at a time.
    async up(db: Kysely<unknown>) {
      const dialect = dialectOf(db);
      const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
      await db.schema.alterTable('log_tiles').addColumn('inner', bytes).execute();
      const tiles = db as unknown as Kysely<{
        log_tiles: { level: number; tile_index: number; hashes: Buffer; inner: Buffer | null };
      }>;
      const page = 500;
      for (let last = { level: -1, index: -1 }; ;) {
        const rows = await tiles
          .selectFrom('log_tiles')
          .select(['level', 'tile_index', 'hashes'])
          .where((eb) =>
            eb.or([
              eb('level', '>', last.level),
              eb.and([eb('level', '=', last.level), eb('tile_index', '>', last.index)]),
            ]),
          )
          .orderBy('level')
          .orderBy('tile_index')
          .limit(page)
          .execute();
        for (const r of rows) {
          const inner = encodeInnerRows(buildTilePyramid(Buffer.from(r.hashes)));
          await tiles
            .updateTable('log_tiles')
            .set({ inner })
            .where('level', '=', r.level)
            .where('tile_index', '=', r.tile_index)
            .execute();
        }
        if (rows.length < page) break;
        const end = rows[rows.length - 1]!;
        last = { level: end.level, index: end.tile_index };
      }
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('log_tiles').dropColumn('inner').execute();
    },
  },
};
