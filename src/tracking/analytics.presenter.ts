/**
 * What leaves the server about analytics: counts per day, and the values of the dimensions the
 * manifest declares (paths, referrer hosts, event names, campaign ids). Never a visitor hash, never
 * a raw event, never a subject.
 */
import type { AnalyticsResult, DimensionCount } from './analytics.service.js';

/** One value of a dimension, as the API shows it. */
export interface DimensionCountView {
  value: string;
  views: number;
  visitors: number;
}

/** One day, as the API shows it. */
export interface AnalyticsDayView {
  day: string;
  /** Page views. */
  views: number;
  /** Distinct visitors of pages and events. */
  visitors: number;
  paths: DimensionCountView[];
  referrers: DimensionCountView[];
  events: DimensionCountView[];
  /** E-mail opens per campaign (`views`: opens, `visitors`: people who opened). */
  campaigns: DimensionCountView[];
}

/** The answer of `GET /api/v1/analytics`. */
export interface AnalyticsView {
  purpose: string;
  /** The site's host, or "*" for all sites together. */
  site: string;
  from: string;
  to: string;
  /** Every day of the range, in order. */
  days: AnalyticsDayView[];
  /** The range's page views; its visitors are not summed (one person on two days is one each day). */
  totals: { views: number };
}

/** The API's view of the aggregates. */
export function presentAnalytics(result: AnalyticsResult): AnalyticsView {
  const { query } = result;
  const days = result.days.map((d): AnalyticsDayView => ({
    day: d.day,
    views: d.views,
    visitors: d.visitors,
    paths: d.paths.map(presentCount),
    referrers: d.referrers.map(presentCount),
    events: d.events.map(presentCount),
    campaigns: d.campaigns.map(presentCount),
  }));
  return {
    purpose: query.purpose,
    site: query.site,
    from: query.from,
    to: query.to,
    days,
    totals: { views: days.reduce((n, d) => n + d.views, 0) },
  };
}

function presentCount(c: DimensionCount): DimensionCountView {
  return { value: c.value, views: c.views, visitors: c.visitors };
}
