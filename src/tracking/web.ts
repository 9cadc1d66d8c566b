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
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ManifestSource } from '../manifest/systems.gate.js';
import type { System } from '../manifest/manifest.schema.js';
import { createContext, type Context } from '../platform/context.js';
import { ForbiddenError } from '../platform/errors.js';

/** What the web endpoints are configured with (from Config). */
export interface WebSettings {
  /** PLEDGE_SITE_ORIGINS: the only origins whose pages may call the POST endpoints. */
  siteOrigins: readonly string[];
  /** PLEDGE_COUNTRY_HEADER, lower-cased: where a CDN puts the visitor's country. */
  countryHeader: string | undefined;
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

/**
 * Registers `routes` in a scope of their own where pages of the site origins may call them
 * cross-origin (CORS: only those origins, no credentials) and their answers may be embedded by
 * other origins (`Cross-Origin-Resource-Policy: cross-origin`: without it Chromium refuses the
 * script and the pixel on the company's sites). Every other route keeps `same-origin`.
 */
export async function registerWebScope(
  app: FastifyInstance,
  web: WebEndpoints,
  routes: (scope: FastifyInstance) => void | Promise<void>,
): Promise<void> {
  await app.register(async (scope) => {
    const allowed = new Set(web.siteOrigins);
    await scope.register(cors, {
      origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
      methods: ['GET', 'POST'],
      allowedHeaders: ['content-type'],
      credentials: false,
      maxAge: 86_400,
    });
    scope.addHook('onRequest', (_request: FastifyRequest, reply: FastifyReply, done) => {
      void reply.header('cross-origin-resource-policy', 'cross-origin');
      done();
    });
    await routes(scope);
  });
}
