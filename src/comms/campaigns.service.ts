/**
 * Campaigns: marketing messages to a list (a manifest purpose whose use is marketing, on the e-mail
 * channel) and service notices (the policy-change notice). A campaign is created as a draft, then
 * started: its audience is resolved to one pending send per subject, and the runner
 * (campaign.runner.ts) sends each through the mail pipeline (message.pipeline.ts). Nothing here
 * sends mail, and nothing else can send a campaign's message.
 */
import { z } from 'zod';
import type { AuditAppender } from '../audit/audit.service.js';
import { diffManifests, type ManifestChange } from '../manifest/manifest.diff.js';
import { parseManifest } from '../manifest/manifest.loader.js';
import type { ManifestVersion } from '../manifest/manifest.repository.js';
import type { ManifestVersions } from '../manifest/manifest.service.js';
import type { Manifest, Purpose } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { Clock } from '../platform/clock.js';
import { SystemGate } from '../manifest/systems.gate.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { ConflictError, NotFoundError, pageLimitOrThrow, ValidationError } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { SubjectSegment } from '../vault/subjects.service.js';
import {
  CampaignRunner,
  EXPAND_JOB,
  EXPAND_PAGE,
  SEND_JOB,
  sendJobKey,
  type CampaignRunnerDeps,
  type ExpandJobPayload,
} from './campaign.runner.js';
import type {
  CampaignsRepository,
  Audience,
  Campaign,
  CampaignSend,
  SendCounts,
} from './campaigns.repository.js';
import { compileTemplates, loadHandlebars } from './message.compose.js';
import { assertTemplateFieldsUsable } from './template-fields.js';
import { EMAIL_CATEGORY } from './message.pipeline.js';
import { escapeHtml } from '../platform/html.js';

/** The most subject ids one campaign may name (a larger audience is a segment). */
export const MAX_AUDIENCE_IDS = 100_000;
/** The largest page of a campaign's sends. */
export const MAX_SENDS_PAGE = 1000;

const JURISDICTION = /^(EU|EEA|[A-Z]{2}(-[A-Z0-9]{1,3})?)$/;
const SUBJECT_KINDS = ['customer', 'trial_user', 'visitor', 'prospect'] as const;

/** The body of `POST /api/v1/campaigns` (checked at run time whatever its static type). */
export const createCampaignSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  list: z.string().min(1).max(100),
  template: z.strictObject({
    subject: z.string().min(1).max(998),
    text: z.string().min(1).max(200_000),
    html: z.string().min(1).max(500_000),
  }),
  audience: z.union([
    z.strictObject({ subjects: z.array(z.uuid()).min(1).max(MAX_AUDIENCE_IDS) }),
    z.strictObject({
      segment: z.strictObject({
        jurisdiction: z.string().regex(JURISDICTION, 'must be an ISO country code or EU').optional(),
        kind: z.enum(SUBJECT_KINDS).optional(),
      }),
    }),
  ]),
});

/** What {@link CampaignService.create} takes. */
export type CreateCampaignInput = z.infer<typeof createCampaignSchema>;

/** A campaign and where its sends stand. */
export interface CampaignStatusResult {
  campaign: Campaign;
  counts: SendCounts;
}

/** What {@link CampaignService.notifyPolicyChange} did. */
export type PolicyChangeNoticeResult =
  | { queued: true; campaignId: string; changes: ManifestChange[] }
  | {
      queued: false;
      reason: 'no_previous_version' | 'not_material' | 'already_queued' | 'no_service_purpose';
      campaignId?: string;
    };

/** What campaigns need of the vault: the live subjects of a segment, by id (no personal data). */
export interface CampaignSubjects {
  /** A page of the live subjects of a segment, in id order, after `after`. */
  liveIdsPage(
    ctx: Context,
    segment: SubjectSegment,
    page: { after: string | undefined; limit: number },
  ): Promise<string[]>;
}

/** The runner's settings: everything it uses but the database parts the service hands it. */
export type RunnerSettings = Omit<CampaignRunnerDeps, 'db' | 'repo' | 'queue'>;

/** What the campaign service uses. */
export interface CampaignServiceDeps {
  /** Transactions of the main database. */
  db: Transactions;
  repo: CampaignsRepository;
  subjects: CampaignSubjects;
  audit: AuditAppender;
  /** The application's job queue: the runner inside `serve` is a job type of it. */
  queue: JobQueue;
  /** A job queue of its own over the same database, for a runner with other settings (tests, benches). */
  createQueue: (options: { clock?: Clock | undefined }) => JobQueue;
  manifest: Manifest;
  /** The manifest version in force and the record of past ones (for policy-change notices). */
  versions: Pick<ManifestVersions, 'list'>;
  currentVersion: ManifestVersion;
  /** Where people read the policy (links in notices). */
  publicUrl: string;
  /** False when no SMTP server is configured: campaigns cannot start. */
  mailEnabled: boolean;
  /** False when no DKIM key is configured: marketing campaigns cannot start. */
  signed: boolean;
  /** Builds the runner (given once; tests make more with {@link CampaignService.createRunner}). */
  runner: RunnerSettings;
  /** Holds each system to its purposes (a campaign's list is one); defaults to a gate over `manifest`. */
  systems?: Pick<SystemGate, 'requirePurpose'>;
}

/** Creates, starts and reports on campaigns; owns the runner. */
export class CampaignService {
  readonly #db: Transactions;
  readonly #repo: CampaignsRepository;
  readonly #audit: AuditAppender;
  readonly #deps: CampaignServiceDeps;
  readonly #systems: Pick<SystemGate, 'requirePurpose'>;
  /** The runner inside `serve`: the send jobs of the application's queue. */
  readonly runner: CampaignRunner;

  constructor(deps: CampaignServiceDeps) {
    this.#db = deps.db;
    this.#repo = deps.repo;
    this.#audit = deps.audit;
    this.#deps = deps;
    this.#systems = deps.systems ?? new SystemGate({ manifest: deps.manifest });
    this.runner = new CampaignRunner({
      ...deps.runner,
      db: deps.db,
      repo: deps.repo,
      queue: deps.queue,
      expand: (ctx, payload) => this.#expandPage(ctx, payload),
    });
  }

  /**
   * A runner over the same database and pipeline with a job queue of its own (another instance, as
   * tests and benches see it); `overrides` change its settings.
   */
  createRunner(overrides: Partial<RunnerSettings> = {}): CampaignRunner {
    const settings = { ...this.#deps.runner, ...overrides };
    return new CampaignRunner({
      ...settings,
      db: this.#db,
      repo: this.#repo,
      queue: this.#deps.createQueue({ clock: settings.clock }),
      expand: (ctx, payload) => this.#expandPage(ctx, payload),
    });
  }

  /**
   * Creates a draft campaign. Throws `comms.campaign_invalid` (400, every problem with its JSON
   * path), `comms.list_unknown`, `comms.list_not_marketing`, `comms.template_invalid` or
   * `comms.template_field_unusable` (422: a template names a field the list may not use);
   * nothing is written then.
   */
  async create(ctx: Context, body: unknown): Promise<Campaign> {
    const parsed = createCampaignSchema.safeParse(body);
    if (!parsed.success) {
      throw new ValidationError(
        'comms.campaign_invalid',
        `the campaign is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
        {
          issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        },
      );
    }
    const input = parsed.data;
    const purpose = this.#marketingListOrThrow(input.list);
    this.#systems.requirePurpose(ctx, purpose.key);
    await compileTemplates(input.template);
    assertTemplateFieldsUsable(await loadHandlebars(), input.template, this.#deps.manifest, purpose);
    const audience: Audience =
      'subjects' in input.audience
        ? { subjects: [...new Set(input.audience.subjects.map((s) => s.toLowerCase()))] }
        : {
            segment: {
              ...(input.audience.segment.jurisdiction !== undefined
                ? { jurisdiction: input.audience.segment.jurisdiction }
                : {}),
              ...(input.audience.segment.kind !== undefined ? { kind: input.audience.segment.kind } : {}),
            },
          };
    const campaign: Campaign = {
      id: uuidv7(),
      kind: 'marketing',
      name: input.name,
      list: purpose.key,
      templates: input.template,
      audience,
      status: 'draft',
      policyVersionId: undefined,
      createdAt: ctx.clock.now(),
      startedAt: undefined,
      finishedAt: undefined,
    };
    await this.#db.transaction(ctx, async (trx) => {
      await this.#repo.insertCampaign(trx, campaign);
      await this.#audit.append(trx, [
        {
          action: 'mail.campaign.create',
          purpose: purpose.key,
          details: { campaign: campaign.id, audience: 'subjects' in audience ? 'subjects' : 'segment' },
        },
      ]);
    });
    return campaign;
  }

  /**
   * Starts a draft: resolves its audience to pending sends and their jobs (one transaction); the
   * runner takes them once it commits.
   * Throws `comms.campaign_not_found` (404), `comms.campaign_started` (409, it was started
   * before), `comms.mail_disabled` or `comms.dkim_missing` (409: the server cannot send yet).
   */
  async start(ctx: Context, id: string): Promise<CampaignStatusResult> {
    const campaign = await this.getOrThrow(ctx, id);
    if (!this.#deps.mailEnabled) {
      throw new ConflictError(
        'comms.mail_disabled',
        'this server sends no mail: set PLEDGE_SMTP_URL (and the DKIM keys) and restart it',
      );
    }
    if (campaign.kind === 'marketing' && !this.#deps.signed) {
      throw new ConflictError(
        'comms.dkim_missing',
        'marketing mail must be DKIM-signed: set PLEDGE_DKIM_RSA_KEY (see docs/mail.md) and restart',
      );
    }
    const started = await this.#db.transaction(ctx, async (trx) => {
      const now = ctx.clock.now();
      const { audience } = campaign;
      const segment = !('subjects' in audience);
      if (!(await this.#repo.markStarted(trx, id, now, { expanding: segment }))) return undefined;
      // A list of ids is bounded (MAX_AUDIENCE_IDS) and queued here; a segment is not, and is
      // queued page by page, by jobs, each page in a transaction of its own.
      if (segment) await this.#expandLater(trx, id, now);
      else await this.#queueSends(trx, id, audience.subjects);
      await this.#audit.append(trx, [
        {
          action: 'mail.campaign.start',
          purpose: campaign.list,
          details: {
            campaign: id,
            kind: campaign.kind,
            ...(segment ? { audience: 'segment' } : { recipients: audience.subjects.length }),
          },
        },
      ]);
      return true;
    });
    if (started === undefined) {
      throw new ConflictError('comms.campaign_started', `campaign ${id} was started already`, {
        campaign: id,
        status: campaign.status,
      });
    }
    return this.status(ctx, id);
  }

  /**
   * A campaign; throws `comms.campaign_not_found`, and `auth.purpose_not_allowed` when the caller's
   * system does not serve its list (a campaign is seen and run only by systems of its purpose).
   */
  async getOrThrow(ctx: Context, id: string): Promise<Campaign> {
    const campaign = await this.#repo.get(ctx, id);
    if (campaign === undefined) {
      throw new NotFoundError('comms.campaign_not_found', `there is no campaign "${id}"`, { campaign: id });
    }
    this.#systems.requirePurpose(ctx, campaign.list);
    return campaign;
  }

  /** A campaign and its sends counted by outcome and reason. */
  async status(ctx: Context, id: string): Promise<CampaignStatusResult> {
    const campaign = await this.getOrThrow(ctx, id);
    return { campaign, counts: await this.#repo.counts(ctx, id) };
  }

  /** A page of a campaign's sends, by subject id. Throws `comms.limit_invalid` for a bad limit. */
  async sends(
    ctx: Context,
    id: string,
    options: { after?: string | undefined; limit?: number | undefined } = {},
  ): Promise<CampaignSend[]> {
    const limit = pageLimitOrThrow('comms.limit_invalid', options.limit, MAX_SENDS_PAGE, 100);
    await this.getOrThrow(ctx, id);
    return this.#repo.listSends(ctx, id, { after: options.after, limit });
  }

  /**
   * The policy-change notice: when the manifest in force differs materially from the one in force
   * before it, queues a service message to every live subject whose data came in before the new
   * version, saying what changed (the plain-words diff) and linking to the policy. Idempotent: one
   * notice per manifest version, however many servers start with it. Called when `serve` starts.
   */
  async notifyPolicyChange(ctx: Context): Promise<PolicyChangeNoticeResult> {
    const current = this.#deps.currentVersion;
    const existing = await this.#repo.getNotice(ctx, current.id);
    if (existing !== undefined) return { queued: false, reason: 'already_queued', campaignId: existing.id };
    const versions = await this.#deps.versions.list(ctx);
    const at = versions.findIndex((v) => v.id === current.id);
    const previous = at < 0 ? undefined : versions[at + 1];
    if (previous === undefined) return { queued: false, reason: 'no_previous_version' };
    const before = parseManifest(previous.source, `manifest version ${previous.id}`).manifest;
    if (before === undefined) return { queued: false, reason: 'no_previous_version' };
    const diff = diffManifests(before, this.#deps.manifest);
    if (!diff.material) return { queued: false, reason: 'not_material' };
    const purpose = serviceMailPurpose(this.#deps.manifest);
    if (purpose === undefined) return { queued: false, reason: 'no_service_purpose' };

    const campaign: Campaign = {
      id: uuidv7(),
      kind: 'service',
      name: `Policy change notice: version ${current.version}`,
      list: purpose.key,
      templates: policyNoticeTemplates(this.#deps.manifest, diff.changes, this.#deps.publicUrl),
      audience: { segment: {} },
      status: 'draft',
      policyVersionId: current.id,
      createdAt: ctx.clock.now(),
      startedAt: undefined,
      finishedAt: undefined,
    };
    const queued = await this.#db.transaction(ctx, async (trx) => {
      // Another server starting with the same manifest may have queued it since our read.
      if (!(await this.#repo.insertCampaign(trx, campaign))) return undefined;
      await this.#repo.markStarted(trx, campaign.id, ctx.clock.now(), { expanding: true });
      // Everyone whose data came in before the new version, page by page (see #expandPage).
      await this.#expandLater(trx, campaign.id, current.inForceFrom);
      await this.#audit.append(trx, [
        {
          action: 'mail.campaign.start',
          purpose: purpose.key,
          details: {
            campaign: campaign.id,
            kind: 'service',
            notice: 'policy_change',
            policyVersionId: current.id,
            audience: 'segment',
          },
        },
      ]);
      return true;
    });
    if (queued === undefined) {
      const other = await this.#repo.getNotice(ctx, current.id);
      return { queued: false, reason: 'already_queued', ...(other ? { campaignId: other.id } : {}) };
    }
    return {
      queued: true,
      campaignId: campaign.id,
      changes: diff.changes.filter((c) => c.material),
    };
  }

  /** Enqueues the first page of a segment's subjects: those created before `createdBefore`. */
  async #expandLater(ctx: Context, campaignId: string, createdBefore: Date): Promise<void> {
    const payload: ExpandJobPayload = { campaignId, after: null, createdBefore: createdBefore.toISOString() };
    await this.#deps.queue.enqueue(ctx, EXPAND_JOB, { ...payload }, { key: `${campaignId}:first` });
  }

  /**
   * One page of a segment's audience (an expand job): up to {@link EXPAND_PAGE} live subjects of the
   * segment after the last one queued, their sends and send jobs, and the job of the next page, in
   * one transaction; the last page marks the audience queued, after which the campaign can be done.
   * Never every subject in one transaction, nor every id in memory.
   */
  async #expandPage(ctx: Context, payload: ExpandJobPayload): Promise<void> {
    const campaign = await this.#repo.get(ctx, payload.campaignId);
    if (campaign === undefined || campaign.status !== 'sending' || 'subjects' in campaign.audience) return;
    const segment = { ...campaign.audience.segment, createdBefore: new Date(payload.createdBefore) };
    await this.#db.transaction(ctx, async (trx) => {
      const ids = await this.#deps.subjects.liveIdsPage(trx, segment, {
        after: payload.after ?? undefined,
        limit: EXPAND_PAGE,
      });
      await this.#queueSends(trx, campaign.id, ids);
      const last = ids.at(-1);
      if (ids.length === EXPAND_PAGE && last !== undefined) {
        const next: ExpandJobPayload = { ...payload, after: last };
        await this.#deps.queue.enqueue(trx, EXPAND_JOB, { ...next }, { key: `${campaign.id}:${last}` });
      } else {
        await this.#repo.markExpanded(trx, campaign.id);
      }
    });
  }

  /** One pending send per recipient, and its job, in the transaction of `ctx`. */
  async #queueSends(ctx: Context, campaignId: string, subjectIds: readonly string[]): Promise<void> {
    await this.#repo.insertSends(ctx, campaignId, subjectIds, ctx.clock.now());
    await this.#deps.queue.enqueueMany(
      ctx,
      subjectIds.map((subjectId) => ({
        type: SEND_JOB,
        payload: { campaignId, subjectId },
        key: sendJobKey({ campaignId, subjectId }),
      })),
    );
  }

  #marketingListOrThrow(key: string): Purpose {
    const purpose = this.#deps.manifest.purposes.find((p) => p.key === key);
    const lists = this.#deps.manifest.purposes
      .filter((p) => p.use === 'marketing' && p.channels.includes('email'))
      .map((p) => p.key);
    if (purpose === undefined) {
      throw new ValidationError(
        'comms.list_unknown',
        `the manifest declares no purpose "${key}"; a campaign's list is a marketing purpose on the e-mail channel: ${lists.join(', ') || '(none declared)'}`,
        { path: 'list', list: key, lists },
        422,
      );
    }
    if (purpose.use !== 'marketing' || !purpose.channels.includes('email')) {
      throw new ValidationError(
        'comms.list_not_marketing',
        `purpose "${key}" is not a mailing list: a campaign's list must have use "marketing" and the "email" channel (it has use "${purpose.use}" and channels [${purpose.channels.join(', ')}]); lists: ${lists.join(', ') || '(none declared)'}`,
        { path: 'list', list: key, lists },
        422,
      );
    }
    return purpose;
  }
}

/**
 * The purpose service mail is sent for: one the service needs (consent required), on the e-mail
 * channel, that may use the e-mail address.
 */
export function serviceMailPurpose(manifest: Manifest): Purpose | undefined {
  return manifest.purposes.find(
    (p) =>
      p.use === 'service' &&
      p.channels.includes('email') &&
      p.categories.some((c) => coversCategory(c, EMAIL_CATEGORY) || coversCategory(EMAIL_CATEGORY, c)),
  );
}

/**
 * The notice's templates: the material changes in plain words, then the others, and the link. The
 * manifest's words are text, not template: each is escaped for Handlebars (and for HTML).
 */
export function policyNoticeTemplates(
  manifest: Manifest,
  changes: readonly ManifestChange[],
  publicUrl: string,
): { subject: string; text: string; html: string } {
  const t = escapeHandlebars;
  const h = (value: string) => escapeHandlebars(escapeHtml(value));
  const material = changes.filter((c) => c.material).map((c) => c.summary);
  const other = changes.filter((c) => !c.material).map((c) => c.summary);
  const policy = manifest.policy;
  const url = `${publicUrl}/privacy`;
  const org = manifest.organization.name;
  const hello = 'Hello{{#if first_name}} {{first_name}}{{/if}},';
  const intro = `We are changing our privacy policy (version ${policy.version}, effective ${policy.effective}). What changes for you:`;
  const text = [
    hello,
    '',
    t(intro),
    '',
    ...material.map((s) => `- ${t(s)}`),
    ...(other.length > 0 ? ['', 'Other changes:', '', ...other.map((s) => `- ${t(s)}`)] : []),
    '',
    `Read the whole policy: ${t(url)}`,
    '',
    t(org),
  ].join('\n');
  const list = (items: string[]) => `<ul>${items.map((s) => `<li>${h(s)}</li>`).join('')}</ul>`;
  const html = [
    `<p>${hello}</p>`,
    `<p>${h(intro)}</p>`,
    list(material),
    ...(other.length > 0 ? ['<p>Other changes:</p>', list(other)] : []),
    `<p>Read the whole policy: <a href="${h(url)}">${h(url)}</a></p>`,
    `<p>${h(org)}</p>`,
  ].join('\n');
  return { subject: t(`Changes to our privacy policy, effective ${policy.effective}`), text, html };
}

/** Makes Handlebars read `{{` in a text as the characters themselves. */
function escapeHandlebars(value: string): string {
  return value.replaceAll('{{', '\\{{');
}
