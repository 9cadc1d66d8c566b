/**
 * Subjects and the use gate over HTTP. Identifiers travel in the query string of the lookup, which is
 * why request logs never carry query strings.
 */
import type { FastifyInstance } from 'fastify';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { NotFoundError } from '../platform/errors.js';
import { IDENTIFIER_KINDS, type IdentifierKind } from './identifiers.js';
import { presentReadResult, presentSubject } from './vault.presenter.js';
import type { Vault } from './vault.service.js';
import { DEFAULT_READ_RECORDS, MAX_READ_RECORDS } from './vault.types.js';

/** What the subject routes use. */
export interface VaultRoutesDeps {
  vault: Vault;
  auth: AuthHook;
}

const subjectSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    kind: { type: 'string' },
    jurisdiction: { type: ['string', 'null'] },
    createdAt: { type: 'string', format: 'date-time' },
  },
  required: ['id', 'kind', 'jurisdiction', 'createdAt'],
} as const;

const idParams = {
  type: 'object',
  properties: { id: { type: 'string', format: 'uuid' } },
  required: ['id'],
} as const;

/** Registers `/api/v1/subjects`. */
export function registerVaultRoutes(app: FastifyInstance, deps: VaultRoutesDeps): void {
  const { vault, auth } = deps;

  app.get<{ Querystring: { identifier: string; kind?: IdentifierKind } }>(
    '/api/v1/subjects',
    {
      onRequest: auth('subjects:read'),
      schema: {
        tags: ['subjects'],
        summary: 'Find a subject by an identifier (compared by keyed hash; never stored in plaintext)',
        security: [{ apiKey: [] }],
        querystring: {
          type: 'object',
          properties: {
            identifier: { type: 'string', minLength: 1, maxLength: 320 },
            kind: { type: 'string', enum: [...IDENTIFIER_KINDS], default: 'email' },
          },
          required: ['identifier'],
          additionalProperties: false,
        },
        response: { 200: { type: 'object', properties: { subject: subjectSchema }, required: ['subject'] } },
      },
    },
    async (request) => {
      const ctx = apiContext(request);
      const subject = await vault.findSubjectByIdentifier(
        ctx,
        request.query.kind ?? 'email',
        request.query.identifier,
      );
      if (!subject) throw new NotFoundError('vault.subject_not_found', 'no subject has this identifier');
      return { subject: presentSubject(subject) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/subjects/:id',
    {
      onRequest: auth('subjects:read'),
      schema: {
        tags: ['subjects'],
        summary: 'A subject',
        security: [{ apiKey: [] }],
        params: idParams,
        response: { 200: { type: 'object', properties: { subject: subjectSchema }, required: ['subject'] } },
      },
    },
    async (request) => ({
      subject: presentSubject(await vault.getSubjectOrThrow(apiContext(request), request.params.id)),
    }),
  );

  app.get<{ Params: { id: string }; Querystring: { purpose: string; limit?: number; cursor?: string } }>(
    '/api/v1/subjects/:id/data',
    {
      onRequest: auth('subjects:read'),
      schema: {
        tags: ['subjects'],
        summary: 'The use gate: the data a purpose may use, where the person’s choices allow (audited)',
        description: `A page of at most \`limit\` records (default ${DEFAULT_READ_RECORDS}, at most ${MAX_READ_RECORDS}), oldest first; pass \`nextCursor\` as \`cursor\` for the next page.`,
        security: [{ apiKey: [] }],
        params: idParams,
        querystring: {
          type: 'object',
          properties: {
            purpose: { type: 'string', minLength: 1 },
            limit: { type: 'integer' },
            cursor: { type: 'string', maxLength: 64 },
          },
          required: ['purpose'],
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { purpose, limit, cursor } = request.query;
      return presentReadResult(
        await vault.read(apiContext(request), request.params.id, purpose, { limit, cursor }),
      );
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/subjects/:id',
    {
      onRequest: auth('subjects:write'),
      schema: {
        tags: ['subjects'],
        summary: 'Erase a subject: its keys are destroyed (backups become unreadable), its records deleted',
        security: [{ apiKey: [] }],
        params: idParams,
      },
    },
    async (request) => {
      const result = await vault.erase(apiContext(request), request.params.id);
      return { erased: true, ...result };
    },
  );
}
