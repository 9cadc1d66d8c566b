/**
 * The cookie banner's server side: the script (`/pledge.js`, and `/pledge.<hash>.js` cached for
 * ever), what the server knows of the visitor (`/api/v1/banner/context`: jurisdiction, modes, GPC)
 * and the choices with their proof (`/api/v1/banner/choices`), recorded in the consent ledger for
 * the browser, so that the existing browser merge carries them to the person who later signs up.
 *
 * Keyless: they act as the manifest's web system (web.ts), in the web scope (CORS for the site
 * origins, CORP cross-origin). A choice is believed only as far as the manifest backs it: the
 * purposes the banner asks about, the web system's purposes, the jurisdiction of the CDN header
 * (never the body), and GPC turning off what it covers whatever the body says.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { gpcHeader } from '../consent/consent.routes.js';
import type { ConsentService, RecordChoiceInput } from '../consent/consent.service.js';
import { consentModeFor, type Manifest, type Purpose } from '../manifest/manifest.schema.js';
import type { ManifestSource, SystemGate } from '../manifest/systems.gate.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../platform/errors.js';
import {
  BANNER_CONTROLS,
  type BannerChoicesRequest,
  type BannerChoicesResponse,
  type BannerConfig,
  type BannerContext,
  type BannerControl,
} from './banner.contract.js';
import type { UseKeys } from '../vault/use-keys.js';
import { buildBannerScript } from './banner.bundle.js';
import { askedPurposes, bannerChoiceOf, bannerConfigOf, bannerReceiptsOf } from './banner.config.js';
import type { ConsentReceipts } from './consent-receipt.js';
import { registerWebScope, type WebEndpoints } from './web.js';

/** What builds /pledge.js from a configuration (banner.bundle.ts's buildBannerScript). */
export type BuildBannerScript = (config: BannerConfig) => Promise<{ code: string; hash: string }>;

/** What the banner routes use. */
export interface BannerRoutesDeps {
  web: WebEndpoints;
  consent: ConsentService;
  systems: SystemGate;
  /** The manifest in force (the script is rebuilt when it is another). */
  manifest: ManifestSource;
  /** PLEDGE_PUBLIC_URL: the script's origin for its calls, and a page of it may post choices. */
  publicUrl: string;
  /** What receipts are signed with: `keyring.use('banner_receipts')`. */
  receiptKeys: UseKeys;
  /** Builds the script; banner.bundle.ts's buildBannerScript when absent. */
  buildScript?: BuildBannerScript;
}

/** The banner as one manifest makes it: its configuration, its purposes, and its script once built. */
interface BannerState {
  of: Manifest;
  config: BannerConfig | undefined;
  purposes: Purpose[];
  script: Promise<{ code: string; hash: string }> | undefined;
  receipts: ConsentReceipts | undefined;
}

const BROWSER = /^[A-Za-z0-9_-]{16,128}$/;
const SCRIPT_TYPE = 'text/javascript; charset=utf-8';
const CHOICES_BODY_LIMIT = 16 * 1024;

/** Registers `/pledge.js`, `/pledge.<hash>.js`, `/api/v1/banner/context` and `/api/v1/banner/choices`. */
export async function registerBannerRoutes(app: FastifyInstance, deps: BannerRoutesDeps): Promise<void> {
  const { web, consent, systems } = deps;
  const build = deps.buildScript ?? buildBannerScript;
  let state: BannerState | undefined;
  const current = (): BannerState => {
    const manifest = deps.manifest.manifest;
    if (state?.of !== manifest) {
      const choice = bannerChoiceOf(manifest);
      state = {
        of: manifest,
        config: bannerConfigOf(manifest, { publicUrl: deps.publicUrl }),
        purposes: choice === undefined ? [] : askedPurposes(manifest, choice),
        script: undefined,
        receipts: bannerReceiptsOf(manifest, deps.receiptKeys),
      };
    }
    return state;
  };
  const configOrThrow = (): { s: BannerState; config: BannerConfig } => {
    const s = current();
    if (s.config === undefined) throw notConfigured();
    return { s, config: s.config };
  };
  /** Built once per manifest and kept; a failed build is tried again by the next request. */
  const scriptOf = (s: BannerState, config: BannerConfig) => {
    const built = (s.script ??= build(config));
    built.catch(() => {
      if (s.script === built) s.script = undefined;
    });
    return built;
  };
  const sendScript = async (
    request: FastifyRequest,
    reply: FastifyReply,
    wanted: string | undefined,
  ): Promise<FastifyReply> => {
    const { s, config } = configOrThrow();
    const { code, hash } = await scriptOf(s, config);
    if (wanted !== undefined && wanted !== hash) {
      throw new NotFoundError(
        'banner.script_not_found',
        'no script of this hash: it was built for another version of the manifest; load /pledge.js',
      );
    }
    const etag = `"${hash}"`;
    void reply
      .header(
        'cache-control',
        // The hashed URL never changes content; the plain one changes with the manifest, so it is
        // kept briefly and revalidated by its ETag.
        wanted !== undefined ? 'public, max-age=31536000, immutable' : 'public, max-age=300',
      )
      .header('etag', etag);
    if (etagMatches(request.headers['if-none-match'], etag)) return reply.code(304).send();
    return reply.type(SCRIPT_TYPE).send(code);
  };
  const siteOrigins = new Set(web.pageOrigins);

  await registerWebScope(app, web, (scope) => {
    scope.get(
      '/pledge.js',
      {
        schema: {
          tags: ['banner'],
          summary:
            'The cookie banner script for the manifest in force: embed it first in <head> (docs/tracking.md)',
        },
      },
      (request, reply) => sendScript(request, reply, undefined),
    );

    scope.get<{ Params: { hash: string } }>(
      '/pledge.:hash.js',
      {
        schema: {
          tags: ['banner'],
          summary: 'The cookie banner script under its content hash, cacheable for ever',
          params: {
            type: 'object',
            properties: { hash: { type: 'string', maxLength: 64 } },
            required: ['hash'],
          },
        },
      },
      (request, reply) => sendScript(request, reply, request.params.hash),
    );

    scope.get(
      '/api/v1/banner/context',
      {
        schema: {
          tags: ['banner'],
          summary:
            "What the server knows of this visitor (never cached): the jurisdiction from the CDN's country header, each asked purpose's consent mode there, and whether Sec-GPC: 1 was sent",
        },
      },
      (request, reply) => {
        const { s } = configOrThrow();
        const jurisdiction = web.jurisdictionOf(request);
        const modes: BannerContext['modes'] = {};
        for (const p of s.purposes) modes[p.key] = consentModeFor(p, jurisdiction);
        const context: BannerContext = { jurisdiction: jurisdiction ?? null, modes, gpc: gpcHeader(request) };
        const vary = ['origin', 'sec-gpc', ...(web.countryHeader !== undefined ? [web.countryHeader] : [])];
        return reply.header('cache-control', 'no-store').header('vary', vary.join(', ')).send(context);
      },
    );

    scope.post<{ Body: unknown }>(
      '/api/v1/banner/choices',
      {
        // A choice is a few hundred bytes; anyone may call this, so nothing larger is read.
        bodyLimit: CHOICES_BODY_LIMIT,
        // Before the body is read: CORS only stops browsers reading answers, not a page sending.
        onRequest: (request, _reply, done) => {
          const origin = request.headers.origin;
          if (origin !== undefined && !siteOrigins.has(origin)) {
            done(
              new ForbiddenError(
                'banner.origin_not_allowed',
                'choices are accepted only from the pages of the sites in PLEDGE_SITE_ORIGINS',
              ),
            );
            return;
          }
          done();
        },
        schema: {
          tags: ['banner'],
          summary:
            "Record a choice made in the cookie banner, with its proof, for the banner's browser id; answers the decisions and a signed receipt",
          // Checked by hand below, so that every problem is listed with its own code.
          body: { type: 'object' },
        },
      },
      async (request, reply) => {
        // The web system first: without one, nothing is recorded, banner or not.
        const ctx = web.context(request);
        const { s, config } = configOrThrow();
        const receipts = s.receipts;
        if (receipts === undefined) throw notConfigured();
        const jurisdiction = web.jurisdictionOf(request);
        const body = parseChoices(request.body, s.purposes, config);
        const gpc = body.gpc || gpcHeader(request);
        if (body.control === 'gpc' && !gpc) {
          throw new ValidationError(
            'banner.gpc_missing',
            'control "gpc": the browser sent no Global Privacy Control signal (gpc: true or Sec-GPC: 1)',
          );
        }
        if (body.notice !== config.v) {
          throw new ConflictError(
            'banner.notice_outdated',
            `the notice "${body.notice}" is not the one in force; load /pledge.js again and ask again`,
            { notice: config.v },
          );
        }
        const evidence = {
          userAgent: request.headers['user-agent'],
          ip: request.ip,
          language: body.language,
          control: body.control,
          gpc,
        };
        const decisions: Record<string, boolean> = {};
        const inputs: RecordChoiceInput[] = [];
        for (const p of s.purposes) {
          const mode = consentModeFor(p, jurisdiction);
          // Required here: nothing to choose, nothing recorded (the person was not asked).
          if (mode === 'required') {
            decisions[p.key] = true;
            continue;
          }
          // Covered by GPC while the browser sends it: off whatever the body says, recorded below.
          if (gpc && p.gpc) {
            decisions[p.key] = false;
            continue;
          }
          const allowed = body.choices[p.key] === true;
          decisions[p.key] = allowed;
          // A system records consent only for its purposes; a refusal may be passed on for any.
          if (allowed) systems.requirePurpose(ctx, p.key);
          inputs.push({
            holder: { browserId: body.browser },
            purpose: p.key,
            // A banner on the sites asks about the web: another channel of the purpose (e-mail opens)
            // keeps its own choice.
            channel: p.channels.includes('web') ? 'web' : undefined,
            state: allowed ? 'granted' : body.control === 'withdraw' ? 'withdrawn' : 'denied',
            method: 'banner',
            noticeVersion: body.notice,
            jurisdiction,
            evidence,
          });
        }
        // The GPC opt-out first: should recording the choices then fail, the opt-out still stands.
        if (gpc) await consent.recordGpc(ctx, { browserId: body.browser }, { jurisdiction, evidence });
        if (inputs.length > 0) await consent.record(ctx, inputs);
        const answer: BannerChoicesResponse = {
          decisions,
          receipt: receipts.issue({
            browser: body.browser,
            allowed: Object.keys(decisions).filter((k) => decisions[k] === true),
            jurisdiction,
            issuedAt: ctx.clock.now(),
          }),
        };
        return reply.code(201).send(answer);
      },
    );
  });
}

/** A BannerChoicesRequest that parseChoices has checked. */
type ParsedChoices = BannerChoicesRequest;

/**
 * Checks a choices body, listing every problem (`details.problems`, each with its path and code).
 * The error's code is the problems' code when they share one (`banner.purpose_not_offered`), else
 * `banner.choices_invalid`.
 */
function parseChoices(body: unknown, asked: readonly Purpose[], config: BannerConfig): ParsedChoices {
  const problems: Array<{ path: string; code: string; message: string }> = [];
  const problem = (path: string, code: string, message: string) => problems.push({ path, code, message });
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const known = new Set(['browser', 'notice', 'language', 'control', 'gpc', 'choices']);
  for (const k of Object.keys(b)) {
    if (!known.has(k)) problem(k, 'banner.field_unknown', `"${k}" is not a field of a banner choice`);
  }
  if (typeof b.browser !== 'string' || !BROWSER.test(b.browser)) {
    problem(
      'browser',
      'banner.browser_invalid',
      "must be the consent cookie's browser id: 16 to 128 of A-Z a-z 0-9 - _",
    );
  }
  if (typeof b.notice !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(b.notice)) {
    problem('notice', 'banner.notice_invalid', 'must be the notice version of the script (its config "v")');
  }
  const languages = Object.keys(config.t);
  if (typeof b.language !== 'string' || !languages.includes(b.language)) {
    problem(
      'language',
      'banner.language_unknown',
      `must be a language of the banner: ${languages.join(', ')}`,
    );
  }
  if (typeof b.control !== 'string' || !(BANNER_CONTROLS as readonly string[]).includes(b.control)) {
    problem('control', 'banner.control_invalid', `must be one of ${BANNER_CONTROLS.join(', ')}`);
  }
  if (typeof b.gpc !== 'boolean') problem('gpc', 'banner.gpc_invalid', 'must be true or false');
  const choices: Record<string, boolean> = {};
  if (typeof b.choices !== 'object' || b.choices === null || Array.isArray(b.choices)) {
    problem('choices', 'banner.choices_invalid', 'must be an object of purpose keys to true or false');
  } else {
    const offered = new Set(asked.map((p) => p.key));
    for (const [k, v] of Object.entries(b.choices as Record<string, unknown>)) {
      if (!offered.has(k)) {
        problem(
          `choices.${k}`,
          'banner.purpose_not_offered',
          `the banner does not ask about "${k}"; it asks about ${[...offered].map((o) => `"${o}"`).join(', ') || 'nothing'}`,
        );
      } else if (typeof v !== 'boolean') {
        problem(`choices.${k}`, 'banner.choices_invalid', 'must be true or false');
      } else choices[k] = v;
    }
    for (const k of offered) {
      if (!(k in b.choices)) {
        problem(`choices.${k}`, 'banner.choice_missing', `the banner asks about "${k}": say true or false`);
      }
    }
  }
  if (problems.length > 0) {
    const codes = new Set(problems.map((p) => p.code));
    const code = codes.size === 1 ? [...codes][0]! : 'banner.choices_invalid';
    throw new ValidationError(code, problems.map((p) => `${p.path}: ${p.message}`).join('; '), { problems });
  }
  return {
    browser: b.browser as string,
    notice: b.notice as string,
    language: b.language as string,
    control: b.control as BannerControl,
    gpc: b.gpc as boolean,
    choices,
  };
}

function notConfigured(): NotFoundError {
  return new NotFoundError(
    'banner.not_configured',
    'the manifest has no cookie banner: add a choice of kind cookie_banner with a banner: block (docs/tracking.md)',
  );
}

/** Whether If-None-Match names this ETag (or is "*"); weak or strong, as GET compares them. */
function etagMatches(header: string | string[] | undefined, etag: string): boolean {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value === undefined) return false;
  return value
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === etag || t === '*');
}
