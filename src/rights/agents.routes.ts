/**
 * Authorized agents over HTTP: staff register, list and revoke agents (`/api/v1/requests/agents`,
 * scopes requests:write and requests:read), and a registered agent posts a Data Rights Protocol
 * 1.0 signed request to `POST /v1/data-rights-request`. That route takes no API key: the agent's
 * Ed25519 signature under its registered key is what is checked.
 */
import type { FastifyInstance } from 'fastify';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import type { AgentRecord, AgentsService } from './agents.service.js';

/** What the routes use. */
export interface AgentRoutesDeps {
  agents: AgentsService;
  auth: AuthHook;
}

/** The DRP endpoint's path, as the protocol lays it out. */
export const DRP_REQUEST_PATH = '/v1/data-rights-request';

function presentAgent(a: AgentRecord): Record<string, unknown> {
  return {
    id: a.id,
    name: a.name,
    public_key: a.publicKey,
    status: a.status,
    registered_by: a.registeredBy,
    registered_at: a.registeredAt.toISOString(),
    revoked_at: a.revokedAt?.toISOString() ?? null,
  };
}

const anyBody = { type: 'object', additionalProperties: true } as const;

/** Registers the agents' routes. */
export function registerAgentRoutes(app: FastifyInstance, deps: AgentRoutesDeps): void {
  const { agents, auth } = deps;

  app.post<{ Body: unknown }>(
    '/api/v1/requests/agents',
    {
      onRequest: auth('requests:write'),
      schema: {
        tags: ['requests'],
        summary:
          'Register an authorized agent (DRP 1.0): { id, name, public_key } with its raw Ed25519 key in base64',
        security: [{ apiKey: [] }],
        body: anyBody,
      },
    },
    async (request, reply) => {
      const agent = await agents.register(apiContext(request), request.body);
      return reply.status(201).send({ agent: presentAgent(agent) });
    },
  );

  app.get(
    '/api/v1/requests/agents',
    {
      onRequest: auth('requests:read'),
      schema: { tags: ['requests'], summary: 'The registered agents', security: [{ apiKey: [] }] },
    },
    async (request) => ({ agents: (await agents.list(apiContext(request))).map(presentAgent) }),
  );

  app.post<{ Params: { id: string } }>(
    '/api/v1/requests/agents/:id/revoke',
    {
      onRequest: auth('requests:write'),
      schema: {
        tags: ['requests'],
        summary: 'Revoke an agent: its signed requests are refused from now on',
        security: [{ apiKey: [] }],
        params: {
          type: 'object',
          properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
          required: ['id'],
        },
        body: anyBody,
      },
    },
    async (request) => ({ agent: presentAgent(await agents.revoke(apiContext(request), request.params.id)) }),
  );

  // DRP 1.0 agents post the base64 signed message as text/plain; this route takes it as JSON
  // ({ signed_message }) only, as the server parses no text/plain outside the beacon's scope.
  // The server ignores a trailing slash: `/v1/data-rights-request/` (the protocol's spelling) is served too.
  for (const url of [DRP_REQUEST_PATH])
    app.post<{ Body: unknown }>(
      url,
      {
        bodyLimit: 32_768,
        schema: {
          tags: ['requests'],
          summary:
            'A Data Rights Protocol 1.0 request from a registered agent: { signed_message } (the base64 libsodium signed JSON request); the person still confirms by code',
          body: anyBody,
        },
      },
      async (request, reply) => {
        const out = await agents.receiveSigned(apiContext(request), request.body);
        return reply.status(200).send(out);
      },
    );
}
