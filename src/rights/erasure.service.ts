/**
 * Erasure on Pledge's side (docs/requests.md, "What erasure does"): for one person, in order,
 * (1) find who received their data (the share gate's disclosures in the log), (2) keep a tombstone
 * of their identifiers, (3) erase the vault — crypto-shredding: the data key is destroyed, then the
 * records and blind-index entries go — or, under a legal hold, delete every record the hold does not
 * cover and keep the key until the hold ends (a job re-checks), (4) queue a `subject.erased` webhook
 * to every recipient that received the data. Each step appends its own entry to the transparency
 * log and gives its own result: a failure is reported, never thrown, and later steps still run.
 *
 * The request workflow (src/rights/requests.*) calls {@link ErasureService.erasePledgeData} as one
 * of its steps; nothing here knows about request rows.
 */
import type { AuditAppender, AuditEvent } from '../audit/audit.service.js';
import { signWebhookPayload } from '../consent/webhooks.signature.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { uuidv7 } from '../platform/ids.js';
import { jobDead, jobDone, jobRetry, type JobHandlerResult } from '../platform/jobs/jobs.definition.js';
import type { JobQueue, JobType } from '../platform/jobs/jobs.service.js';
import { deriveRecipientNoticeSecret } from '../share/acknowledgements.notices.js';
import type { UseKeys } from '../vault/use-keys.js';
import { isHeld, type Hold } from './holds.js';
import type { IdentifierHash, Tombstones } from './tombstones.js';

/** The job that POSTs `subject.erased` to one recipient's webhook. */
export const RECIPIENT_ERASED_JOB = 'rights.recipient_erased';
/** The job that waits for a legal hold to end, then finishes an erasure. */
export const HOLD_WAIT_JOB = 'rights.erasure_hold_wait';
/** The event type a recipient receives. */
export const SUBJECT_ERASED_EVENT = 'subject.erased';
/** Recipients the person's erasure is not sent to: an authority's copy is the law's, not ours. */
const NOT_NOTIFIED: ReadonlySet<string> = new Set(['authorities']);
/** The log entry actions that are a disclosure of a person's data. */
const DISCLOSURE_ACTIONS: ReadonlySet<string> = new Set(['share.disclose', 'share.pass_through']);

/** The steps of a Pledge-side erasure, in the order they run. */
export type ErasureStepName = 'recipients' | 'tombstone' | 'vault' | 'notify';

/** One step's result. */
export interface ErasureStepResult {
  step: ErasureStepName;
  ok: boolean;
  /** Counts and ids only, never personal data. */
  details: Record<string, unknown>;
  /** Set when `ok` is false: what went wrong (the error's code and message). */
  error?: { code: string; message: string } | undefined;
}

/** What was kept under a legal hold, and why (for the answer to the requester). */
export interface HeldResult {
  requestId: string;
  reference: string;
  authority: string;
  categories: readonly string[];
  recordsKept: number;
  why: string;
}

/** The result of {@link ErasureService.erasePledgeData}. */
export interface ErasureResult {
  subjectId: string;
  /** True when every step succeeded. */
  ok: boolean;
  /** True when the data key was destroyed (false while a hold keeps part of the data). */
  keyDestroyed: boolean;
  steps: ErasureStepResult[];
  held: HeldResult[];
}

/** A recipient that received the person's data, from the log. */
export interface RecipientOfSubject {
  recipient: string;
  categories: string[];
  firstAt: Date;
  lastAt: Date;
}

/** The payload of the recipient job: ids, categories and dates the recipient already had. */
interface RecipientErasedPayload {
  eventId: string;
  subjectId: string;
  recipient: string;
  categories: string[];
  lastDisclosedAt: string;
  /** When the erasure was made (the event's `at`). */
  at: string;
  [key: string]: string | string[];
}

/** The body POSTed to a recipient's webhook (docs/requests.md, "What erasure does"). */
export interface SubjectErasedNotice {
  id: string;
  type: typeof SUBJECT_ERASED_EVENT;
  at: string;
  data: {
    recipient: string;
    /** The subject's id, as the share gate's answer named the person to the recipient's sender. */
    subject: string;
    /** The categories the recipient received (taxonomy keys). */
    categories: string[];
    /** The last time the recipient received any of the person's data. */
    lastDisclosedAt: string;
  };
}

/** What {@link ErasureService} uses: narrow interfaces of other capabilities. */
export interface ErasureServiceDeps {
  db: Transactions;
  vault: {
    identifierHashesOf(ctx: Context, subjectId: string): Promise<IdentifierHash[]>;
    erase(ctx: Context, subjectId: string): Promise<{ keysDestroyed: number; recordsDeleted: number }>;
    eraseExcept(
      ctx: Context,
      subjectId: string,
      keep: (categories: readonly string[]) => boolean,
    ): Promise<{ recordsDeleted: number; recordsKept: number; identifiersRemoved: number }>;
  };
  /** The log's entries about a person (AuditLog.listBySubject): the disclosures are found there. */
  log: { listBySubject(ctx: Context, subjectId: string): Promise<AuditEvent[]> };
  audit: AuditAppender;
  tombstones: Pick<Tombstones, 'keep'>;
  /** The holds in force on a person now (LegalHolds.holdsOn), for the job that waits for them. */
  holds: { holdsOn(ctx: Context, subjectId: string): Promise<Hold[]> };
  manifest: { readonly manifest: Manifest };
  jobs: Pick<JobQueue, 'define'>;
  /** The keyring's `recipient_notices` use: recipients verify these events like their policy notices. */
  signingKeys: UseKeys;
  /** How often a held erasure re-checks its holds (default one day). */
  holdRecheckMs?: number | undefined;
  /** How long a webhook has to answer (default 10 s). */
  timeoutMs?: number | undefined;
}

function errorOf(err: unknown): { code: string; message: string } {
  const code =
    typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
      ? err.code
      : 'rights.step_failed';
  return { code, message: (err instanceof Error ? err.message : String(err)).slice(0, 500) };
}

/** Erases a person's data held by Pledge. */
export class ErasureService {
  readonly #deps: ErasureServiceDeps;
  readonly #recipientJob: JobType<RecipientErasedPayload>;
  readonly #holdJob: JobType<{ subjectId: string; check: number }>;
  readonly #recheckMs: number;
  readonly #timeoutMs: number;

  constructor(deps: ErasureServiceDeps) {
    this.#deps = deps;
    this.#recheckMs = deps.holdRecheckMs ?? 86_400_000;
    this.#timeoutMs = deps.timeoutMs ?? 10_000;
    this.#recipientJob = deps.jobs.define<RecipientErasedPayload>({
      type: RECIPIENT_ERASED_JOB,
      retry: { baseDelayMs: 30_000, maxDelayMs: 3_600_000, maxAttempts: 12, jitter: 0.2 },
      leaseMs: Math.max(60_000, this.#timeoutMs * 3),
      timeoutMs: this.#timeoutMs * 2,
      handle: (ctx, job, signal) => this.#deliver(ctx, job.payload, signal),
    });
    this.#holdJob = deps.jobs.define<{ subjectId: string; check: number }>({
      type: HOLD_WAIT_JOB,
      handle: (ctx, job) => this.#recheckHold(ctx, job.payload.subjectId, job.payload.check),
    });
  }

  /**
   * Erases what Pledge holds on `subjectId`, keeping what `holds` (the legal holds in force on the
   * person, LegalHolds.holdsOn) cover. Never throws for a failed step: each step says how it went.
   */
  async erasePledgeData(ctx: Context, subjectId: string, holds: readonly Hold[]): Promise<ErasureResult> {
    const steps: ErasureStepResult[] = [];
    const held: HeldResult[] = [];
    let keyDestroyed = false;
    const run = async (
      step: ErasureStepName,
      work: () => Promise<Record<string, unknown>>,
    ): Promise<boolean> => {
      let result: ErasureStepResult;
      try {
        result = { step, ok: true, details: await work() };
      } catch (err) {
        result = { step, ok: false, details: {}, error: errorOf(err) };
      }
      // The step's own entry; a log that cannot be written fails the step it records.
      try {
        await this.#deps.audit.append(ctx, [
          {
            action: 'rights.erasure_step',
            subjectId,
            details: {
              step,
              ok: result.ok,
              ...result.details,
              ...(result.error ? { error: result.error.code } : {}),
            },
          },
        ]);
      } catch (err) {
        result = { ...result, ok: false, error: result.error ?? errorOf(err) };
      }
      steps.push(result);
      return result.ok;
    };

    // Who received the data: read before the erasure, while the log still finds the person.
    let recipients: RecipientOfSubject[] = [];
    await run('recipients', async () => {
      recipients = await this.recipientsOf(ctx, subjectId);
      return { recipients: recipients.map((r) => r.recipient) };
    });

    // The tombstone, before the blind-index entries it is made from are removed.
    await run('tombstone', async () => {
      const hashes = await this.#deps.vault.identifierHashesOf(ctx, subjectId);
      const kept = await this.#deps.tombstones.keep(ctx, hashes);
      return { identifiers: hashes.length, kept };
    });

    await run('vault', async () => {
      if (holds.length > 0) {
        const partial = await this.#deps.vault.eraseExcept(ctx, subjectId, (c) => isHeld(holds, c));
        if (partial.recordsKept > 0) {
          for (const h of holds)
            held.push({
              requestId: h.requestId,
              reference: h.reference,
              authority: h.authority,
              categories: h.categories,
              recordsKept: partial.recordsKept,
              why: `a legal request in force (${h.authority}, reference ${h.reference}) requires the data of these categories to be kept; it is erased when the request is closed`,
            });
          await this.#holdJob.enqueue(
            ctx,
            { subjectId, check: 1 },
            { key: `hold-wait:${subjectId}:1`, runAt: new Date(ctx.clock.now().getTime() + this.#recheckMs) },
          );
          return {
            keyDestroyed: false,
            recordsDeleted: partial.recordsDeleted,
            recordsKept: partial.recordsKept,
            identifiersRemoved: partial.identifiersRemoved,
            holds: holds.map((h) => h.requestId),
          };
        }
        // A hold that covers none of the records held keeps nothing: erase as if there were none.
        const erased = await this.#deps.vault.erase(ctx, subjectId);
        keyDestroyed = true;
        return {
          keyDestroyed: true,
          keysDestroyed: erased.keysDestroyed,
          recordsDeleted: partial.recordsDeleted,
        };
      }
      const erased = await this.#deps.vault.erase(ctx, subjectId);
      keyDestroyed = true;
      return {
        keyDestroyed: true,
        keysDestroyed: erased.keysDestroyed,
        recordsDeleted: erased.recordsDeleted,
      };
    });

    await run('notify', async () => {
      const queued: string[] = [];
      const noWebhook: string[] = [];
      const at = ctx.clock.now().toISOString();
      await this.#deps.db.transaction(ctx, async (trx) => {
        for (const r of recipients) {
          if (NOT_NOTIFIED.has(r.recipient)) continue;
          const declared = this.#deps.manifest.manifest.recipients.find((d) => d.key === r.recipient);
          if (declared?.webhook === undefined) {
            noWebhook.push(r.recipient);
            continue;
          }
          await this.#recipientJob.enqueue(
            trx,
            {
              eventId: uuidv7(),
              subjectId,
              recipient: r.recipient,
              categories: r.categories,
              lastDisclosedAt: r.lastAt.toISOString(),
              at,
            },
            { key: `subject-erased:${subjectId}:${r.recipient}` },
          );
          queued.push(r.recipient);
        }
      });
      return { queued, noWebhook };
    });

    return { subjectId, ok: steps.every((s) => s.ok), keyDestroyed, steps, held };
  }

  /** The recipients that received `subjectId`'s data, from the share gate's entries in the log. */
  async recipientsOf(ctx: Context, subjectId: string): Promise<RecipientOfSubject[]> {
    const events = await this.#deps.log.listBySubject(ctx, subjectId);
    const byRecipient = new Map<string, RecipientOfSubject>();
    for (const e of events) {
      if (!DISCLOSURE_ACTIONS.has(e.action)) continue;
      const recipient = e.details?.recipient;
      if (typeof recipient !== 'string') continue;
      const categories = Array.isArray(e.details?.categories)
        ? e.details.categories.filter((c): c is string => typeof c === 'string')
        : [];
      const seen = byRecipient.get(recipient);
      if (seen === undefined) {
        byRecipient.set(recipient, {
          recipient,
          categories: [...new Set(categories)],
          firstAt: e.at,
          lastAt: e.at,
        });
        continue;
      }
      seen.categories = [...new Set([...seen.categories, ...categories])];
      if (e.at < seen.firstAt) seen.firstAt = e.at;
      if (e.at > seen.lastAt) seen.lastAt = e.at;
    }
    return [...byRecipient.values()];
  }

  /**
   * The job waiting for a hold: while one is in force it checks again after the interval (a new job,
   * so a hold of years spends no retry attempts); once none is, it finishes the erasure.
   */
  async #recheckHold(ctx: Context, subjectId: string, check: number): Promise<JobHandlerResult> {
    const holds = await this.#deps.holds.holdsOn(ctx, subjectId);
    if (holds.length > 0) {
      return jobDone(async (trx) => {
        await this.#holdJob.enqueue(
          trx,
          { subjectId, check: check + 1 },
          {
            key: `hold-wait:${subjectId}:${check + 1}`,
            runAt: new Date(trx.clock.now().getTime() + this.#recheckMs),
          },
        );
      });
    }
    return this.finishAfterHold(ctx, subjectId).then(() => jobDone());
  }

  /**
   * Finishes a held erasure once no hold remains: destroys the data key and deletes what was kept.
   * Also what the workflow calls when it learns a legal request closed (the job re-checks anyway).
   */
  async finishAfterHold(
    ctx: Context,
    subjectId: string,
  ): Promise<{ keysDestroyed: number; recordsDeleted: number }> {
    const erased = await this.#deps.vault.erase(ctx, subjectId);
    await this.#deps.audit.append(ctx, [
      {
        action: 'rights.erasure_step',
        subjectId,
        details: { step: 'vault', ok: true, keyDestroyed: true, afterHold: true, ...erased },
      },
    ]);
    return erased;
  }

  /** The body of a recipient's `subject.erased` event. */
  static noticeOf(p: RecipientErasedPayload): SubjectErasedNotice {
    return {
      id: p.eventId,
      type: SUBJECT_ERASED_EVENT,
      at: p.at,
      data: {
        recipient: p.recipient,
        subject: p.subjectId,
        categories: p.categories,
        lastDisclosedAt: p.lastDisclosedAt,
      },
    };
  }

  async #deliver(ctx: Context, p: RecipientErasedPayload, signal: AbortSignal): Promise<JobHandlerResult> {
    const recipient = this.#deps.manifest.manifest.recipients.find((r) => r.key === p.recipient);
    if (recipient?.webhook === undefined)
      return jobDead(`recipient "${p.recipient}" has no webhook in the manifest in force`);
    const body = JSON.stringify(ErasureService.noticeOf(p));
    const keys = this.#deps.signingKeys;
    const version = keys.current().version;
    const material = keys.secret(version);
    if (material === undefined) return jobDead('no recipient_notices key');
    const signature = signWebhookPayload({
      secret: deriveRecipientNoticeSecret(material, p.recipient),
      keyVersion: version,
      body,
      at: ctx.clock.now(),
    });
    try {
      const response = await fetch(recipient.webhook, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Pledge-Webhooks/1',
          'pledge-signature': signature,
          'pledge-event-id': p.eventId,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return jobDone();
      return jobRetry(`HTTP ${response.status}`);
    } catch (err) {
      return jobRetry(errorOf(err).message);
    }
  }
}
