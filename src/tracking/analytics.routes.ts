/**
 * `GET /api/v1/analytics`: the daily aggregates of a purpose (scope `analytics:read`). The key's
 * system must serve the purpose asked for (the system gate); the presenter decides what leaves.
 */
import type { FastifyInstance } from 'fastify';
import type { SystemGate } from '../manifest/systems.gate.js';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { presentAnalytics } from './analytics.presenter.js';
import { MAX_RANGE_DAYS, MAX_TOP, type AnalyticsService } from './analytics.service.js';

/** What the analytics routes use. */
export interface AnalyticsRoutesDeps {
  analytics: AnalyticsService;
  auth: AuthHook;
  systems: Pick<SystemGate, 'systemOf' | 'requirePurpose'>;
}

const countSchema = {
  type: 'object',
  properties: { value: { type: 'string' }, views: { type: 'integer' }, visitors: { type: 'integer' } },
  required: ['value', 'views', 'visitors'],
} as const;
const counts = { type: 'array', items: countSchema } as const;

/** Registers the analytics routes. */
export function registerAnalyticsRoutes(app: FastifyInstance, deps: AnalyticsRoutesDeps): void {
  const { analytics, auth, systems } = deps;
  app.get<{ Querystring: Record<string, string | undefined> }>(
    '/api/v1/analytics',
    {
      onRequest: auth('analytics:read'),
      schema: {
        summary: 'Page views, visitors, paths, referrers, events and e-mail opens per day',
        description:
          `Page views, visitors, top paths, referrers, events and e-mail opens per day, from the daily roll-up of beacons. ` +
          `At most ${MAX_RANGE_DAYS} days at a time; the key's system must serve the purpose.`,
        tags: ['analytics'],
        security: [{ apiKey: [] }],
        // Checked by the service (every problem at once, in the one error shape), after the system.
        querystring: {
          type: 'object',
          properties: {
            from: { type: 'string', description: 'first day, YYYY-MM-DD (UTC)' },
            to: { type: 'string', description: 'last day, YYYY-MM-DD (UTC), included' },
            purpose: { type: 'string', description: 'a purpose that has aggregates (site-analytics ...)' },
            site: { type: 'string', description: "a site's host; absent: all sites together" },
            top: {
              type: 'string',
              description: `values listed per dimension and day (1 to ${MAX_TOP}, default 10)`,
            },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              purpose: { type: 'string' },
              site: { type: 'string' },
              from: { type: 'string' },
              to: { type: 'string' },
              days: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    day: { type: 'string' },
                    views: { type: 'integer' },
                    visitors: { type: 'integer' },
                    paths: counts,
                    referrers: counts,
                    events: counts,
                    campaigns: counts,
                  },
                  required: ['day', 'views', 'visitors', 'paths', 'referrers', 'events', 'campaigns'],
                },
              },
              totals: { type: 'object', properties: { views: { type: 'integer' } }, required: ['views'] },
            },
            required: ['purpose', 'site', 'from', 'to', 'days', 'totals'],
          },
        },
      },
    },
    async (request) => {
      const ctx = apiContext(request);
      // Whose call this is comes first: an operator key learns nothing of the query's rules.
      systems.systemOf(ctx);
      const q = request.query;
      const query = analytics.parseQuery({
        from: q.from,
        to: q.to,
        purpose: q.purpose,
        site: q.site,
        top: q.top,
      });
      systems.requirePurpose(ctx, query.purpose);
      return presentAnalytics(await analytics.daily(ctx, query));
    },
  );
}
