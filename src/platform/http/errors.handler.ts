/**
 * The one error handler: every failure leaves the server as `{ error: { code, message, details } }`
 * with a stable code. Internal errors are logged with their stack and answered with a generic
 * message, so nothing about the server's insides (or anyone's data) leaks into a response.
 */
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { asDatabaseUnavailable } from '../db/dialects/unavailable.js';
import { PledgeError } from '../errors.js';

/** The body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** Builds an error body. */
export function errorBody(code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: { code, message, ...(details ? { details } : {}) } };
}

/** Fastify's own error codes, mapped to Pledge codes and plain messages. */
const FASTIFY_CODES: Record<string, { code: string; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'request.too_large',
    message: 'the request body is larger than this server accepts',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'request.unsupported_media_type',
    message: 'send the body as application/json',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'request.invalid_json',
    message: 'the body is empty; send a JSON object',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'request.invalid_json', message: 'the body is not valid JSON' },
};

/** Installs the error and not-found handlers on an app. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler(
    (thrown: FastifyError | PledgeError | Error, request: FastifyRequest, reply: FastifyReply) => {
      // A database that cannot be used is a 503 the client may retry, whatever layer it surfaced
      // in and whatever internal error wrapped it; a 4xx stays the client's problem.
      const err =
        (thrown instanceof PledgeError && thrown.status < 500 ? undefined : asDatabaseUnavailable(thrown)) ??
        thrown;
      if (err instanceof PledgeError) {
        if (err.status >= 500) request.log.error({ err, code: err.code }, 'request failed');
        const message = err.expose
          ? err.message
          : 'something went wrong on our side; the error has been logged';
        if (err.retryAfterSeconds !== undefined)
          void reply.header('retry-after', String(err.retryAfterSeconds));
        return reply
          .status(err.status)
          .send(errorBody(err.code, message, err.expose ? err.details : undefined));
      }
      const fe = err as FastifyError;
      if (fe.validation) {
        return reply.status(400).send(
          errorBody(
            'request.invalid',
            `the request does not match what this endpoint accepts: ${fe.message}`,
            {
              issues: fe.validation.map((v) => ({
                path: v.instancePath || '/',
                message: v.message ?? 'is invalid',
              })),
            },
          ),
        );
      }
      const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
      if (known) return reply.status(fe.statusCode ?? 400).send(errorBody(known.code, known.message));
      if (fe.statusCode === 429) {
        return reply.status(429).send(errorBody('request.rate_limited', fe.message));
      }
      if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
        return reply.status(fe.statusCode).send(errorBody('request.invalid', fe.message));
      }
      request.log.error({ err }, 'unexpected error');
      return reply
        .status(500)
        .send(errorBody('internal', 'something went wrong on our side; the error has been logged'));
    },
  );

  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send(
        errorBody(
          'route.not_found',
          `no route matches ${request.method} on this path; see /api/openapi.json for the API`,
        ),
      ),
  );
}

/** Headers as [name, value] pairs for a path: the security headers its answers carry. */
type HeadersForPath = (url: string) => readonly (readonly [string, string])[];

/** What Fastify answers itself before routing, by its code: status, Pledge code, message. */
const FRAMEWORK_CODES: Record<string, { status: number; code: string; message: string }> = {
  // Fastify's own message quotes the path back: a reflected string, and a path may hold data.
  FST_ERR_BAD_URL: {
    status: 400,
    code: 'request.bad_url',
    message: 'the URL is not valid: it holds a malformed percent-encoding (%XX)',
  },
  FST_ERR_MAX_PARAM_LENGTH: {
    status: 414,
    code: 'request.url_too_long',
    message: 'a segment of the URL is longer than this server accepts',
  },
};

/**
 * Fastify's `frameworkErrors`: errors found before routing (a malformed URL) answered in the one
 * error shape with the security headers of the path; no hook has run, so they are set here.
 */
export function frameworkErrorHandler(headersOf: HeadersForPath) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    for (const [name, value] of headersOf(request.url)) void reply.header(name, value);
    void reply.header('x-request-id', request.id);
    const known = error.code ? FRAMEWORK_CODES[error.code] : undefined;
    if (known === undefined) {
      request.log.error({ code: error.code }, 'unexpected framework error');
      void reply
        .status(500)
        .send(errorBody('internal', 'something went wrong on our side; the error has been logged'));
      return;
    }
    void reply.status(known.status).send(errorBody(known.code, known.message));
  };
}

/** The answers to what Node's HTTP parser refuses, by its error code: status, reason, Pledge code. */
const CLIENT_ERRORS: Record<string, { status: number; reason: string; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    reason: 'Request Header Fields Too Large',
    code: 'request.headers_too_large',
    message: 'the request headers are larger than this server accepts',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    reason: 'Request Timeout',
    code: 'request.timeout',
    message: 'the request was not received in time',
  },
};

/**
 * Node's `clientError` (through Fastify's `clientErrorHandler`): a request the HTTP parser refused
 * (headers too large, not HTTP) gets the one error shape and the API security headers, written on
 * the socket because no request object exists; the connection is then closed, as Node does.
 */
export function clientErrorHandler(headers: readonly (readonly [string, string])[]) {
  return (err: Error & { code?: string }, socket: Duplex): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const known = (err.code ? CLIENT_ERRORS[err.code] : undefined) ?? {
      status: 400,
      reason: 'Bad Request',
      code: 'request.malformed',
      message: 'the request is not valid HTTP',
    };
    if (socket.writable) {
      const body = JSON.stringify(errorBody(known.code, known.message));
      const lines = [
        `HTTP/1.1 ${known.status} ${known.reason}`,
        'content-type: application/json; charset=utf-8',
        `content-length: ${Buffer.byteLength(body)}`,
        'connection: close',
        ...headers.map(([name, value]) => `${name}: ${value}`),
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
    }
    socket.destroy(err);
  };
}
