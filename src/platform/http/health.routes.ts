/** `/healthz`: is the server up and can it reach its database. */
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { pingDatabase } from '../db/health.repository.js';
import type { DatabaseTimeouts } from '../db/database.js';
import { DatabaseUnavailableError } from '../errors.js';

/** What the health route reports besides the database. */
export interface HealthRoutesDeps {
  db: Kysely<object>;
  dialect: string;
  policyVersion: string;
  /** The database's timeouts: the ping never waits longer than the shortest (nor than 2 s). */
  databaseTimeouts?: DatabaseTimeouts | undefined;
}

/**
 * The longest a ping waits. A load balancer's health check usually gives up after a few seconds;
 * /healthz must answer it (503) before then, not leave it to time out.
 */
const PING_TIMEOUT_MS = 2_000;

/** Resolves when the database answers; rejects with DatabaseUnavailableError after `timeoutMs`. */
async function pingWithin(db: HealthRoutesDeps['db'], timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ping = pingDatabase(db);
  // The ping goes on after the timeout and ends on the pool's own bounds; its failure is this one.
  ping.catch(() => {});
  try {
    await Promise.race([
      ping,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () =>
            reject(new DatabaseUnavailableError({ cause: new Error(`no answer within ${timeoutMs} ms`) })),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Registers `/healthz`; 503 when the database does not answer. */
export function registerHealthRoutes(app: FastifyInstance, deps: HealthRoutesDeps): void {
  const timeoutMs = Math.min(
    PING_TIMEOUT_MS,
    deps.databaseTimeouts?.statementTimeoutMs ?? PING_TIMEOUT_MS,
    deps.databaseTimeouts?.connectTimeoutMs ?? PING_TIMEOUT_MS,
  );
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
                properties: {
                  code: { type: 'string', enum: ['database.unavailable'] },
                  message: { type: 'string' },
                },
              },
            },
          },
        },
      },
    },
    async () => {
      try {
        await pingWithin(deps.db, timeoutMs);
      } catch (err) {
        // Whatever stopped the ping (even an error that is not a fault of availability elsewhere,
        // such as a corrupt file), this server cannot serve: 503, through the one error handler.
        throw err instanceof DatabaseUnavailableError ? err : new DatabaseUnavailableError({ cause: err });
      }
      return { status: 'ok', database: deps.dialect, policyVersion: deps.policyVersion };
    },
  );
}
