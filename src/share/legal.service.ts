/**
 * Legal requests by the book: intake, review by someone else (four eyes: the keys and their holders,
 * or the CLI's accounts and names, must differ), disclosure of the approved minimum only through the
 * share gate (recipient `authorities`, purpose `legal-compliance`), notice to each person whose data
 * left unless the law forbids it (and when the prohibition ends), closure. Every step appends to the
 * audit log in its own transaction, with ids and counts only. It also answers the share gate's
 * question of what a request may let leave (LegalApprovals).
 */
import type { AuditAppender, AuditEntry } from '../audit/audit.service.js';
import { shareFieldIndex } from './share.gate.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import { coversCategory, Taxonomy } from '../manifest/taxonomy.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  pageLimitOrThrow,
  ValidationError,
} from '../platform/errors.js';
import { UUID_PATTERN, uuidv7 } from '../platform/ids.js';
import { jobDone, jobRetry, type JobHandlerResult } from '../platform/jobs/jobs.definition.js';
import type { JobQueue, JobType } from '../platform/jobs/jobs.service.js';
import type { MailMessage, SendMailResult } from '../platform/mail/mail.transport.js';
import type { LegalNoticeRecord, LegalRepository, LegalRequestRecord } from './legal.repository.js';
import {
  checkCategories,
  checkIntake,
  checkNotice,
  checkSubjectIds,
  InputProblems,
  REJECT_REASONS,
} from './legal.validator.js';
import { refuseSelfReview, whoActs, type LegalActOptions } from './legal.actors.js';
import { noticeMessage } from './legal.notices.js';
import { buildReport, periodOrThrow, type TransparencyReport } from './legal.report.js';
import type { DiscloseOptions, LegalApprovals, LegalScope } from './share.types.js';

export type { LegalActorRecord, LegalNoticeRecord, LegalRequestRecord } from './legal.repository.js';
export { refuseSelfReview, type LegalActOptions } from './legal.actors.js';

/** The recipient every legal disclosure goes to. */
export const LEGAL_RECIPIENT = 'authorities';
/** The purpose every legal disclosure is for. */
export const LEGAL_PURPOSE = 'legal-compliance';
/** The job that tells one person of a disclosure. */
export const LEGAL_NOTICE_JOB = 'legal.notice';
/** The job, due when a prohibition ends, that queues the notices it held. */
export const LEGAL_NOTICES_DUE_JOB = 'legal.notices_due';

/** What the share gate answers a legal disclosure, as this service needs it. */
export interface LegalDisclosureResult {
  /** The subjects whose values left (a subject whose data the gate held back is not among them). */
  disclosedSubjects: readonly string[];
  /** The gate's answer, handed back to the caller as it is. */
  result: unknown;
}

/** The share gate as this service uses it. */
export interface LegalShareGate {
  disclose(ctx: Context, options: DiscloseOptions): Promise<LegalDisclosureResult>;
}

/** How a notice reaches a person: their address, read through the vault's use gate, and the mail transport. */
export interface LegalNoticeMail {
  /** The person's e-mail address from the vault (never kept here), or `undefined`. */
  addressOf(ctx: Context, subjectId: string): Promise<string | undefined>;
  send(ctx: Context, message: MailMessage): Promise<SendMailResult>;
}

/** What the service uses. */
export interface LegalServiceDeps {
  db: Transactions;
  repo: LegalRepository;
  audit: AuditAppender;
  manifest: { readonly manifest: Manifest };
  /** The queue notices run on (its types are defined here). */
  jobs: Pick<JobQueue, 'define'>;
  /** The subject with an id, for intake's check that each exists; absent: not checked (the CLI). */
  subjectExists?: ((ctx: Context, id: string) => Promise<boolean>) | undefined;
  /** The holder recorded for an API key (api_keys.holder). */
  holderOf(ctx: Context, keyId: string): Promise<string | undefined>;
  /** Absent: disclosures are refused (the CLI discloses nothing). */
  share?: LegalShareGate | undefined;
  /** Absent: notice jobs wait for an instance that has mail. */
  mail?: LegalNoticeMail | undefined;
}

/** A narrowing: what the reviewer lets leave, a subset of what was asked. */
export interface NarrowInput {
  subjects: unknown;
  categories: unknown;
}

/** A disclosure asked for a request. */
export interface LegalDiscloseInput {
  /** Field names as the vault knows them. */
  fields: unknown;
  /** A subset of the approved subjects; all of them when absent. */
  subjects?: unknown;
}

/** Filters of {@link LegalService.list}. */
export interface ListLegalOptions {
  /** true: open requests only; false: closed ones only. */
  open?: boolean | undefined;
  limit?: number | undefined;
  before?: string | undefined;
}

/** Where a request is in its life. */
export type LegalStatus = 'received' | 'approved' | 'narrowed' | 'rejected' | 'disclosed' | 'closed';

/** The status of a request, from its record. */
export function statusOf(r: LegalRequestRecord): LegalStatus {
  if (r.closedAt !== undefined) return 'closed';
  if (r.disclosedAt !== undefined) return 'disclosed';
  return r.decision ?? 'received';
}

/**
 * Until when the people concerned may not be told of a request: `undefined` when they may be
 * (never prohibited, or the prohibition is over at `now`); `'indefinite'` for a prohibition with no
 * end date; else its end.
 */
export function noticeHeldUntil(
  r: Pick<LegalRequestRecord, 'notice'>,
  now: Date,
): Date | 'indefinite' | undefined {
  if (!r.notice.prohibited) return undefined;
  if (r.notice.until === undefined) return 'indefinite';
  return r.notice.until.getTime() > now.getTime() ? r.notice.until : undefined;
}

interface NoticePayload {
  requestId: string;
  subjectId: string;
}

/** Legal requests' workflow, and the approved scope the share gate holds disclosures to. */
export class LegalService implements LegalApprovals {
  readonly #deps: LegalServiceDeps;
  readonly #noticeJob: JobType<NoticePayload>;
  readonly #dueJob: JobType<{ requestId: string }>;
  /** The manifest the field-to-category map was made from, and the map. */

  constructor(deps: LegalServiceDeps) {
    this.#deps = deps;
    this.#noticeJob = deps.jobs.define<NoticePayload>({
      type: LEGAL_NOTICE_JOB,
      // A notice is an e-mail: sent twice is a worse failure than a person deciding to retry it.
      rerunAfterLeaseLoss: false,
      handle: (ctx, job) => this.#sendNotice(ctx, job.payload),
    });
    this.#dueJob = deps.jobs.define<{ requestId: string }>({
      type: LEGAL_NOTICES_DUE_JOB,
      handle: async (ctx, job) => {
        // A prohibition extended since this job was queued has a job of its own for its new end.
        const r = await this.#deps.repo.get(ctx, job.payload.requestId);
        if (r !== undefined && noticeHeldUntil(r, ctx.clock.now()) === undefined)
          await this.#queueNotices(ctx, r.id);
        return jobDone();
      },
    });
  }

  // ---- intake --------------------------------------------------------------------------------

  /**
   * Records a request (`legal.request_invalid` listing every problem with its JSON path;
   * `legal.holder_required` when whoever acts is not a named person). When telling the people
   * concerned is prohibited until a date, the job that tells them then is queued in the same
   * transaction.
   */
  async receive(ctx: Context, body: unknown, options: LegalActOptions = {}): Promise<LegalRequestRecord> {
    const manifest = this.#deps.manifest.manifest;
    const now = ctx.clock.now();
    const recipient = manifest.recipients.find((r) => r.key === LEGAL_RECIPIENT);
    if (recipient === undefined) {
      throw new ValidationError(
        'legal.recipient_undeclared',
        `the manifest declares no recipient "${LEGAL_RECIPIENT}" (kind authority, purpose ${LEGAL_PURPOSE}), so no legal request can be answered; declare it under recipients:`,
        {},
        422,
      );
    }
    const input = checkIntake(body, {
      taxonomy: new Taxonomy(manifest.categories),
      recipientCategories: recipient.categories,
      now,
    });
    const subjectExists = this.#deps.subjectExists;
    if (subjectExists !== undefined) {
      const problems = new InputProblems();
      const found = await Promise.all(input.scope.subjects.map((s) => subjectExists(ctx, s)));
      found.forEach((ok, i) => {
        if (!ok) problems.add(`scope.subjects[${i}]`, 'no subject has this id (or it was erased)');
      });
      problems.throwIfAny('legal.request_invalid');
    }
    const intakeBy = await whoActs(ctx, this.#deps, options);
    const record = {
      id: uuidv7(),
      receivedAt: now,
      authority: input.authority,
      legalBasis: input.legalBasis,
      citation: input.citation,
      reference: input.reference,
      scope: input.scope,
      deadline: input.deadline,
      notice: { prohibited: input.notice.prohibited, until: input.until },
      intakeBy,
    };
    await this.#deps.db.transaction(ctx, async (tctx) => {
      await this.#deps.repo.insert(tctx, record);
      if (record.notice.prohibited && record.notice.until !== undefined) {
        await this.#dueJob.enqueue(
          tctx,
          { requestId: record.id },
          { runAt: record.notice.until, key: `legal-notices-due:${record.id}` },
        );
      }
      await this.#log(tctx, {
        action: 'legal.intake',
        details: {
          requestId: record.id,
          authorityType: record.authority.type,
          legalBasis: record.legalBasis,
          subjects: record.scope.subjects.length,
          categories: record.scope.categories,
          noticeProhibited: record.notice.prohibited,
        },
      });
    });
    return this.getOrThrow(ctx, record.id);
  }

  /**
   * Seals the free text of requests an earlier version of Pledge wrote in plaintext, in one
   * transaction; returns how many rows it sealed (none once done). Run at every start, before
   * anything is served (createLegal's start, the legal CLI).
   */
  async sealStored(ctx: Context): Promise<number> {
    return this.#deps.db.transaction(ctx, (tctx) => this.#deps.repo.sealPlaintext(tctx));
  }

  // ---- reading -------------------------------------------------------------------------------

  /** One request, or `undefined` (also for an id that is not a UUID). */
  async get(ctx: Context, id: string): Promise<LegalRequestRecord | undefined> {
    if (!UUID_PATTERN.test(id)) return undefined;
    return this.#deps.repo.get(ctx, id.toLowerCase());
  }

  /** One request; throws `legal.request_not_found`. */
  async getOrThrow(ctx: Context, id: string): Promise<LegalRequestRecord> {
    const found = await this.get(ctx, id);
    if (found === undefined) throw notFound(id);
    return found;
  }

  /** Requests, newest first (at most 500, default 50; `legal.limit_invalid` otherwise). */
  async list(ctx: Context, options: ListLegalOptions = {}): Promise<LegalRequestRecord[]> {
    const limit = pageLimitOrThrow('legal.limit_invalid', options.limit, 500, 50);
    return this.#deps.repo.list(ctx, { open: options.open, limit, before: options.before });
  }

  /** The people whose data left for a request, with their notices. */
  notices(ctx: Context, requestId: string): Promise<LegalNoticeRecord[]> {
    return this.#deps.repo.notices(ctx, requestId);
  }

  /**
   * The legal disclosures of a person's data, each with whether it must still be held back from
   * them ("who got my data" shows one only when `heldUntil` is undefined).
   */
  async disclosuresOf(
    ctx: Context,
    subjectId: string,
  ): Promise<Array<{ requestId: string; disclosedAt: Date; heldUntil: Date | 'indefinite' | undefined }>> {
    const now = ctx.clock.now();
    return (await this.#deps.repo.disclosuresOf(ctx, subjectId)).map((d) => ({
      requestId: d.requestId,
      disclosedAt: d.disclosedAt,
      heldUntil: noticeHeldUntil(
        { notice: { prohibited: d.noticeProhibited, until: d.prohibitedUntil } },
        now,
      ),
    }));
  }

  /**
   * The transparency report of a period that is over (`2026`, `2026-H1`; the last half-year when
   * absent): `legal.period_invalid`, `legal.period_open`.
   */
  async report(ctx: Context, periodKey: string | undefined): Promise<TransparencyReport> {
    const period = periodOrThrow(periodKey, ctx.clock.now());
    const rows = await this.#deps.repo.receivedBetween(ctx, period.from, period.to);
    const disclosed = await this.#deps.repo.disclosedSubjects(
      ctx,
      rows.map((r) => r.id),
    );
    return buildReport(period, rows, disclosed);
  }

  /** The share gate's question: what an approved, open request may let leave (LegalApprovals). */
  async approvedScopeOf(ctx: Context, requestId: string): Promise<LegalScope | undefined> {
    const r = await this.get(ctx, requestId);
    if (r === undefined || r.closedAt !== undefined || r.approved === undefined) return undefined;
    if (r.decision !== 'approved' && r.decision !== 'narrowed') return undefined;
    return { requestId: r.id, subjects: r.approved.subjects, categories: r.approved.categories };
  }

  // ---- review --------------------------------------------------------------------------------

  /** Approves a request as asked. See {@link narrow} for what is refused. */
  approve(ctx: Context, id: string, options: LegalActOptions = {}): Promise<LegalRequestRecord> {
    return this.#review(ctx, id, options, (r) => ({
      decision: 'approved',
      approved: { subjects: [...r.scope.subjects], categories: [...r.scope.categories] },
      rejectReason: undefined,
    }));
  }

  /**
   * Approves part of a request: some of its subjects, some of its categories (or narrower ones
   * under them), never more (`legal.narrow_widens`, each offending entry with its path). Refused to
   * whoever made the intake (`legal.self_review`), for a request reviewed already
   * (`legal.already_reviewed`) or closed (`legal.request_closed`).
   */
  narrow(
    ctx: Context,
    id: string,
    input: NarrowInput,
    options: LegalActOptions = {},
  ): Promise<LegalRequestRecord> {
    return this.#review(ctx, id, options, (r) => {
      const problems = new InputProblems();
      const subjects = checkSubjectIds(input.subjects, 'subjects', problems);
      const categories = checkCategories(input.categories, 'categories', problems, undefined, undefined);
      problems.throwIfAny('legal.narrow_invalid');
      const wider = new InputProblems();
      subjects.forEach((s, i) => {
        if (!r.scope.subjects.includes(s)) wider.add(`subjects[${i}]`, 'was not asked for in this request');
      });
      categories.forEach((c, i) => {
        if (!r.scope.categories.some((asked) => coversCategory(asked, c)))
          wider.add(
            `categories[${i}]`,
            `"${c}" is not within what was asked (${r.scope.categories.join(', ')})`,
          );
      });
      wider.throwIfAny('legal.narrow_widens');
      return { decision: 'narrowed', approved: { subjects, categories }, rejectReason: undefined };
    });
  }

  /** Rejects a request with a reason code (`legal.reason_invalid` lists them). */
  reject(
    ctx: Context,
    id: string,
    reason: unknown,
    options: LegalActOptions = {},
  ): Promise<LegalRequestRecord> {
    if (typeof reason !== 'string' || !(REJECT_REASONS as readonly string[]).includes(reason)) {
      throw new ValidationError(
        'legal.reason_invalid',
        `reason: must be one of ${REJECT_REASONS.join(', ')}`,
        {
          problems: [{ path: 'reason', message: `must be one of ${REJECT_REASONS.join(', ')}` }],
        },
      );
    }
    return this.#review(ctx, id, options, () => ({
      decision: 'rejected',
      approved: undefined,
      rejectReason: reason,
    }));
  }

  async #review(
    ctx: Context,
    id: string,
    options: LegalActOptions,
    decide: (r: LegalRequestRecord) => Pick<LegalRequestRecord, 'decision' | 'approved' | 'rejectReason'>,
  ): Promise<LegalRequestRecord> {
    const by = await whoActs(ctx, this.#deps, options);
    await this.#deps.db.transaction(ctx, async (tctx) => {
      const r = await this.#lockedOrThrow(tctx, id);
      if (r.closedAt !== undefined) throw closed(r.id);
      if (r.decision !== undefined) {
        throw new ConflictError(
          'legal.already_reviewed',
          `legal request ${r.id} was ${r.decision} already; a review is final (close the request, and record a new one if the authority asks again)`,
          { id: r.id, decision: r.decision },
        );
      }
      refuseSelfReview(r.intakeBy, by);
      const review = decide(r);
      if (review.decision === undefined) throw new Error('a review decides');
      const at = tctx.clock.now();
      const changed = await this.#deps.repo.review(tctx, r.id, {
        decision: review.decision,
        approved: review.approved,
        rejectReason: review.rejectReason,
        at,
        by,
      });
      if (!changed)
        throw new ConflictError('legal.already_reviewed', `legal request ${r.id} was reviewed already`, {
          id: r.id,
        });
      await this.#log(tctx, {
        action: `legal.${review.decision === 'approved' ? 'approve' : review.decision === 'narrowed' ? 'narrow' : 'reject'}`,
        details: {
          requestId: r.id,
          ...(review.approved
            ? { subjects: review.approved.subjects.length, categories: review.approved.categories }
            : { reason: review.rejectReason }),
        },
      });
    });
    return this.getOrThrow(ctx, id);
  }

  // ---- disclosure ----------------------------------------------------------------------------

  /**
   * Discloses the approved minimum through the share gate: the fields asked, for the approved
   * subjects (or some of them). Refused before approval (`legal.not_approved`), after a rejection
   * (`legal.request_rejected`) or closure (`legal.request_closed`), and beyond what was approved
   * (`legal.beyond_approval`: a subject not approved, a field whose category was not). In the same
   * transaction: the gate's record, who received what, the notices that may go out now, the log.
   */
  async disclose(
    ctx: Context,
    id: string,
    input: LegalDiscloseInput,
  ): Promise<{ request: LegalRequestRecord; result: unknown; disclosedSubjects: readonly string[] }> {
    const share = this.#deps.share;
    if (share === undefined) {
      throw new ValidationError(
        'legal.disclosure_unavailable',
        'disclosures are made by the server (POST /api/v1/legal-requests/:id/disclose), not here',
        {},
        422,
      );
    }
    const problems = new InputProblems();
    const fields = fieldsOf(input.fields, problems);
    const asked =
      input.subjects === undefined ? undefined : checkSubjectIds(input.subjects, 'subjects', problems);
    problems.throwIfAny('legal.disclosure_invalid');
    const out = await this.#deps.db.transaction(ctx, async (tctx) => {
      const r = await this.#lockedOrThrow(tctx, id);
      if (r.closedAt !== undefined) throw closed(r.id);
      if (r.decision === 'rejected') {
        throw new ConflictError(
          'legal.request_rejected',
          `legal request ${r.id} was rejected (${r.rejectReason ?? 'no reason'}); nothing may be disclosed for it`,
          { id: r.id },
        );
      }
      if (r.approved === undefined) {
        throw new ConflictError(
          'legal.not_approved',
          `legal request ${r.id} has not been reviewed yet; a reviewer must approve or narrow it first (\`pledge legal approve ${r.id} --by NAME\`)`,
          { id: r.id },
        );
      }
      const approved = r.approved;
      const subjects = asked ?? approved.subjects;
      const beyond = new InputProblems();
      subjects.forEach((s, i) => {
        if (!approved.subjects.includes(s)) beyond.add(`subjects[${i}]`, 'was not approved for this request');
      });
      // The gate's own index: what it would disclose is what the approved scope is checked against.
      const categories = shareFieldIndex(this.#deps.manifest.manifest);
      fields.forEach((f, i) => {
        const of = categories.get(f);
        if (of === undefined) {
          beyond.add(`fields[${i}]`, `"${f}" is not a field of any collection point of the manifest`);
          return;
        }
        const outside = of.filter((c) => !approved.categories.some((a) => coversCategory(a, c)));
        if (outside.length > 0)
          beyond.add(
            `fields[${i}]`,
            `"${f}" holds ${outside.join(', ')}, which was not approved (approved: ${approved.categories.join(', ')})`,
          );
      });
      if (beyond.list.length > 0) {
        throw new ForbiddenError(
          'legal.beyond_approval',
          `legal request ${r.id} may not disclose this: ${beyond.list.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
          { id: r.id, problems: beyond.list },
        );
      }
      const gate = await share.disclose(tctx, {
        recipient: LEGAL_RECIPIENT,
        purpose: LEGAL_PURPOSE,
        subjects,
        fields,
        legalRequest: r.id,
      });
      const disclosed = gate.disclosedSubjects.filter((s) => approved.subjects.includes(s));
      const at = tctx.clock.now();
      await this.#deps.repo.recordDisclosure(tctx, r.id, disclosed, at);
      const held = noticeHeldUntil(r, at) !== undefined;
      if (!held) await this.#queueNotices(tctx, r.id);
      await this.#log(tctx, {
        action: 'legal.disclose',
        details: { requestId: r.id, subjects: disclosed.length, fields: fields.length, noticeHeld: held },
      });
      return { result: gate.result, disclosedSubjects: disclosed };
    });
    return { request: await this.getOrThrow(ctx, id), ...out };
  }

  // ---- notice terms --------------------------------------------------------------------------

  /**
   * Replaces a request's notice terms when the authority extends, ends or lifts a prohibition
   * (`{ "prohibited": true, "until": "2027-12-31" }`, or `{ "prohibited": false }`); allowed after
   * closure too, since the people concerned are still owed their notice. In the same transaction:
   * the job for the new end date, or the notices now due. A notice queued for an earlier end is
   * checked again when it runs and held if the prohibition still lasts. `legal.notice_invalid`.
   */
  async setNoticeTerms(ctx: Context, id: string, body: unknown): Promise<LegalRequestRecord> {
    const problems = new InputProblems();
    const terms = checkNotice(body, '', problems, ctx.clock.now());
    problems.throwIfAny('legal.notice_invalid');
    await whoActs(ctx, this.#deps, {});
    await this.#deps.db.transaction(ctx, async (tctx) => {
      const r = await this.#lockedOrThrow(tctx, id);
      await this.#deps.repo.setNotice(tctx, r.id, terms.prohibited, terms.until);
      if (terms.prohibited && terms.until !== undefined) {
        await this.#dueJob.enqueue(
          tctx,
          { requestId: r.id },
          { runAt: terms.until, key: `legal-notices-due:${r.id}:${terms.until.toISOString()}` },
        );
      }
      if (!terms.prohibited) await this.#queueNotices(tctx, r.id);
      await this.#log(tctx, {
        action: 'legal.notice_terms',
        details: {
          requestId: r.id,
          noticeProhibited: terms.prohibited,
          until: terms.until?.toISOString() ?? null,
        },
      });
    });
    return this.getOrThrow(ctx, id);
  }

  // ---- closure -------------------------------------------------------------------------------

  /** Closes a request (`legal.request_closed` when it is already); nothing more leaves for it. */
  async close(ctx: Context, id: string, options: LegalActOptions = {}): Promise<LegalRequestRecord> {
    const by = await whoActs(ctx, this.#deps, options);
    await this.#deps.db.transaction(ctx, async (tctx) => {
      const r = await this.#lockedOrThrow(tctx, id);
      if (r.closedAt !== undefined || !(await this.#deps.repo.close(tctx, r.id, tctx.clock.now(), by)))
        throw closed(r.id);
      await this.#log(tctx, {
        action: 'legal.close',
        details: { requestId: r.id, decision: r.decision ?? 'none', disclosed: r.disclosedAt !== undefined },
      });
    });
    return this.getOrThrow(ctx, id);
  }

  // ---- notices -------------------------------------------------------------------------------

  /** Queues a notice for each person of a request not told yet (idempotent per person). */
  async #queueNotices(ctx: Context, requestId: string): Promise<void> {
    const pending = (await this.#deps.repo.notices(ctx, requestId)).filter((n) => n.noticeAt === undefined);
    if (pending.length === 0) return;
    await this.#noticeJob.enqueueMany(
      ctx,
      pending.map((n) => ({
        payload: { requestId, subjectId: n.subjectId },
        key: `legal-notice:${requestId}:${n.subjectId}`,
      })),
    );
  }

  async #sendNotice(ctx: Context, payload: NoticePayload): Promise<JobHandlerResult> {
    const { requestId, subjectId } = payload;
    const r = await this.#deps.repo.get(ctx, requestId);
    const notice = await this.#deps.repo.notice(ctx, requestId, subjectId);
    if (r === undefined || notice === undefined || notice.noticeAt !== undefined) return jobDone();
    // Queued before a prohibition was known would be a bug; held is checked again at send time.
    if (noticeHeldUntil(r, ctx.clock.now()) !== undefined) return jobDone();
    const mail = this.#deps.mail;
    if (mail === undefined) return jobRetry('no mail transport in this process');
    const address = await mail.addressOf(ctx, subjectId);
    let status = 'no_address';
    if (address !== undefined) {
      const sent = await mail.send(
        ctx,
        noticeMessage(this.#deps.manifest.manifest.organization, r, notice, address),
      );
      if (!sent.sent) return jobRetry('mail is not configured (PLEDGE_SMTP_URL)');
      status = 'sent';
    }
    return jobDone(async (rctx, final) => {
      if (final.state !== 'done') return;
      if (!(await this.#deps.repo.recordNotice(rctx, requestId, subjectId, rctx.clock.now(), status))) return;
      await this.#deps.audit.append(rctx, [
        { action: 'legal.notice', subjectId, purpose: LEGAL_PURPOSE, details: { requestId, status } },
      ]);
    });
  }

  // ---- helpers -------------------------------------------------------------------------------

  async #lockedOrThrow(ctx: Context, id: string): Promise<LegalRequestRecord> {
    if (!UUID_PATTERN.test(id)) throw notFound(id);
    const r = await this.#deps.repo.get(ctx, id.toLowerCase(), { lock: true });
    if (r === undefined) throw notFound(id);
    return r;
  }

  #log(ctx: Context, entry: AuditEntry): Promise<void> {
    return this.#deps.audit.append(ctx, [{ purpose: LEGAL_PURPOSE, ...entry }]);
  }
}

function fieldsOf(value: unknown, problems: InputProblems): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.add(
      'fields',
      'must be a non-empty array of field names (as the collection points declare them)',
    );
    return [];
  }
  const out: string[] = [];
  value.forEach((v, i) => {
    if (typeof v !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v))
      problems.add(`fields[${i}]`, 'must be a field name');
    else if (!out.includes(v)) out.push(v);
  });
  return out;
}

function notFound(id: string): NotFoundError {
  return new NotFoundError(
    'legal.request_not_found',
    `no legal request has the id ${UUID_PATTERN.test(id) ? id : '(not a UUID)'}`,
    {},
  );
}

function closed(id: string): ConflictError {
  return new ConflictError(
    'legal.request_closed',
    `legal request ${id} is closed; nothing more happens on it`,
    { id },
  );
}
