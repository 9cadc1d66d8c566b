/**
 * The Fastify instance every capability registers its routes on: logging without personal data,
 * security headers, rate limiting, body limits and the one error model.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { loggerOptions } from '../log.js';
import { clientErrorHandler, frameworkErrorHandler, installErrorHandlers } from './errors.handler.js';
import { installRateLimit } from './rate-limit.js';
import { lazyChildLogger } from './request-logger.js';

/** Options for {@link createHttpServer}. */
export interface HttpServerOptions {
  logLevel: string;
  bodyLimitBytes: number;
  rateLimitPerMinute: number;
  /**
   * The proxies whose X-Forwarded-For is believed (Fastify's trustProxy): `request.ip`, which the
   * rate limits and the consent evidence use, is then the client's address. None when absent.
   */
  trustProxy?: false | number | string[];
  /** A stream for the logs (tests capture them); standard output when absent. */
  logStream?: NodeJS.WritableStream;
}

/** A route as registered: one method and its URL pattern. */
export interface RegisteredRoute {
  method: string;
  url: string;
}

const ROUTES = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/**
 * Every route registered on a server made by {@link createHttpServer}: tests walk them so that a rule
 * every route must keep (a key, the error shape) cannot be forgotten by a new one.
 */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return ROUTES.get(app) ?? [];
}

/** Creates the Fastify app with Pledge's platform plugins; capabilities add their routes. */
export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const logger: FastifyServerOptions['logger'] = {
    ...loggerOptions(options.logLevel),
    ...(options.logStream ? { stream: options.logStream } : {}),
    serializers: {
      // Only what is needed to follow a request: no headers, no query strings, no client address.
      // The route pattern (/api/v1/subjects/:id), never the path itself: a path can carry an
      // identifier or a card number that someone typed where an id belongs.
      req: (req: { id: string; method: string; routeOptions?: { url?: string } }) => ({
        id: req.id,
        method: req.method,
        route: req.routeOptions?.url ?? '(no route)',
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  };
  // The security headers are the same on every answer of a kind: helmet computes them once, here,
  // and a synchronous hook copies them onto each reply (per request, helmet would rebuild the CSP
  // string and re-run a dozen middlewares: about a tenth of a small request's CPU).
  const pageHeaders = captureHeaders(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
        },
      },
      strictTransportSecurity: { maxAge: 63_072_000, includeSubDomains: true },
      referrerPolicy: { policy: 'no-referrer' },
      crossOriginResourcePolicy: { policy: 'same-origin' },
    }),
  );
  const apiHeaders = {
    ...pickHeaders(pageHeaders, API_SECURITY_HEADERS),
    // JSON loads nothing and runs nothing: nothing is allowed, and it may not be framed.
    'content-security-policy': "default-src 'none';frame-ancestors 'none'",
  };
  // As [name, value] pairs: reply.headers() would list an object's keys on every request.
  const apiEntries = Object.entries(apiHeaders);
  const pageEntries = Object.entries(pageHeaders);
  const securityHeadersOf = (url: string): [string, string][] =>
    url.startsWith('/api/') ? apiEntries : pageEntries;
  const app = Fastify({
    logger,
    bodyLimit: options.bodyLimitBytes,
    genReqId: () => randomUUID(),
    // Each request's logger (with its id) is made when the request first logs, not before.
    childLoggerFactory: lazyChildLogger,
    // Request ids come from us, not from a client header that could be used to forge log lines.
    requestIdHeader: false,
    // A hop count as the function Fastify itself makes of one (its types take no number).
    trustProxy:
      typeof options.trustProxy === 'number' ? trustHops(options.trustProxy) : (options.trustProxy ?? false),
    routerOptions: { ignoreTrailingSlash: true },
    // Errors Fastify and Node's parser answer before any hook runs (a malformed URL, headers too
    // large) leave in the one error shape with the security headers too, and never echo the URL.
    frameworkErrors: frameworkErrorHandler(securityHeadersOf),
    clientErrorHandler: clientErrorHandler(apiEntries),
  });
  // A JSON route takes JSON: Fastify's built-in text/plain parser would hand a handler a string
  // (a 400 about the body's shape) where the client's mistake is the content type (415).
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', (request, reply, done) => {
    for (const [name, value] of securityHeadersOf(request.url)) void reply.header(name, value);
    void reply.header('x-request-id', request.id);
    done();
  });

  const routes: RegisteredRoute[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });

  installRateLimit(app, { max: options.rateLimitPerMinute, timeWindow: 60_000 });

  installErrorHandlers(app);
  return app;
}

/** Trusts the `hops` proxies nearest to this server (hop 0 is the connection's peer). */
function trustHops(hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops;
}

/**
 * The security headers that act on a JSON answer of the API (a path under /api/), after the OWASP
 * REST Security Cheat Sheet ("Security Headers"): what a browser may do with the bytes (no
 * sniffing, no framing, no cross-origin reads; with the API's own CSP, nothing loaded or run if it
 * is opened) and HTTPS only. The others helmet sets (COOP, Origin-Agent-Cluster, Referrer-Policy,
 * X-DNS-Prefetch-Control, X-Download-Options, X-Permitted-Cross-Domain-Policies, X-XSS-Protection)
 * govern documents: their windows, links, prefetches and legacy filters; pages and assets keep
 * every one. Each header is work for every client on every call, and API answers are the hottest.
 */
const API_SECURITY_HEADERS = [
  'cross-origin-resource-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-frame-options',
] as const;

function pickHeaders(headers: Record<string, string>, names: readonly string[]): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of names) {
    const value = headers[name];
    if (value === undefined) throw new Error(`the security headers lack ${name}`);
    picked[name] = value;
  }
  return picked;
}

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * The headers a connect-style middleware sets, by running it once against a recorder. Only for
 * middlewares whose headers do not depend on the request (helmet without nonce functions).
 */
export function captureHeaders(middleware: Middleware): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
      return recorder;
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
    getHeader(name: string) {
      return headers[name.toLowerCase()];
    },
  };
  let finished = false;
  middleware({ headers: {} } as IncomingMessage, recorder as unknown as ServerResponse, (err) => {
    if (err !== undefined)
      throw err instanceof Error ? err : new Error('the security-header middleware failed');
    finished = true;
  });
  if (!finished) throw new Error('the security-header middleware did not finish synchronously');
  return headers;
}
