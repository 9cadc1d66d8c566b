/** The suppression list's SQL. Rows hold keyed hashes of addresses only. */
import { sql, type Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { SuppressionTables } from './suppression.tables.js';

/** A row of the suppression list. */
export interface SuppressionRow {
  addressHash: string;
  list: string;
  reason: string;
  createdAt: Date;
}

/** Reads and writes the suppression list. */
export class SuppressionRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<SuppressionTables> {
    return this.db.executor<SuppressionTables>(ctx);
  }

  /** Adds a suppression; returns false when it was already there (the first reason is kept). */
  async insert(ctx: Context, row: SuppressionRow): Promise<boolean> {
    const result = await this.#q(ctx)
      .insertInto('suppressions')
      .values({
        address_hash: row.addressHash,
        list: row.list,
        reason: row.reason,
        created_at: row.createdAt.toISOString(),
      })
      .onConflict((oc) => oc.columns(['address_hash', 'list']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** The hashes among `hashes` suppressed for `list` or for every list ("*"). */
  async suppressedAmong(ctx: Context, hashes: readonly string[], list: string): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < hashes.length; i += 1000) {
      const rows = await this.#q(ctx)
        .selectFrom('suppressions')
        .select('address_hash')
        .where('address_hash', 'in', hashes.slice(i, i + 1000))
        .where('list', 'in', [list, '*'])
        .execute();
      for (const r of rows) out.add(r.address_hash);
    }
    return out;
  }

  /** Every suppression of an address hash. */
  async listFor(ctx: Context, addressHash: string): Promise<SuppressionRow[]> {
    const rows = await this.#q(ctx)
      .selectFrom('suppressions')
      .selectAll()
      .where('address_hash', '=', addressHash)
      .orderBy('created_at')
      .execute();
    return rows.map((r) => ({
      addressHash: r.address_hash,
      list: r.list,
      reason: r.reason,
      createdAt: new Date(r.created_at),
    }));
  }

  /** Removes the suppressions of these hashes for `list` with `reason`; returns how many. */
  async deleteFor(ctx: Context, hashes: readonly string[], list: string, reason: string): Promise<number> {
    if (hashes.length === 0) return 0;
    const result = await this.#q(ctx)
      .deleteFrom('suppressions')
      .where('address_hash', 'in', hashes)
      .where('list', '=', list)
      .where('reason', '=', reason)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Counts a soft bounce and returns the address's count so far. */
  async countSoftBounce(ctx: Context, addressHash: string, at: Date): Promise<number> {
    await this.#q(ctx)
      .insertInto('soft_bounces')
      .values({ address_hash: addressHash, count: 1, last_at: at.toISOString() })
      .onConflict((oc) =>
        oc
          .column('address_hash')
          .doUpdateSet({ count: sql`soft_bounces.count + 1`, last_at: at.toISOString() }),
      )
      .execute();
    const row = await this.#q(ctx)
      .selectFrom('soft_bounces')
      .select('count')
      .where('address_hash', '=', addressHash)
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }
}
