/**
 * Choices and decisions over HTTP: record choices, read a person's choices and ledger, ask for
 * decisions (one subject, or up to 10,000 for the mail pipeline), merge a browser into a subject,
 * and the public endpoint the banner reports Global Privacy Control to.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SystemGate } from '../manifest/systems.gate.js';
import { createContext } from '../platform/context.js';
import { apiContext, type AuthHook } from '../platform/http/auth.js';
import { ValidationError } from '../platform/errors.js';
import { CONSENT_METHODS, CONSENT_STATES, type ConsentMethod, type ConsentState } from './consent.decide.js';
import {
  presentBatchDecisionsJson,
  presentChange,
  presentEvent,
  presentPurposeChoice,
} from './consent.presenter.js';
import {
  MAX_DECISION_BATCH,
  type ConsentEvidence,
  type ConsentHolder,
  type ConsentService,
  type RecordChoiceInput,
} from './consent.service.js';

/** What the consent routes use. */
export interface ConsentRoutesDeps {
  consent: ConsentService;
  auth: AuthHook;
  /** Holds each system to its purposes. */
  systems: SystemGate;
}

const idParams = {
  type: 'object',
  properties: { id: { type: 'string', format: 'uuid' } },
  required: ['id'],
} as const;

const browserId = { type: 'string', pattern: '^[A-Za-z0-9_-]{16,128}$' } as const;

/** Without a channel, for a purpose used on channels: those the person withdrew (when any). */
const withdrawnChannels = { type: 'array', items: { type: 'string' } } as const;

const decisionSchema = {
  type: 'object',
  properties: {
    subject: { type: 'string' },
    purpose: { type: 'string' },
    channel: { type: ['string', 'null'] },
    allowed: { type: 'boolean' },
    reason: { type: 'string' },
    withdrawnChannels,
  },
  required: ['subject', 'purpose', 'channel', 'allowed', 'reason'],
} as const;

const batchItemSchema = {
  type: 'object',
  properties: {
    subject: { type: 'string' },
    allowed: { type: 'boolean' },
    reason: { type: 'string' },
    withdrawnChannels,
  },
  required: ['subject', 'allowed', 'reason'],
} as const;

interface ConsentBody {
  subject?: string;
  browser?: string;
  jurisdiction?: string;
  gpc?: boolean;
  choices: Array<{
    purpose: string;
    channel?: string;
    state: ConsentState;
    method?: ConsentMethod;
    noticeVersion?: string;
  }>;
  evidence?: { userAgent?: string; ip?: string };
}

interface DecisionsBody {
  subject?: string;
  subjects?: string[];
  purpose: string;
  channel?: string;
}

/** Registers `/api/v1/consent`, `/api/v1/decisions`, `/api/v1/subjects/:id/consent` and `/consent/gpc`. */
export function registerConsentRoutes(app: FastifyInstance, deps: ConsentRoutesDeps): void {
  const { consent, auth, systems } = deps;

  app.post<{ Body: ConsentBody }>(
    '/api/v1/consent',
    {
      onRequest: auth('consent:write'),
      schema: {
        tags: ['consent'],
        summary:
          'Record choices for a subject or a browser (appended to the ledger; "*" is the global opt-out). `Sec-GPC: 1` or `gpc: true` also records a GPC opt-out.',
        security: [{ apiKey: [] }],
        body: {
          type: 'object',
          properties: {
            subject: { type: 'string', format: 'uuid' },
            browser: browserId,
            jurisdiction: { type: 'string', maxLength: 10 },
            gpc: { type: 'boolean' },
            choices: {
              type: 'array',
              maxItems: 100,
              items: {
                type: 'object',
                properties: {
                  purpose: { type: 'string', minLength: 1, maxLength: 100 },
                  channel: { type: 'string', minLength: 1, maxLength: 20 },
                  state: { type: 'string', enum: [...CONSENT_STATES] },
                  method: { type: 'string', enum: [...CONSENT_METHODS] },
                  noticeVersion: { type: 'string', minLength: 1, maxLength: 100 },
                },
                required: ['purpose', 'state'],
                additionalProperties: false,
              },
            },
            evidence: {
              type: 'object',
              properties: {
                userAgent: { type: 'string', maxLength: 2000 },
                ip: { type: 'string', maxLength: 100 },
              },
              additionalProperties: false,
            },
          },
          required: ['choices'],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const ctx = apiContext(request);
      const body = request.body;
      const holder = holderOf(body);
      const evidence: ConsentEvidence | undefined = body.evidence;
      const inputs: RecordChoiceInput[] = body.choices.map((c) => ({
        holder,
        purpose: c.purpose,
        channel: c.channel,
        state: c.state,
        method: c.method ?? 'api',
        noticeVersion: c.noticeVersion,
        jurisdiction: body.jurisdiction,
        evidence,
      }));
      // A system records consent only for its purposes; a refusal or withdrawal it may pass on for any,
      // since a person may tell any of the company's systems to stop, and stopping must be honoured.
      for (const input of inputs) {
        if (input.state === 'granted' && input.purpose !== '*') systems.requirePurpose(ctx, input.purpose);
      }
      const changes = inputs.length > 0 ? await consent.record(ctx, inputs) : [];
      if (body.gpc === true || gpcHeader(request)) {
        changes.push(
          ...(await consent.recordGpc(ctx, holder, { jurisdiction: body.jurisdiction, evidence })),
        );
      }
      return reply.code(201).send({ changes: changes.map(presentChange) });
    },
  );

  app.post<{ Body: DecisionsBody }>(
    '/api/v1/decisions',
    {
      onRequest: auth('consent:read'),
      schema: {
        tags: ['consent'],
        summary: `Decide whether a purpose (on a channel) may use a subject's data; "subjects" decides up to ${MAX_DECISION_BATCH.toLocaleString('en-US')} at once`,
        security: [{ apiKey: [] }],
        body: {
          type: 'object',
          properties: {
            subject: { type: 'string', format: 'uuid' },
            subjects: {
              type: 'array',
              maxItems: MAX_DECISION_BATCH,
              items: { type: 'string', format: 'uuid' },
            },
            purpose: { type: 'string', minLength: 1, maxLength: 100 },
            channel: { type: 'string', minLength: 1, maxLength: 20 },
          },
          required: ['purpose'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              decision: decisionSchema,
              purpose: { type: 'string' },
              channel: { type: ['string', 'null'] },
              decisions: { type: 'array', items: batchItemSchema },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const ctx = apiContext(request);
      const { subject, subjects, purpose, channel } = request.body;
      systems.requirePurpose(ctx, purpose);
      if ((subject === undefined) === (subjects === undefined)) {
        throw new ValidationError(
          'consent.decision_target',
          'give either "subject" (one subject id) or "subjects" (an array of subject ids), not both and not neither',
        );
      }
      if (subject !== undefined) {
        const d = await consent.decide(ctx, subject, purpose, channel);
        const decision: Record<string, unknown> = {
          subject,
          purpose,
          channel: channel ?? null,
          allowed: d.allowed,
          reason: d.reason,
        };
        // Set only when there are some: no spread of an empty object on every decision.
        if (d.withdrawnChannels !== undefined) decision.withdrawnChannels = d.withdrawnChannels;
        return { decision };
      }
      const list = subjects ?? [];
      const decisions = await consent.decideMany(ctx, list, purpose, channel);
      // Already JSON (the response schema documents its shape): sent as it is.
      return reply
        .type('application/json; charset=utf-8')
        .send(presentBatchDecisionsJson(purpose, channel, list, decisions));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/subjects/:id/consent',
    {
      onRequest: auth('consent:read'),
      schema: {
        tags: ['consent'],
        summary: "A subject's choices and the decision for every purpose",
        security: [{ apiKey: [] }],
        params: idParams,
      },
    },
    async (request) => {
      const ctx = apiContext(request);
      const holder = { subjectId: request.params.id };
      const visible = systems.purposeVisible(ctx);
      const purposes = (await consent.purposeChoices(ctx, holder)).filter((c) => visible(c.purpose.key));
      const globalOptOut = await consent.globalOptOut(ctx, holder);
      return { subject: request.params.id, globalOptOut, purposes: purposes.map(presentPurposeChoice) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/subjects/:id/consent/history',
    {
      onRequest: auth('consent:read'),
      schema: {
        tags: ['consent'],
        summary: "A subject's consent ledger, oldest first, with its evidence (proof of consent)",
        security: [{ apiKey: [] }],
        params: idParams,
      },
    },
    async (request) => {
      const ctx = apiContext(request);
      const visible = systems.purposeVisible(ctx);
      // A global opt-out (purpose "*") concerns every system.
      const events = (await consent.history(ctx, { subjectId: request.params.id })).filter(
        (e) => e.purpose === '*' || visible(e.purpose),
      );
      return { subject: request.params.id, events: events.map(presentEvent) };
    },
  );

  app.post<{ Body: { browser: string; subject: string } }>(
    '/api/v1/consent/merge',
    {
      onRequest: auth('consent:write'),
      schema: {
        tags: ['consent'],
        summary: "Merge a browser's choices into the subject who just signed up on it",
        security: [{ apiKey: [] }],
        body: {
          type: 'object',
          properties: { browser: browserId, subject: { type: 'string', format: 'uuid' } },
          required: ['browser', 'subject'],
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const changes = await consent.mergeBrowser(
        apiContext(request),
        request.body.browser,
        request.body.subject,
      );
      return { merged: changes.length, changes: changes.map(presentChange) };
    },
  );

  // The banner reports navigator.globalPrivacyControl here. Public (a browser has no API key); it
  // can only ever add opt-outs, for the random browser id it names.
  app.post<{ Body: { browser: string; gpc?: boolean } }>(
    '/consent/gpc',
    {
      schema: {
        tags: ['consent'],
        summary:
          'Report a Global Privacy Control signal for a browser (from the banner, or any request carrying Sec-GPC: 1)',
        body: {
          type: 'object',
          properties: { browser: browserId, gpc: { type: 'boolean' } },
          required: ['browser'],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      if (request.body.gpc !== true && !gpcHeader(request)) {
        throw new ValidationError(
          'consent.gpc_missing',
          'no Global Privacy Control signal: send the header "Sec-GPC: 1" or the body {"gpc": true}',
        );
      }
      const ctx = createContext({ kind: 'anonymous' }, { requestId: request.id });
      const changes = await consent.recordGpc(
        ctx,
        { browserId: request.body.browser },
        {
          evidence: { userAgent: request.headers['user-agent'], ip: request.ip },
        },
      );
      return reply.code(200).send({ recorded: changes.length });
    },
  );
}

/** True when the request carries `Sec-GPC: 1` (https://privacycg.github.io/gpc-spec/). */
export function gpcHeader(request: FastifyRequest): boolean {
  const value = request.headers['sec-gpc'];
  return (Array.isArray(value) ? value[0] : value)?.trim() === '1';
}

function holderOf(body: { subject?: string; browser?: string }): ConsentHolder {
  if ((body.subject === undefined) === (body.browser === undefined)) {
    throw new ValidationError(
      'consent.holder_missing',
      'give either "subject" (a subject id) or "browser" (the banner\'s browser id), not both and not neither',
    );
  }
  return body.subject !== undefined ? { subjectId: body.subject } : { browserId: body.browser! };
}
