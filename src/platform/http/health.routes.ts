/** `/healthz`: is the server up and can it reach its database. */
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { pingDatabase } from '../db/health.repository.js';

/** What the health route reports besides the database. */
export interface HealthRoutesDeps {
  db: Kysely<object>;
  dialect: string;
  policyVersion: string;
}

/** Registers `/healthz`; 503 when the database does not answer. */
export function registerHealthRoutes(app: FastifyInstance, deps: HealthRoutesDeps): void {
  app.get(
    '/healthz',
    {
      config: { rateLimit: false },
      schema: {
        tags: ['health'],
        summary: 'Liveness and database reachability',
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string', enum: ['ok'] },
              database: { type: 'string' },
              policyVersion: { type: 'string' },
            },
            required: ['status', 'database', 'policyVersion'],
          },
          503: {
            type: 'object',
            properties: {
              error: {
                type: 'object',
                properties: { code: { type: 'string' }, message: { type: 'string' } },
              },
            },
          },
        },
      },
    },
    async (request, reply) => {
      try {
        await pingDatabase(deps.db);
      } catch (err) {
        request.log.error({ err }, 'health check: database unreachable');
        return reply.status(503).send({
          error: { code: 'health.database_unreachable', message: 'the database does not answer' },
        });
      }
      return { status: 'ok', database: deps.dialect, policyVersion: deps.policyVersion };
    },
  );
}
