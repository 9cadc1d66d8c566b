/**
 * Collection points over HTTP. Fastify's JSON schemas check the envelope (an object with a `data`
 * object, a subject reference of the right types); what the manifest declares for the source is
 * checked by the collection service, which reports every problem with its JSON path. Unknown
 * top-level keys are left to the service on purpose: Fastify would silently strip them.
 */
import type { FastifyInstance } from 'fastify';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { presentCollectResult, presentEventsResult, presentSourceDefinition } from './collect.presenter.js';
import type { CollectBody, CollectEventsBody, CollectService } from './collect.service.js';

/** What the collection routes use. */
export interface CollectRoutesDeps {
  collect: CollectService;
  auth: AuthHook;
}

const sourceParams = {
  type: 'object',
  properties: { source: { type: 'string', minLength: 1, maxLength: 200 } },
  required: ['source'],
} as const;

const subjectReference = {
  type: 'object',
  description: 'the subject, by id or by one identifier (identifiers are compared by keyed hash)',
  properties: {
    id: { type: 'string', format: 'uuid' },
    email: { type: 'string', maxLength: 320 },
    account_id: { type: 'string', maxLength: 200 },
    phone: { type: 'string', maxLength: 40 },
  },
} as const;

const nullableString = { type: ['string', 'null'] } as const;

/** Registers `/api/v1/collect/:source` (GET, POST) and `/api/v1/collect/:source/events`. */
export function registerCollectRoutes(app: FastifyInstance, deps: CollectRoutesDeps): void {
  const { collect, auth } = deps;

  app.get<{ Params: { source: string } }>(
    '/api/v1/collect/:source',
    {
      // Reading what a collection point is reads the manifest, not anyone's data: a read scope, so a
      // form renderer needs no key that may write.
      onRequest: auth('manifest:read'),
      schema: {
        tags: ['collect'],
        summary: 'A collection point: its fields, purposes, retention and notice, as a form shows them',
        security: [{ apiKey: [] }],
        params: sourceParams,
        response: {
          200: {
            type: 'object',
            properties: {
              key: { type: 'string' },
              name: { type: 'string' },
              kind: { type: 'string' },
              voluntary: { type: 'boolean' },
              description: nullableString,
              fields: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    category: { type: 'string' },
                    categoryName: { type: 'string' },
                    required: { type: 'boolean' },
                    description: nullableString,
                    passedTo: {
                      type: ['object', 'null'],
                      properties: { key: { type: 'string' }, name: { type: 'string' } },
                    },
                  },
                },
              },
              purposes: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    key: { type: 'string' },
                    name: { type: 'string' },
                    description: { type: 'string' },
                  },
                },
              },
              retention: {
                type: 'object',
                properties: { period: { type: 'string' }, text: { type: 'string' } },
              },
              notice: nullableString,
              privacyPolicy: {
                type: 'object',
                properties: {
                  url: { type: 'string' },
                  version: { type: 'string' },
                  effective: { type: 'string' },
                },
              },
            },
          },
        },
      },
    },
    (request) => presentSourceDefinition(collect.describeSource(apiContext(request), request.params.source)),
  );

  app.post<{ Params: { source: string }; Body: CollectBody }>(
    '/api/v1/collect/:source',
    {
      onRequest: auth('collect:write'),
      schema: {
        tags: ['collect'],
        summary:
          'Submit data at a collection point; undeclared fields and card numbers are refused, nothing is stored on error',
        security: [{ apiKey: [] }],
        params: sourceParams,
        body: {
          type: 'object',
          properties: {
            subject: subjectReference,
            jurisdiction: { type: 'string', maxLength: 10, description: 'ISO country code, or "EU"' },
            data: { type: 'object', description: "the collection point's fields, by name" },
          },
          required: ['data'],
        },
        response: {
          201: {
            type: 'object',
            properties: {
              subject: {
                type: 'object',
                properties: { id: { type: 'string' }, created: { type: 'boolean' } },
              },
              record: { type: 'object', properties: { id: { type: 'string' } } },
              card: {
                type: 'object',
                properties: {
                  token: { type: 'string' },
                  brand: { type: 'string' },
                  lastFour: { type: 'string' },
                  expiry: { type: 'string' },
                },
              },
            },
            required: ['subject', 'record'],
          },
        },
      },
    },
    async (request, reply) => {
      const result = await collect.collect(apiContext(request), request.params.source, request.body);
      return reply.status(201).send(presentCollectResult(result));
    },
  );

  app.post<{ Params: { source: string }; Body: CollectEventsBody }>(
    '/api/v1/collect/:source/events',
    {
      onRequest: auth('collect:write'),
      schema: {
        tags: ['collect'],
        summary:
          'Submit up to 1,000 product-use events; undeclared fields are dropped and reported, IP addresses truncated',
        security: [{ apiKey: [] }],
        params: sourceParams,
        body: {
          type: 'object',
          properties: {
            subject: subjectReference,
            // No maxItems here: above 1,000 the service answers 413 collect.batch_too_large.
            events: { type: 'array', items: { type: 'object' } },
          },
          required: ['subject', 'events'],
        },
        response: {
          201: {
            type: 'object',
            properties: {
              accepted: { type: 'integer' },
              records: { type: 'array', items: { type: 'string' } },
              dropped: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    index: { type: 'integer' },
                    field: { type: 'string' },
                    path: { type: 'string' },
                  },
                },
              },
            },
            required: ['accepted', 'records', 'dropped'],
          },
        },
      },
    },
    async (request, reply) => {
      const result = await collect.collectEvents(apiContext(request), request.params.source, request.body);
      return reply.status(201).send(presentEventsResult(result));
    },
  );
}
