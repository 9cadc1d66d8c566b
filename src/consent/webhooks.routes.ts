/** The webhook delivery log over HTTP, for administrators. */
import type { FastifyInstance } from 'fastify';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { presentDelivery } from './webhooks.presenter.js';
import { DELIVERY_STATUSES, type DeliveryStatus } from './webhooks.repository.js';
import { MAX_DELIVERIES_PAGE, type WebhookService } from './webhooks.service.js';

/** What the webhook routes use. */
export interface WebhookRoutesDeps {
  webhooks: WebhookService;
  auth: AuthHook;
}

const deliverySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    webhook: { type: 'string' },
    eventId: { type: 'string' },
    eventType: { type: 'string' },
    status: { type: 'string', enum: [...DELIVERY_STATUSES] },
    attempts: { type: 'integer' },
    nextAttemptAt: { type: ['string', 'null'], format: 'date-time' },
    lastAttemptAt: { type: ['string', 'null'], format: 'date-time' },
    lastStatus: { type: ['string', 'null'] },
    createdAt: { type: 'string', format: 'date-time' },
    deliveredAt: { type: ['string', 'null'], format: 'date-time' },
  },
  required: [
    'id',
    'webhook',
    'eventId',
    'eventType',
    'status',
    'attempts',
    'nextAttemptAt',
    'lastAttemptAt',
    'lastStatus',
    'createdAt',
    'deliveredAt',
  ],
} as const;

/** Registers `GET /api/v1/webhooks/deliveries` (scope admin). */
export function registerWebhookRoutes(app: FastifyInstance, deps: WebhookRoutesDeps): void {
  const { webhooks, auth } = deps;

  app.get<{
    Querystring: { status?: DeliveryStatus; webhook?: string; before?: string; limit?: number };
  }>(
    '/api/v1/webhooks/deliveries',
    {
      onRequest: auth('admin'),
      schema: {
        tags: ['webhooks'],
        summary: 'The webhook delivery log, newest first (no payloads, no receivers’ answers)',
        security: [{ apiKey: [] }],
        querystring: {
          type: 'object',
          properties: {
            status: { type: 'string', enum: [...DELIVERY_STATUSES] },
            webhook: { type: 'string', minLength: 1, maxLength: 100 },
            before: {
              type: 'string',
              minLength: 1,
              maxLength: 100,
              description: 'the last id of the previous page',
            },
            limit: { type: 'integer', minimum: 1, maximum: MAX_DELIVERIES_PAGE, default: 50 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { deliveries: { type: 'array', items: deliverySchema } },
            required: ['deliveries'],
          },
        },
      },
    },
    async (request) => {
      const { status, webhook, before, limit } = request.query;
      const deliveries = await webhooks.listDeliveries(apiContext(request), {
        status,
        webhook,
        before,
        limit,
      });
      return { deliveries: deliveries.map(presentDelivery) };
    },
  );
}
