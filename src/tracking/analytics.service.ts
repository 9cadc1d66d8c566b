/**
 * Analytics: the daily aggregates of beacon events and what `GET /api/v1/analytics` answers.
 *
 * The roll-up reads a day's raw events through the beacons repository, opens their sealed fields
 * with the `beacons` key, and replaces that day's aggregates in one transaction: running it again
 * over the same events writes the same numbers. A visitor is a distinct visitor hash of the day
 * (a cookie's keyed hash, or a cookieless hash under that day's salt, or for an e-mail open the keyed
 * hash of the person's subject id); the hashes are counted and never leave the roll-up.
 *
 * What is counted, per purpose and per site (and for all sites together, site "*", whose visitors
 * are counted distinct across sites, not summed):
 * - `total`: page views, and the visitors of pages and events;
 * - `path`, `referrer`: page views and visitors per path and per referrer host;
 * - `event`: events and visitors per event name;
 * - `campaign`: e-mail opens and the people who opened, per campaign (site "*" only: a mail has no
 *   site); opens are not page views.
 */
import type { Manifest } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { ValidationError } from '../platform/errors.js';
import type { AnalyticsRepository, DailyAggregate } from './analytics.repository.js';
import type { AnalyticsDimension } from './analytics.tables.js';
import type { BeaconEventRow, BeaconsRepository } from './beacons.repository.js';
import type { BeaconFields, BeaconSeal } from './beacons.seal.js';

/** The site of the aggregates of all sites together. */
export const ALL_SITES = '*';
/** The longest range one request may ask for, in days. */
export const MAX_RANGE_DAYS = 366;
/** The most values of a dimension one day may list. */
export const MAX_TOP = 100;
/** How far back a roll-up catches up on days it missed (the server was down). */
const CATCH_UP_DAYS = 31;
/** How long after midnight yesterday is still rolled up again. */
const SETTLE_MS = 2 * 3_600_000;
/** Events read per page of a day. */
const PAGE = 5000;
const DAY_MS = 86_400_000;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const SITE = /^[a-z0-9.-]{1,253}(:\d{1,5})?$/;

/** What the service uses. */
export interface AnalyticsServiceDeps {
  db: Transactions;
  repo: AnalyticsRepository;
  /** The raw events (read only). */
  events: Pick<BeaconsRepository, 'eventsOfDay'>;
  /** Opens the events' sealed fields. */
  seal: Pick<BeaconSeal, 'open'>;
  manifest: { readonly manifest: Manifest };
}

/** A query of the aggregates, as the API is given it (strings, checked by {@link AnalyticsService.parseQuery}). */
export interface AnalyticsQueryInput {
  from?: string | undefined;
  to?: string | undefined;
  purpose?: string | undefined;
  site?: string | undefined;
  top?: string | number | undefined;
}

/** A checked query. */
export interface AnalyticsQuery {
  from: string;
  to: string;
  purpose: string;
  /** A site's host, or {@link ALL_SITES}. */
  site: string;
  /** The most values listed per dimension and day. */
  top: number;
}

/** One value of a dimension on a day. */
export interface DimensionCount {
  value: string;
  views: number;
  visitors: number;
}

/** One day of the answer. */
export interface AnalyticsDay {
  day: string;
  views: number;
  visitors: number;
  paths: DimensionCount[];
  referrers: DimensionCount[];
  events: DimensionCount[];
  campaigns: DimensionCount[];
}

/** What {@link AnalyticsService.daily} answers. */
export interface AnalyticsResult {
  query: AnalyticsQuery;
  days: AnalyticsDay[];
}

/** What one roll-up of a day wrote. */
export interface RollUpResult {
  day: string;
  events: number;
  /** Events whose sealed fields did not open (counted without them). */
  unreadable: number;
  rows: number;
}

/**
 * The purposes that have aggregates: those a `web_beacon` collection point serves, and those whose
 * use is measurement (`analytics` or `improvement`: "improve our products and websites").
 */
export function analyticsPurposes(manifest: Manifest): string[] {
  const keys = new Set<string>();
  for (const s of manifest.sources) if (s.kind === 'web_beacon') for (const p of s.purposes) keys.add(p);
  for (const p of manifest.purposes) if (p.use === 'analytics' || p.use === 'improvement') keys.add(p.key);
  return manifest.purposes.filter((p) => keys.has(p.key)).map((p) => p.key);
}

/** The UTC day (`YYYY-MM-DD`) of a moment. */
export function dayOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** The day `n` days after `day` (before, for a negative `n`). */
export function addDays(day: string, n: number): string {
  return dayOf(new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS));
}

/** Rolls beacon events up into daily aggregates, and answers queries of them. */
export class AnalyticsService {
  readonly #deps: AnalyticsServiceDeps;

  constructor(deps: AnalyticsServiceDeps) {
    this.#deps = deps;
  }

  /** The purposes that have aggregates in the manifest in force. */
  purposes(): string[] {
    return analyticsPurposes(this.#deps.manifest.manifest);
  }

  /**
   * Rolls up one day: reads its events (in pages), counts them, and replaces the day's aggregates in
   * one transaction. Idempotent: the same events give the same rows. An event whose seal does not
   * open (its key version is gone, the row was altered) still counts in the totals, without its
   * fields, and is counted in `unreadable`: one bad row must not stop a day's numbers.
   */
  async rollUpDay(ctx: Context, day: string, signal?: AbortSignal): Promise<RollUpResult> {
    const counter = new DayCounter();
    let afterId: string | undefined;
    let events = 0;
    let unreadable = 0;
    for (;;) {
      signal?.throwIfAborted();
      const page = await this.#deps.events.eventsOfDay(ctx, day, {
        limit: PAGE,
        ...(afterId !== undefined ? { afterId } : {}),
      });
      for (const e of page) {
        const fields = this.#fieldsOf(e);
        if (fields === undefined) unreadable++;
        counter.add(e, fields ?? {});
      }
      events += page.length;
      if (page.length < PAGE) break;
      afterId = page[page.length - 1]?.id;
    }
    // Every purpose that has aggregates gets its all-sites totals, zero on a quiet day: the day is
    // then known to be rolled up (the catch-up starts after it).
    for (const purpose of this.purposes()) counter.touch(purpose);
    const rows = counter.rows(day);
    await this.#deps.db.transaction(ctx, (tctx) => this.#deps.repo.replaceDay(tctx, day, rows));
    return { day, events, unreadable, rows: rows.length };
  }

  /**
   * Rolls up today so far, and every earlier day since the last one rolled up (at most {@link
   * CATCH_UP_DAYS} back): the first run after midnight completes yesterday. Yesterday is rolled up
   * again during the first {@link SETTLE_MS} of today too, for beacons that were committed just
   * after midnight; later runs read today's events only.
   */
  async rollUpRecent(ctx: Context, signal?: AbortSignal): Promise<RollUpResult[]> {
    const now = ctx.clock.now();
    const today = dayOf(now);
    const latest = await this.#deps.repo.latestDay(ctx);
    const earliest = addDays(today, -CATCH_UP_DAYS);
    let from = now.getTime() - Date.parse(`${today}T00:00:00Z`) < SETTLE_MS ? addDays(today, -1) : today;
    if (latest !== undefined && latest < from) from = latest < earliest ? earliest : latest;
    const out: RollUpResult[] = [];
    for (let day = from; day <= today; day = addDays(day, 1))
      out.push(await this.rollUpDay(ctx, day, signal));
    return out;
  }

  /**
   * Checks a query: `from` and `to` days (`YYYY-MM-DD`, `to` not before `from`, at most
   * {@link MAX_RANGE_DAYS} days), a purpose that has aggregates, an optional site host and `top`.
   * Throws `analytics.query_invalid` listing every problem, each with its parameter.
   */
  parseQuery(input: AnalyticsQueryInput): AnalyticsQuery {
    const problems: Array<{ path: string; message: string }> = [];
    const day = (name: 'from' | 'to'): string => {
      const v = input[name];
      if (v === undefined || v === '')
        problems.push({ path: name, message: `give ${name} as a day, YYYY-MM-DD` });
      else if (!DAY.test(v) || !isCalendarDay(v))
        problems.push({ path: name, message: `${name} must be a day, YYYY-MM-DD (got "${v.slice(0, 40)}")` });
      else return v;
      return '';
    };
    const from = day('from');
    const to = day('to');
    if (from !== '' && to !== '') {
      const span = (Date.parse(to) - Date.parse(from)) / DAY_MS + 1;
      if (span < 1) problems.push({ path: 'to', message: `to (${to}) is before from (${from})` });
      else if (span > MAX_RANGE_DAYS)
        problems.push({
          path: 'to',
          message: `ask for at most ${MAX_RANGE_DAYS} days at a time (got ${span})`,
        });
    }
    const purposes = this.purposes();
    const purpose = input.purpose ?? '';
    if (!purposes.includes(purpose)) {
      problems.push({
        path: 'purpose',
        message:
          purpose === ''
            ? `give purpose: one of ${purposes.map((p) => `"${p}"`).join(', ')}`
            : `purpose "${purpose.slice(0, 60)}" has no aggregates; the purposes that have are ${purposes.map((p) => `"${p}"`).join(', ')}`,
      });
    }
    const site = input.site === undefined || input.site === '' ? ALL_SITES : input.site.toLowerCase();
    if (site !== ALL_SITES && !SITE.test(site))
      problems.push({ path: 'site', message: 'site must be a host name, as in www.example.com' });
    let top = 10;
    if (input.top !== undefined && input.top !== '') {
      top = Number(input.top);
      if (!Number.isInteger(top) || top < 1 || top > MAX_TOP)
        problems.push({ path: 'top', message: `top must be a whole number from 1 to ${MAX_TOP}` });
    }
    if (problems.length > 0) {
      throw new ValidationError(
        'analytics.query_invalid',
        `the query is not valid: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
        { problems },
      );
    }
    return { from, to, purpose, site, top };
  }

  /**
   * Every day from `from` to `to` (days without events count zero), with the top values of each
   * dimension by views. The caller has checked that the system may see the purpose.
   */
  async daily(ctx: Context, query: AnalyticsQuery): Promise<AnalyticsResult> {
    const rows = await this.#deps.repo.between(ctx, query);
    const byDay = new Map<string, AnalyticsDay>();
    for (let day = query.from; day <= query.to; day = addDays(day, 1)) {
      byDay.set(day, { day, views: 0, visitors: 0, paths: [], referrers: [], events: [], campaigns: [] });
    }
    for (const r of rows) {
      const d = byDay.get(r.day);
      if (d === undefined) continue;
      if (r.dimension === 'total') {
        d.views = r.views;
        d.visitors = r.visitors;
        continue;
      }
      const list = listOf(d, r.dimension);
      // Rows come ordered by views within a dimension: the first `top` are the top ones.
      if (list.length < query.top) list.push({ value: r.value, views: r.views, visitors: r.visitors });
    }
    return { query, days: [...byDay.values()] };
  }

  #fieldsOf(e: BeaconEventRow): BeaconFields | undefined {
    try {
      return this.#deps.seal.open(e.id, e.sealed);
    } catch {
      return undefined;
    }
  }
}

/** True for a day that is on the calendar (not 2026-02-30). */
function isCalendarDay(day: string): boolean {
  const t = Date.parse(`${day}T00:00:00Z`);
  return !Number.isNaN(t) && dayOf(new Date(t)) === day;
}

function listOf(d: AnalyticsDay, dimension: Exclude<AnalyticsDimension, 'total'>): DimensionCount[] {
  switch (dimension) {
    case 'path':
      return d.paths;
    case 'referrer':
      return d.referrers;
    case 'event':
      return d.events;
    case 'campaign':
      return d.campaigns;
  }
}

/** Views and distinct visitors of one (purpose, site, dimension, value). */
interface Tally {
  views: number;
  visitors: Set<string>;
}

/** Counts one day's events. */
class DayCounter {
  /** `purpose \0 site \0 dimension \0 value` → tally. */
  readonly #tallies = new Map<string, Tally>();

  add(e: BeaconEventRow, fields: BeaconFields): void {
    if (e.channel === 'email') {
      if (e.campaignId !== null) this.#count(e.purpose, ALL_SITES, 'campaign', e.campaignId, e.visitor, 1);
      return;
    }
    for (const site of [e.site, ALL_SITES]) {
      if (e.kind === 'pageview') {
        this.#count(e.purpose, site, 'total', '', e.visitor, 1);
        if (fields.path !== undefined) this.#count(e.purpose, site, 'path', fields.path, e.visitor, 1);
        if (fields.referrer !== undefined && fields.referrer !== '')
          this.#count(e.purpose, site, 'referrer', fields.referrer, e.visitor, 1);
      } else {
        // An event is no page view, but its visitor visited.
        this.#count(e.purpose, site, 'total', '', e.visitor, 0);
        if (fields.event !== undefined) this.#count(e.purpose, site, 'event', fields.event, e.visitor, 1);
      }
    }
  }

  /** Makes sure the purpose's all-sites totals are written, zero when nothing was counted. */
  touch(purpose: string): void {
    const key = `${purpose}\0${ALL_SITES}\0total\0`;
    if (!this.#tallies.has(key)) this.#tallies.set(key, { views: 0, visitors: new Set() });
  }

  #count(
    purpose: string,
    site: string,
    dimension: AnalyticsDimension,
    value: string,
    visitor: string,
    views: number,
  ): void {
    const key = `${purpose}\0${site}\0${dimension}\0${value}`;
    let tally = this.#tallies.get(key);
    if (tally === undefined) this.#tallies.set(key, (tally = { views: 0, visitors: new Set() }));
    tally.views += views;
    tally.visitors.add(visitor);
  }

  rows(day: string): DailyAggregate[] {
    const out: DailyAggregate[] = [];
    for (const [key, tally] of this.#tallies) {
      const [purpose = '', site = '', dimension = 'total', value = ''] = key.split('\0');
      out.push({
        day,
        purpose,
        site,
        dimension: dimension as AnalyticsDimension,
        value,
        views: tally.views,
        visitors: tally.visitors.size,
      });
    }
    return out;
  }
}
