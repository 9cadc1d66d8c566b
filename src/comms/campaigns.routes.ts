/**
 * Campaigns over HTTP (scope mail:send): create a draft, start it, follow it. Bodies are checked by
 * the service (so the TypeScript API checks them too) and refused with `comms.*` codes.
 */
import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../platform/errors.js';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { presentCampaign, presentSend } from './campaigns.presenter.js';
import { MAX_SENDS_PAGE, type CampaignService } from './campaigns.service.js';
import { UUID_PATTERN } from '../platform/ids.js';

/** What the campaign routes use. */
export interface CampaignRoutesDeps {
  campaigns: CampaignService;
  auth: AuthHook;
}

/** Registers `/api/v1/campaigns` and its sub-resources. */
export function registerCampaignRoutes(app: FastifyInstance, deps: CampaignRoutesDeps): void {
  const { campaigns, auth } = deps;
  const tags = ['campaigns'];
  const security = [{ apiKey: [] }];

  /** An unknown or malformed id is "not found" alike: the caller learns nothing from the spelling. */
  const idOf = (raw: string): string => {
    if (!UUID_PATTERN.test(raw)) {
      // Checked by the service too; a malformed id cannot name a campaign.
      return '00000000-0000-0000-0000-000000000000';
    }
    return raw.toLowerCase();
  };

  app.post(
    '/api/v1/campaigns',
    {
      onRequest: auth('mail:send'),
      schema: {
        tags,
        security,
        summary:
          "Create a draft campaign: { name, list (a marketing purpose on e-mail), template: { subject, text, html } (Handlebars with the person's fields), audience: { subjects: [ids] } or { segment: { jurisdiction?, kind? } } }",
      },
    },
    async (request, reply) => {
      const campaign = await campaigns.create(apiContext(request), request.body);
      return reply.status(201).send({ campaign: presentCampaign(campaign) });
    },
  );

  app.post<{ Params: { id: string } }>(
    '/api/v1/campaigns/:id/send',
    {
      onRequest: auth('mail:send'),
      schema: {
        tags,
        security,
        summary: 'Start sending a draft campaign (202: the runner sends it; follow it with GET)',
      },
    },
    async (request, reply) => {
      const { campaign, counts } = await campaigns.start(apiContext(request), idOf(request.params.id));
      return reply.status(202).send({ campaign: presentCampaign(campaign, counts) });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/campaigns/:id',
    {
      onRequest: auth('mail:send'),
      schema: { tags, security, summary: 'A campaign and its sends counted by outcome and skip reason' },
    },
    async (request) => {
      const { campaign, counts } = await campaigns.status(apiContext(request), idOf(request.params.id));
      return { campaign: presentCampaign(campaign, counts) };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { after?: string; limit?: string } }>(
    '/api/v1/campaigns/:id/sends',
    {
      onRequest: auth('mail:send'),
      schema: {
        tags,
        security,
        summary: `A campaign's sends by subject id (status and reason; no addresses), ${MAX_SENDS_PAGE} at most a page`,
      },
    },
    async (request) => {
      const { after, limit } = request.query;
      let n: number | undefined;
      if (limit !== undefined) {
        n = Number(limit);
        if (!/^\d+$/.test(limit)) {
          throw new ValidationError('comms.limit_invalid', `limit must be a whole number, got "${limit}"`, {
            limit,
          });
        }
      }
      const sends = await campaigns.sends(apiContext(request), idOf(request.params.id), {
        after: typeof after === 'string' && after !== '' ? after : undefined,
        limit: n,
      });
      const last = sends[sends.length - 1];
      const full = sends.length === (n ?? 100);
      // `next` is the `after` of the next page; null on the last page.
      return { sends: sends.map(presentSend), next: full && last !== undefined ? last.subjectId : null };
    },
  );
}
