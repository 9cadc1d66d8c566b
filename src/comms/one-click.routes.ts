/**
 * RFC 8058 one-click unsubscribe: `POST /unsubscribe/one-click/:token` with the body
 * `List-Unsubscribe=One-Click`, sent by a mailbox provider when the person selects "Unsubscribe" in
 * their mail client. The provider posts from its own servers, with no cookie and no page before it,
 * so the signed token in the URL is the only authority: no anti-forgery check, and the route
 * accepts both encodings RFC 8058 allows (application/x-www-form-urlencoded and
 * multipart/form-data). Their parsers are registered in this plugin's scope only; the API and the
 * other pages take neither.
 *
 * The POST unsubscribes at once and answers 200 (never a redirect: providers do not follow them),
 * and a second POST changes nothing more and answers the same. A GET of the same URL shows a
 * confirmation page whose button posts the same body, and changes nothing: scanners and link
 * previewers follow every URL in a message. A malformed token is 400, a bad signature or an expired
 * token 403; neither changes anything.
 */
import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { siteOf } from '../consent/pages.views.js';
import type { LinkTokenProblem } from '../consent/link-tokens.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import { createContext, type Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import { sendPage } from '../platform/http/pages.js';
import type { MailEventsService } from './mail-events.service.js';
import {
  ONE_CLICK_FIELD,
  ONE_CLICK_VALUE,
  oneClickBadLinkPage,
  oneClickConfirmPage,
  oneClickDonePage,
} from './one-click.views.js';

/** What the one-click routes use. */
export interface OneClickRoutesDeps {
  mailEvents: MailEventsService;
  manifest: Manifest;
}

/** The path of the one-click URL the mail pipeline writes into List-Unsubscribe. */
export const ONE_CLICK_PATH = '/unsubscribe/one-click';

/** The encodings RFC 8058 allows (the app's JSON parser would read a JSON body too). */
const FORM_TYPES = /^\s*(application\/x-www-form-urlencoded|multipart\/form-data)\s*(;|$)/i;

/** A one-click body is one short field; anything larger is not one. */
const BODY_LIMIT = 4096;

// A wildcard, not ":token": Fastify refuses path parameters longer than 100 characters (414), and
// a token is about 150.
const params = {
  type: 'object',
  properties: { '*': { type: 'string', maxLength: 1024 } },
  required: ['*'],
} as const;

type TokenParams = { Params: { '*': string } };

/** Registers `GET` and `POST /unsubscribe/one-click/:token`. */
export async function registerOneClickRoutes(http: FastifyInstance, deps: OneClickRoutesDeps): Promise<void> {
  const { mailEvents } = deps;
  const site = siteOf(deps.manifest);

  await http.register(async (scope) => {
    await scope.register(formbody, { bodyLimit: BODY_LIMIT });
    // Parts are read by the route (readMultipartFields), not by the plugin's hook: a malformed
    // form then is a 400 that names the body, never a 500 from a parser error without a status.
    await scope.register(multipart, {
      limits: { fieldNameSize: 100, fieldSize: 100, fields: 5, files: 0, parts: 5, headerPairs: 20 },
    });

    // Plain answers: the caller is usually a mailbox provider's server, not a browser.
    scope.setErrorHandler((err: FastifyError | PledgeError | Error, request, reply) => {
      const status = err instanceof PledgeError ? err.status : ((err as FastifyError).statusCode ?? 500);
      if (status >= 500) request.log.error({ err }, 'one-click unsubscribe failed');
      const code = status >= 400 && status < 600 ? status : 500;
      return sendText(
        reply,
        code,
        code >= 500
          ? 'Something went wrong; nothing was changed. Try again later.'
          : 'This request is not a one-click unsubscribe; nothing was changed.',
      );
    });

    const contextOf = (request: FastifyRequest): Context =>
      createContext({ kind: 'anonymous' }, { requestId: request.id });

    scope.get<TokenParams>(
      `${ONE_CLICK_PATH}/*`,
      { schema: { hide: true, params } },
      async (request, reply) => {
        const described = mailEvents.describeUnsubscribe(contextOf(request), request.params['*']);
        if (!described.ok) return sendPage(reply, statusOf(described.problem), oneClickBadLinkPage(site));
        return sendPage(
          reply,
          200,
          oneClickConfirmPage(site, {
            purposeName: described.purposeName,
            channel: described.channel,
            action: `${ONE_CLICK_PATH}/${request.params['*']}`,
          }),
        );
      },
    );

    scope.post<TokenParams>(
      `${ONE_CLICK_PATH}/*`,
      { schema: { hide: true, params }, bodyLimit: BODY_LIMIT },
      async (request, reply) => {
        const ctx = contextOf(request);
        const token = request.params['*'];
        const described = mailEvents.describeUnsubscribe(ctx, token);
        if (!described.ok)
          return sendText(reply, statusOf(described.problem), problemText(described.problem));
        if (!FORM_TYPES.test(request.headers['content-type'] ?? '')) {
          return sendText(
            reply,
            415,
            'Send the body as application/x-www-form-urlencoded or multipart/form-data (RFC 8058); nothing was changed.',
          );
        }
        const body = request.isMultipart() ? await readMultipartFields(request) : request.body;
        if (!isOneClickBody(body)) {
          return sendText(
            reply,
            400,
            `The body must be ${ONE_CLICK_FIELD}=${ONE_CLICK_VALUE} (RFC 8058); nothing was changed.`,
          );
        }
        const result = await mailEvents.unsubscribe(ctx, token, {
          evidence: { userAgent: request.headers['user-agent'], ip: request.ip },
        });
        // Verified twice on purpose: the clock may cross the expiry between the two.
        if (!result.ok) return sendText(reply, statusOf(result.problem), problemText(result.problem));
        return sendPage(
          reply,
          200,
          oneClickDonePage(site, { purposeName: described.purposeName, channel: result.channel }),
        );
      },
    );
  });
}

/** 400 for a token that is not one (malformed), 403 for one that is refused. */
function statusOf(problem: LinkTokenProblem): 400 | 403 {
  return problem === 'malformed' ? 400 : 403;
}

function problemText(problem: LinkTokenProblem): string {
  return problem === 'malformed'
    ? 'This unsubscribe link is malformed; nothing was changed.'
    : 'This unsubscribe link is not valid (changed or expired); nothing was changed.';
}

/**
 * The fields of a multipart/form-data body, or `undefined` when it is not a well-formed one (no
 * boundary, a truncated part, a file, past the limits): the route answers 400, nothing changed.
 */
async function readMultipartFields(request: FastifyRequest): Promise<Record<string, string[]> | undefined> {
  const fields: Record<string, string[]> = {};
  try {
    for await (const part of request.parts()) {
      if (part.type !== 'field') return undefined;
      (fields[part.fieldname] ??= []).push(String(part.value));
    }
  } catch {
    return undefined;
  }
  return fields;
}

/** True when the parsed body (either encoding) holds List-Unsubscribe=One-Click. */
function isOneClickBody(body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const value: unknown = (body as Record<string, unknown>)[ONE_CLICK_FIELD];
  const values: unknown[] = Array.isArray(value) ? value : [value];
  return values.some((v) => v === ONE_CLICK_VALUE);
}

function sendText(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply
    .status(status)
    .header('content-type', 'text/plain; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(`${text}\n`);
}
