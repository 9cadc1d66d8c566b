/**
 * Legal requests over HTTP: intake, review, disclosure and closure under `/api/v1/legal-requests`
 * (scopes legal:read, legal:write, legal:review), and the public transparency report
 * (`/privacy/transparency`, as a page, JSON and CSV; no key, only periods that are over).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Manifest } from '../manifest/manifest.schema.js';
import { createContext } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import { escapeHtml } from '../platform/html.js';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { presentLegalNotice, presentLegalRequest } from './legal.presenter.js';
import { recentPeriods, reportCsv, reportHtml } from './legal.report.js';
import type { LegalService } from './legal.service.js';

/** What the legal routes use. */
export interface LegalRoutesDeps {
  legal: LegalService;
  auth: AuthHook;
  manifest: { readonly manifest: Manifest };
}

const anyBody = { type: 'object', additionalProperties: true } as const;
const idParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
  required: ['id'],
} as const;
const periodQuery = {
  type: 'object',
  properties: {
    period: {
      type: 'string',
      maxLength: 20,
      description: 'YYYY, YYYY-H1 or YYYY-H2 (default: the last half-year that is over)',
    },
  },
  additionalProperties: false,
} as const;

/** Registers the legal requests' API and the transparency report. */
export function registerLegalRoutes(app: FastifyInstance, deps: LegalRoutesDeps): void {
  const { legal, auth } = deps;
  const view = async (ctx: ReturnType<typeof apiContext>, id: string) => {
    const r = await legal.getOrThrow(ctx, id);
    const now = ctx.clock.now();
    const notices = await legal.notices(ctx, r.id);
    return {
      request: presentLegalRequest(r, now),
      disclosures: notices.map((n) => presentLegalNotice(n, r, now)),
    };
  };

  app.post<{ Body: unknown }>(
    '/api/v1/legal-requests',
    {
      onRequest: auth('legal:write'),
      schema: {
        tags: ['legal-requests'],
        summary:
          'Record a request from an authority (its scope, legal basis, deadline and any prohibition on telling the people concerned)',
        security: [{ apiKey: [] }],
        body: anyBody,
      },
    },
    async (request, reply) => {
      const ctx = apiContext(request);
      const r = await legal.receive(ctx, request.body);
      return reply.status(201).send({ request: presentLegalRequest(r, ctx.clock.now()) });
    },
  );

  app.get<{ Querystring: { open?: boolean; limit?: number; before?: string } }>(
    '/api/v1/legal-requests',
    {
      onRequest: auth('legal:read'),
      schema: {
        tags: ['legal-requests'],
        summary: 'Legal requests, newest first',
        security: [{ apiKey: [] }],
        querystring: {
          type: 'object',
          properties: {
            open: { type: 'boolean', description: 'true: open requests only; false: closed ones only' },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            before: { type: 'string', maxLength: 100, description: 'the last id of the previous page' },
          },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const ctx = apiContext(request);
      const list = await legal.list(ctx, request.query);
      const now = ctx.clock.now();
      return { requests: list.map((r) => presentLegalRequest(r, now)) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/legal-requests/:id',
    {
      onRequest: auth('legal:read'),
      schema: {
        tags: ['legal-requests'],
        summary: 'One legal request, with the people whose data left for it and their notices',
        security: [{ apiKey: [] }],
        params: idParams,
      },
    },
    async (request) => view(apiContext(request), request.params.id),
  );

  const review = (
    path: string,
    summary: string,
    act: (ctx: ReturnType<typeof apiContext>, id: string, body: Record<string, unknown>) => Promise<unknown>,
    scope: 'legal:review' | 'legal:write' = 'legal:review',
  ) =>
    app.post<{ Params: { id: string }; Body: Record<string, unknown> | undefined }>(
      `/api/v1/legal-requests/:id/${path}`,
      {
        onRequest: auth(scope),
        schema: {
          tags: ['legal-requests'],
          summary,
          security: [{ apiKey: [] }],
          params: idParams,
          body: anyBody,
        },
      },
      async (request) => {
        const ctx = apiContext(request);
        const answer = await act(ctx, request.params.id, request.body ?? {});
        return {
          ...(await view(ctx, request.params.id)),
          ...(answer === undefined ? {} : { disclosure: answer }),
        };
      },
    );

  review('approve', 'Approve a request as asked (a reviewer other than who recorded it)', async (ctx, id) => {
    await legal.approve(ctx, id);
    return undefined;
  });
  review(
    'narrow',
    'Approve part of a request: some of its subjects and categories, never more',
    async (ctx, id, body) => {
      await legal.narrow(ctx, id, { subjects: body.subjects, categories: body.categories });
      return undefined;
    },
  );
  review('reject', 'Reject a request with a reason code', async (ctx, id, body) => {
    await legal.reject(ctx, id, body.reason);
    return undefined;
  });
  review('close', 'Close a request: nothing more leaves for it', async (ctx, id) => {
    await legal.close(ctx, id);
    return undefined;
  });
  review(
    'notice',
    'Change the notice terms when the authority extends, ends or lifts a prohibition on telling the people concerned',
    async (ctx, id, body) => {
      await legal.setNoticeTerms(ctx, id, body);
      return undefined;
    },
    'legal:write',
  );
  review(
    'disclose',
    'Disclose the approved minimum through the share gate (recipient authorities, purpose legal-compliance)',
    async (ctx, id, body) =>
      (await legal.disclose(ctx, id, { fields: body.fields, subjects: body.subjects })).result,
    'legal:write',
  );

  // The public report: no key, the same for everyone, so a shared cache may keep it a while.
  const organization = () => deps.manifest.manifest.organization.name;
  const publicCtx = () => createContext({ kind: 'anonymous' });

  app.get<{ Querystring: { period?: string } }>(
    '/privacy/transparency',
    { schema: { hide: true, querystring: periodQuery } },
    async (request, reply) => {
      const ctx = publicCtx();
      try {
        const report = await legal.report(ctx, request.query.period);
        return await publicAnswer(reply, 'text/html; charset=utf-8').send(
          reportHtml(report, { organization: organization(), periods: recentPeriods(ctx.clock.now()) }),
        );
      } catch (err) {
        if (!(err instanceof PledgeError) || err.status >= 500) throw err;
        return reply
          .status(err.status)
          .header('content-type', 'text/html; charset=utf-8')
          .header('content-language', 'en')
          .send(
            `<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Transparency report</title><link rel="stylesheet" href="/assets/policy.css"></head>\n<body><main><h1>Transparency report</h1><p>${escapeHtml(err.message)}</p><p><a href="/privacy/transparency">The latest report</a></p></main></body>\n</html>\n`,
          );
      }
    },
  );

  app.get<{ Querystring: { period?: string } }>(
    '/privacy/transparency.json',
    { schema: { hide: true, querystring: periodQuery } },
    async (request, reply) => {
      const report = await legal.report(publicCtx(), request.query.period);
      return publicAnswer(reply, 'application/json; charset=utf-8').send(JSON.stringify(report));
    },
  );

  app.get<{ Querystring: { period?: string } }>(
    '/privacy/transparency.csv',
    { schema: { hide: true, querystring: periodQuery } },
    async (request, reply) => {
      const report = await legal.report(publicCtx(), request.query.period);
      return publicAnswer(reply, 'text/csv; charset=utf-8; header=present')
        .header('content-disposition', `attachment; filename="transparency-${report.period.key}.csv"`)
        .send(reportCsv(report));
    },
  );
}

function publicAnswer(reply: FastifyReply, type: string): FastifyReply {
  return reply
    .header('content-type', type)
    .header('cache-control', 'public, max-age=300')
    .header('content-language', 'en');
}
