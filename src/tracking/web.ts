/**
 * The keyless endpoints people's browsers call (the banner's choices, the beacons, /pledge.js): who
 * they act as, where the visitor is, and which sites may call them.
 *
 * A browser has no API key, so these endpoints act as the one system the manifest marks `web: true`:
 * the system gate holds them to its purposes and sources like any key, and a manifest without such
 * a system has them refuse everything (403 `auth.web_system_missing`). Nothing a request says about
 * itself widens that: its jurisdiction comes from the CDN header the operator configured, never from
 * the body, and only the site origins the operator listed may call them from a page.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ManifestSource } from '../manifest/systems.gate.js';
import type { System } from '../manifest/manifest.schema.js';
import { createContext, type Context } from '../platform/context.js';
import { ForbiddenError } from '../platform/errors.js';
import type { RegisteredRoute } from '../platform/http/server.js';

/** What the web endpoints are configured with (from Config). */
export interface WebSettings {
  /** PLEDGE_SITE_ORIGINS: the only origins whose pages may call the POST endpoints. */
  siteOrigins: readonly string[];
  /** PLEDGE_COUNTRY_HEADER, lower-cased: where a CDN puts the visitor's country. */
  countryHeader: string | undefined;
  /** PLEDGE_PUBLIC_URL: Pledge's own pages (the policy, the preference center) embed the banner too. */
  publicUrl?: string | undefined;
}

const COUNTRY = /^[A-Z]{2}$/;

/** The keyless endpoints' view of the request: jurisdiction, system and context. */
export class WebEndpoints {
  readonly #manifest: ManifestSource;
  readonly #settings: WebSettings;

  constructor(manifest: ManifestSource, settings: WebSettings) {
    this.#manifest = manifest;
    this.#settings = settings;
  }

  get siteOrigins(): readonly string[] {
    return this.#settings.siteOrigins;
  }

  /** The origins whose pages may call the web endpoints: the listed sites and Pledge's own. */
  get pageOrigins(): readonly string[] {
    const own = this.#settings.publicUrl;
    const origins = new Set(this.#settings.siteOrigins);
    if (own !== undefined) origins.add(new URL(own).origin);
    return [...origins];
  }

  /** The configured country header's name (lower case), which answers that read it vary by. */
  get countryHeader(): string | undefined {
    return this.#settings.countryHeader;
  }

  /** The system the manifest marks `web: true`, if any. */
  system(): System | undefined {
    return this.#manifest.manifest.systems.find((s) => s.web === true);
  }

  /**
   * The visitor's country from the configured CDN header (`cf-ipcountry: DE`), or `undefined` when
   * no header is configured or it holds no country (Cloudflare sends `XX` and `T1` for unknown and
   * Tor): then `decide` and the banner use the strictest mode.
   */
  jurisdictionOf(request: FastifyRequest): string | undefined {
    const name = this.#settings.countryHeader;
    if (name === undefined) return undefined;
    const raw = request.headers[name];
    const value = (Array.isArray(raw) ? raw[0] : raw)?.trim().toUpperCase();
    return value !== undefined && COUNTRY.test(value) && value !== 'XX' ? value : undefined;
  }

  /**
   * The context of a keyless request: an anonymous actor acting for the web system. Throws 403
   * `auth.web_system_missing` when the manifest declares none, so that nothing is recorded for a
   * system nobody declared.
   */
  context(request: FastifyRequest): Context {
    const system = this.system();
    if (system === undefined) {
      throw new ForbiddenError(
        'auth.web_system_missing',
        'the manifest declares no system for the web, so the banner and beacon endpoints record nothing; ' +
          'add a system with `web: true`, its purposes and its cookie and web_beacon sources under systems:',
      );
    }
    return createContext({ kind: 'anonymous' }, { requestId: request.id, system: system.key });
  }
}

/** Every keyless route registered through {@link registerWebScope}, per server. */
const WEB_ROUTES = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/**
 * The routes registered through {@link registerWebScope} on `app` (their preflights included):
 * keyless by design, so the walks over every route (test/http/routes.test.ts) hold them to the web
 * endpoints' rules instead of to an API key's.
 */
export function webRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return WEB_ROUTES.get(app) ?? [];
}

const PREFLIGHT_METHODS = new Set(['GET', 'POST']);
const PREFLIGHT_HEADERS = new Set(['content-type']);

/**
 * Registers `routes` in a scope of their own where pages of the site origins may call them
 * cross-origin (CORS: only those origins, no credentials, only a content-type header) and their
 * answers may be embedded by other origins (`Cross-Origin-Resource-Policy: cross-origin`: without
 * it Chromium refuses the script and the pixel on the company's sites). Every other route keeps
 * `same-origin` and answers no preflight. May be called once per capability (banner, beacons).
 *
 * CORS is done here rather than by @fastify/cors: that plugin answers preflights through one
 * `OPTIONS *` route, which a second scope cannot register again and which would have answered
 * preflights for every path of the server. Here each route of the scope gets its own OPTIONS route.
 */
export async function registerWebScope(
  app: FastifyInstance,
  web: WebEndpoints,
  routes: (scope: FastifyInstance) => void | Promise<void>,
): Promise<void> {
  let registered = WEB_ROUTES.get(app);
  if (registered === undefined) WEB_ROUTES.set(app, (registered = []));
  const all = registered;
  await app.register(async (scope) => {
    const allowed = new Set(web.siteOrigins);
    const own: RegisteredRoute[] = [];
    scope.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) own.push({ method, url: route.url });
    });
    scope.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done) => {
      void reply.header('cross-origin-resource-policy', 'cross-origin');
      // The answer depends on the Origin (Access-Control-Allow-Origin names it): caches must know.
      void reply.header('vary', 'origin');
      const origin = request.headers.origin;
      if (origin !== undefined && allowed.has(origin))
        void reply.header('access-control-allow-origin', origin);
      done();
    });
    await routes(scope);
    const paths = new Set(own.filter((r) => PREFLIGHT_METHODS.has(r.method)).map((r) => r.url));
    for (const url of paths) {
      scope.options(url, { schema: { hide: true } }, (request, reply) => {
        const origin = request.headers.origin;
        const method = headerValue(request.headers['access-control-request-method'])?.toUpperCase();
        const headers = (headerValue(request.headers['access-control-request-headers']) ?? '')
          .split(',')
          .map((h) => h.trim().toLowerCase())
          .filter((h) => h !== '');
        if (
          origin === undefined ||
          !allowed.has(origin) ||
          method === undefined ||
          !PREFLIGHT_METHODS.has(method) ||
          !headers.every((h) => PREFLIGHT_HEADERS.has(h))
        ) {
          throw new ForbiddenError(
            'web.preflight_refused',
            'this origin may not call this endpoint from a page (only those in PLEDGE_SITE_ORIGINS, with GET or POST and a content-type header)',
          );
        }
        return reply
          .code(204)
          .header('access-control-allow-methods', 'GET, POST')
          .header('access-control-allow-headers', 'content-type')
          .header('access-control-max-age', '86400')
          .send();
      });
    }
    all.push(...own);
  });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
