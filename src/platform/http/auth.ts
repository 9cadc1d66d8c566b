/**
 * API-key authentication for `/api/v1`: `Authorization: Bearer pledge_...`. A missing or invalid
 * key is 401, a valid key without the scope is 403; the route declares its scope, so a route cannot
 * forget to ask.
 */
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { ApiKeyPrincipal, ApiKeyService } from '../auth/api-keys.service.js';
import type { Scope } from '../auth/scopes.js';
import { createContext, type Context } from '../context.js';
import { AuthenticationError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key that authenticated this request, set by {@link requireApiKey}. */
    principal?: ApiKeyPrincipal;
  }
}

/** A hook factory: `preHandler: auth('manifest:read')`. */
export type AuthHook = (scope: Scope) => preHandlerAsyncHookHandler;

/** Builds the hook factory over the key service. */
export function requireApiKey(keys: ApiKeyService): AuthHook {
  return (scope) =>
    async function authenticate(request: FastifyRequest, reply: FastifyReply) {
      const header = request.headers.authorization;
      if (header === undefined || header === '') {
        void reply.header('www-authenticate', 'Bearer realm="pledge"');
        throw new AuthenticationError(
          'auth.key_missing',
          'this endpoint needs an API key: send "Authorization: Bearer pledge_..." (create one with `pledge keys create`)',
        );
      }
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      void reply.header('www-authenticate', 'Bearer realm="pledge", error="invalid_token"');
      const principal = await keys.authenticate(match?.[1] ?? '');
      keys.requireScope(principal, scope);
      request.principal = principal;
    };
}

/** The service context of an authenticated API request. */
export function apiContext(request: FastifyRequest): Context {
  const principal = request.principal;
  return createContext(
    principal ? { kind: 'api_key', id: principal.id, scopes: principal.scopes } : { kind: 'anonymous' },
    { requestId: request.id },
  );
}
