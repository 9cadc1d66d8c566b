/**
 * The beacon endpoints, registered inside the web scope (web.ts: CORS for the site origins,
 * `Cross-Origin-Resource-Policy: cross-origin`):
 *
 * - `POST /api/v1/beacon`: what /pledge.js sends with navigator.sendBeacon or fetch keepalive. It
 *   takes `text/plain` holding JSON, which is what sendBeacon sends for a string body (a JSON Blob
 *   would need a CORS preflight), besides application/json. The text/plain parser lives in a scope
 *   holding this route alone: every other JSON route keeps answering 415 to text/plain. Answers 204,
 *   whether or not the beacon was counted (after the commit that holds it when it was), so a page
 *   learns nothing about what the server decided.
 * - `GET /b.gif?p=PATH&r=REFERRER&e=EVENT`: a 1×1 transparent GIF for pages without script, and
 *   `/b.gif?m=TOKEN` for the open pixel of marketing e-mails (its handler is the analytics
 *   capability's, given as `mailOpen`). The one documented exception to "GET never changes state":
 *   it records an event and changes no one's choices. It always answers the image, uncached, even
 *   when nothing is counted or something failed, so a page never shows a broken image.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Context } from '../platform/context.js';
import { ValidationError } from '../platform/errors.js';
import type { BeaconBody } from './banner.contract.js';
import type { BeaconService, WebBeaconInput } from './beacons.service.js';
import { registerWebScope, type WebEndpoints } from './web.js';

/**
 * The open pixel's handler (`/b.gif?m=TOKEN`): checks the token and the person's choice on the
 * e-mail channel, and counts the open through {@link BeaconService.recordMailOpen}. Resolves when
 * done (after the commit when it counted); what it throws is logged and the image still served.
 */
export type MailOpenHandler = (ctx: Context, request: FastifyRequest, token: string) => Promise<void>;

/** What the beacon routes are given. */
export interface BeaconRoutesDeps {
  beacons: BeaconService;
  web: WebEndpoints;
  /** Counts e-mail opens; absent, `/b.gif?m=` counts nothing (and still answers the image). */
  mailOpen?: MailOpenHandler | undefined;
}

/** A beacon's body is small: a path, a referrer host, an event name, a receipt and a cookie id. */
export const BEACON_BODY_LIMIT = 4096;

/** A 1×1 transparent GIF (42 bytes). */
export const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

const MAX_PATH = 2048;
const MAX_EVENT = 128;
const EVENT = /^[\p{L}\p{N} _.:/-]{1,128}$/u;
const HOST = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

const beaconBodySchema = {
  type: 'object',
  required: ['path'],
  properties: {
    path: { type: 'string', minLength: 1, maxLength: MAX_PATH, description: "The page's path" },
    referrer: { type: 'string', maxLength: MAX_PATH, description: "The referring page's host" },
    event: { type: 'string', minLength: 1, maxLength: MAX_EVENT, description: "An event's name" },
    purpose: { type: 'string', minLength: 1, maxLength: 100 },
    receipt: { type: 'string', maxLength: 4096, description: 'The consent receipt of the banner' },
    visitor: { type: 'string', maxLength: 128, description: "The pledge_vid cookie's id" },
  },
} as const;

/** Registers `POST /api/v1/beacon` and `GET /b.gif` in a web scope of their own (web.ts). */
export async function registerBeaconRoutes(app: FastifyInstance, deps: BeaconRoutesDeps): Promise<void> {
  const { web } = deps;
  await registerWebScope(app, web, (scope) => registerInWebScope(scope, deps));
}

async function registerInWebScope(scope: FastifyInstance, deps: BeaconRoutesDeps): Promise<void> {
  const { beacons, web } = deps;
  const sites = new Map(web.pageOrigins.map((o) => [o, new URL(o).host]));

  await scope.register((only, _options, done) => {
    // Only here: sendBeacon's string body is text/plain; Fastify's JSON parser (prototype-poisoning
    // checks, its error codes) parses it as it parses application/json.
    only.addContentTypeParser(
      'text/plain',
      { parseAs: 'string', bodyLimit: BEACON_BODY_LIMIT },
      only.getDefaultJsonParser('error', 'error'),
    );
    only.post<{ Body: BeaconBody }>(
      '/api/v1/beacon',
      {
        bodyLimit: BEACON_BODY_LIMIT,
        schema: {
          summary: 'Count a page view or event the visitor allowed (navigator.sendBeacon)',
          description:
            'Keyless: acts as the web system. Takes text/plain holding JSON, or application/json. Answers 204 whether or not the beacon was counted.',
          body: beaconBodySchema,
          response: { 204: { type: 'null', description: 'Received' } },
        },
      },
      async (request, reply) => {
        const ctx = web.context(request);
        const body = request.body;
        await beacons.recordWeb(ctx, {
          ...readRequest(request, web, sites),
          purpose: body.purpose,
          path: pathOf(body.path, true),
          referrer: referrerOf(body.referrer),
          event: eventOf(body.event, true),
          receipt: body.receipt,
          visitor: body.visitor,
        });
        return reply.status(204).send();
      },
    );
    done();
  });

  scope.get<{ Querystring: Record<string, string | string[] | undefined> }>(
    '/b.gif',
    {
      schema: { hide: true },
      // Whatever failed (the rate limit, a purpose the web system does not serve, the database), the
      // page gets its image; the failure is logged when it is ours.
      errorHandler: (err: FastifyError, request, reply) => {
        const status = err.statusCode ?? 500;
        if (status >= 500) request.log.error({ err }, 'a pixel beacon failed; the image was served');
        void sendPixel(reply, status === 429 ? 429 : 200);
      },
    },
    async (request, reply) => {
      // HEAD (which Fastify answers with this handler) only asks about the image.
      if (request.method !== 'GET') return sendPixel(reply, 200);
      const q = request.query;
      const ctx = web.context(request);
      const token = one(q.m);
      if (token !== undefined) {
        await deps.mailOpen?.(ctx, request, token);
        return sendPixel(reply, 200);
      }
      const input: WebBeaconInput = {
        ...readRequest(request, web, sites),
        purpose: undefined,
        path: pathOf(one(q.p), false),
        referrer: referrerOf(one(q.r)),
        event: eventOf(one(q.e), false),
        // A pixel has no script to read the consent cookie: it counts only where the purpose is
        // opt-out (or required), without a cookie.
        receipt: undefined,
        visitor: undefined,
      };
      await beacons.recordWeb(ctx, input);
      return sendPixel(reply, 200);
    },
  );
}

function sendPixel(reply: FastifyReply, status: number): FastifyReply {
  return reply
    .status(status)
    .header('content-type', 'image/gif')
    .header('cache-control', 'no-store')
    .send(PIXEL);
}

/** What the request itself says that the beacon decision may use: site, place, signal, client. */
function readRequest(
  request: FastifyRequest,
  web: WebEndpoints,
  sites: ReadonlyMap<string, string>,
): Pick<WebBeaconInput, 'site' | 'jurisdiction' | 'gpc' | 'userAgent' | 'ip'> {
  return {
    site: siteOf(request, sites),
    jurisdiction: web.jurisdictionOf(request),
    gpc: request.headers['sec-gpc'] === '1',
    userAgent: request.headers['user-agent'],
    ip: request.ip,
  };
}

/**
 * The host of the listed site origin a beacon comes from: its Origin header (sent by sendBeacon and
 * fetch), else its Referer's origin (an image's request); `""` when it names none (a page with
 * `Referrer-Policy: no-referrer`, a mail client); `undefined` for a site that is not listed, whose
 * pages may not count visits here.
 */
function siteOf(request: FastifyRequest, sites: ReadonlyMap<string, string>): string | undefined {
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== 'null') return sites.get(origin);
  const referer = request.headers.referer;
  if (referer === undefined || referer === '') return '';
  try {
    return sites.get(new URL(referer).origin);
  } catch {
    return undefined;
  }
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The path without query or fragment (they may carry tokens or addresses). A POST's path that is not
 * one is the caller's mistake (400); a pixel's is dropped, the image served all the same.
 */
function pathOf(raw: string | undefined, strict: boolean): string | undefined {
  if (raw === undefined) return undefined;
  const cut = raw.length > MAX_PATH ? '' : raw.replace(/[?#].*$/s, '');
  if (cut.startsWith('/') && !/\p{Cc}/u.test(cut)) return cut;
  if (strict) throw invalid('/path', 'must be a path beginning with "/", at most 2048 characters');
  return undefined;
}

function eventOf(raw: string | undefined, strict: boolean): string | undefined {
  if (raw === undefined) return undefined;
  if (EVENT.test(raw)) return raw;
  if (strict) throw invalid('/event', 'must be 1 to 128 letters, digits, spaces or _ . : / -');
  return undefined;
}

/** The referring page's host, lower-cased, from a host or a URL; anything else is dropped. */
function referrerOf(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  let host = raw.trim().toLowerCase();
  if (host.includes('/')) {
    try {
      host = new URL(host).hostname;
    } catch {
      return undefined;
    }
  }
  return host.length <= 253 && HOST.test(host) ? host : undefined;
}

function invalid(path: string, message: string): ValidationError {
  return new ValidationError(
    'request.invalid',
    `the request does not match what this endpoint accepts: body${path} ${message}`,
    { issues: [{ path, message }] },
  );
}
