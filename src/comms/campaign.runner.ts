/**
 * The campaign runner: the durable job inside `serve` that sends what campaigns queued.
 *
 * - Claims pending sends in batches (PostgreSQL: FOR UPDATE SKIP LOCKED and a lease), so runners on
 *   several instances share the work and never hold the same send.
 * - Per send, just before sending, runs the mail pipeline (message.pipeline.ts): a person who opts
 *   out mid-campaign gets nothing more.
 * - Throttled by a token bucket to PLEDGE_MAIL_RATE messages a second.
 * - At most once: a send is marked `sending` (committed) before the SMTP transaction and `sent`
 *   after. A runner that dies in between leaves it `sending`; once its lease has run out it becomes
 *   `uncertain` and is never sent again. Claims not yet started are only leased, so they are sent
 *   by another runner after the lease (or at once, after a graceful stop).
 * - A temporary failure (an SMTP 4xx, a connection that failed before the message was handed over)
 *   is retried with exponential backoff; a permanent one (5xx) is recorded as failed, and a 5xx on
 *   the recipient suppresses the address as a hard bounce. A connection lost while the message was
 *   being handed over is `uncertain`: it may have been delivered, so it is not sent again.
 */
import type { Kysely } from 'kysely';
import { systemClock, type Clock } from '../platform/clock.js';
import { createContext, type Context } from '../platform/context.js';
import type { Tables } from '../platform/db/tables.js';
import {
  CampaignsRepository,
  type Campaign,
  type ClaimedSend,
  type SendOutcome,
} from './campaigns.repository.js';
import type { MailTransport } from './mail.transport.js';
import type { MessagePipeline } from './message.pipeline.js';
import type { SuppressionService } from './suppression.service.js';

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
}

/** The default retry schedule: 1, 2, 4 ... minutes, about 4 hours in all. */
export const DEFAULT_RUNNER_RETRY: Readonly<RunnerRetryOptions> = Object.freeze({
  baseDelayMs: 60_000,
  maxDelayMs: 3_600_000,
  maxAttempts: 8,
});

/** What the runner uses. */
export interface CampaignRunnerDeps {
  db: Kysely<Tables>;
  pipeline: MessagePipeline;
  transport: Pick<MailTransport, 'sendRaw'>;
  suppression: Pick<SuppressionService, 'suppress'>;
  /** MAIL FROM of every message. */
  bounceAddress: string;
  log: RunnerLogger;
  /** Messages a second at most. */
  ratePerSecond: number;
  clock?: Clock;
  retry?: Partial<RunnerRetryOptions>;
  /** Sends claimed at a time (default 100). */
  batchSize?: number;
  /** Messages in flight at once (default 8, at most the rate). */
  concurrency?: number;
  /** How long a claim or a send in flight is held (default 10 minutes; longer than any SMTP attempt). */
  leaseMs?: number;
  /** How often to look for work when idle (default 1 s). */
  pollIntervalMs?: number;
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
  /** Claims given back unstarted (the runner was stopped). */
  released: number;
}

/** A token bucket: `rate` tokens a second, bursts of at most `rate` (one second's worth). */
export class TokenBucket {
  readonly #rate: number;
  readonly #capacity: number;
  #tokens: number;
  #last: number;

  constructor(ratePerSecond: number, now: () => number = () => performance.now()) {
    this.#rate = ratePerSecond;
    this.#capacity = Math.max(1, ratePerSecond);
    this.#tokens = 1;
    this.#now = now;
    this.#last = now();
  }

  readonly #now: () => number;

  /** Takes a token; resolves at once when one is there, else when the next one comes. */
  async take(signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal?.aborted === true) return false;
      const now = this.#now();
      this.#tokens = Math.min(this.#capacity, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
      this.#last = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return true;
      }
      const waitMs = Math.ceil(((1 - this.#tokens) / this.#rate) * 1000);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/**
 * Group commit for the runner's writes: writes asked for while a transaction commits share the next
 * one, and each caller is answered after the commit that holds its write. With several messages in
 * flight, marking them `sending` and recording their outcomes costs one commit (one fsync on SQLite)
 * per group instead of one per message. A group whose transaction fails is retried one write per
 * transaction, so one bad write fails alone.
 */
export class WriteBatcher {
  readonly #db: Kysely<Tables>;
  #queue: Array<{
    run: (db: Kysely<Tables>) => Promise<unknown>;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
  }> = [];
  #flushing: Promise<void> | undefined;

  constructor(db: Kysely<Tables>) {
    this.#db = db;
  }

  /** Runs `write` in the next group's transaction; resolves with its result after the commit. */
  submit<T>(write: (db: Kysely<Tables>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: write, resolve: resolve as (v: unknown) => void, reject });
      if (this.#flushing === undefined) this.#flushing = this.#flush();
    });
  }

  async #flush(): Promise<void> {
    // Let the writes of this turn of the event loop join the group.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#queue.length > 0) {
      const group = this.#queue;
      this.#queue = [];
      try {
        const results = await this.#db.transaction().execute(async (trx) => {
          const out: unknown[] = [];
          for (const w of group) out.push(await w.run(trx));
          return out;
        });
        group.forEach((w, i) => w.resolve(results[i]));
      } catch {
        for (const w of group) {
          try {
            w.resolve(await this.#db.transaction().execute((trx) => w.run(trx)));
          } catch (err) {
            w.reject(err);
          }
        }
      }
    }
    this.#flushing = undefined;
  }
}

/** Sends queued campaign messages. */
export class CampaignRunner {
  readonly #db: Kysely<Tables>;
  readonly #deps: CampaignRunnerDeps;
  readonly #clock: Clock;
  readonly #retry: RunnerRetryOptions;
  readonly #batchSize: number;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #pollIntervalMs: number;
  readonly #bucket: TokenBucket;
  readonly #campaigns = new Map<string, Campaign>();
  readonly #writes: WriteBatcher;
  #abort: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<unknown> | undefined;
  #again = false;

  constructor(deps: CampaignRunnerDeps) {
    this.#db = deps.db;
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#retry = { ...DEFAULT_RUNNER_RETRY, ...deps.retry };
    this.#batchSize = deps.batchSize ?? 100;
    this.#concurrency = Math.max(1, Math.min(deps.concurrency ?? 8, deps.ratePerSecond));
    this.#leaseMs = deps.leaseMs ?? 600_000;
    this.#pollIntervalMs = deps.pollIntervalMs ?? 1000;
    this.#bucket = new TokenBucket(deps.ratePerSecond);
    this.#writes = new WriteBatcher(deps.db);
  }

  /** True between {@link start} and {@link stop}. */
  get started(): boolean {
    return this.#abort !== undefined;
  }

  /** Starts sending: at once, then whenever woken or every poll interval. */
  start(): void {
    if (this.#abort) return;
    this.#abort = new AbortController();
    this.#arm(0);
  }

  /** Looks for work now (a campaign was started on this instance). */
  wake(): void {
    if (!this.#abort) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#arm(0);
  }

  /**
   * Stops: no new message is started, messages in flight finish and are recorded, and claims not
   * started are given back for any runner to take at once. Resolves when all that is done.
   */
  async stop(): Promise<void> {
    this.#abort?.abort();
    this.#abort = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#inFlight) await this.#inFlight;
  }

  /** Resolves when no round is in flight (after a wake, once the work found then is done). */
  async idle(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
  }

  /**
   * One round: expires dead runners' sends, claims a batch and sends it (the throttle applies),
   * then marks finished campaigns done. The loop calls it; tests call it directly with a clock.
   * A database error propagates; an SMTP failure is an outcome.
   */
  async runOnce(signal?: AbortSignal): Promise<RunnerBatchResult> {
    const repo = new CampaignsRepository(this.#db);
    const result: RunnerBatchResult = {
      claimed: 0,
      sent: 0,
      skipped: 0,
      failed: 0,
      retried: 0,
      uncertain: 0,
      expired: 0,
      released: 0,
    };
    const now = this.#clock.now();
    result.expired = await repo.expireSending(now);
    if (result.expired > 0) {
      this.#deps.log.warn(
        { sends: result.expired },
        'campaign sends interrupted mid-send (their runner stopped) are marked uncertain and will not be sent again',
      );
    }
    const claims = await this.#db
      .transaction()
      .execute((trx) =>
        new CampaignsRepository(trx).claimDue(now, new Date(now.getTime() + this.#leaseMs), this.#batchSize),
      );
    result.claimed = claims.length;
    const ctx = createContext({ kind: 'system', job: 'campaigns' }, { clock: this.#clock });
    let next = 0;
    const unstarted: ClaimedSend[] = [];
    const worker = async () => {
      for (;;) {
        const claim = claims[next++];
        if (claim === undefined) return;
        if (signal?.aborted === true || !(await this.#bucket.take(signal))) {
          unstarted.push(claim);
          continue;
        }
        const outcome = await this.#send(ctx, repo, claim);
        switch (outcome) {
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
          case 'lost':
            break;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, claims.length) }, worker));
    if (unstarted.length > 0) {
      await repo.releaseClaims(unstarted, this.#clock.now());
      result.released = unstarted.length;
    }
    const done = await repo.finishCampaigns(this.#clock.now());
    for (const id of done) {
      this.#campaigns.delete(id);
      this.#deps.log.info({ campaign: id }, 'campaign done');
    }
    return result;
  }

  /** The delay before the attempt after `attempts` failed ones. */
  retryDelayMs(attempts: number): number {
    const { baseDelayMs, maxDelayMs } = this.#retry;
    return Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempts - 1, 30));
  }

  async #send(
    ctx: Context,
    repo: CampaignsRepository,
    claim: ClaimedSend,
  ): Promise<SendOutcome['status'] | 'lost'> {
    const key = { campaignId: claim.campaignId, subjectId: claim.subjectId };
    const claimed = { status: 'pending' as const, lease: claim.leaseUntil };
    const record = async (
      from: typeof claimed | { status: 'sending'; lease: Date },
      outcome: SendOutcome,
    ) => {
      const at = this.#clock.now();
      const ok = await this.#writes.submit((db) =>
        new CampaignsRepository(db).recordOutcome(key, from, outcome, at),
      );
      if (!ok) {
        this.#deps.log.warn(
          { campaign: claim.campaignId, subject: claim.subjectId },
          'campaign send was taken over by another runner (its lease ran out)',
        );
      }
      return ok ? outcome.status : ('lost' as const);
    };

    let prepared;
    try {
      const campaign = await this.#campaign(repo, claim.campaignId);
      prepared = await this.#deps.pipeline.prepare(ctx, campaign, claim.subjectId);
    } catch (err) {
      // The pipeline failed (the database, a template): nothing was sent; try again later.
      this.#deps.log.error(
        { err, campaign: claim.campaignId, subject: claim.subjectId },
        'campaign message could not be prepared',
      );
      return this.#retryOrFail(record, claimed, claim.attempts, 'prepare_failed', false);
    }
    if (prepared.kind === 'skip') return record(claimed, { status: 'skipped', reason: prepared.reason });

    // Committed before the SMTP transaction starts: from here the send is never made twice.
    const sendLease = new Date(this.#clock.now().getTime() + this.#leaseMs);
    const markedAt = this.#clock.now();
    const marked = await this.#writes.submit((db) =>
      new CampaignsRepository(db).markSending(claim, sendLease, prepared.messageId, markedAt),
    );
    if (!marked) {
      this.#deps.log.warn(
        { campaign: claim.campaignId, subject: claim.subjectId },
        'campaign send was taken over by another runner before it was sent',
      );
      return 'lost';
    }
    const sending = { status: 'sending' as const, lease: sendLease };
    try {
      const result = await this.#deps.transport.sendRaw(ctx, {
        envelopeFrom: this.#deps.bounceAddress,
        to: prepared.to,
        raw: prepared.raw,
      });
      if (!result.sent)
        return record(sending, {
          status: 'pending',
          reason: 'mail_disabled',
          nextAttemptAt: this.#later(claim.attempts + 1),
        });
      return record(sending, { status: 'sent', messageId: prepared.messageId });
    } catch (err) {
      const failure = classifySmtpError(err);
      const fields = { campaign: claim.campaignId, subject: claim.subjectId, reason: failure.reason };
      switch (failure.kind) {
        case 'temporary':
          this.#deps.log.warn(fields, 'campaign message deferred; it will be retried');
          return this.#retryOrFail(record, sending, claim.attempts + 1, failure.reason, true);
        case 'permanent':
          this.#deps.log.warn(fields, 'campaign message refused');
          if (failure.recipient) {
            await this.#deps.suppression.suppress(ctx, {
              address: prepared.to,
              reason: 'hard_bounce',
              subjectId: claim.subjectId,
            });
          }
          return record(sending, {
            status: 'failed',
            reason: failure.recipient ? 'hard_bounce' : failure.reason,
            attempted: true,
          });
        case 'uncertain':
          this.#deps.log.error(
            fields,
            'campaign message may or may not have been delivered; it will not be sent again',
          );
          return record(sending, { status: 'uncertain', reason: failure.reason });
      }
    }
  }

  async #retryOrFail(
    record: (
      from: { status: 'pending' | 'sending'; lease: Date },
      outcome: SendOutcome,
    ) => Promise<SendOutcome['status'] | 'lost'>,
    from: { status: 'pending' | 'sending'; lease: Date },
    attempts: number,
    reason: string,
    attempted: boolean,
  ): Promise<SendOutcome['status'] | 'lost'> {
    if (attempts >= this.#retry.maxAttempts) return record(from, { status: 'failed', reason, attempted });
    return record(from, { status: 'pending', reason, nextAttemptAt: this.#later(Math.max(1, attempts)) });
  }

  #later(attempts: number): Date {
    return new Date(this.#clock.now().getTime() + this.retryDelayMs(attempts));
  }

  async #campaign(repo: CampaignsRepository, id: string): Promise<Campaign> {
    let campaign = this.#campaigns.get(id);
    if (campaign === undefined) {
      campaign = await repo.get(id);
      if (campaign === undefined) throw new Error(`campaign ${id} vanished`);
      if (this.#campaigns.size >= 100) this.#campaigns.clear();
      this.#campaigns.set(id, campaign);
    }
    return campaign;
  }

  #arm(delayMs: number): void {
    const signal = this.#abort?.signal;
    if (!signal) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#inFlight = this.#loop(signal).finally(() => {
        this.#inFlight = undefined;
        if (signal.aborted) return;
        const again = this.#again;
        this.#again = false;
        this.#arm(again ? 0 : this.#pollIntervalMs);
      });
    }, delayMs);
    this.#timer.unref();
  }

  /** Runs rounds while they find work. */
  async #loop(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        const r = await this.runOnce(signal);
        if (r.claimed === 0) return;
      }
    } catch (err) {
      this.#deps.log.error({ err }, 'campaign runner round failed; it will try again');
    }
  }
}

/** What an SMTP error means for a send. */
export type SmtpFailure =
  | { kind: 'temporary'; reason: string }
  | { kind: 'permanent'; reason: string; recipient: boolean }
  | { kind: 'uncertain'; reason: string };

/**
 * Classifies a nodemailer error. A reply code decides when there is one (4xx temporary, 5xx
 * permanent; on RCPT TO a 5xx is a hard bounce). Without one, the connection failed: before the
 * message was handed over (connect, greeting, MAIL, RCPT) it is temporary; during or after DATA it
 * may have been delivered, so it is uncertain.
 */
export function classifySmtpError(err: unknown): SmtpFailure {
  const e = (err ?? {}) as { responseCode?: unknown; command?: unknown; code?: unknown; syscall?: unknown };
  const code = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const command = typeof e.command === 'string' ? e.command.toUpperCase() : '';
  if (code !== undefined && code >= 400 && code < 500) return { kind: 'temporary', reason: `smtp_${code}` };
  if (code !== undefined && code >= 500) {
    return { kind: 'permanent', reason: `smtp_${code}`, recipient: command.startsWith('RCPT') };
  }
  const errno = typeof e.code === 'string' ? e.code.toLowerCase() : 'error';
  // No connection at all, or a failure at a step before DATA: nothing was handed over.
  if (e.syscall === 'connect' || e.syscall === 'getaddrinfo' || e.code === 'EDNS') {
    return { kind: 'temporary', reason: `connection_${errno}` };
  }
  if (/^(EHLO|HELO|LHLO|STARTTLS|AUTH|MAIL|RCPT)/.test(command)) {
    return { kind: 'temporary', reason: `connection_${errno}` };
  }
  // Lost while the message was being handed over, or while waiting for the final reply: it may
  // have been delivered.
  return { kind: 'uncertain', reason: `connection_${errno}` };
}
