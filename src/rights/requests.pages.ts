/**
 * The requester's pages, server-rendered and working without JavaScript: the request form
 * (`/requests`, linked from /privacy and the privacy center), the code form (`/requests/verify`, by a
 * signed link that lives as long as the codes) and the status page (`/requests/status`, by a signed
 * link that expires after the latest due date). The form answers the same whether or not anyone is
 * known by what was typed: the request is made, and the codes go where the person said.
 */
import formbody from '@fastify/formbody';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { renderPage, type PageSite } from '../consent/pages.views.js';
import { createContext, type Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import { html, type SafeHtml } from '../platform/html.js';
import { sendPage } from '../platform/http/pages.js';
import { clientKey } from '../platform/http/rate-limit.js';
import { presentForRequester } from './requests.presenter.js';
import { REQUEST_TYPES } from './requests.repository.js';
import type { RequestsService } from './requests.service.js';
import type { CheckResult } from './verification.service.js';

/** What the pages use. */
export interface RequestPagesDeps {
  requests: RequestsService;
  site: PageSite;
  /** The jurisdictions offered in the form (the manifest's). */
  jurisdictions: readonly string[];
}

/** Form posts per client address per minute (the code checks count against it too). */
export const REQUEST_FORMS_PER_MINUTE = 10;

const TYPE_LABELS: Record<(typeof REQUEST_TYPES)[number], string> = {
  access: 'Tell me what data you hold on me (access)',
  export: 'Send me a copy of my data I can take elsewhere (export)',
  erasure: 'Erase my data (erasure)',
  rectification: 'Correct my data (rectification)',
  restriction: 'Stop using my data while a question is settled (restriction)',
  objection: 'Stop using my data for marketing or another purpose (objection)',
  inquiry: 'Ask a question or make a complaint',
};

type Form = Record<string, string | string[] | undefined>;

function field(body: unknown, name: string): string | undefined {
  const v = (body as Form | undefined)?.[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

/** Registers the requester's pages. */
export async function registerRequestPages(http: FastifyInstance, deps: RequestPagesDeps): Promise<void> {
  const { requests, site } = deps;
  const contextOf = (request: FastifyRequest): Context =>
    createContext({ kind: 'anonymous' }, { requestId: request.id });
  const limit = { rateLimit: { max: REQUEST_FORMS_PER_MINUTE, timeWindow: 60_000, budget: 'request-forms' } };

  await http.register(async (pages) => {
    await pages.register(formbody, { bodyLimit: 16 * 1024 });
    pages.setErrorHandler((err: FastifyError | PledgeError | Error, request, reply) => {
      const status = err instanceof PledgeError ? err.status : ((err as FastifyError).statusCode ?? 500);
      if (status >= 500) request.log.error({ err }, 'request page failed');
      const message =
        err instanceof PledgeError && err.expose
          ? err.message
          : status === 429
            ? 'Too many tries; wait a minute.'
            : 'Something went wrong; try again.';
      if (err instanceof PledgeError && err.retryAfterSeconds !== undefined)
        void reply.header('retry-after', String(err.retryAfterSeconds));
      return sendPage(
        reply,
        status >= 400 && status < 600 ? status : 500,
        messagePage(site, 'Your request', message),
      );
    });

    pages.get('/requests', { schema: { hide: true } }, async (_request, reply) =>
      sendPage(reply, 200, formPage(site, deps.jurisdictions, {})),
    );

    pages.post<{ Body: unknown }>(
      '/requests',
      { schema: { hide: true }, config: limit },
      async (request, reply) => {
        const body = (request.body ?? {}) as Form;
        const input = {
          type: field(body, 'type'),
          email: field(body, 'email'),
          phone: field(body, 'phone'),
          jurisdiction: field(body, 'jurisdiction'),
          details: field(body, 'details'),
        };
        try {
          const out = await requests.receive(contextOf(request), input, {
            agent: 'person',
            ip: clientKey(request.ip),
          });
          return await reply.redirect(`/requests/verify?t=${encodeURIComponent(out.verifyToken)}`, 303);
        } catch (err) {
          if (err instanceof PledgeError && err.code === 'requests.request_invalid') {
            const problems = (err.details?.problems ?? []) as Array<{ path: string; message: string }>;
            return sendPage(reply, 400, formPage(site, deps.jurisdictions, { values: input, problems }));
          }
          throw err;
        }
      },
    );

    const verifyToken = (request: FastifyRequest, token: string | undefined): string | undefined =>
      token === undefined ? undefined : requests.requestOfLink(contextOf(request), token, 'verify');

    pages.get<{ Querystring: { t?: string } }>(
      '/requests/verify',
      {
        schema: {
          hide: true,
          querystring: { type: 'object', properties: { t: { type: 'string', maxLength: 200 } } },
        },
      },
      async (request, reply) => {
        const token = request.query.t;
        const id = verifyToken(request, token);
        if (id === undefined || token === undefined) return sendPage(reply, 400, expiredPage(site));
        const statuses = await requests.verificationOf(contextOf(request), id);
        return sendPage(reply, 200, codePage(site, token, statuses, undefined));
      },
    );

    pages.post<{ Body: unknown }>(
      '/requests/verify',
      { schema: { hide: true }, config: limit },
      async (request, reply) => {
        const token = field(request.body, 't');
        const id = verifyToken(request, token);
        if (id === undefined || token === undefined) return sendPage(reply, 400, expiredPage(site));
        const answers: Partial<Record<'email' | 'phone', string>> = {};
        const email = field(request.body, 'email_code');
        const phone = field(request.body, 'phone_code');
        if (email !== undefined) answers.email = email;
        if (phone !== undefined) answers.phone = phone;
        const out = await requests.verify(contextOf(request), id, answers);
        if (out.statusToken !== undefined)
          return reply.redirect(`/requests/status?t=${encodeURIComponent(out.statusToken)}`, 303);
        if (out.check.settled && out.request.status === 'rejected')
          return sendPage(reply, 200, messagePage(site, 'We could not verify your request', unverifiedWords));
        if (out.check.settled)
          return sendPage(
            reply,
            200,
            messagePage(
              site,
              'Your request is verified',
              'This request is verified already. We e-mailed you the link to its status.',
            ),
          );
        return sendPage(reply, 200, codePage(site, token, out.check.statuses, 'That code is not right.'));
      },
    );

    pages.get<{ Querystring: { t?: string } }>(
      '/requests/status',
      {
        schema: {
          hide: true,
          querystring: { type: 'object', properties: { t: { type: 'string', maxLength: 200 } } },
        },
      },
      async (request, reply) => {
        const token = request.query.t;
        const ctx = contextOf(request);
        const id = token === undefined ? undefined : requests.requestOfLink(ctx, token, 'status');
        if (id === undefined) return sendPage(reply, 400, expiredPage(site));
        const view = await requests.view(ctx, id);
        return sendPage(reply, 200, statusPage(site, presentForRequester(view.request, view.steps)));
      },
    );
  });
}

const unverifiedWords =
  'None of the codes was entered in time, or the attempts ran out, so we cannot act on this request. You can make a new one.';

// The functions below lay out markup and are left as written.

// prettier-ignore
function formPage(
  site: PageSite,
  jurisdictions: readonly string[],
  options: { values?: Record<string, string | undefined>; problems?: ReadonlyArray<{ path: string; message: string }> },
): string {
  const v = options.values ?? {};
  const problems = options.problems ?? [];
  const errorList = problems.length === 0 ? '' : html`    <div class="problems" role="alert"><p>Please fix this:</p><ul>${problems.map((p) => html`<li>${p.path === '' ? 'form' : p.path}: ${p.message}</li>`)}</ul></div>
`;
  const types = REQUEST_TYPES.map((t) => html`
        <li><label><input type="radio" name="type" value="${t}"${(v.type ?? 'access') === t ? html` checked` : ''}> ${TYPE_LABELS[t]}</label></li>`);
  const places = jurisdictions.map((j) => html`<option value="${j}"${v.jurisdiction === j ? html` selected` : ''}>${j}</option>`);
  const main: SafeHtml = html`${errorList}    <p>Ask us about the personal data we hold on you. We send a code to each address or number you give, to make sure the request is yours; we act only on those you confirm.</p>
    <form method="post" action="/requests">
      <fieldset>
        <legend>What do you want to do?</legend>
        <ul class="choice-list">${types}
        </ul>
      </fieldset>
      <p><label for="email">Your e-mail address</label><br><input id="email" name="email" type="email" autocomplete="email" value="${v.email ?? ''}"></p>
      <p><label for="phone">Your phone number (optional, with the country code)</label><br><input id="phone" name="phone" type="tel" autocomplete="tel" value="${v.phone ?? ''}"></p>
      <p><label for="jurisdiction">Where you live</label><br><select id="jurisdiction" name="jurisdiction"><option value="">Not sure</option>${places}</select></p>
      <p><label for="details">Anything we should know (what to correct, your question)</label><br><textarea id="details" name="details" rows="4" maxlength="2000">${v.details ?? ''}</textarea></p>
      <p><button type="submit">Send the request</button></p>
    </form>
`;
  return renderPage(site, 'Make a request about your data', main);
}

// prettier-ignore
function codePage(site: PageSite, token: string, statuses: CheckResult['statuses'], problem: string | undefined): string {
  const pending = statuses.filter((s) => s.status === 'pending');
  const words = { email: 'the code we e-mailed you', phone: 'the code we sent by text message' } as const;
  const settled = statuses.filter((s) => s.status !== 'pending').map((s) => html`<li>${s.kind === 'email' ? 'E-mail address' : 'Phone number'}: ${s.status === 'verified' ? 'confirmed' : 'not confirmed; we will not act on it'}</li>`);
  const inputs = pending.map((s) => html`
      <p><label for="${s.kind}_code">Enter ${words[s.kind]} (${String(s.attemptsLeft)} ${s.attemptsLeft === 1 ? 'try' : 'tries'} left)</label><br><input id="${s.kind}_code" name="${s.kind}_code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6"></p>`);
  const main = html`${problem === undefined ? '' : html`    <p class="problems" role="alert">${problem}</p>
`}    <p>We sent a 6-digit code to each address or number you gave. Codes are valid for 10 minutes.</p>
${settled.length === 0 ? '' : html`    <ul>${settled}</ul>
`}    <form method="post" action="/requests/verify">
      <input type="hidden" name="t" value="${token}">${inputs}
      <p><button type="submit">Confirm</button></p>
    </form>
`;
  return renderPage(site, 'Confirm it is you', main);
}

// prettier-ignore
function statusPage(site: PageSite, s: ReturnType<typeof presentForRequester>): string {
  const steps = s.steps.map((step) => html`
      <li>${step.label}: ${step.state}</li>`);
  const main = html`    <p>You asked for ${s.type} on ${s.receivedOn}.</p>
    <p><strong>${s.status}</strong>${s.reason === undefined ? '' : html` The reason: ${s.reason}.`}</p>
    <p>We will answer by ${s.dueOn}${s.extended ? ' (we told you why we need this extra time)' : ''}.</p>
    <h2>Steps</h2>
    <ol>${steps}
    </ol>
    <p>Keep this page's link: it shows where your request stands until it is answered.</p>
`;
  return renderPage(site, 'Your request', main);
}

// prettier-ignore
function messagePage(site: PageSite, title: string, message: string): string {
  return renderPage(site, title, html`    <p>${message}</p>
    <p><a href="/requests">Make a request</a></p>
`);
}

function expiredPage(site: PageSite): string {
  return messagePage(
    site,
    'This link does not work',
    'The link is wrong or has expired. You can make a new request.',
  );
}
