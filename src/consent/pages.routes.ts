/**
 * The pages people use to make choices: the preference center (`/preferences`) and the unsubscribe
 * page (`/unsubscribe`), opened from signed links in e-mails (see link-tokens.ts). They are plain
 * server-rendered forms that work without JavaScript.
 *
 * - GET never changes anything: mail scanners and link previewers follow every link they see.
 * - Every form carries an anti-forgery token bound to a cookie (SameSite=Strict, HttpOnly, Secure
 *   on https). Form parsing, the cookie and the check live in this plugin's own scope, so other
 *   routes (the RFC 8058 one-click POST, the API) neither need a cookie nor accept form bodies.
 * - The e-mail form answers with the same bytes whether or not the address is known, and looks the
 *   address up only after the answer has been sent, so neither the page nor its timing tells anyone
 *   who is on file.
 */
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MailTransport } from '../platform/mail/mail.transport.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import type { Config } from '../platform/config.js';
import { asLinkHolder, createContext, type Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import type { PassThroughGate } from '../share/share.types.js';
import type { DisclosuresReader } from '../share/disclosures.view.js';
import { MAIL_CATEGORY, mailRecipientOf } from '../share/share.gate.js';
import { sendPage } from '../platform/http/pages.js';
import { WindowCounter } from '../platform/http/rate-limit.js';
import type { Keyring } from '../vault/keyring.js';
import { identifierHash, normalizeIdentifier } from '../vault/identifiers.js';
import type { Vault } from '../vault/vault.service.js';
import { gpcHeader } from './consent.routes.js';
import { choiceKey } from './consent.decide.js';
import type { ConsentEvidence, ConsentService } from './consent.service.js';
import {
  createLinkToken,
  deriveLinkTokenKeys,
  verifyLinkToken,
  type LinkToken,
  type LinkTokenScope,
} from './link-tokens.js';
import { PAGES_CSS } from './pages.css.js';
import {
  describeChanges,
  loadPreferences,
  planPreferenceChanges,
  type Preferences,
} from './pages.preferences.js';
import {
  disclosuresPage,
  formExpiredPage,
  linkFormPage,
  linkSentPage,
  pageErrorPage,
  preferencesLinkMail,
  preferencesPage,
  preferencesSavedPage,
  proofUnavailablePage,
  signedOutPage,
  siteOf,
  unsubscribeConfirmPage,
  unsubscribeDonePage,
  type LinkFormReason,
} from './pages.views.js';

/** What the pages use. */
export interface ConsentPagesDeps {
  consent: ConsentService;
  vault: Vault;
  manifest: Manifest;
  keyring: Keyring;
  config: Pick<Config, 'publicUrl'>;
  /** Pledge's one mail transport (the links people ask for leave through it). */
  mail: Pick<MailTransport, 'send'>;
  /**
   * The share gate: a link mailed to a person is handed to the e-mail delivery provider, a
   * disclosure of their address, checked before and recorded after (absent: not checked).
   */
  share?: PassThroughGate;
  /**
   * The disclosures of a person's data, for the privacy center's "who got my data" page (the share
   * capability's presenter; absent: no such page).
   */
  disclosures?: DisclosuresReader;
}

/** Form bodies of these pages are small; anything larger is not one of ours. */
const FORM_BODY_LIMIT = 16 * 1024;
/** E-mail form submissions per client address and minute (each may send a mail). */
const LINK_REQUESTS_PER_MINUTE = 10;
/**
 * Links mailed per e-mail address and hour, whatever client asks: the per-client limit alone lets
 * someone with many addresses flood a known mailbox. Past it the form answers as always and sends
 * nothing, so the answer still says nothing about whether the address is known.
 */
const LINKS_PER_MAILBOX_PER_HOUR = 3;
/** Mailboxes counted at most (the least recently asked for is forgotten first). */
const MAILBOXES_COUNTED = 50_000;

type FormBody = Record<string, unknown> | undefined;

/** Registers the preference center, the unsubscribe pages and their stylesheet. */
export async function registerConsentPages(http: FastifyInstance, deps: ConsentPagesDeps): Promise<void> {
  const { consent, vault, config } = deps;
  const key = deriveLinkTokenKeys(deps.keyring.use('links'));
  const site = siteOf(deps.manifest);
  const secure = config.publicUrl.startsWith('https:');
  const { mail } = deps;
  /** Work started after a response (the e-mail form's lookup and mail); drained on close. */
  const followUps = new Set<Promise<void>>();
  /** The address an e-mail form request asked about, for its follow-up. */
  const pendingLookups = new WeakMap<FastifyRequest, string>();
  // Counted under the address's keyed hash (the vault's blind index), never the address itself:
  // this map is memory anyone with a heap dump could read. One process's count (see consent-pages.md).
  const perMailbox = new WindowCounter(LINKS_PER_MAILBOX_PER_HOUR, 3_600_000, MAILBOXES_COUNTED);

  http.get('/assets/pages.css', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .header('content-type', 'text/css; charset=utf-8')
      .header('cache-control', 'public, max-age=86400')
      .send(PAGES_CSS),
  );

  await http.register(async (pages) => {
    await pages.register(formbody, { bodyLimit: FORM_BODY_LIMIT });
    await pages.register(cookie);
    await pages.register(csrf, {
      // "__Host-" makes the browser refuse the cookie unless it is Secure, host-only and on "/".
      cookieKey: secure ? '__Host-pledge_csrf' : 'pledge_csrf',
      cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true, secure },
      getToken: (request) => formValue(request.body as FormBody, '_csrf'),
    });

    pages.setErrorHandler((err: FastifyError | PledgeError | Error, request, reply) => {
      const code = (err as FastifyError).code;
      if (code === 'FST_CSRF_MISSING_SECRET' || code === 'FST_CSRF_INVALID_TOKEN') {
        return sendPage(reply, 403, formExpiredPage(site));
      }
      const status = err instanceof PledgeError ? err.status : ((err as FastifyError).statusCode ?? 500);
      if (status >= 500) request.log.error({ err }, 'page failed');
      return sendPage(reply, status >= 400 && status < 600 ? status : 500, pageErrorPage(site, status));
    });

    pages.addHook('onClose', async () => {
      await Promise.allSettled([...followUps]);
    });

    const checkCsrf = (request: FastifyRequest, reply: FastifyReply, done: () => void) =>
      pages.csrfProtection(request, reply, done);

    const contextOf = (request: FastifyRequest): Context =>
      createContext({ kind: 'anonymous' }, { requestId: request.id });

    const evidenceOf = (request: FastifyRequest): ConsentEvidence => ({
      userAgent: request.headers['user-agent'],
      ip: request.ip,
    });

    const linkForm = (reply: FastifyReply, status: number, reason: LinkFormReason) =>
      sendPage(reply, status, linkFormPage(site, { reason, csrf: reply.generateCsrf() }));

    /** The verified token of a request, or `undefined` (the caller answers with the link form). */
    const tokenOf = (ctx: Context, raw: string | undefined, scope: LinkTokenScope): LinkToken | undefined => {
      if (raw === undefined) return undefined;
      const result = verifyLinkToken(key, raw, { now: ctx.clock.now(), scope });
      return result.ok ? result.token : undefined;
    };

    /**
     * The verified preferences token of a request, or why it is refused: `signed_out` when it was
     * made before the person's link generation was last raised ("sign out every link", erasure).
     */
    const preferencesTokenOf = async (
      ctx: Context,
      raw: string,
    ): Promise<LinkToken | 'bad_link' | 'signed_out'> => {
      const result = verifyLinkToken(key, raw, { now: ctx.clock.now(), scope: 'preferences' });
      if (!result.ok) return 'bad_link';
      const current = await consent.linkGenerationOf(ctx, result.token.subjectId);
      return result.generation === current ? result.token : 'signed_out';
    };

    /** A fresh preferences token of a subject, in its current link generation. */
    const preferencesToken = async (ctx: Context, subjectId: string): Promise<string> =>
      createLinkToken(
        key,
        { scope: 'preferences', subjectId },
        { now: ctx.clock.now(), generation: await consent.linkGenerationOf(ctx, subjectId) },
      );

    /** The preference center of a token's subject, or `undefined` when the subject is gone. */
    const preferencesOf = async (ctx: Context, subjectId: string): Promise<Preferences | undefined> => {
      if ((await consent.choicesOfSubject(ctx, subjectId)) === undefined) return undefined;
      return loadPreferences(ctx, consent, subjectId);
    };

    const preferencesHref = async (ctx: Context, subjectId: string) =>
      `/preferences?t=${await preferencesToken(ctx, subjectId)}`;

    // ---- preference center -------------------------------------------------------------------

    pages.get('/preferences', { schema: { hide: true } }, async (request, reply) => {
      const ctx = contextOf(request);
      const raw = queryValue(request, 't');
      // Reached from the published policy (no link yet): the way in is the form that e-mails one.
      if (raw === undefined) return linkForm(reply, 200, 'start');
      const token = await preferencesTokenOf(ctx, raw);
      if (typeof token === 'string') return linkForm(reply, 403, token);
      const prefs = await preferencesOf(ctx, token.subjectId);
      if (!prefs) return linkForm(reply, 403, 'bad_link');
      return sendPage(
        reply,
        200,
        preferencesPage(site, prefs, {
          token: raw,
          csrf: reply.generateCsrf(),
          gpcSignal: gpcHeader(request),
          disclosures: deps.disclosures !== undefined,
        }),
      );
    });

    // ---- who got my data ---------------------------------------------------------------------

    const { disclosures } = deps;
    if (disclosures !== undefined) {
      pages.get('/preferences/disclosures', { schema: { hide: true } }, async (request, reply) => {
        const ctx = contextOf(request);
        const raw = queryValue(request, 't');
        if (raw === undefined) return linkForm(reply, 200, 'start');
        const token = await preferencesTokenOf(ctx, raw);
        if (typeof token === 'string') return linkForm(reply, 403, token);
        if ((await consent.choicesOfSubject(ctx, token.subjectId)) === undefined)
          return linkForm(reply, 403, 'bad_link');
        const model = await disclosures.disclosuresOf(ctx, token.subjectId);
        return sendPage(reply, 200, disclosuresPage(site, model, { token: raw }));
      });

      // The proof of one of the person's own entries: any other leaf, whoever's it is, is a 404.
      pages.get('/preferences/disclosures/proof', { schema: { hide: true } }, async (request, reply) => {
        const ctx = contextOf(request);
        const raw = queryValue(request, 't');
        if (raw === undefined) return linkForm(reply, 400, 'missing_link');
        const token = await preferencesTokenOf(ctx, raw);
        if (typeof token === 'string') return linkForm(reply, 403, token);
        if ((await consent.choicesOfSubject(ctx, token.subjectId)) === undefined)
          return linkForm(reply, 403, 'bad_link');
        const leaf = queryValue(request, 'leaf');
        if (leaf === undefined || !/^\d{1,15}$/.test(leaf))
          return sendPage(reply, 400, pageErrorPage(site, 400));
        const proof = await disclosures.proofOf(ctx, token.subjectId, Number(leaf));
        if (proof === undefined)
          return sendPage(reply, 404, proofUnavailablePage(site, `/preferences/disclosures?t=${raw}`));
        return reply
          .header('content-type', 'application/json; charset=utf-8')
          .header('content-disposition', `attachment; filename="pledge-proof-${proof.index}.json"`)
          .header('cache-control', 'no-store')
          .send(JSON.stringify(proof, null, 2));
      });
    }

    pages.post('/preferences', { schema: { hide: true }, preHandler: checkCsrf }, async (request, reply) => {
      const anonymous = contextOf(request);
      const body = request.body as FormBody;
      const raw = formValue(body, 't');
      if (raw === undefined) return linkForm(reply, 400, 'missing_link');
      const token = await preferencesTokenOf(anonymous, raw);
      if (typeof token === 'string') return linkForm(reply, 403, token);
      const before = await preferencesOf(anonymous, token.subjectId);
      if (!before) return linkForm(reply, 403, 'bad_link');
      const subjectId = token.subjectId;
      const ctx = asLinkHolder(anonymous, subjectId, token.scope);
      const evidence = evidenceOf(request);

      // A GPC signal is recorded first; the switches the person moved are applied after it, so a
      // switch they turned on themselves wins over the signal and one they left alone does not.
      const gpc = gpcHeader(request) ? await consent.recordGpc(ctx, { subjectId }, { evidence }) : [];
      const inputs = await planPreferenceChanges(
        ctx,
        consent,
        subjectId,
        before,
        {
          shown: new Set(formValues(body, 'shown')),
          on: new Set(formValues(body, 'purpose')),
          globalShown: formValue(body, 'everything_shown') === '1',
          globalOptOut: formValue(body, 'opt_out_everything') === '1',
        },
        evidence,
      );
      if (inputs.length > 0) await consent.record(ctx, inputs);
      const after = await loadPreferences(ctx, consent, subjectId);
      const changes = describeChanges(
        before,
        after,
        new Set(gpc.map((c) => c.purpose)),
        new Set(inputs.map((i) => i.purpose)),
      );
      return sendPage(reply, 200, preferencesSavedPage(site, changes, `/preferences?t=${raw}`));
    });

    pages.post(
      '/preferences/sign-out',
      { schema: { hide: true }, preHandler: checkCsrf },
      async (request, reply) => {
        const anonymous = contextOf(request);
        const raw = formValue(request.body as FormBody, 't');
        if (raw === undefined) return linkForm(reply, 400, 'missing_link');
        const token = await preferencesTokenOf(anonymous, raw);
        if (typeof token === 'string') return linkForm(reply, 403, token);
        if (!(await preferencesOf(anonymous, token.subjectId))) return linkForm(reply, 403, 'bad_link');
        await consent.signOutEveryLink(
          asLinkHolder(anonymous, token.subjectId, token.scope),
          token.subjectId,
        );
        return sendPage(reply, 200, signedOutPage(site));
      },
    );

    // ---- unsubscribe -------------------------------------------------------------------------

    /** The purpose an unsubscribe token names, when it still exists and so does the subject. */
    const unsubscribeTarget = async (ctx: Context, raw: string | undefined) => {
      const token = tokenOf(ctx, raw, 'unsubscribe');
      if (token?.scope !== 'unsubscribe') return undefined;
      const purpose = consent.rules.getPurpose(token.purpose);
      if (purpose === undefined) return undefined;
      const choices = await consent.choicesOfSubject(ctx, token.subjectId);
      if (choices === undefined) return undefined;
      return { token, purpose, choices };
    };

    pages.get('/unsubscribe', { schema: { hide: true } }, async (request, reply) => {
      const ctx = contextOf(request);
      const raw = queryValue(request, 't');
      if (raw === undefined) return linkForm(reply, 200, 'start');
      const target = await unsubscribeTarget(ctx, raw);
      if (!target) return linkForm(reply, 403, 'bad_link');
      return sendPage(
        reply,
        200,
        unsubscribeConfirmPage(site, {
          purposeName: target.purpose.name,
          channel: target.token.channel,
          token: raw,
          csrf: reply.generateCsrf(),
        }),
      );
    });

    pages.post('/unsubscribe', { schema: { hide: true }, preHandler: checkCsrf }, async (request, reply) => {
      const ctx = contextOf(request);
      const raw = formValue(request.body as FormBody, 't');
      if (raw === undefined) return linkForm(reply, 400, 'missing_link');
      const target = await unsubscribeTarget(ctx, raw);
      if (!target) return linkForm(reply, 403, 'bad_link');
      const { token, purpose, choices } = target;
      const channel = token.channel;
      const holderCtx = asLinkHolder(ctx, token.subjectId, token.scope);
      // Once is enough: a second click (or a double submit) records nothing new.
      const current = choices.choices.get(choiceKey(purpose.key, channel ?? ''));
      if (current === undefined || current.state === 'granted') {
        await consent.record(holderCtx, [
          {
            holder: { subjectId: token.subjectId },
            purpose: purpose.key,
            channel,
            state: 'withdrawn',
            method: 'unsubscribe_link',
            evidence: evidenceOf(request),
          },
        ]);
      }
      return sendPage(
        reply,
        200,
        unsubscribeDonePage(site, {
          purposeName: purpose.name,
          channel,
          preferencesHref: await preferencesHref(ctx, token.subjectId),
        }),
      );
    });

    // ---- the e-mail form ---------------------------------------------------------------------

    const sent = linkSentPage(site);

    pages.post(
      '/unsubscribe/email',
      {
        schema: { hide: true },
        preHandler: checkCsrf,
        config: { rateLimit: { max: LINK_REQUESTS_PER_MINUTE, timeWindow: 60_000 } },
        onResponse: (request, _reply, done) => {
          const address = pendingLookups.get(request);
          if (address !== undefined) {
            pendingLookups.delete(request);
            const work = sendPreferencesLink(contextOf(request), address).catch((err: unknown) => {
              // The error of an SMTP server can quote the address; only its code is logged.
              const e = err as { code?: unknown; responseCode?: unknown };
              request.log.error({ code: e.code, responseCode: e.responseCode }, 'preference link not sent');
            });
            followUps.add(work);
            void work.finally(() => followUps.delete(work));
          }
          done();
        },
      },
      async (request, reply) => {
        const typed = formValue(request.body as FormBody, 'email');
        const address = typed === undefined ? undefined : normalizeIdentifier('email', typed);
        if (typed === undefined || address === undefined) return linkForm(reply, 400, 'bad_email');
        // Known or not, limited or not, the answer is this one constant page; the lookup runs after
        // it is sent, and not at all past the address's hourly limit.
        const mailbox = identifierHash(deps.keyring.indexKey, 'email', address);
        if (perMailbox.hit(mailbox, Date.now()).count <= perMailbox.max) {
          pendingLookups.set(request, typed.normalize('NFC').trim());
        }
        return sendPage(reply, 200, sent);
      },
    );

    /** Looks the address up and, when it is a subject's, e-mails it a preference-center link. */
    async function sendPreferencesLink(ctx: Context, address: string): Promise<void> {
      const subject = await vault.findSubjectByIdentifier(ctx, 'email', address);
      if (subject === undefined) return;
      // The provider that delivers mail for the service people asked for (their choices are part
      // of it); refused, the link is not sent and the error's code is logged.
      const purpose = deps.manifest.purposes.find(
        (p) => p.use === 'service' && mailRecipientOf(deps.manifest, p) !== undefined,
      );
      const recipient = purpose && mailRecipientOf(deps.manifest, purpose);
      const grant =
        deps.share && purpose && recipient
          ? await deps.share.authorizePassThrough(ctx, {
              recipient,
              purpose: purpose.key,
              fields: [{ name: 'to', category: MAIL_CATEGORY }],
            })
          : undefined;
      const token = await preferencesToken(ctx, subject.id);
      const message = preferencesLinkMail(site, `${config.publicUrl}/preferences?t=${token}`);
      await mail.send(ctx, { to: address, ...message });
      if (grant)
        await deps.share?.recordPassThrough(ctx, [grant.entryFor(subject.id, { mail: 'preferences_link' })]);
    }
  });
}

function queryValue(request: FastifyRequest, name: string): string | undefined {
  const value = (request.query as Record<string, unknown> | undefined)?.[name];
  const first: unknown = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' && first !== '' ? first : undefined;
}

/** Every value of a form field (a repeated field gives several). */
function formValues(body: FormBody, name: string): string[] {
  const value = body?.[name];
  const list: unknown[] = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return list.filter((v): v is string => typeof v === 'string');
}

function formValue(body: FormBody, name: string): string | undefined {
  const first = formValues(body, name)[0];
  return first === undefined || first === '' ? undefined : first;
}
