/**
 * The notices of a pause (docs/sharing.md, "Notices"): an e-mail to the recipient's contact and,
 * when it has a webhook, a signed POST to it, each a job queued in the pause's transaction and
 * recorded in share_notices as it is attempted. The POST is signed like the consent webhooks
 * (`Pledge-Signature`, webhooks.signature.ts), with a secret per recipient derived from the
 * keyring's `recipient_notices` key (`pledge recipients secret R` prints it for the receiver).
 * Nothing in a notice is personal data: the policy version, the changes as `pledge diff` words
 * them, and how to acknowledge.
 */
import { hkdfSync } from 'node:crypto';
import type { Manifest, Recipient } from '../manifest/manifest.schema.js';
import { signWebhookPayload } from '../consent/webhooks.signature.js';
import type { Context } from '../platform/context.js';
import { uuidv7 } from '../platform/ids.js';
import { jobDead, jobDone, jobRetry, type JobHandlerResult } from '../platform/jobs/jobs.definition.js';
import type { JobQueue, JobType } from '../platform/jobs/jobs.service.js';
import type { MailMessage, SendMailResult } from '../platform/mail/mail.transport.js';
import type { UseKeys } from '../vault/use-keys.js';
import type {
  AcknowledgementsRepository,
  Notice,
  NoticeChannel,
  Pause,
} from './acknowledgements.repository.js';

/** The job that e-mails a notice to a recipient's contact. */
export const NOTICE_EMAIL_JOB = 'share.notice_email';
/** The job that POSTs a notice to a recipient's webhook. */
export const NOTICE_WEBHOOK_JOB = 'share.notice_webhook';

/** The event type of a notice POSTed to a webhook. */
export const NOTICE_EVENT = 'policy.acknowledgement_required';

interface NoticePayload {
  noticeId: string;
}

/** The body of a notice POSTed to a recipient's webhook. */
export interface NoticeWebhookPayload {
  id: string;
  type: typeof NOTICE_EVENT;
  at: string;
  data: {
    recipient: string;
    /** The policy version to acknowledge. */
    policyVersion: string;
    effective: string;
    changes: Array<{ kind: string; path: string; summary: string }>;
    /** Where the policy is published. */
    policyUrl: string;
  };
}

/** What {@link RecipientNotices} uses. */
export interface RecipientNoticesDeps {
  repo: AcknowledgementsRepository;
  jobs: JobQueue;
  manifest: Manifest;
  /** Sends service mail (the platform's MailTransport). */
  mail: { send(ctx: Context, message: MailMessage): Promise<SendMailResult> };
  /** The keyring's `recipient_notices` key of every version (`keyring.use('recipient_notices')`). */
  signingKeys: UseKeys;
  /** Where Pledge is reached (its /privacy page). */
  publicUrl: string;
  /** How long a webhook has to answer (default 10 s). */
  timeoutMs?: number;
}

const HKDF_INFO = 'pledge recipient notice v1 ';
const MAX_STATUS_LENGTH = 200;

/** The signing secret of recipient `key`'s notice webhook, from a `recipient_notices` key version. */
export function deriveRecipientNoticeSecret(material: Buffer, key: string): string {
  return `whsec_${Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), HKDF_INFO + key, 32)).toString('hex')}`;
}

/** Queues and sends the notices of pauses. */
export class RecipientNotices {
  readonly #repo: AcknowledgementsRepository;
  readonly #manifest: Manifest;
  readonly #mail: RecipientNoticesDeps['mail'];
  readonly #keys: UseKeys;
  readonly #publicUrl: string;
  readonly #timeoutMs: number;
  readonly #email: JobType<NoticePayload>;
  readonly #webhook: JobType<NoticePayload>;

  constructor(deps: RecipientNoticesDeps) {
    this.#repo = deps.repo;
    this.#manifest = deps.manifest;
    this.#mail = deps.mail;
    this.#keys = deps.signingKeys;
    this.#publicUrl = deps.publicUrl.replace(/\/+$/, '');
    this.#timeoutMs = deps.timeoutMs ?? 10_000;
    const retry = { baseDelayMs: 30_000, maxDelayMs: 3_600_000, maxAttempts: 12, jitter: 0.2 };
    this.#email = deps.jobs.define<NoticePayload>({
      type: NOTICE_EMAIL_JOB,
      retry,
      handle: (ctx, job) => this.#attempt(ctx, job.payload.noticeId, job.attempt, 'email'),
    });
    this.#webhook = deps.jobs.define<NoticePayload>({
      type: NOTICE_WEBHOOK_JOB,
      retry,
      leaseMs: Math.max(60_000, this.#timeoutMs * 3),
      timeoutMs: this.#timeoutMs * 2,
      handle: (ctx, job, signal) => this.#attempt(ctx, job.payload.noticeId, job.attempt, 'webhook', signal),
    });
  }

  /** The secret recipient `key`'s webhook verifies notices with (newest key version, or `version`). */
  secretOf(key: string, version = this.#keys.current().version): string | undefined {
    const material = this.#keys.secret(version);
    return material === undefined ? undefined : deriveRecipientNoticeSecret(material, key);
  }

  /** Records and queues the notices of `pause` in the transaction `ctx` is bound to. */
  async enqueue(ctx: Context, pause: Pause, recipient: Recipient): Promise<Notice[]> {
    const now = ctx.clock.now();
    const channels: NoticeChannel[] = [
      ...(recipient.contact !== undefined ? (['email'] as const) : []),
      ...(recipient.webhook !== undefined ? (['webhook'] as const) : []),
    ];
    const notices = channels.map((channel): Notice => ({
      id: uuidv7(),
      pauseId: pause.id,
      recipient: recipient.key,
      channel,
      status: 'pending',
      attempts: 0,
      lastStatus: undefined,
      createdAt: now,
      sentAt: undefined,
    }));
    await this.#repo.insertNotices(ctx, notices);
    for (const n of notices) {
      const type = n.channel === 'email' ? this.#email : this.#webhook;
      await type.enqueue(ctx, { noticeId: n.id }, { key: n.id });
    }
    return notices;
  }

  /** The e-mail of a pause's notice, as its contact receives it. */
  messageOf(pause: Pause, recipient: Recipient): MailMessage {
    const org = this.#manifest.organization.name;
    const lines = [
      `Dear ${recipient.name},`,
      '',
      `${org} has a new privacy policy, version ${pause.policyVersion} (effective ${this.#manifest.policy.effective}). It changes what you receive from us (in the words we use to tell the people concerned):`,
      '',
      ...pause.changes.map((c) => `- ${c.summary}`),
      '',
      `Until you acknowledge this version, we have paused every disclosure of personal information to you.`,
      `Please read the policy at ${this.#publicUrl}/privacy and our list of processors at ${this.#publicUrl}/privacy/processors,`,
      `then tell us (${this.#manifest.organization.privacy_contact}) the name of the person who acknowledges it for you.`,
      '',
      `Reference: recipient "${recipient.key}", policy version ${pause.policyVersion}, notice ${pause.id}.`,
      '',
      org,
    ];
    return {
      to: recipient.contact ?? '',
      subject: `${org}: please acknowledge privacy policy version ${pause.policyVersion}`,
      text: `${lines.join('\n')}\n`,
    };
  }

  /** The webhook body of a pause's notice. */
  payloadOf(notice: Notice, pause: Pause, at: Date): NoticeWebhookPayload {
    return {
      id: notice.id,
      type: NOTICE_EVENT,
      at: at.toISOString(),
      data: {
        recipient: pause.recipient,
        policyVersion: pause.policyVersion,
        effective: this.#manifest.policy.effective,
        changes: pause.changes,
        policyUrl: `${this.#publicUrl}/privacy`,
      },
    };
  }

  async #attempt(
    ctx: Context,
    noticeId: string,
    attempt: number,
    channel: NoticeChannel,
    signal?: AbortSignal,
  ): Promise<JobHandlerResult> {
    const notice = await this.#repo.getNotice(ctx, noticeId);
    if (notice === undefined || notice.status !== 'pending') return jobDone();
    const pause = await this.#repo.getPause(ctx, notice.pauseId);
    const recipient = this.#manifest.recipients.find((r) => r.key === notice.recipient);
    const target = channel === 'email' ? recipient?.contact : recipient?.webhook;
    if (pause === undefined || recipient === undefined || target === undefined) {
      const reason = `recipient "${notice.recipient}" has no ${channel === 'email' ? 'contact' : 'webhook'} in the manifest in force`;
      return jobDead(reason, (trx) =>
        this.#repo.recordNoticeAttempt(trx, notice.id, {
          status: 'failed',
          attempts: attempt,
          lastStatus: reason,
        }),
      );
    }
    let outcome: { ok: boolean; status: string };
    if (channel === 'email') {
      try {
        const sent = await this.#mail.send(ctx, this.messageOf(pause, recipient));
        outcome = sent.sent
          ? { ok: true, status: 'accepted by the mail server' }
          : { ok: false, status: 'mail is not configured (PLEDGE_SMTP_URL)' };
      } catch (err) {
        outcome = { ok: false, status: describeError(err) };
      }
    } else {
      outcome = await this.#post(target, notice, pause, ctx.clock.now(), signal);
    }
    if (outcome.ok) {
      const at = ctx.clock.now();
      return jobDone((trx) =>
        this.#repo.recordNoticeAttempt(trx, notice.id, {
          status: 'sent',
          attempts: attempt,
          lastStatus: outcome.status,
          sentAt: at,
        }),
      );
    }
    return jobRetry(outcome.status, {
      record: (trx, final) =>
        this.#repo.recordNoticeAttempt(trx, notice.id, {
          status: final.state === 'dead' ? 'failed' : 'pending',
          attempts: attempt,
          lastStatus: outcome.status,
        }),
    });
  }

  async #post(
    url: string,
    notice: Notice,
    pause: Pause,
    at: Date,
    signal: AbortSignal | undefined,
  ): Promise<{ ok: boolean; status: string }> {
    const body = JSON.stringify(this.payloadOf(notice, pause, at));
    const version = this.#keys.current().version;
    const signature = signWebhookPayload({
      secret: this.secretOf(pause.recipient, version) ?? '',
      keyVersion: version,
      body,
      at,
    });
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Pledge-Webhooks/1',
          'pledge-signature': signature,
          'pledge-event-id': notice.id,
        },
        body,
        // Only where the manifest says: a redirect is not followed.
        redirect: 'manual',
        signal: AbortSignal.any([
          ...(signal !== undefined ? [signal] : []),
          AbortSignal.timeout(this.#timeoutMs),
        ]),
      });
      await response.body?.cancel().catch(() => undefined);
      return { ok: response.status >= 200 && response.status < 300, status: `HTTP ${response.status}` };
    } catch (err) {
      return { ok: false, status: describeError(err) };
    }
  }
}

function describeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.slice(0, MAX_STATUS_LENGTH);
}
