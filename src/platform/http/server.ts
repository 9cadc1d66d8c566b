/**
 * The Fastify instance every capability registers its routes on: logging without personal data,
 * security headers, rate limiting, body limits and the one error model.
 */
import { randomUUID } from 'node:crypto';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
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

  await app.register(helmet, {
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
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-request-id', reply.request.id);
    return payload;
  });
  return app;
}
