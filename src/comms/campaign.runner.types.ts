/**
 * What the campaign runner takes and gives, and how it counts: its job type and payload, settings,
 * results, and the shapes a send takes on its way through a batch.
 */
import type { Clock } from '../platform/clock.js';
import type { AuditEntry } from '../audit/audit.service.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import type { JobHandlerResult } from '../platform/jobs/jobs.definition.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { MailTransport } from '../platform/mail/mail.transport.js';
import type { Campaign, CampaignsRepository, SendKey, SendOutcome } from './campaigns.repository.js';
import type { MessagePipeline, PreparedMessage } from './message.pipeline.js';
import type { SuppressionService } from './suppression.service.js';

/** The job type of one campaign message to one recipient. */
export const SEND_JOB = 'campaigns.send';

/** The job type that queues one page of a segment's subjects (see CampaignService). */
export const EXPAND_JOB = 'campaigns.expand';

/** Subjects queued by one expand job, each page in a transaction of its own. */
export const EXPAND_PAGE = 1000;

/** An expand job's payload: the campaign, the last subject id queued, the segment's time bound. */
export interface ExpandJobPayload {
  campaignId: string;
  /** The page starts after this subject id; null for the first page. */
  after: string | null;
  /** Only subjects created before this moment (ISO-8601): the audience as it was at the start. */
  createdBefore: string;
}

/** A send job's payload: which campaign, to whom (by id). */
export interface SendJobPayload {
  campaignId: string;
  subjectId: string;
}

/** The idempotency key of a send's job: one job per campaign and recipient. */
export function sendJobKey(key: SendKey): string {
  return `${key.campaignId}:${key.subjectId}`;
}

/** Where the runner reports; Fastify's (pino) logger fits. Never given an address. */
export interface RunnerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** When temporary failures are retried. */
export interface RunnerRetryOptions {
  /** Delay after the first failed attempt; doubles after each further one (default 60 s). */
  baseDelayMs: number;
  /** Longest delay (default 1 hour). */
  maxDelayMs: number;
  /** Attempts before a send is recorded as failed (default 8). */
  maxAttempts: number;
  /** Up to this fraction is added to each delay at random (default 0.1), so retries spread out. */
  jitter: number;
}

/** The default retry schedule: 1, 2, 4 ... minutes, about 4 hours in all. */
export const DEFAULT_RUNNER_RETRY: Readonly<RunnerRetryOptions> = Object.freeze({
  baseDelayMs: 60_000,
  maxDelayMs: 3_600_000,
  maxAttempts: 8,
  jitter: 0.1,
});

/** What the runner uses. */
export interface CampaignRunnerDeps {
  /**
   * Queues one page of a segment's subjects and the job of the next (the campaign service's); the
   * runner's queue runs these jobs beside the sends. Absent: the runner takes no expand jobs.
   */
  expand?: ((ctx: Context, payload: ExpandJobPayload) => Promise<void>) | undefined;
  /** Transactions of the main database (the sends' group commits). */
  db: Transactions;
  repo: CampaignsRepository;
  /** The job queue whose worker runs the sends (the application's, or one of a test's own). */
  queue: JobQueue;
  pipeline: MessagePipeline;
  transport: Pick<MailTransport, 'sendRaw'>;
  suppression: Pick<SuppressionService, 'suppress'>;
  log: RunnerLogger;
  /** Messages a second at most. */
  ratePerSecond: number;
  clock?: Clock;
  retry?: Partial<RunnerRetryOptions>;
  /** Sends taken from the queue at a time (default 128). */
  batchSize?: number;
  /** Messages in flight at once, and so the size of a wave (default 8, at most the rate). */
  concurrency?: number;
  /** How long a send in flight, or a batch of jobs, is held (default 10 minutes; longer than any SMTP attempt). */
  leaseMs?: number;
  /**
   * Appends the messages' disclosure records (the share gate's, one per message) in the commit
   * that marks them sending (the audit log's appendEach); absent: none are made.
   */
  recordDisclosures?: (
    group: Context,
    items: ReadonlyArray<{ ctx: Context; entries: readonly AuditEntry[] }>,
  ) => Promise<void>;
}

/** What one {@link CampaignRunner.runOnce} did. */
export interface RunnerBatchResult {
  claimed: number;
  sent: number;
  skipped: number;
  failed: number;
  /** Temporary failures, to be retried. */
  retried: number;
  uncertain: number;
  /** Sends found in `sending` past their lease and made `uncertain` (a runner died). */
  expired: number;
  /** Jobs given back unstarted (the runner was stopped). */
  released: number;
}

/** A send this runner holds through its job. */
export interface HeldSend extends SendKey {
  /** This attempt's number, from 1 (the job's). */
  attempt: number;
  /** Where the send's job result goes in the batch's answer. */
  index: number;
}

/** The state the runner holds a send in: not yet marked (pending), or marked until `lease`. */
export type SendFrom = { status: 'pending' } | { status: 'sending'; lease: Date };

/** A write of a round: an outcome to record, or a send to mark `sending`. */
export interface SendWrite {
  send: HeldSend;
  status: SendOutcome['status'] | 'mark';
  write: (ctx: Context) => Promise<boolean>;
  /** A mark's record of the hand-over to the delivery provider: appended in the same commit when the mark holds. */
  disclosure?: { ctx: Context; entry: AuditEntry } | undefined;
}

/** What a batch carries: its context, its counts, the writes waiting for the next commit, the jobs' answers. */
export interface Round {
  ctx: Context;
  result: RunnerBatchResult;
  writes: SendWrite[];
  answers: JobHandlerResult[];
}

/** A send and what the pipeline made of it. */
export interface PreparedSend {
  send: HeldSend;
  campaign: Campaign | undefined;
  message: PreparedMessage;
}

/** A send with a message ready. */
export interface ReadySend {
  send: HeldSend;
  campaign: Campaign;
  message: Extract<PreparedMessage, { kind: 'ready' }>;
}

/** A result with nothing counted. */
export function emptyResult(): RunnerBatchResult {
  return { claimed: 0, sent: 0, skipped: 0, failed: 0, retried: 0, uncertain: 0, expired: 0, released: 0 };
}

/** Adds the counts of one batch to a round's. */
export function addTo(total: RunnerBatchResult, r: RunnerBatchResult): void {
  total.sent += r.sent;
  total.skipped += r.skipped;
  total.failed += r.failed;
  total.retried += r.retried;
  total.uncertain += r.uncertain;
  total.expired += r.expired;
}

/** Counts one recorded outcome. */
export function count(result: RunnerBatchResult, status: SendOutcome['status']): void {
  switch (status) {
    case 'sent':
      result.sent++;
      break;
    case 'skipped':
      result.skipped++;
      break;
    case 'failed':
      result.failed++;
      break;
    case 'pending':
      result.retried++;
      break;
    case 'uncertain':
      result.uncertain++;
      break;
  }
}
