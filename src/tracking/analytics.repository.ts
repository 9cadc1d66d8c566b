/** The daily aggregates' SQL: a day's rows replaced whole by the roll-up, read by purpose and site. */
import type { Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import { RowInserter } from '../platform/db/row-inserter.js';
import type { AnalyticsDimension, AnalyticsTables, BeaconDailyTable } from './analytics.tables.js';

/** One aggregate row: a row of beacon_daily as it is written and read. */
export type DailyAggregate = BeaconDailyTable;

const COLUMNS = [
  'day',
  'purpose',
  'site',
  'dimension',
  'value',
  'views',
  'visitors',
] as const satisfies ReadonlyArray<keyof BeaconDailyTable>;

const DIMENSIONS: ReadonlySet<string> = new Set<AnalyticsDimension>([
  'total',
  'path',
  'referrer',
  'event',
  'campaign',
]);

/** Reads and writes the daily aggregates. */
export class AnalyticsRepository {
  readonly #db: Db;
  readonly #rows = new RowInserter<AnalyticsTables, 'beacon_daily'>('beacon_daily', COLUMNS);

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<AnalyticsTables> {
    return this.#db.executor<AnalyticsTables>(ctx);
  }

  /**
   * Replaces every aggregate of `day` with `rows` (run it in a transaction: a reader sees the old
   * day or the new one, never half of each). Re-running it with the same rows leaves the same table.
   */
  async replaceDay(ctx: Context, day: string, rows: readonly DailyAggregate[]): Promise<void> {
    await this.#q(ctx).deleteFrom('beacon_daily').where('day', '=', day).execute();
    await this.#rows.insert(
      this.#q(ctx),
      rows.map((r) => ({ ...r, day })),
    );
  }

  /** The aggregates of one purpose and site from `from` to `to` (days, both included), by day. */
  async between(
    ctx: Context,
    query: { purpose: string; site: string; from: string; to: string },
  ): Promise<DailyAggregate[]> {
    const rows = await this.#q(ctx)
      .selectFrom('beacon_daily')
      .selectAll()
      .where('purpose', '=', query.purpose)
      .where('site', '=', query.site)
      .where('day', '>=', query.from)
      .where('day', '<=', query.to)
      .orderBy('day')
      .orderBy('dimension')
      .orderBy('views', 'desc')
      .orderBy('value')
      .execute();
    return rows.flatMap((r) =>
      DIMENSIONS.has(r.dimension) ? [{ ...r, views: Number(r.views), visitors: Number(r.visitors) }] : [],
    );
  }

  /** The last day that has aggregates, or `undefined` when none has. */
  async latestDay(ctx: Context): Promise<string | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('beacon_daily')
      .select((eb) => eb.fn.max('day').as('day'))
      .executeTakeFirst();
    return row?.day ?? undefined;
  }
}
