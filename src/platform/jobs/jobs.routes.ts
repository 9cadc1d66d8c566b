/**
 * The job queue over HTTP, for administrators: list, show, retry and count jobs, and the counts as
 * Prometheus metrics (scope jobs:admin).
 */
import type { FastifyInstance } from 'fastify';
import { apiContext, type AuthHook } from '../http/auth.js';
import { JOB_VIEW_FIELDS, presentJob, presentJobCounts } from './jobs.presenter.js';
import {
  JOB_STATES,
  MAX_JOBS_PAGE,
  type JobCountsResult,
  type JobQueue,
  type JobState,
} from './jobs.service.js';

/** What the job routes use. */
export interface JobRoutesDeps {
  queue: JobQueue;
  auth: AuthHook;
}

const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;

const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    type: { type: 'string' },
    key: { type: ['string', 'null'] },
    state: { type: 'string', enum: [...JOB_STATES] },
    ids: {
      type: 'object',
      description: 'the ids the payload names; nothing else of the payload leaves the server',
      additionalProperties: {
        anyOf: [
          { type: 'string' },
          { type: 'number' },
          { type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'number' }] } },
        ],
      },
    },
    attempts: { type: 'integer' },
    maxAttempts: { type: 'integer' },
    runAt: nullableTime,
    leaseUntil: nullableTime,
    worker: { type: ['string', 'null'] },
    lastError: { type: ['string', 'null'] },
    enqueuedBy: {
      type: 'object',
      properties: { kind: { type: 'string' }, id: { type: ['string', 'null'] } },
      required: ['kind', 'id'],
    },
    requestId: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    startedAt: nullableTime,
    finishedAt: nullableTime,
  },
  required: [...JOB_VIEW_FIELDS],
} as const;

const statesSchema = {
  type: 'object',
  properties: Object.fromEntries(JOB_STATES.map((s) => [s, { type: 'integer' }])),
  required: [...JOB_STATES],
} as const;

const idParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
  required: ['id'],
} as const;

/**
 * Registers `GET /api/v1/jobs`, `GET /api/v1/jobs/counts`, `GET /api/v1/jobs/:id` and
 * `POST /api/v1/jobs/:id/retry`, all behind the `jobs:admin` scope.
 */
export function registerJobRoutes(app: FastifyInstance, deps: JobRoutesDeps): void {
  const { queue, auth } = deps;

  app.get<{ Querystring: { state?: JobState; type?: string; before?: string; limit?: number } }>(
    '/api/v1/jobs',
    {
      onRequest: auth('jobs:admin'),
      schema: {
        tags: ['jobs'],
        summary: 'Jobs of the queue, newest first (ids of the payload only)',
        security: [{ apiKey: [] }],
        querystring: {
          type: 'object',
          properties: {
            state: { type: 'string', enum: [...JOB_STATES] },
            type: { type: 'string', minLength: 1, maxLength: 100 },
            before: {
              type: 'string',
              minLength: 1,
              maxLength: 100,
              description: 'the last id of the previous page',
            },
            limit: { type: 'integer', minimum: 1, maximum: MAX_JOBS_PAGE, default: 50 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { jobs: { type: 'array', items: jobSchema } },
            required: ['jobs'],
          },
        },
      },
    },
    async (request) => {
      const { state, type, before, limit } = request.query;
      const jobs = await queue.list(apiContext(request), { state, type, before, limit });
      return { jobs: jobs.map(presentJob) };
    },
  );

  app.get(
    '/api/v1/jobs/counts',
    {
      onRequest: auth('jobs:admin'),
      schema: {
        tags: ['jobs'],
        summary: 'How many jobs are in each state, overall and per type',
        security: [{ apiKey: [] }],
        response: {
          200: {
            type: 'object',
            properties: {
              states: statesSchema,
              types: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    type: { type: 'string' },
                    states: statesSchema,
                    oldestPendingRunAt: nullableTime,
                  },
                  required: ['type', 'states', 'oldestPendingRunAt'],
                },
              },
            },
            required: ['states', 'types'],
          },
        },
      },
    },
    async (request) => presentJobCounts(await queue.counts(apiContext(request))),
  );

  app.get(
    '/api/v1/metrics',
    {
      onRequest: auth('jobs:admin'),
      schema: {
        tags: ['jobs'],
        summary: 'The job queue in the Prometheus text format, for a scraper with a jobs:admin key',
        security: [{ apiKey: [] }],
      },
    },
    async (request, reply) =>
      reply
        .header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
        .send(jobMetrics(await queue.counts(apiContext(request)), new Date())),
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/jobs/:id',
    {
      onRequest: auth('jobs:admin'),
      schema: {
        tags: ['jobs'],
        summary: 'One job',
        security: [{ apiKey: [] }],
        params: idParams,
        response: { 200: { type: 'object', properties: { job: jobSchema }, required: ['job'] } },
      },
    },
    async (request) => ({ job: presentJob(await queue.getOrThrow(apiContext(request), request.params.id)) }),
  );

  app.post<{ Params: { id: string } }>(
    '/api/v1/jobs/:id/retry',
    {
      onRequest: auth('jobs:admin'),
      schema: {
        tags: ['jobs'],
        summary: 'Put a dead job back in the queue with a fresh set of attempts',
        security: [{ apiKey: [] }],
        params: idParams,
        response: { 200: { type: 'object', properties: { job: jobSchema }, required: ['job'] } },
      },
    },
    async (request) => ({ job: presentJob(await queue.retry(apiContext(request), request.params.id)) }),
  );
}

/**
 * The job counts in the Prometheus text exposition format: jobs per type and state, and how long the
 * oldest pending job of each type has been due (how far behind the queue is).
 */
export function jobMetrics(counts: JobCountsResult, now: Date): string {
  const label = (v: string) => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
  const lines = [
    '# HELP pledge_jobs Jobs of the durable queue, by type and state.',
    '# TYPE pledge_jobs gauge',
  ];
  for (const t of counts.types)
    for (const state of JOB_STATES)
      lines.push(`pledge_jobs{type="${label(t.type)}",state="${state}"} ${t.states[state]}`);
  lines.push(
    '# HELP pledge_jobs_oldest_pending_seconds How long the oldest pending job of a type has been due (0 when none is).',
    '# TYPE pledge_jobs_oldest_pending_seconds gauge',
  );
  for (const t of counts.types) {
    const due =
      t.oldestPendingRunAt === undefined ? 0 : Math.max(0, now.getTime() - t.oldestPendingRunAt.getTime());
    lines.push(`pledge_jobs_oldest_pending_seconds{type="${label(t.type)}"} ${due / 1000}`);
  }
  return `${lines.join('\n')}\n`;
}
