/**
 * API-key authentication for `/api/v1`: `Authorization: Bearer pledge_...`. A missing or invalid
 * key is 401, a valid key without the scope is 403. Each route names its scope in its options; the
 * hook runs on the request, before the body is parsed or the input checked, so a caller without a
 * key learns nothing of what a route accepts. test/http/routes.test.ts walks every registered API
 * route to hold each to it.
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { ApiKeyPrincipal, ApiKeyService } from '../auth/api-keys.service.js';
import type { Scope } from '../auth/scopes.js';
import { createContext, type Actor, type Context } from '../context.js';
import { AuthenticationError, ForbiddenError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key that authenticated this request, set by {@link requireApiKey}. */
    principal?: ApiKeyPrincipal;
  }
}

/** A hook factory: `onRequest: auth('manifest:read')`. */
export type AuthHook = (scope: Scope) => onRequestHookHandler;

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Builds the hook factory over the key service. The hook is callback-style: a key whose credential
 * is cached is checked without a promise or a trip through the microtask queue (most API requests);
 * only a key that needs the database waits for it.
 */
export function requireApiKey(keys: ApiKeyService): AuthHook {
  return (scope) =>
    function authenticate(request, reply, done) {
      const header = request.headers.authorization;
      if (header === undefined || header === '') {
        void reply.header('www-authenticate', 'Bearer realm="pledge"');
        done(
          new AuthenticationError(
            'auth.key_missing',
            'this endpoint needs an API key: send "Authorization: Bearer pledge_..." (create one with `pledge keys create`)',
          ),
        );
        return;
      }
      const rawKey = BEARER.exec(header)?.[1] ?? '';
      let principal: ApiKeyPrincipal | undefined;
      try {
        principal = keys.authenticateCached(rawKey);
      } catch (err) {
        done(refuse(reply, err, scope));
        return;
      }
      if (principal !== undefined) {
        done(admit(keys, request, reply, principal, scope));
        return;
      }
      keys.authenticate(rawKey).then(
        (p) => done(admit(keys, request, reply, p, scope)),
        (err: unknown) => done(refuse(reply, err, scope)),
      );
    };
}

/** Sets the request's principal when it holds `scope`; returns the error to answer with otherwise. */
function admit(
  keys: ApiKeyService,
  request: FastifyRequest,
  reply: FastifyReply,
  principal: ApiKeyPrincipal,
  scope: Scope,
): Error | undefined {
  try {
    keys.requireScope(principal, scope);
  } catch (err) {
    return refuse(reply, err, scope);
  }
  request.principal = principal;
  return undefined;
}

/**
 * The challenge of RFC 6750 section 3 on a refused request: `invalid_token` for a key that is not
 * valid, `insufficient_scope` (with the scope) for a valid key that may not do this.
 */
function refuse(reply: FastifyReply, err: unknown, scope: Scope): Error {
  if (err instanceof ForbiddenError) {
    void reply.header(
      'www-authenticate',
      `Bearer realm="pledge", error="insufficient_scope", scope="${scope}"`,
    );
  } else {
    void reply.header('www-authenticate', 'Bearer realm="pledge", error="invalid_token"');
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The service context of an authenticated API request: a key bound to a system acts as that system
 * (which the gates hold to its purposes); an operator key as itself, for no system.
 */
export function apiContext(request: FastifyRequest): Context {
  const principal = request.principal;
  return createContext(principalActor(principal), { requestId: request.id });
}

function principalActor(principal: ApiKeyPrincipal | undefined): Actor {
  if (principal === undefined) return { kind: 'anonymous' };
  if (principal.system === undefined) return { kind: 'api_key', id: principal.id };
  return { kind: 'system', id: principal.system, key: principal.id };
}
