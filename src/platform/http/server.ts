/**
 * The Fastify instance every capability registers its routes on: logging without personal data,
 * security headers, rate limiting, body limits and the one error model.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import rateLimit from '@fastify/rate-limit';
import helmet from 'helmet';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { loggerOptions } from '../log.js';
import { installErrorHandlers } from './errors.handler.js';

/** Options for {@link createHttpServer}. */
export interface HttpServerOptions {
  logLevel: string;
  bodyLimitBytes: number;
  rateLimitPerMinute: number;
  /** A stream for the logs (tests capture them); standard output when absent. */
  logStream?: NodeJS.WritableStream;
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
  const app = Fastify({
    logger,
    bodyLimit: options.bodyLimitBytes,
    genReqId: () => randomUUID(),
    // Request ids come from us, not from a client header that could be used to forge log lines.
    requestIdHeader: false,
    trustProxy: false,
    routerOptions: { ignoreTrailingSlash: true },
  });

  // The security headers are the same on every answer: helmet computes them once, here, and a
  // synchronous hook copies them onto each reply (per request, helmet would rebuild the CSP string
  // and re-run a dozen middlewares: about a tenth of a small request's CPU).
  const securityHeaders = captureHeaders(
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
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(securityHeaders);
    reply.header('x-request-id', request.id);
    done();
  });

  await app.register(rateLimit, {
    max: options.rateLimitPerMinute,
    timeWindow: 60_000,
    // Thrown into the one error handler, which answers with the request.rate_limited code.
    errorResponseBuilder: (_req, ctx) =>
      Object.assign(new Error(`too many requests; try again in ${Math.ceil(ctx.ttl / 1000)} s`), {
        statusCode: 429,
      }),
  });

  installErrorHandlers(app);
  return app;
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
