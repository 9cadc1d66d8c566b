/** The beacons' SQL: raw events (sealed fields, hashed visitors) and the daily salts. */
import type { Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import { RowInserter } from '../platform/db/row-inserter.js';
import type { BeaconEventsTable, BeaconTables } from './beacons.tables.js';

/** A beacon event as stored (see {@link BeaconEventsTable} for what each field holds). */
export interface BeaconEventRow {
  id: string;
  at: Date;
  /** `YYYY-MM-DD` (UTC) of `at`. */
  day: string;
  purpose: string;
  channel: 'web' | 'email';
  source: string;
  site: string;
  kind: 'pageview' | 'event';
  /** `k<version>:<base64>` (beacons.seal.ts). */
  sealed: string;
  /** Hex keyed hash. */
  visitor: string;
  cookieless: boolean;
  campaignId: string | null;
}

const COLUMNS = [
  'id',
  'at',
  'day',
  'purpose',
  'channel',
  'source',
  'site',
  'kind',
  'sealed',
  'visitor',
  'cookieless',
  'campaign_id',
] as const satisfies ReadonlyArray<keyof BeaconEventsTable>;

/** Reads and writes beacon events and salts. */
export class BeaconsRepository {
  readonly #db: Db;
  readonly #events = new RowInserter<BeaconTables, 'beacon_events'>('beacon_events', COLUMNS);

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<BeaconTables> {
    return this.#db.executor<BeaconTables>(ctx);
  }

  /** Inserts events (a group commit's rows, in one statement per power-of-two chunk). */
  async insertEvents(ctx: Context, rows: readonly BeaconEventRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#events.insert(
      this.#q(ctx),
      rows.map((r) => ({
        id: r.id,
        at: r.at.toISOString(),
        day: r.day,
        purpose: r.purpose,
        channel: r.channel,
        source: r.source,
        site: r.site,
        kind: r.kind,
        sealed: r.sealed,
        visitor: r.visitor,
        cookieless: r.cookieless ? 1 : 0,
        campaign_id: r.campaignId,
      })),
    );
  }

  /**
   * The salt of `day` (base64): the one stored, or `candidate` stored now when the day has none.
   * Race-safe across instances and engines: the insert does nothing when another made the day's
   * salt first, and the read then returns that one, so every instance hashes with the same salt.
   */
  async saltOf(ctx: Context, day: string, candidate: string, now: Date): Promise<string> {
    await this.#q(ctx)
      .insertInto('beacon_salts')
      .values({ day, salt: candidate, created_at: now.toISOString() })
      .onConflict((oc) => oc.column('day').doNothing())
      .execute();
    const row = await this.#q(ctx)
      .selectFrom('beacon_salts')
      .select('salt')
      .where('day', '=', day)
      .executeTakeFirstOrThrow();
    return row.salt;
  }

  /** The salt of `day` if it is still kept, without making one. */
  async getSalt(ctx: Context, day: string): Promise<string | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('beacon_salts')
      .select('salt')
      .where('day', '=', day)
      .executeTakeFirst();
    return row?.salt;
  }

  /** Deletes the salts made before `before`; returns how many (the 48-hour deletion). */
  async deleteSaltsCreatedBefore(ctx: Context, before: Date): Promise<number> {
    const result = await this.#q(ctx)
      .deleteFrom('beacon_salts')
      .where('created_at', '<', before.toISOString())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Up to `limit` events of `day` in id order, after the id `afterId` (for paging through a day). */
  async eventsOfDay(
    ctx: Context,
    day: string,
    options: { afterId?: string; limit: number },
  ): Promise<BeaconEventRow[]> {
    let query = this.#q(ctx).selectFrom('beacon_events').selectAll().where('day', '=', day);
    if (options.afterId !== undefined) query = query.where('id', '>', options.afterId);
    const rows = await query.orderBy('id').limit(options.limit).execute();
    return rows.map(toRow);
  }

  /**
   * Deletes up to `limit` events recorded before `before` (of one source and purpose when given; not
   * of the source and purpose pairs in `except`); returns how many, so an expiry job can go on in
   * batches until it deletes none.
   */
  async deleteEventsBefore(
    ctx: Context,
    before: Date,
    options: {
      source?: string;
      purpose?: string;
      except?: ReadonlyArray<{ source: string; purpose: string }>;
      limit: number;
    },
  ): Promise<number> {
    let ids = this.#q(ctx).selectFrom('beacon_events').select('id').where('at', '<', before.toISOString());
    if (options.source !== undefined) ids = ids.where('source', '=', options.source);
    if (options.purpose !== undefined) ids = ids.where('purpose', '=', options.purpose);
    const except = options.except ?? [];
    if (except.length > 0) {
      ids = ids.where((eb) =>
        eb.not(
          eb.or(except.map((e) => eb.and([eb('source', '=', e.source), eb('purpose', '=', e.purpose)]))),
        ),
      );
    }
    const result = await this.#q(ctx)
      .deleteFrom('beacon_events')
      .where('id', 'in', ids.orderBy('at').limit(options.limit))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function toRow(r: BeaconEventsTable): BeaconEventRow {
  return {
    id: r.id,
    at: new Date(r.at),
    day: r.day,
    purpose: r.purpose,
    channel: r.channel === 'email' ? 'email' : 'web',
    source: r.source,
    site: r.site,
    kind: r.kind === 'event' ? 'event' : 'pageview',
    sealed: r.sealed,
    visitor: r.visitor,
    cookieless: r.cookieless === 1,
    campaignId: r.campaign_id,
  };
}
