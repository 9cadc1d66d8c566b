/** The erasure tombstones' SQL: only this file touches erasure_tombstones. */
import type { Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { ErasureTombstonesTable, TombstoneTables } from './tombstones.tables.js';

/** Stores and finds tombstones. */
export class TombstonesRepository {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<TombstoneTables> {
    return this.#db.executor<TombstoneTables>(ctx);
  }

  /** Stores tombstones; one already kept is left as it is. Returns how many are new. */
  async insert(ctx: Context, rows: readonly ErasureTombstonesTable[]): Promise<number> {
    if (rows.length === 0) return 0;
    const result = await this.#q(ctx)
      .insertInto('erasure_tombstones')
      .values([...rows])
      .onConflict((oc) => oc.columns(['hash', 'key_version']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0);
  }

  /** The kinds of the tombstones among `hashes` (each hash with its key version). */
  async find(ctx: Context, hashes: ReadonlyArray<{ hash: string; keyVersion: number }>): Promise<string[]> {
    if (hashes.length === 0) return [];
    const rows = await this.#q(ctx)
      .selectFrom('erasure_tombstones')
      .select('kind')
      .where((eb) =>
        eb.or(hashes.map((h) => eb.and([eb('hash', '=', h.hash), eb('key_version', '=', h.keyVersion)]))),
      )
      .execute();
    return [...new Set(rows.map((r) => r.kind))];
  }
}
