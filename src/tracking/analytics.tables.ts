/**
 * The daily aggregates of beacon events: counts per day, purpose, site and dimension, rolled up from
 * the raw events by the `analytics.rollup` job. Nothing personal: no visitor hash, only counts, and
 * the values of the dimensions the manifest declares (a path, a referrer host, an event name, a
 * campaign id). Days are `YYYY-MM-DD` (UTC), in both engines. Only this capability's repositories
 * read these types.
 */

/** What a row counts: a day's totals, or one value of a path, referrer, event or campaign. */
export type AnalyticsDimension = 'total' | 'path' | 'referrer' | 'event' | 'campaign';

/** One row of a day's aggregates. */
export interface BeaconDailyTable {
  day: string;
  purpose: string;
  /** The site's host, "" for events of no known site, "*" for all sites together. */
  site: string;
  dimension: AnalyticsDimension;
  /** The path, referrer host, event name or campaign id; "" for the totals. */
  value: string;
  /** Page views (total, path, referrer), events (event) or e-mail opens (campaign). */
  views: number;
  /** Distinct visitor hashes among them that day (people, for e-mail opens). */
  visitors: number;
}

/** The analytics tables. */
export interface AnalyticsTables {
  beacon_daily: BeaconDailyTable;
}
