/**
 * Data-subject requests' workflow: intake (the same answer whether or not the person is known: a
 * request is made and codes go to the identifiers given, and nobody is looked up before they are
 * verified), verification by code, staff review (approve, extend with a reasoned notice, reject,
 * retry a failed step, complete a task), the requester's status, and the watch that flags requests
 * with no progress. Every change appends to the audit log in its own transaction, with ids, step
 * names and counts; the subject, once matched, only as the log's commitment.
 */
import type { AuditAppender } from '../audit/audit.service.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { ConflictError, NotFoundError, pageLimitOrThrow } from '../platform/errors.js';
import { UUID_PATTERN, uuidv7 } from '../platform/ids.js';
import { jobDone } from '../platform/jobs/jobs.definition.js';
import type { JobQueue, JobType } from '../platform/jobs/jobs.service.js';
import type { MailMessage, SendMailResult } from '../platform/mail/mail.transport.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import { parseDueWindow, type DeadlineKind, type DueState } from './deadlines.js';
import { dueDatesOf, dueStatusOf } from './requests.deadlines.js';
import {
  FINAL_STATUSES,
  type RequestEventRecord,
  type RequestRecord,
  type RequestsRepository,
  type RequestStatus,
} from './requests.repository.js';
import type { LinkPurpose, RequestSeal, SealedRequest } from './requests.seal.js';
import {
  checkIntake,
  EXTEND_REASONS,
  reasonOrThrow,
  REJECT_REASONS,
  type ExtendReason,
  type RejectReason,
} from './requests.validator.js';
import { REQUESTS_PURPOSE, type StepEngine } from './steps.engine.js';
import type { StepRecord, StepsRepository } from './steps.repository.js';
import type { CheckResult, IdentifierToVerify, VerificationService } from './verification.service.js';
import type { SmsAdapter } from './verification.sms.js';

export type { RequestRecord, RequestEventRecord } from './requests.repository.js';

/** The job that flags requests with no progress, and runs again after its interval. */
export const WATCH_JOB = 'requests.watch';

/** How long the requester's links are good for beyond the latest due date. */
const LINK_GRACE_MS = 30 * 86_400_000;
/** The verification link lives as long as its codes, with some slack. */
const VERIFY_LINK_MS = 60 * 60_000;

/** What the service uses. */
export interface RequestsServiceDeps {
  db: Transactions;
  requests: RequestsRepository;
  steps: StepsRepository;
  verification: VerificationService;
  seal: RequestSeal;
  engine: StepEngine;
  audit: AuditAppender;
  jobs: Pick<JobQueue, 'define'>;
  /** Mail to the requester; `send` answers `sent: false` when mail is off. */
  mail: { send(ctx: Context, message: MailMessage): Promise<SendMailResult> };
  /** Absent: phone numbers cannot be verified, so no request acts on one. */
  sms?: SmsAdapter | undefined;
  /** The subject whose verified identifiers these are, or `undefined`. */
  matchSubject(
    ctx: Context,
    identifiers: { email?: string | undefined; phone?: string | undefined },
  ): Promise<string | undefined>;
  /** The stores each request's steps reach (`pledge`, then the connectors' datasets). */
  stores(): readonly string[];
  organization: string;
  /** Where the requester's links point (`https://example.com`). */
  publicUrl: string;
  defaultJurisdiction: string;
  /** The manifest in force: its `requests:` block gives the deadlines of each new request. */
  manifest: { readonly manifest: Pick<Manifest, 'requests'> };
  /** A deadline this close is due soon: the queue's default window and the `request.due` webhook's. */
  dueSoonMs: number;
  /**
   * Tells staff that a request became due soon or overdue on one deadline (the webhook outbox), in
   * the transaction that records it; once per request, deadline and state. Ids and dates only.
   */
  onDue?: ((ctx: Context, request: RequestRecord, due: DueNotice) => Promise<void>) | undefined;
  /** A request with no progress for this long is flagged stalled. */
  stallAfterMs: number;
  /** How often the watch looks (default: a tenth of stallAfterMs, at least a minute). */
  watchIntervalMs?: number | undefined;
  /** Tells staff of a stalled request (the webhook outbox), in the flag's transaction; ids only. */
  onStalled?: ((ctx: Context, request: RequestRecord) => Promise<void>) | undefined;
}

/** A request that became due soon or overdue on one of its deadlines. */
export interface DueNotice {
  status: Exclude<DueState, 'on_time'>;
  deadline: DeadlineKind;
  due: Date;
}

/** Who filed a request, and from where. */
export interface IntakeOptions {
  /** `person` for the public page, `system:<key>` for the API. */
  agent: string;
  /** The client's address, or the calling system's key (its keyed hash counts codes per client). */
  ip: string;
  /** Codes per hour for this client (default CODES_PER_CLIENT_HOUR; a system filing for many people has more). */
  clientLimit?: number | undefined;
}

/** What intake answers: the same for everyone. */
export interface IntakeResult {
  requestId: string;
  /** The token of the verification page. */
  verifyToken: string;
}

/** What verifying answers. */
export interface VerifyResult {
  request: RequestRecord;
  check: CheckResult;
  /** The status link, once every identifier is settled and one was verified. */
  statusToken: string | undefined;
}

/** A request with its steps and events, for staff and the requester's page. */
export interface RequestView {
  request: RequestRecord;
  steps: StepRecord[];
  events: RequestEventRecord[];
}

/** Filters of {@link RequestsService.list}. */
export interface ListRequestsOptions {
  /** A window like `7d`: open requests due within it (overdue ones included). */
  due?: string | undefined;
  status?: RequestStatus | undefined;
  stalled?: boolean | undefined;
  /** Closed requests too. */
  all?: boolean | undefined;
  limit?: number | undefined;
}

/** Data-subject requests from intake to their end. */
export class RequestsService {
  readonly #deps: RequestsServiceDeps;
  readonly #watch: JobType<{ at: string }>;
  readonly #watchIntervalMs: number;

  constructor(deps: RequestsServiceDeps) {
    this.#deps = deps;
    this.#watchIntervalMs = deps.watchIntervalMs ?? Math.max(60_000, Math.floor(deps.stallAfterMs / 10));
    this.#watch = deps.jobs.define<{ at: string }>({
      type: WATCH_JOB,
      handle: async (ctx) => {
        await this.flagStalled(ctx);
        await this.flagDue(ctx);
        return jobDone(async (rctx, final) => {
          if (final.state === 'done') await this.#queueWatch(rctx);
        });
      },
    });
  }

  /** Queues the watch (idempotent per interval): call once at start. */
  async start(ctx: Context): Promise<void> {
    await this.#queueWatch(ctx, 0);
  }

  async #queueWatch(ctx: Context, delayMs = this.#watchIntervalMs): Promise<void> {
    const at = new Date(
      Math.floor((ctx.clock.now().getTime() + delayMs) / this.#watchIntervalMs) * this.#watchIntervalMs,
    );
    await this.#watch.enqueue(
      ctx,
      { at: at.toISOString() },
      { runAt: at, key: `requests-watch:${at.toISOString()}` },
    );
  }

  // ---- intake ----------------------------------------------------------------------------------

  /**
   * Records a request and sends a code to each identifier it names. Nobody is looked up: the answer,
   * the rows and the mail are the same whether or not anyone is known by these identifiers.
   * `requests.request_invalid` (with paths), `requests.rate_limited` (429).
   */
  async receive(ctx: Context, body: unknown, options: IntakeOptions): Promise<IntakeResult> {
    const d = this.#deps;
    const input = checkIntake(body, d.defaultJurisdiction);
    const now = ctx.clock.now();
    const id = uuidv7();
    // Counted from receipt, whatever the time to verify; a requester who named no jurisdiction
    // gets the manifest's default rule (the strictest), not that of the manifest's first one.
    const due = dueDatesOf(
      d.manifest.manifest.requests,
      input.jurisdictionGiven ? input.jurisdiction : undefined,
      now,
    );
    const identifiers: IdentifierToVerify[] = [];
    if (input.email !== undefined)
      identifiers.push({
        kind: 'email',
        value: input.email,
        hash: d.seal.hash('email', input.email),
        sendable: true,
      });
    if (input.phone !== undefined)
      identifiers.push({
        kind: 'phone',
        value: input.phone,
        hash: d.seal.hash('phone', input.phone),
        sendable: d.sms !== undefined,
      });
    const ipHash = d.seal.hash('ip', options.ip);
    const sealed: SealedRequest = { email: input.email, phone: input.phone, details: input.details };
    const codes = await d.db.transaction(ctx, async (tctx) => {
      await d.verification.checkRateLimits(tctx, identifiers, ipHash, options.clientLimit);
      await d.requests.insert(tctx, {
        id,
        type: input.type,
        status: 'verifying',
        jurisdiction: input.jurisdiction,
        receivedAt: now,
        dueAt: due.answerBy,
        answerBy: due.answerBy,
        extendedDueAt: due.extendedAnswerBy ?? due.answerBy,
        extensionNoticeBy: due.extensionNoticeBy,
        confirmBy: due.confirmBy,
        confirmedAt: undefined,
        deadlineRule: due.rule,
        extendedAt: undefined,
        dueNotices: [],
        emailHash: identifiers.find((i) => i.kind === 'email')?.hash,
        phoneHash: identifiers.find((i) => i.kind === 'phone')?.hash,
        sealed: d.seal.seal(id, sealed),
        subjectId: undefined,
        agent: options.agent,
        stalled: false,
        requeued: false,
        reason: undefined,
        progressedAt: now,
        finishedAt: undefined,
      });
      await d.steps.insertMany(tctx, d.engine.plan(id, input.type, d.stores()));
      const issued = await d.verification.issue(tctx, id, identifiers, ipHash);
      await d.requests.addEvent(tctx, id, 'received', {
        type: input.type,
        identifiers: identifiers.map((i) => i.kind),
        ...(identifiers.some((i) => !i.sendable)
          ? { unsendable: identifiers.filter((i) => !i.sendable).map((i) => i.kind) }
          : {}),
      });
      await d.audit.append(tctx, [
        {
          action: 'requests.intake',
          purpose: REQUESTS_PURPOSE,
          details: {
            requestId: id,
            type: input.type,
            jurisdiction: input.jurisdiction,
            rule: due.rule,
            identifiers: identifiers.map((i) => i.kind),
          },
        },
      ]);
      return issued;
    });
    const verifyToken = d.seal.signLink(id, 'verify', new Date(now.getTime() + VERIFY_LINK_MS));
    // After the commit: a code whose row did not commit would verify nothing.
    let reached = false;
    for (const c of codes) {
      const text = `Your verification code is ${c.code}. It is valid for 10 minutes.`;
      if (c.kind === 'email') {
        const sent = await d.mail.send(ctx, {
          to: c.value,
          subject: `${d.organization}: your verification code ${c.code}`,
          text: `Someone, hopefully you, asked ${d.organization} about the personal data it holds on this address. We received the request on ${now.toISOString().slice(0, 10)}.\n\n${text}\n\nEnter it here: ${this.link('verify', verifyToken)}\n\nIf you did not ask, ignore this message: nothing happens without the code.\n`,
        });
        reached ||= sent.sent;
      } else if (d.sms !== undefined) {
        await d.sms.send(ctx, { to: c.value, text: `${d.organization}: ${text}` });
        reached = true;
      }
    }
    // The code's message says the request was received: it is the confirmation of receipt the
    // CCPA asks for. Mail that is off reaches nobody, so the request stays unconfirmed.
    if (reached) await this.#confirmed(ctx, id);
    return { requestId: id, verifyToken };
  }

  /** The absolute URL of a requester's page. */
  link(purpose: LinkPurpose, token: string): string {
    const path = purpose === 'verify' ? '/requests/verify' : '/requests/status';
    return `${this.#deps.publicUrl.replace(/\/$/, '')}${path}?t=${encodeURIComponent(token)}`;
  }

  /** The request a link token names (`undefined`: bad, altered or expired). */
  requestOfLink(ctx: Context, token: string, purpose: LinkPurpose): string | undefined {
    return this.#deps.seal.checkLink(token, purpose, ctx.clock.now());
  }

  /** The verification state of a request's identifiers. */
  verificationOf(ctx: Context, requestId: string): Promise<CheckResult['statuses']> {
    return this.#deps.verification.statusOf(ctx, requestId);
  }

  /**
   * Checks codes for a request. Once every identifier is settled, the request is verified (when one
   * was: only verified identifiers are matched to a subject and acted on) or rejected as unverified.
   */
  async verify(
    ctx: Context,
    requestId: string,
    answers: Partial<Record<'email' | 'phone', string>>,
  ): Promise<VerifyResult> {
    const d = this.#deps;
    const out = await d.db.transaction(ctx, async (tctx) => {
      const r = await this.#lockedOrThrow(tctx, requestId);
      if (r.status !== 'verifying') {
        return {
          check: { statuses: await d.verification.statusOf(tctx, r.id), settled: true },
          verified: false,
        };
      }
      const check = await d.verification.check(tctx, r.id, answers);
      if (!check.settled) return { check, verified: false };
      const verified = check.statuses.filter((s) => s.status === 'verified').map((s) => s.kind);
      const unverified = check.statuses.filter((s) => s.status !== 'verified').map((s) => s.kind);
      const now = tctx.clock.now();
      if (verified.length === 0) {
        await d.requests.update(tctx, r.id, {
          status: 'rejected',
          reason: 'unverified',
          finishedAt: now,
          progressedAt: now,
        });
        await d.requests.addEvent(tctx, r.id, 'unverified', { identifiers: unverified });
        await this.#log(tctx, r, 'requests.reject', { reason: 'unverified' });
        return { check, verified: false };
      }
      const values = d.seal.open(r.id, r.sealed);
      // Each verified identifier is matched on its own: a request whose identifiers belong to two
      // different people acts on neither until staff look at it (one person's verified phone must
      // never open another person's data).
      const byEmail =
        verified.includes('email') && values.email !== undefined
          ? await d.matchSubject(tctx, { email: values.email })
          : undefined;
      const byPhone =
        verified.includes('phone') && values.phone !== undefined
          ? await d.matchSubject(tctx, { phone: values.phone })
          : undefined;
      const conflict = byEmail !== undefined && byPhone !== undefined && byEmail !== byPhone;
      const subjectId = conflict ? undefined : (byEmail ?? byPhone);
      if (conflict) await d.requests.addEvent(tctx, r.id, 'identifiers_conflict', { identifiers: verified });
      await d.requests.update(tctx, r.id, {
        status: 'verified',
        progressedAt: now,
        ...(subjectId === undefined ? {} : { subjectId }),
      });
      const matched: RequestRecord = { ...r, status: 'verified', subjectId };
      const verifyStep = (await d.steps.ofRequest(tctx, r.id)).find((s) => s.name === 'verify');
      if (verifyStep !== undefined) {
        await d.steps.update(tctx, verifyStep.id, {
          status: 'done',
          finishedAt: now,
          result: {
            verified,
            unverified,
            matched: subjectId !== undefined,
            ...(conflict ? { conflict } : {}),
          },
        });
      }
      await d.requests.addEvent(tctx, r.id, 'verified', { verified, unverified });
      await this.#log(tctx, matched, 'requests.step', {
        step: 'verify',
        status: 'done',
        verified,
        unverified,
        matched: subjectId !== undefined,
      });
      return { check, verified: true, email: verified.includes('email') ? values.email : undefined };
    });
    const request = await this.getOrThrow(ctx, requestId);
    // Only the answer that completed the verification carries the status link (whoever holds the
    // verification link later gets nothing more), and it is mailed to the verified address.
    const statusToken = out.verified
      ? d.seal.signLink(request.id, 'status', this.#linkExpiry(request))
      : undefined;
    if (statusToken !== undefined && 'email' in out && out.email !== undefined) {
      const sent = await d.mail.send(ctx, {
        to: out.email,
        subject: `${d.organization}: your request is verified`,
        text: `Thank you: your ${request.type} request is verified. We will answer by ${request.dueAt.toISOString().slice(0, 10)}.\n\nSee where it stands: ${this.link('status', statusToken)}\n`,
      });
      if (sent.sent && request.confirmedAt === undefined) {
        await this.#confirmed(ctx, request.id);
        return { request: await this.getOrThrow(ctx, requestId), check: out.check, statusToken };
      }
    }
    return { request, check: out.check, statusToken };
  }

  /** Records the first message that reached the requester as the confirmation of receipt. */
  async #confirmed(ctx: Context, id: string): Promise<void> {
    const d = this.#deps;
    await d.db.transaction(ctx, async (tctx) => {
      const r = await this.#lockedOrThrow(tctx, id);
      if (r.confirmedAt !== undefined) return;
      const now = tctx.clock.now();
      await d.requests.update(tctx, r.id, { confirmedAt: now });
      const details = r.confirmBy === undefined ? {} : { confirmBy: r.confirmBy.toISOString() };
      await d.requests.addEvent(tctx, r.id, 'confirmed', details);
      // The log proves receipt was acknowledged, and when, against the confirmation deadline.
      await this.#log(tctx, r, 'requests.confirm', details);
    });
  }

  #linkExpiry(r: RequestRecord): Date {
    return new Date(r.extendedDueAt.getTime() + LINK_GRACE_MS);
  }

  // ---- reading ---------------------------------------------------------------------------------

  /** One request, or `undefined` (also for an id that is not a UUID). */
  async get(ctx: Context, id: string): Promise<RequestRecord | undefined> {
    if (!UUID_PATTERN.test(id)) return undefined;
    return this.#deps.requests.get(ctx, id.toLowerCase());
  }

  /** One request; throws `requests.request_not_found`. */
  async getOrThrow(ctx: Context, id: string): Promise<RequestRecord> {
    const r = await this.get(ctx, id);
    if (r === undefined) throw notFound(id);
    return r;
  }

  /** A request with its steps and events. */
  async view(ctx: Context, id: string): Promise<RequestView> {
    const request = await this.getOrThrow(ctx, id);
    return {
      request,
      steps: await this.#deps.steps.ofRequest(ctx, request.id),
      events: await this.#deps.requests.events(ctx, request.id),
    };
  }

  /**
   * The staff queue: open requests, soonest due first; with `due`, those whose answer or unconfirmed
   * receipt is due within the window, overdue included (`requests.due_window_invalid`,
   * `requests.limit_invalid`).
   */
  async list(ctx: Context, options: ListRequestsOptions = {}): Promise<RequestRecord[]> {
    const limit = pageLimitOrThrow('requests.limit_invalid', options.limit, 500, 50);
    const dueBefore =
      options.due === undefined
        ? undefined
        : new Date(ctx.clock.now().getTime() + parseDueWindow(options.due));
    return this.#deps.requests.list(ctx, {
      open: options.all === true ? undefined : true,
      dueBefore,
      status: options.status,
      stalled: options.stalled,
      limit,
    });
  }

  /** The window within which a deadline counts as due soon, unless a list names its own. */
  dueWindowMs(due: string | undefined): number {
    return due === undefined ? this.#deps.dueSoonMs : parseDueWindow(due);
  }

  /** The status link of a request (for staff who resend it). */
  statusToken(request: RequestRecord): string {
    return this.#deps.seal.signLink(request.id, 'status', this.#linkExpiry(request));
  }

  // ---- staff -----------------------------------------------------------------------------------

  /** Starts a verified request's steps (`requests.not_verified`, `requests.request_closed`). */
  async approve(ctx: Context, id: string): Promise<RequestView> {
    await this.#deps.db.transaction(ctx, async (tctx) => {
      const r = await this.#openOrThrow(tctx, id);
      if (r.status !== 'verified') {
        throw new ConflictError(
          'requests.not_verified',
          r.status === 'verifying'
            ? `request ${r.id} is not verified yet: the requester has not entered their code`
            : `request ${r.id} was approved already (it is ${r.status})`,
          { id: r.id, status: r.status },
        );
      }
      await this.#deps.requests.addEvent(tctx, r.id, 'approved', {});
      await this.#log(tctx, r, 'requests.approve', {});
      await this.#deps.engine.advance(tctx, r);
    });
    return this.view(ctx, id);
  }

  /**
   * Extends the answer's due date to the latest the rule applied at receipt allows, with a reason
   * code; the requester is told why by mail (at a verified address). Once only
   * (`requests.extension_refused`), only under a rule with an extension
   * (`requests.extension_not_allowed`) and only until its notice is due
   * (`requests.extension_window_closed`); each a 409.
   */
  async extend(ctx: Context, id: string, reason: unknown): Promise<RequestView> {
    const code = reasonOrThrow<ExtendReason>(reason, EXTEND_REASONS);
    const d = this.#deps;
    const r = await d.db.transaction(ctx, async (tctx) => {
      const r = await this.#openOrThrow(tctx, id);
      const now = tctx.clock.now();
      if (r.extendedAt !== undefined) {
        throw new ConflictError(
          'requests.extension_refused',
          `request ${r.id} was extended already, on ${r.extendedAt.toISOString().slice(0, 10)}: an answer is extended once`,
          { id: r.id, extendedAt: r.extendedAt.toISOString() },
        );
      }
      if (r.extensionNoticeBy === undefined) {
        throw new ConflictError(
          'requests.extension_not_allowed',
          `request ${r.id} falls under the deadline rule "${r.deadlineRule ?? 'unknown'}", which allows no extension: answer it by ${r.dueAt.toISOString().slice(0, 10)}`,
          { id: r.id, rule: r.deadlineRule ?? null },
        );
      }
      if (now.getTime() > r.extensionNoticeBy.getTime()) {
        throw new ConflictError(
          'requests.extension_window_closed',
          `request ${r.id} can no longer be extended: the notice window closed on ${r.extensionNoticeBy.toISOString()}; answer it by ${r.dueAt.toISOString().slice(0, 10)}`,
          { id: r.id, extensionNoticeBy: r.extensionNoticeBy.toISOString() },
        );
      }
      await d.requests.update(tctx, r.id, {
        dueAt: r.extendedDueAt,
        extendedAt: now,
        reason: code,
        progressedAt: now,
      });
      // The event is the record of the reasoned notice: its reason code, which the mail below
      // spells out, and the new date.
      await d.requests.addEvent(tctx, r.id, 'extended', {
        reason: code,
        dueAt: r.extendedDueAt.toISOString(),
        noticeBy: r.extensionNoticeBy.toISOString(),
      });
      await this.#log(tctx, r, 'requests.extend', { reason: code, dueAt: r.extendedDueAt.toISOString() });
      return r;
    });
    // Only to an address the requester verified: an unverified one may be someone else's.
    const verifiedEmail = (await d.verification.statusOf(ctx, r.id)).some(
      (v) => v.kind === 'email' && v.status === 'verified',
    );
    const email = verifiedEmail ? d.seal.open(r.id, r.sealed).email : undefined;
    if (email !== undefined) {
      await d.mail.send(ctx, {
        to: email,
        subject: `${d.organization}: we need more time to answer your request`,
        text: `We received your ${r.type} request on ${r.receivedAt.toISOString().slice(0, 10)}. We need more time to answer it: ${EXTEND_REASONS[code]}.\n\nWe will answer by ${r.extendedDueAt.toISOString().slice(0, 10)}.\n\nSee where it stands: ${this.link('status', this.statusToken(r))}\n`,
      });
    }
    return this.view(ctx, id);
  }

  /** Rejects an open request with a reason code; its steps stop. */
  async reject(ctx: Context, id: string, reason: unknown): Promise<RequestView> {
    const code = reasonOrThrow<RejectReason>(reason, REJECT_REASONS);
    await this.#deps.db.transaction(ctx, async (tctx) => {
      const r = await this.#openOrThrow(tctx, id);
      const now = tctx.clock.now();
      await this.#deps.requests.update(tctx, r.id, {
        status: 'rejected',
        reason: code,
        finishedAt: now,
        progressedAt: now,
      });
      await this.#deps.requests.addEvent(tctx, r.id, 'rejected', { reason: code });
      await this.#log(tctx, r, 'requests.reject', { reason: code });
    });
    return this.view(ctx, id);
  }

  /** Queues a failed step again, with fresh attempts (`requests.nothing_to_retry`). */
  async retry(ctx: Context, id: string): Promise<RequestView> {
    await this.#deps.db.transaction(ctx, async (tctx) => {
      const r = await this.#lockedOrThrow(tctx, id);
      const failed = (await this.#deps.steps.ofRequest(tctx, r.id)).find((s) => s.status === 'failed');
      if (failed === undefined || r.status !== 'failed') {
        throw new ConflictError(
          'requests.nothing_to_retry',
          `request ${r.id} has no failed step (it is ${r.status})`,
          { id: r.id },
        );
      }
      await this.#deps.requests.addEvent(tctx, r.id, 'retried', { step: failed.name, store: failed.store });
      await this.#deps.engine.queue(tctx, r, { ...failed, attempts: 0 });
    });
    return this.view(ctx, id);
  }

  /** Confirms a task a person or system did (a waiting step); the next step is queued. */
  async completeTask(ctx: Context, id: string, stepId: string | undefined): Promise<RequestView> {
    await this.#deps.db.transaction(ctx, async (tctx) => {
      const r = await this.#openOrThrow(tctx, id);
      const waiting = (await this.#deps.steps.ofRequest(tctx, r.id)).filter(
        (s) => s.status === 'waiting' && s.name !== 'verify' && (stepId === undefined || s.id === stepId),
      );
      const step = waiting[0];
      if (step === undefined) {
        throw new ConflictError(
          'requests.no_task',
          `request ${r.id} has no task waiting${stepId === undefined ? '' : ` with step id ${stepId}`}`,
          {
            id: r.id,
          },
        );
      }
      await this.#deps.requests.addEvent(tctx, r.id, 'step.done', {
        step: step.name,
        store: step.store,
        by: 'staff',
      });
      await this.#deps.engine.complete(tctx, r, step, {
        ...(step.result ?? {}),
        completedBy: ctx.actor.kind,
      });
    });
    return this.view(ctx, id);
  }

  // ---- the watch -------------------------------------------------------------------------------

  /**
   * Flags open requests with no progress for longer than the configured time, and tells staff; a
   * request still waiting for its codes that long is rejected as unverified. Returns how many were flagged.
   */
  async flagStalled(ctx: Context): Promise<number> {
    const d = this.#deps;
    const before = new Date(ctx.clock.now().getTime() - d.stallAfterMs);
    const idle = await d.requests.idleSince(ctx, before, 500);
    let flagged = 0;
    for (const r of idle) {
      const stalled = await d.db.transaction(ctx, async (tctx) => {
        const now = tctx.clock.now();
        if (r.status === 'verifying') {
          await d.requests.update(tctx, r.id, { status: 'rejected', reason: 'unverified', finishedAt: now });
          await d.requests.addEvent(tctx, r.id, 'unverified', { expired: true });
          await this.#log(tctx, r, 'requests.reject', { reason: 'unverified' });
          return false;
        }
        await d.requests.update(tctx, r.id, { stalled: true });
        await d.requests.addEvent(tctx, r.id, 'stalled', { since: r.progressedAt.toISOString() });
        await this.#log(tctx, r, 'requests.stalled', {
          since: r.progressedAt.toISOString(),
          status: r.status,
        });
        // In the flag's transaction: staff are told (the webhook outbox) exactly when it is flagged.
        await d.onStalled?.(tctx, { ...r, stalled: true });
        return true;
      });
      if (stalled) flagged += 1;
    }
    return flagged;
  }

  /**
   * Records, once per request, deadline and state, that an open request became due soon (within
   * `dueSoonMs`) or overdue, and tells staff (`onDue`, the `request.due` webhook) in the same
   * transaction. Returns how many notices were recorded.
   */
  async flagDue(ctx: Context): Promise<number> {
    const d = this.#deps;
    const now = ctx.clock.now();
    const near = await d.requests.list(ctx, {
      open: true,
      dueBefore: new Date(now.getTime() + d.dueSoonMs),
      limit: 500,
    });
    let noticed = 0;
    for (const candidate of near) {
      // Most of these were noticed on an earlier run: only a new notice takes the row's lock.
      const seen = dueStatusOf(candidate, now, d.dueSoonMs);
      if (seen === undefined || seen.status === 'on_time') continue;
      if (candidate.dueNotices.includes(`${seen.deadline}:${seen.status}`)) continue;
      const sent = await d.db.transaction(ctx, async (tctx) => {
        const r = await this.#lockedOrThrow(tctx, candidate.id);
        const due = dueStatusOf(r, tctx.clock.now(), d.dueSoonMs);
        if (due === undefined || due.status === 'on_time') return false;
        const key = `${due.deadline}:${due.status}`;
        if (r.dueNotices.includes(key)) return false;
        await d.requests.update(tctx, r.id, { dueNotices: [...r.dueNotices, key] });
        await d.requests.addEvent(tctx, r.id, 'due', {
          status: due.status,
          deadline: due.deadline,
          due: due.due.toISOString(),
        });
        await this.#log(tctx, r, 'requests.due', {
          status: due.status,
          deadline: due.deadline,
          due: due.due.toISOString(),
        });
        await d.onDue?.(tctx, r, { status: due.status, deadline: due.deadline, due: due.due });
        return true;
      });
      if (sent) noticed += 1;
    }
    return noticed;
  }

  // ---- helpers ---------------------------------------------------------------------------------

  async #lockedOrThrow(ctx: Context, id: string): Promise<RequestRecord> {
    if (!UUID_PATTERN.test(id)) throw notFound(id);
    const r = await this.#deps.requests.get(ctx, id.toLowerCase(), { lock: true });
    if (r === undefined) throw notFound(id);
    return r;
  }

  async #openOrThrow(ctx: Context, id: string): Promise<RequestRecord> {
    const r = await this.#lockedOrThrow(ctx, id);
    if (FINAL_STATUSES.includes(r.status) && r.status !== 'failed') {
      throw new ConflictError(
        'requests.request_closed',
        `request ${r.id} is ${r.status}; nothing more happens on it`,
        { id: r.id },
      );
    }
    return r;
  }

  #log(ctx: Context, r: RequestRecord, action: string, details: Record<string, unknown>): Promise<void> {
    return this.#deps.audit.append(ctx, [
      {
        action,
        purpose: REQUESTS_PURPOSE,
        ...(r.subjectId === undefined ? {} : { subjectId: r.subjectId }),
        details: { requestId: r.id, ...details },
      },
    ]);
  }
}

function notFound(id: string): NotFoundError {
  return new NotFoundError(
    'requests.request_not_found',
    `no request has the id ${UUID_PATTERN.test(id) ? id : '(not a UUID)'}`,
    {},
  );
}
