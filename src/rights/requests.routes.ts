/**
 * Data-subject requests over HTTP: intake by a declared system (`POST /api/v1/requests`, scope
 * requests:submit; the person still verifies by code) and the staff queue (`GET /api/v1/requests`,
 * `GET /api/v1/requests/:id`, scope requests:read; approve, extend, reject, retry and complete as
 * POSTs, scope requests:write).
 */
import type { FastifyInstance } from 'fastify';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import type { RequestStatus } from './requests.repository.js';
import { presentEvent, presentRequest, presentStep } from './requests.presenter.js';
import type { RequestView, RequestsService } from './requests.service.js';

/** What the routes use. */
export interface RequestRoutesDeps {
  requests: RequestsService;
  auth: AuthHook;
}

/** Codes per hour a system may have sent for the people it files for. */
export const API_CODES_PER_HOUR = 10_000;

const anyBody = { type: 'object', additionalProperties: true } as const;
const idParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
  required: ['id'],
} as const;

function present(view: RequestView, now: Date): Record<string, unknown> {
  return {
    request: presentRequest(view.request, now),
    steps: view.steps.map(presentStep),
    events: view.events.map(presentEvent),
  };
}

/** Registers the requests' API. */
export function registerRequestRoutes(app: FastifyInstance, deps: RequestRoutesDeps): void {
  const { requests, auth } = deps;

  app.post<{ Body: unknown }>(
    '/api/v1/requests',
    {
      onRequest: auth('requests:submit'),
      schema: {
        tags: ['requests'],
        summary:
          "File a person's request (type, email and/or phone, jurisdiction, details); codes go to each identifier, and the answer is the same whether or not the person is known",
        security: [{ apiKey: [] }],
        body: anyBody,
      },
    },
    async (request, reply) => {
      const ctx = apiContext(request);
      const system = ctx.system ?? ctx.actor.kind;
      const out = await requests.receive(ctx, request.body, {
        agent: `system:${system}`,
        ip: `system:${system}`,
        clientLimit: API_CODES_PER_HOUR,
      });
      return reply.status(202).send({ request: { id: out.requestId, status: 'verifying' } });
    },
  );

  app.get<{
    Querystring: { due?: string; status?: string; stalled?: boolean; all?: boolean; limit?: number };
  }>(
    '/api/v1/requests',
    {
      onRequest: auth('requests:read'),
      schema: {
        tags: ['requests'],
        summary: 'The staff queue: open requests, soonest due first',
        security: [{ apiKey: [] }],
        querystring: {
          type: 'object',
          properties: {
            due: {
              type: 'string',
              maxLength: 10,
              description:
                'a window like 7d, 48h, 2w or P7D: requests whose answer or unconfirmed receipt is due within it, overdue included',
            },
            status: {
              type: 'string',
              enum: ['verifying', 'verified', 'running', 'waiting', 'done', 'rejected', 'failed'],
            },
            stalled: { type: 'boolean' },
            all: { type: 'boolean', description: 'closed requests too' },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
          },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const ctx = apiContext(request);
      const list = await requests.list(ctx, {
        due: request.query.due,
        status: request.query.status as RequestStatus | undefined,
        stalled: request.query.stalled,
        all: request.query.all,
        limit: request.query.limit,
      });
      const now = ctx.clock.now();
      const within = requests.dueWindowMs(request.query.due);
      return { requests: list.map((r) => presentRequest(r, now, within)) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/requests/:id',
    {
      onRequest: auth('requests:read'),
      schema: {
        tags: ['requests'],
        summary: 'One request, with its steps (status, attempts, errors, due dates) and events',
        security: [{ apiKey: [] }],
        params: idParams,
      },
    },
    async (request) => {
      const ctx = apiContext(request);
      return present(await requests.view(ctx, request.params.id), ctx.clock.now());
    },
  );

  const act = (
    path: string,
    summary: string,
    run: (
      ctx: ReturnType<typeof apiContext>,
      id: string,
      body: Record<string, unknown>,
    ) => Promise<RequestView>,
  ) =>
    app.post<{ Params: { id: string }; Body: Record<string, unknown> | undefined }>(
      `/api/v1/requests/:id/${path}`,
      {
        onRequest: auth('requests:write'),
        schema: { tags: ['requests'], summary, security: [{ apiKey: [] }], params: idParams, body: anyBody },
      },
      async (request) => {
        const ctx = apiContext(request);
        return present(await run(ctx, request.params.id, request.body ?? {}), ctx.clock.now());
      },
    );

  act('approve', "Start a verified request's steps", (ctx, id) => requests.approve(ctx, id));
  act(
    'extend',
    'Extend the due date with a reason code (complexity, volume, stores); the requester is told why',
    (ctx, id, body) => requests.extend(ctx, id, body.reason),
  );
  act('reject', 'Reject a request with a reason code', (ctx, id, body) =>
    requests.reject(ctx, id, body.reason),
  );
  act('retry', 'Queue the failed step again', (ctx, id) => requests.retry(ctx, id));
  act(
    'complete',
    'Confirm a task done by hand or by another system (body: { step } or the first waiting one)',
    (ctx, id, body) => requests.completeTask(ctx, id, typeof body.step === 'string' ? body.step : undefined),
  );
}
