/**
 * Acknowledgements over HTTP, for the operator recording what a processor's signatory sent back:
 * `POST /api/v1/recipients/:key/acknowledgements` records one (and lifts the pauses waiting for it),
 * `GET` the same path lists the recipient's standing, acknowledgements, pauses and notices. Both
 * need the `recipients:admin` scope.
 */
import type { FastifyInstance } from 'fastify';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { presentAcknowledgement, presentRecord } from './acknowledgements.presenter.js';
import type { AcknowledgementService } from './acknowledgements.service.js';

/** What the acknowledgement routes use. */
export interface AcknowledgementRoutesDeps {
  acknowledgements: AcknowledgementService;
  auth: AuthHook;
}

const params = {
  type: 'object',
  properties: { key: { type: 'string', minLength: 1, maxLength: 100 } },
  required: ['key'],
} as const;

const acknowledgementSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    recipient: { type: 'string' },
    policyVersion: { type: 'string' },
    manifestVersion: { type: 'integer' },
    actor: { type: 'object', additionalProperties: true },
    acknowledgedBy: { type: 'string' },
    method: { type: 'string', enum: ['cli', 'api', 'agreement'] },
    acknowledgedAt: { type: 'string', format: 'date-time' },
  },
  required: [
    'id',
    'recipient',
    'policyVersion',
    'manifestVersion',
    'actor',
    'acknowledgedBy',
    'method',
    'acknowledgedAt',
  ],
} as const;

/** Registers the acknowledgement routes. */
export function registerAcknowledgementRoutes(app: FastifyInstance, deps: AcknowledgementRoutesDeps): void {
  const { acknowledgements, auth } = deps;

  app.post<{ Params: { key: string }; Body: { version: string; by: string } }>(
    '/api/v1/recipients/:key/acknowledgements',
    {
      onRequest: auth('recipients:admin'),
      schema: {
        tags: ['recipients'],
        summary: "Records a processor's or affiliate's acknowledgement of the policy version in force",
        security: [{ apiKey: [] }],
        params,
        body: {
          type: 'object',
          properties: {
            version: {
              type: 'string',
              minLength: 1,
              maxLength: 100,
              description: 'the policy version in force',
            },
            by: {
              type: 'string',
              minLength: 1,
              maxLength: 200,
              description: 'who acknowledged for the recipient',
            },
          },
          required: ['version', 'by'],
          additionalProperties: false,
        },
        response: {
          201: {
            type: 'object',
            properties: {
              acknowledgement: acknowledgementSchema,
              lifted: { type: 'array', items: { type: 'string' }, description: 'the pauses it lifted' },
            },
            required: ['acknowledgement', 'lifted'],
          },
        },
      },
    },
    async (request, reply) => {
      const result = await acknowledgements.acknowledge(apiContext(request), {
        recipient: request.params.key,
        version: request.body.version,
        by: request.body.by,
        method: 'api',
      });
      return reply
        .status(201)
        .send({ acknowledgement: presentAcknowledgement(result.acknowledgement), lifted: result.lifted });
    },
  );

  app.get<{ Params: { key: string } }>(
    '/api/v1/recipients/:key/acknowledgements',
    {
      onRequest: auth('recipients:admin'),
      schema: {
        tags: ['recipients'],
        summary: "A recipient's standing, acknowledgements, pauses and notices, newest first",
        security: [{ apiKey: [] }],
        params,
        response: {
          200: {
            type: 'object',
            properties: {
              recipient: { type: 'string' },
              standing: { type: 'object', additionalProperties: true },
              acknowledgements: { type: 'array', items: acknowledgementSchema },
              pauses: { type: 'array', items: { type: 'object', additionalProperties: true } },
              notices: { type: 'array', items: { type: 'object', additionalProperties: true } },
            },
            required: ['recipient', 'standing', 'acknowledgements', 'pauses', 'notices'],
          },
        },
      },
    },
    async (request) =>
      presentRecord(await acknowledgements.recordOf(apiContext(request), request.params.key)),
  );
}
