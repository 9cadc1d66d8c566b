/**
 * The transparency log's SQL: the integrator's pending rows and leaf indexes, the tree's state, its
 * hash tiles, checkpoints and cosignatures. Proof and tile reads fetch few rows by primary key or by
 * the unique leaf index.
 */
import { CompiledQuery, sql, type Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { AuditTables } from './audit.tables.js';

/**
 * How long the integrator's transaction may sit idle (between its statements, while it computes)
 * before PostgreSQL ends its session and so its lock: far more than a pass ever waits on itself.
 */
export const INTEGRATION_IDLE_TIMEOUT_MS = 10_000;

/** A row the integrator takes (in id order): its entry, or the columns of an earlier version's row. */
export type PendingRow =
  { id: number; entry: string; legacy: undefined } | { id: number; entry: null; legacy: LegacyColumns };

/** The columns of a row written by an earlier version (plaintext subject id, no entry). */
export interface LegacyColumns {
  at: string;
  actor: string;
  action: string;
  subjectId: string | null;
  purpose: string | null;
  requestId: string | null;
  details: string;
}

/** The integrator's saved state. */
export interface LogState {
  size: number;
  frontier: Buffer[];
  root: Buffer;
}

/** A stored checkpoint. */
export interface StoredCheckpoint {
  size: number;
  root: Buffer;
  note: string;
  createdAt: Date;
}

/**
 * Rows per UPDATE when leaf indexes are set: a whole batch of the integrator (at most a checkpoint's
 * worth) in one statement, three parameters a row, well within both engines' limits.
 */
const ASSIGN_CHUNK = 1000;

/** Reads and writes the transparency log's tables, in the transaction of the context given. */
export class LogRepository {
  readonly #db: Db;
  /** The text of the leaf-index UPDATE by row count. */
  readonly #assignText = new Map<number, string>();

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<AuditTables> {
    return this.#db.executor<AuditTables>(ctx);
  }

  /** Tells the integrators of other instances (PostgreSQL's NOTIFY on `channel`) that entries committed. */
  async notifyAppended(ctx: Context, channel: string): Promise<void> {
    if (this.#db.dialect !== 'postgres') return;
    await sql`select pg_notify(${channel}, '')`.execute(this.#q(ctx));
  }

  /**
   * Takes the integrator's lock for the rest of `ctx`'s transaction: on PostgreSQL an advisory lock
   * named for the schema, so two integrators never interleave; SQLite has one writer already. The
   * lock ends with its session, which PostgreSQL ends at once for a process that died; for one that
   * froze or lost its network mid-pass, the session ends once it has sat idle in the transaction for
   * {@link INTEGRATION_IDLE_TIMEOUT_MS}, so the others are not held up for as long as TCP takes.
   */
  async lockIntegration(ctx: Context): Promise<void> {
    if (this.#db.dialect !== 'postgres') return;
    await sql`select set_config('idle_in_transaction_session_timeout', ${String(INTEGRATION_IDLE_TIMEOUT_MS)}, true), pg_advisory_xact_lock(hashtext('pledge.audit.integrate.' || current_schema()))`.execute(
      this.#q(ctx),
    );
  }

  /** The tree's state, or `undefined` before the first leaf. */
  async getState(ctx: Context): Promise<LogState | undefined> {
    const row = await this.#q(ctx).selectFrom('log_state').selectAll().where('id', '=', 1).executeTakeFirst();
    if (row === undefined) return undefined;
    const frontier: Buffer[] = [];
    const bytes = Buffer.from(row.frontier);
    for (let at = 0; at < bytes.length; at += 32) frontier.push(bytes.subarray(at, at + 32));
    return { size: Number(row.size), frontier, root: Buffer.from(row.root) };
  }

  /** Saves the tree's state. */
  async saveState(ctx: Context, state: LogState, now: Date): Promise<void> {
    const values = {
      size: state.size,
      frontier: Buffer.concat(state.frontier),
      root: state.root,
      updated_at: now.toISOString(),
    };
    await this.#q(ctx)
      .insertInto('log_state')
      .values({ id: 1, ...values })
      .onConflict((oc) => oc.column('id').doUpdateSet(values))
      .execute();
  }

  /** Up to `limit` committed rows without a leaf index, in id order. */
  async pending(ctx: Context, limit: number): Promise<PendingRow[]> {
    return this.#pendingRows(ctx, limit, false);
  }

  /** Up to `limit` rows of earlier versions not yet converted, in id order. */
  async unconverted(ctx: Context, limit: number): Promise<PendingRow[]> {
    return this.#pendingRows(ctx, limit, true);
  }

  async #pendingRows(ctx: Context, limit: number, legacyOnly: boolean): Promise<PendingRow[]> {
    let query = this.#q(ctx)
      .selectFrom('audit_events')
      .select(['id', 'entry'])
      .where('leaf_index', 'is', null);
    if (legacyOnly) query = query.where('entry', 'is', null);
    const rows = await query.orderBy('id').limit(limit).execute();
    // Only rows of earlier versions (no entry yet) need their columns: the rest are read as entries.
    const legacyIds = rows.filter((r) => r.entry === null).map((r) => r.id);
    const legacy = new Map<number, LegacyColumns>();
    if (legacyIds.length > 0) {
      const found = await this.#q(ctx)
        .selectFrom('audit_events')
        .select(['id', 'at', 'actor', 'action', 'subject_id', 'purpose', 'request_id', 'details'])
        .where('id', 'in', legacyIds)
        .execute();
      for (const r of found) {
        legacy.set(Number(r.id), {
          at: r.at,
          actor: r.actor,
          action: r.action,
          subjectId: r.subject_id,
          purpose: r.purpose,
          requestId: r.request_id,
          details: r.details,
        });
      }
    }
    return rows.map((r) => {
      const id = Number(r.id);
      const l = legacy.get(id);
      return l === undefined
        ? { id, entry: r.entry ?? '', legacy: undefined }
        : { id, entry: null, legacy: l };
    });
  }

  /** Whether any row of an earlier version still waits for its conversion. */
  async hasUnconverted(ctx: Context): Promise<boolean> {
    const row = await this.#q(ctx)
      .selectFrom('audit_events')
      .select('id')
      .where('leaf_index', 'is', null)
      .where('entry', 'is', null)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The one change a row of an earlier version takes: its entry, commitment and actor (the triggers allow exactly this). */
  async convert(
    ctx: Context,
    id: number,
    values: { entry: string; subject: string | null; actor: string },
  ): Promise<void> {
    await this.#q(ctx)
      .updateTable('audit_events')
      .set({ entry: values.entry, subject: values.subject, actor: values.actor, subject_id: null })
      .where('id', '=', id)
      .where('entry', 'is', null)
      .execute();
  }

  /**
   * Gives rows their leaf indexes: `first` to the first id, then one more each, in the order given;
   * one UPDATE joined to a VALUES list of (id, leaf index) per chunk (a CASE would be tried branch by
   * branch for every row).
   */
  async assignLeaves(ctx: Context, ids: readonly number[], first: number): Promise<void> {
    for (let at = 0; at < ids.length; at += ASSIGN_CHUNK) {
      const chunk = ids.slice(at, at + ASSIGN_CHUNK);
      const parameters: number[] = [];
      for (let i = 0; i < chunk.length; i++) parameters.push(chunk[i]!, first + at + i);
      const result = await this.#q(ctx).executeQuery(
        CompiledQuery.raw(this.#assignSql(chunk.length), parameters),
      );
      if (Number(result.numAffectedRows ?? -1) !== chunk.length) {
        throw new Error(
          `the integrator set ${result.numAffectedRows} of ${chunk.length} leaf indexes; it rolls back`,
        );
      }
    }
  }

  /** The UPDATE of {@link assignLeaves} for `rows` rows, built once per count (it is the same text). */
  #assignSql(rows: number): string {
    let text = this.#assignText.get(rows);
    if (text === undefined) {
      const pg = this.#db.dialect === 'postgres';
      const values = Array.from({ length: rows }, (_, i) =>
        pg
          ? `(cast($${2 * i + 1} as integer), cast($${2 * i + 2} as integer))`
          : '(cast(? as integer), cast(? as integer))',
      ).join(', ');
      // `+leaf_index` (the same value) keeps SQLite's planner off the leaf index, which would scan
      // every pending row for each value; the join then looks each id up by its primary key.
      text =
        `update audit_events set leaf_index = v.column2 from (values ${values}) as v ` +
        'where audit_events.id = v.column1 and +audit_events.leaf_index is null';
      this.#assignText.set(rows, text);
    }
    return text;
  }

  /** Stored tiles by level and index (the key `${level}/${index}`). */
  async getTiles(
    ctx: Context,
    keys: ReadonlyArray<{ level: number; index: number }>,
  ): Promise<Map<string, StoredTile>> {
    const found = new Map<string, StoredTile>();
    if (keys.length === 0) return found;
    const rows = await this.#q(ctx)
      .selectFrom('log_tiles')
      .select(['level', 'tile_index', 'hashes', 'inner'])
      .where((eb) =>
        eb.or(keys.map((k) => eb.and([eb('level', '=', k.level), eb('tile_index', '=', k.index)]))),
      )
      .execute();
    for (const r of rows) found.set(`${r.level}/${r.tile_index}`, storedTile(r));
    return found;
  }

  /** One stored tile (the partial rightmost one as far as it goes), or `undefined`. */
  async getTile(ctx: Context, level: number, index: number): Promise<StoredTile | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('log_tiles')
      .select(['hashes', 'inner'])
      .where('level', '=', level)
      .where('tile_index', '=', index)
      .executeTakeFirst();
    return row === undefined ? undefined : storedTile(row);
  }

  /** Writes tiles: new ones, and the partial rightmost ones grown (a full tile never changes again). */
  async upsertTiles(
    ctx: Context,
    tiles: ReadonlyArray<{ level: number; index: number; hashes: Buffer; inner: Buffer }>,
  ): Promise<void> {
    for (const t of tiles) {
      const width = t.hashes.length / 32;
      await this.#q(ctx)
        .insertInto('log_tiles')
        .values({ level: t.level, tile_index: t.index, width, hashes: t.hashes, inner: t.inner })
        .onConflict((oc) =>
          oc
            .columns(['level', 'tile_index'])
            .doUpdateSet({ width, hashes: t.hashes, inner: t.inner })
            .where('log_tiles.width', '<', width),
        )
        .execute();
    }
  }

  /** The entries of leaves [from, to), in leaf order (fewer when the tree is smaller). */
  async entries(
    ctx: Context,
    from: number,
    to: number,
  ): Promise<Array<{ leafIndex: number; entry: string }>> {
    const rows = await this.#q(ctx)
      .selectFrom('audit_events')
      .select(['leaf_index', 'entry'])
      .where('leaf_index', '>=', from)
      .where('leaf_index', '<', to)
      .orderBy('leaf_index')
      .execute();
    return rows.map((r) => ({ leafIndex: Number(r.leaf_index), entry: r.entry ?? '' }));
  }

  /** Stores a checkpoint (the same size twice keeps the first). */
  async insertCheckpoint(ctx: Context, c: StoredCheckpoint): Promise<void> {
    await this.#q(ctx)
      .insertInto('log_checkpoints')
      .values({ size: c.size, root: c.root, note: c.note, created_at: c.createdAt.toISOString() })
      .onConflict((oc) => oc.column('size').doNothing())
      .execute();
  }

  /** The newest checkpoint, or `undefined`. */
  async latestCheckpoint(ctx: Context): Promise<StoredCheckpoint | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('log_checkpoints')
      .selectAll()
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : toCheckpoint(row);
  }

  /** The checkpoint of a size, or `undefined`. */
  async getCheckpoint(ctx: Context, size: number): Promise<StoredCheckpoint | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('log_checkpoints')
      .selectAll()
      .where('size', '=', size)
      .executeTakeFirst();
    return row === undefined ? undefined : toCheckpoint(row);
  }

  /** Up to `limit` stored checkpoints larger than `size`, oldest first. */
  async checkpointsAfter(ctx: Context, size: number, limit: number): Promise<StoredCheckpoint[]> {
    const rows = await this.#q(ctx)
      .selectFrom('log_checkpoints')
      .selectAll()
      .where('size', '>', size)
      .orderBy('size')
      .limit(limit)
      .execute();
    return rows.map(toCheckpoint);
  }

  /** Every stored checkpoint, oldest first. */
  async listCheckpoints(ctx: Context): Promise<StoredCheckpoint[]> {
    const rows = await this.#q(ctx).selectFrom('log_checkpoints').selectAll().orderBy('size').execute();
    return rows.map(toCheckpoint);
  }

  /** Keeps a witness's cosignature line of the checkpoint of `size` (the latest line per witness). */
  async addCosignature(ctx: Context, size: number, witness: string, line: string, now: Date): Promise<void> {
    await this.#q(ctx)
      .insertInto('log_cosignatures')
      .values({ size, witness, line, created_at: now.toISOString() })
      .onConflict((oc) =>
        oc.columns(['size', 'witness']).doUpdateSet({ line, created_at: now.toISOString() }),
      )
      .execute();
  }

  /** The cosignature lines of the checkpoint of `size`, by witness name. */
  async cosignatures(ctx: Context, size: number): Promise<Array<{ witness: string; line: string }>> {
    return this.#q(ctx)
      .selectFrom('log_cosignatures')
      .select(['witness', 'line'])
      .where('size', '=', size)
      .orderBy('witness')
      .execute();
  }
}

function toCheckpoint(row: {
  size: number;
  root: Buffer;
  note: string;
  created_at: string;
}): StoredCheckpoint {
  return {
    size: Number(row.size),
    root: Buffer.from(row.root),
    note: row.note,
    createdAt: new Date(row.created_at),
  };
}

/** A stored tile: its hashes, and the inner rows above them (null for a tile stored before those were). */
export interface StoredTile {
  hashes: Buffer;
  inner: Buffer | null;
}

function storedTile(r: { hashes: Buffer; inner: Buffer | null }): StoredTile {
  return { hashes: Buffer.from(r.hashes), inner: r.inner === null ? null : Buffer.from(r.inner) };
}
