/**
 * Bounces and complaints by webhook, for sending services that report them over HTTP rather than
 * by mail (`POST /api/v1/mail/events`, scope mail:events), and the suppression check the mail
 * pipeline and other senders ask before sending (`POST /api/v1/mail/suppressions/check`, scope
 * mail:send).
 *
 * Events come as JSON (one event or an array of them) or as the raw report itself: a whole message
 * (`Content-Type: message/rfc822`) or its MIME body (`Content-Type: multipart/report; ...`). The
 * answer says what each event did, in order, and never repeats an address. Bodies of either kind
 * are held to PLEDGE_BODY_LIMIT (413 `request.too_large` past it), as every route's. The caller is
 * authenticated by its API key, so its reports are applied without the return token that mail to
 * the inbound listener must carry (a provider's webhook reports what it saw, not our Message-IDs).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SystemGate } from '../manifest/systems.gate.js';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { ValidationError } from '../platform/errors.js';
import type { BounceKind } from './bounces.js';
import type { MailEventResult, MailEventsService } from './mail-events.service.js';
import type { SuppressionService } from './suppression.service.js';

/** What the routes use. */
export interface MailEventsRoutesDeps {
  mailEvents: MailEventsService;
  suppression: SuppressionService;
  auth: AuthHook;
  /** Holds each system to its purposes (a list is one). */
  systems: Pick<SystemGate, 'requirePurpose'>;
}

/** The most JSON events in one request. */
export const MAX_EVENTS = 1000;
/** The most addresses in one suppression check. */
export const MAX_CHECK_ADDRESSES = 10_000;

/** A JSON event as the webhook takes it. */
export type MailEventInput =
  | { type: 'bounce'; address: string; kind: BounceKind; status?: string }
  | { type: 'complaint'; address: string; list?: string };

const RAW_TYPES = ['message/rfc822', 'multipart/report'];
/** The properties of each event type; any other is refused, so a misspelt one is not ignored. */
const BOUNCE_FIELDS = ['type', 'address', 'kind', 'status'];
const COMPLAINT_FIELDS = ['type', 'address', 'list'];

const resultSchema = {
  type: 'object',
  properties: {
    type: { type: 'string', enum: ['bounce', 'complaint'] },
    outcome: { type: 'string', enum: ['suppressed', 'already_suppressed', 'counted', 'ignored'] },
    withdrawn: { type: 'boolean' },
  },
  required: ['type', 'outcome'],
} as const;

/** Registers the webhook and the suppression check. */
export async function registerMailEventsRoutes(
  http: FastifyInstance,
  deps: MailEventsRoutesDeps,
): Promise<void> {
  const { mailEvents, suppression, auth } = deps;

  await http.register((scope, _options, done) => {
    // Raw reports are read whole, as bytes, in this scope only, under the server's body limit.
    scope.addContentTypeParser(RAW_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    scope.post(
      '/api/v1/mail/events',
      {
        onRequest: auth('mail:events'),
        schema: {
          tags: ['mail'],
          summary: 'Report bounces and complaints (JSON events, or a raw DSN / ARF report)',
          description:
            'JSON: `{ "type": "bounce", "address": …, "kind": "hard" | "soft", "status"?: "5.1.1" }` or ' +
            '`{ "type": "complaint", "address": …, "list"?: purpose }`, or an array of up to 1,000 of them. ' +
            'Raw: the report as `message/rfc822` (a whole message) or `multipart/report` (its MIME body, the ' +
            'boundary in Content-Type). A hard bounce or a complaint suppresses the address for every list; ' +
            'soft bounces suppress it at PLEDGE_SOFT_BOUNCE_LIMIT.',
          security: [{ apiKey: [] }],
          response: {
            200: {
              type: 'object',
              properties: {
                report: { type: 'string', enum: ['json', 'delivery_status', 'feedback', 'not_a_report'] },
                results: { type: 'array', items: resultSchema },
              },
              required: ['report', 'results'],
            },
          },
        },
      },
      async (request) => {
        const ctx = apiContext(request);
        if (Buffer.isBuffer(request.body)) {
          const { report, results } = await mailEvents.report(ctx, rawMessageOf(request, request.body));
          return { report, results: results.map(presentResult) };
        }
        const events = parseEvents(request.body);
        const results: MailEventResult[] = [];
        for (const event of events) {
          results.push(
            event.type === 'bounce'
              ? await mailEvents.bounce(ctx, { address: event.address, kind: event.kind })
              : await mailEvents.complaint(ctx, { address: event.address, list: event.list }),
          );
        }
        return { report: 'json', results: results.map(presentResult) };
      },
    );

    scope.post<{ Body: { list: string; addresses: string[] } }>(
      '/api/v1/mail/suppressions/check',
      {
        onRequest: auth('mail:send'),
        schema: {
          tags: ['mail'],
          summary: 'Which of these addresses must not receive mail of this list',
          description:
            '`suppressed[i]` answers for `addresses[i]`: true when the address is suppressed for the list ' +
            '(a purpose key) or for every list, or is not an e-mail address.',
          security: [{ apiKey: [] }],
          body: {
            type: 'object',
            properties: {
              list: { type: 'string', minLength: 1, maxLength: 200 },
              addresses: {
                type: 'array',
                maxItems: MAX_CHECK_ADDRESSES,
                items: { type: 'string', maxLength: 320 },
              },
            },
            required: ['list', 'addresses'],
            additionalProperties: false,
          },
          response: {
            200: {
              type: 'object',
              properties: { suppressed: { type: 'array', items: { type: 'boolean' } } },
              required: ['suppressed'],
            },
          },
        },
      },
      async (request) => {
        const { list, addresses } = request.body;
        const ctx = apiContext(request);
        deps.systems.requirePurpose(ctx, list);
        const hit = await suppression.suppressedAmong(ctx, addresses, list);
        return { suppressed: addresses.map((a) => hit.has(a)) };
      },
    );
    done();
  });
}

/** The fields of a result that leave the server (no address, no subject). */
function presentResult(r: MailEventResult): MailEventResult {
  return {
    type: r.type,
    outcome: r.outcome,
    ...(r.withdrawn !== undefined ? { withdrawn: r.withdrawn } : {}),
  };
}

/** A whole message: a message/rfc822 body is one; a multipart/report body needs its Content-Type. */
function rawMessageOf(request: FastifyRequest, body: Buffer): Buffer {
  const type = request.headers['content-type'] ?? '';
  if (type.toLowerCase().startsWith('message/rfc822')) return body;
  return Buffer.concat([
    Buffer.from(`MIME-Version: 1.0\r\nContent-Type: ${type.replace(/[\r\n]/g, ' ')}\r\n\r\n`),
    body,
  ]);
}

/** Checks JSON events; every problem is reported at once with its path. */
export function parseEvents(body: unknown): MailEventInput[] {
  const list: unknown[] = Array.isArray(body) ? body : [body];
  const problems: Array<{ path: string; message: string }> = [];
  if (list.length === 0 || list.length > MAX_EVENTS) {
    problems.push({ path: '/', message: `send 1 to ${MAX_EVENTS} events` });
  }
  const events: MailEventInput[] = [];
  list.slice(0, MAX_EVENTS).forEach((item, i) => {
    const at = Array.isArray(body) ? `/${i}` : '';
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      problems.push({ path: at || '/', message: 'must be an object with "type"' });
      return;
    }
    const e = item as Record<string, unknown>;
    const allowed =
      e.type === 'bounce' ? BOUNCE_FIELDS : e.type === 'complaint' ? COMPLAINT_FIELDS : undefined;
    for (const name of Object.keys(e)) {
      if (allowed !== undefined && !allowed.includes(name)) {
        problems.push({
          path: `${at}/${name}`,
          message: `unknown property; a ${String(e.type)} event has only ${allowed.join(', ')}`,
        });
      }
    }
    const address = e.address;
    if (typeof address !== 'string' || address.length === 0 || address.length > 320) {
      problems.push({ path: `${at}/address`, message: 'must be the e-mail address the report is about' });
    }
    switch (e.type) {
      case 'bounce': {
        if (e.kind !== 'hard' && e.kind !== 'soft') {
          problems.push({
            path: `${at}/kind`,
            message: 'must be "hard" (permanent, 5.x.x) or "soft" (temporary, 4.x.x)',
          });
        }
        if (
          e.status !== undefined &&
          (typeof e.status !== 'string' || !/^[245]\.\d{1,3}\.\d{1,3}$/.test(e.status))
        ) {
          problems.push({ path: `${at}/status`, message: 'must be an enhanced status code such as "5.1.1"' });
        }
        if (typeof address === 'string' && (e.kind === 'hard' || e.kind === 'soft')) {
          events.push({ type: 'bounce', address, kind: e.kind });
        }
        break;
      }
      case 'complaint': {
        if (
          e.list !== undefined &&
          (typeof e.list !== 'string' || e.list.length === 0 || e.list.length > 200)
        ) {
          problems.push({
            path: `${at}/list`,
            message: 'must be the list (a purpose key) the complaint is about',
          });
        }
        if (typeof address === 'string') {
          events.push({
            type: 'complaint',
            address,
            ...(typeof e.list === 'string' ? { list: e.list } : {}),
          });
        }
        break;
      }
      default:
        problems.push({ path: `${at}/type`, message: 'must be "bounce" or "complaint"' });
    }
  });
  if (problems.length > 0) {
    throw new ValidationError(
      'mail.event_invalid',
      problems.map((p) => `${p.path}: ${p.message}`).join('; '),
      { problems },
    );
  }
  return events;
}
