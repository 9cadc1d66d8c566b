/**
 * What the verifier reads of the audit capability's tables, and only reads: the entries by leaf
 * index as the bytes the leaves hash (the database hands them over as bytes, so a verification of a
 * large log does not decode and re-encode every entry), the tiles, the stored checkpoints, the
 * tree's state. The verifier's reads are its own so that nothing it relies on is shared with the
 * integrator it checks.
 */
import { sql, type Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { AuditTables } from './audit.tables.js';
import type { LogLeafRow } from './log.verify.js';

/** Reads the log for the verifier, in the transaction of the context given (if any). */
export class LogVerifyRepository {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<AuditTables> {
    return this.#db.executor<AuditTables>(ctx);
  }

  /** The entries of leaves [from, to), in leaf order, as their UTF-8 bytes. */
  async leafEntries(ctx: Context, from: number, to: number): Promise<LogLeafRow[]> {
    const bytes =
      this.#db.dialect === 'postgres'
        ? sql<Buffer | null>`convert_to(entry, 'UTF8')`
        : sql<Buffer | null>`cast(entry as blob)`;
    const rows = await this.#q(ctx)
      .selectFrom('audit_events')
      .select(['leaf_index', bytes.as('bytes')])
      .where('leaf_index', '>=', from)
      .where('leaf_index', '<', to)
      .orderBy('leaf_index')
      .execute();
    return rows.map((r) => ({ leafIndex: Number(r.leaf_index), entry: r.bytes ?? Buffer.alloc(0) }));
  }

  /** A stored tile's hashes, or `undefined`. */
  async getTile(ctx: Context, level: number, index: number): Promise<Buffer | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('log_tiles')
      .select('hashes')
      .where('level', '=', level)
      .where('tile_index', '=', index)
      .executeTakeFirst();
    return row === undefined ? undefined : Buffer.from(row.hashes);
  }

  /** A stored tile's hashes and inner rows (null when it has none), or `undefined`. */
  async getTileWithInnerRows(
    ctx: Context,
    level: number,
    index: number,
  ): Promise<{ hashes: Buffer; inner: Buffer | null } | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('log_tiles')
      .select(['hashes', 'inner'])
      .where('level', '=', level)
      .where('tile_index', '=', index)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return { hashes: Buffer.from(row.hashes), inner: row.inner === null ? null : Buffer.from(row.inner) };
  }

  /** Every stored checkpoint's note, oldest first. */
  async checkpointNotes(ctx: Context): Promise<string[]> {
    const rows = await this.#q(ctx).selectFrom('log_checkpoints').select('note').orderBy('size').execute();
    return rows.map((r) => r.note);
  }

  /** The size the tree's state row records (0 when there is none). */
  async stateSize(ctx: Context): Promise<number> {
    const row = await this.#q(ctx)
      .selectFrom('log_state')
      .select('size')
      .where('id', '=', 1)
      .executeTakeFirst();
    return row === undefined ? 0 : Number(row.size);
  }
}
