/**
 * `POST /api/v1/subjects/:id/credentials/verify`: whether a secret matches a person's stored
 * credential. Its own scope (`credentials:verify`: a key that may check a password reads nothing),
 * and its own limit per subject on top of the server's per-address one, so that guesses spread over
 * many addresses still meet one budget. The secret travels in the body, which is never logged.
 */
import type { FastifyInstance } from 'fastify';
import { PledgeError } from '../platform/errors.js';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { WindowCounter } from '../platform/http/rate-limit.js';
import type { CredentialSelector, Credentials } from './credentials.service.js';

/** Attempts per subject and window (every attempt counts, whatever its answer). */
export const VERIFY_ATTEMPTS_PER_SUBJECT = 10;
/** The window of {@link VERIFY_ATTEMPTS_PER_SUBJECT}. */
export const VERIFY_WINDOW_MS = 15 * 60_000;

/** What the credential routes use. */
export interface CredentialRoutesDeps {
  credentials: Credentials;
  auth: AuthHook;
  /** Defaults to {@link VERIFY_ATTEMPTS_PER_SUBJECT} per {@link VERIFY_WINDOW_MS}. */
  limit?: { max: number; timeWindow: number };
}

interface VerifyBody {
  field?: string;
  category?: string;
  secret: string;
}

/** Registers the credential routes. */
export function registerCredentialRoutes(app: FastifyInstance, deps: CredentialRoutesDeps): void {
  const { credentials, auth } = deps;
  const limit = deps.limit ?? { max: VERIFY_ATTEMPTS_PER_SUBJECT, timeWindow: VERIFY_WINDOW_MS };
  // In memory, per instance, like the server's limit: N instances allow N times the budget.
  const perSubject = new WindowCounter(limit.max, limit.timeWindow, 50_000);

  app.post<{ Params: { id: string }; Body: VerifyBody }>(
    '/api/v1/subjects/:id/credentials/verify',
    {
      onRequest: auth('credentials:verify'),
      schema: {
        tags: ['subjects'],
        summary:
          'Whether a secret matches the person’s stored credential (kept only as an argon2id verifier; never returned)',
        security: [{ apiKey: [] }],
        params: {
          type: 'object',
          properties: { id: { type: 'string', format: 'uuid' } },
          required: ['id'],
        },
        body: {
          type: 'object',
          properties: {
            field: { type: 'string', minLength: 1, maxLength: 200 },
            category: { type: 'string', minLength: 1, maxLength: 200 },
            secret: { type: 'string', minLength: 1, maxLength: 1024 },
          },
          required: ['secret'],
          oneOf: [{ required: ['field'] }, { required: ['category'] }],
          additionalProperties: false,
        },
        response: {
          200: { type: 'object', properties: { match: { type: 'boolean' } }, required: ['match'] },
        },
      },
    },
    async (request) => {
      const subjectId = request.params.id.toLowerCase();
      const now = Date.now();
      const window = perSubject.hit(subjectId, now);
      if (window.count > perSubject.max) {
        const retry = Math.max(1, Math.ceil((window.startedAt + perSubject.windowMs - now) / 1000));
        throw new PledgeError(
          'credentials.rate_limited',
          `too many attempts for this subject; try again in ${retry} s`,
          { status: 429, retryAfterSeconds: retry, details: { subjectId } },
        );
      }
      const { field, category, secret } = request.body;
      const selector: CredentialSelector = field !== undefined ? { field } : { category: category ?? '' };
      return credentials.verify(apiContext(request), subjectId, selector, secret);
    },
  );
}
