/**
 * The campaign runner: the durable job inside `serve` that sends what campaigns queued.
 *
 * - Claims pending sends in pages (PostgreSQL: FOR UPDATE SKIP LOCKED and a lease), so runners on
 *   several instances share the work and never hold the same send.
 * - Prepares a page in batches of about one second's sending (the mail pipeline,
 *   message.pipeline.ts: one consent decision and one suppression query per batch, the use-gate
 *   reads together), one batch ahead of the messages being sent.
 * - Sends in waves of at most `concurrency` messages (the messages in flight at once). Just before a
 *   wave goes out, its recipients' decision and suppression are asked again (one batch), so a person
 *   who opts out mid-campaign gets nothing more: at most the messages already in flight when the
 *   choice is recorded still go out.
 * - Throttled by a token bucket to PLEDGE_MAIL_RATE messages a second.
 * - At most once: a wave's sends are marked `sending` (committed) before their SMTP transactions,
 *   and their outcomes recorded after, in the transaction that marks the next wave. A runner that
 *   dies in between leaves them `sending`; once their lease has run out they become `uncertain` and
 *   are never sent again. Claims not yet started are only leased, so they are sent by another
 *   runner after the lease (or at once, after a graceful stop).
 * - A temporary failure (an SMTP 4xx, a connection that failed before the message was handed over)
 *   is retried with exponential backoff; a permanent one (5xx) is recorded as failed, and a 5xx on
 *   the recipient suppresses the address as a hard bounce. A connection lost while the message was
 *   being handed over is `uncertain`: it may have been delivered, so it is not sent again.
 */
import type { Kysely } from 'kysely';
import { systemClock, type Clock } from '../platform/clock.js';
import { createContext, type Context } from '../platform/context.js';
import { GroupCommit, type WriteOutcome } from '../platform/db/group-commit.js';
import type { Tables } from '../platform/db/tables.js';
import {
  CampaignsRepository,
  type Campaign,
  type ClaimedSend,
  type SendOutcome,
} from './campaigns.repository.js';
import type { MailTransport } from './mail.transport.js';
import type { MessagePipeline, PreparedMessage } from './message.pipeline.js';
import { classifySmtpError } from './smtp-errors.js';
import type { SuppressionService } from './suppression.service.js';
import { TokenBucket } from './token-bucket.js';

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
  /** Messages in flight at once, and so the size of a wave (default 8, at most the rate). */
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

/** The state the runner holds a send in: claimed (pending) or marked (sending), until `lease`. */
type SendFrom = { status: 'pending' | 'sending'; lease: Date };

/** A write of a round: an outcome to record, or a send to mark `sending`. */
interface SendWrite {
  claim: ClaimedSend;
  status: SendOutcome['status'] | 'mark';
  write: (db: Kysely<Tables>) => Promise<boolean>;
}

/** What a round carries: its context, its counts, and the writes waiting for the next commit. */
interface Round {
  ctx: Context;
  result: RunnerBatchResult;
  writes: SendWrite[];
}

/** A claim and what the pipeline made of it. */
interface PreparedSend {
  claim: ClaimedSend;
  campaign: Campaign | undefined;
  message: PreparedMessage;
}

/** A claim with a message ready to send. */
interface ReadySend {
  claim: ClaimedSend;
  campaign: Campaign;
  message: Extract<PreparedMessage, { kind: 'ready' }>;
}

/** Sends queued campaign messages. */
export class CampaignRunner {
  readonly #db: Kysely<Tables>;
  readonly #deps: CampaignRunnerDeps;
  readonly #clock: Clock;
  readonly #retry: RunnerRetryOptions;
  readonly #batchSize: number;
  readonly #concurrency: number;
  readonly #prepareBatch: number;
  readonly #leaseMs: number;
  readonly #pollIntervalMs: number;
  readonly #bucket: TokenBucket;
  readonly #campaigns = new Map<string, Campaign>();
  readonly #writes: GroupCommit<SendWrite['write'], boolean>;
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
    // About one second's sending, so a message is made at most about a second before it leaves.
    this.#prepareBatch = Math.max(this.#concurrency, Math.min(64, Math.floor(deps.ratePerSecond)));
    this.#leaseMs = deps.leaseMs ?? 600_000;
    this.#pollIntervalMs = deps.pollIntervalMs ?? 1000;
    this.#bucket = new TokenBucket(deps.ratePerSecond);
    this.#writes = new GroupCommit(deps.db, async (trx, writes) => {
      const outcomes: Array<WriteOutcome<boolean>> = [];
      for (const write of writes) outcomes.push({ ok: true, value: await write(trx) });
      return outcomes;
    });
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
   * One round: expires dead runners' sends, claims a page and sends it (the throttle applies),
   * then marks finished campaigns done. The loop calls it; tests call it directly with a clock.
   * A database error while claiming propagates; an SMTP failure is an outcome.
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
    const round: Round = { ctx, result, writes: [] };
    const batches: ClaimedSend[][] = [];
    for (let i = 0; i < claims.length; i += this.#prepareBatch) {
      batches.push(claims.slice(i, i + this.#prepareBatch));
    }
    const unstarted: ClaimedSend[] = [];
    // The next batch is prepared while this one is sent.
    let preparing = batches[0] && this.#prepare(round, repo, batches[0]);
    let stopped = false;
    for (let b = 0; b < batches.length; b++) {
      if (stopped) {
        unstarted.push(...batches[b]!);
        continue;
      }
      const prepared = await preparing!;
      preparing = batches[b + 1] && this.#prepare(round, repo, batches[b + 1]!);
      const ready: ReadySend[] = [];
      for (const p of prepared) {
        switch (p.message.kind) {
          case 'ready':
            ready.push({ claim: p.claim, campaign: p.campaign!, message: p.message });
            break;
          case 'skip':
            round.writes.push(
              this.#outcome(p.claim, this.#claimed(p.claim), { status: 'skipped', reason: p.message.reason }),
            );
            break;
          case 'error':
            this.#deps.log.error(
              { err: p.message.error, campaign: p.claim.campaignId, subject: p.claim.subjectId },
              'campaign message could not be prepared',
            );
            round.writes.push(
              this.#retryOrFail(p.claim, this.#claimed(p.claim), p.claim.attempts, 'prepare_failed', false),
            );
            break;
        }
      }
      for (let w = 0; w < ready.length; w += this.#concurrency) {
        const wave = ready.slice(w, w + this.#concurrency);
        if (!(await this.#takeTokens(wave.length, signal))) {
          stopped = true;
          unstarted.push(...ready.slice(w).map((r) => r.claim));
          break;
        }
        await this.#sendWave(round, wave);
      }
    }
    // A batch prepared ahead of a stop is given back with the rest.
    await preparing;
    await this.#commit(round, round.writes.splice(0));
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

  /** Runs the pipeline for a batch of claims, per campaign; never throws. */
  async #prepare(
    round: Round,
    repo: CampaignsRepository,
    claims: readonly ClaimedSend[],
  ): Promise<PreparedSend[]> {
    const byCampaign = new Map<string, number[]>();
    claims.forEach((c, i) => {
      const at = byCampaign.get(c.campaignId);
      if (at) at.push(i);
      else byCampaign.set(c.campaignId, [i]);
    });
    const out = new Array<PreparedSend>(claims.length);
    for (const [campaignId, at] of byCampaign) {
      let campaign: Campaign;
      try {
        campaign = await this.#campaign(repo, campaignId);
      } catch (error) {
        for (const i of at)
          out[i] = { claim: claims[i]!, campaign: undefined, message: { kind: 'error', error } };
        continue;
      }
      const messages = await this.#deps.pipeline.prepareMany(
        round.ctx,
        campaign,
        at.map((i) => claims[i]!.subjectId),
      );
      at.forEach((i, k) => {
        out[i] = { claim: claims[i]!, campaign, message: messages[k]! };
      });
    }
    return out;
  }

  /** Takes a token for each message of a wave; false when stopped meanwhile. */
  async #takeTokens(n: number, signal: AbortSignal | undefined): Promise<boolean> {
    for (let i = 0; i < n; i++) {
      if (signal?.aborted === true || !(await this.#bucket.take(signal))) return false;
    }
    return signal?.aborted !== true;
  }

  /**
   * Sends a wave: asks the decision and the suppression list again, then in one commit records
   * what waits (the last wave's outcomes, skips) and marks this wave `sending`, then sends the
   * marked messages at once. Their outcomes wait for the next commit.
   */
  async #sendWave(round: Round, wave: readonly ReadySend[]): Promise<void> {
    const toMark: ReadySend[] = [];
    try {
      const skips = await this.#recheck(round.ctx, wave);
      wave.forEach((send, i) => {
        const reason = skips[i];
        if (reason === undefined) toMark.push(send);
        else
          round.writes.push(
            this.#outcome(send.claim, this.#claimed(send.claim), { status: 'skipped', reason }),
          );
      });
    } catch (err) {
      // The check could not be made: nothing is sent; try again later.
      this.#deps.log.error(
        { err, sends: wave.length },
        'campaign messages could not be checked before sending',
      );
      for (const send of wave) {
        round.writes.push(
          this.#retryOrFail(
            send.claim,
            this.#claimed(send.claim),
            send.claim.attempts,
            'prepare_failed',
            false,
          ),
        );
      }
    }
    const lease = new Date(this.#clock.now().getTime() + this.#leaseMs);
    const at = this.#clock.now();
    // Committed before the SMTP transactions start: from here these sends are never made twice.
    const marks: SendWrite[] = toMark.map((send) => ({
      claim: send.claim,
      status: 'mark',
      write: (db) => new CampaignsRepository(db).markSending(send.claim, lease, send.message.messageId, at),
    }));
    const held = await this.#commit(round, [...round.writes.splice(0), ...marks]);
    const marked = toMark.filter((_, i) => held[held.length - marks.length + i] === true);
    const sending = { status: 'sending' as const, lease };
    round.writes.push(...(await Promise.all(marked.map((send) => this.#deliver(round.ctx, send, sending)))));
  }

  /** The recheck of a wave, per campaign: the reason to skip each send, or `undefined`. */
  async #recheck(ctx: Context, wave: readonly ReadySend[]): Promise<Array<string | undefined>> {
    const out = new Array<string | undefined>(wave.length);
    const byCampaign = new Map<string, number[]>();
    wave.forEach((s, i) => {
      const at = byCampaign.get(s.campaign.id);
      if (at) at.push(i);
      else byCampaign.set(s.campaign.id, [i]);
    });
    for (const at of byCampaign.values()) {
      const reasons = await this.#deps.pipeline.recheck(
        ctx,
        wave[at[0]!]!.campaign,
        at.map((i) => ({ subjectId: wave[i]!.claim.subjectId, to: wave[i]!.message.to })),
      );
      at.forEach((i, k) => (out[i] = reasons[k]));
    }
    return out;
  }

  /** Hands one marked message to SMTP; returns the write that records how it went. */
  async #deliver(ctx: Context, send: ReadySend, from: SendFrom): Promise<SendWrite> {
    const { claim, message } = send;
    try {
      const result = await this.#deps.transport.sendRaw(ctx, {
        envelopeFrom: this.#deps.bounceAddress,
        to: message.to,
        raw: message.raw,
      });
      if (!result.sent) {
        return this.#outcome(claim, from, {
          status: 'pending',
          reason: 'mail_disabled',
          nextAttemptAt: this.#later(claim.attempts + 1),
        });
      }
      return this.#outcome(claim, from, { status: 'sent', messageId: message.messageId });
    } catch (err) {
      const failure = classifySmtpError(err);
      const fields = { campaign: claim.campaignId, subject: claim.subjectId, reason: failure.reason };
      switch (failure.kind) {
        case 'temporary':
          this.#deps.log.warn(fields, 'campaign message deferred; it will be retried');
          return this.#retryOrFail(claim, from, claim.attempts + 1, failure.reason, true);
        case 'permanent':
          this.#deps.log.warn(fields, 'campaign message refused');
          if (failure.recipient) {
            try {
              await this.#deps.suppression.suppress(ctx, {
                address: message.to,
                reason: 'hard_bounce',
                subjectId: claim.subjectId,
              });
            } catch (suppressErr) {
              this.#deps.log.error(
                { err: suppressErr, campaign: claim.campaignId, subject: claim.subjectId },
                'a hard-bounced address could not be suppressed',
              );
            }
          }
          return this.#outcome(claim, from, {
            status: 'failed',
            reason: failure.recipient ? 'hard_bounce' : failure.reason,
            attempted: true,
          });
        case 'uncertain':
          this.#deps.log.error(
            fields,
            'campaign message may or may not have been delivered; it will not be sent again',
          );
          return this.#outcome(claim, from, { status: 'uncertain', reason: failure.reason });
      }
    }
  }

  /**
   * Commits writes together (one group commit) and counts what they recorded. Returns, in
   * order, whether each held: false when the row moved on meanwhile (another runner took it over
   * after its lease) or the write failed (logged; the send is then left to its lease).
   */
  async #commit(round: Round, writes: readonly SendWrite[]): Promise<boolean[]> {
    if (writes.length === 0) return [];
    const settled = await Promise.allSettled(writes.map((w) => this.#writes.submit(w.write)));
    return settled.map((s, i) => {
      const w = writes[i]!;
      const where = { campaign: w.claim.campaignId, subject: w.claim.subjectId };
      if (s.status === 'rejected') {
        this.#deps.log.error({ ...where, err: s.reason as unknown }, 'campaign send could not be recorded');
        return false;
      }
      if (!s.value) {
        this.#deps.log.warn(
          where,
          w.status === 'mark'
            ? 'campaign send was taken over by another runner before it was sent'
            : 'campaign send was taken over by another runner (its lease ran out)',
        );
        return false;
      }
      switch (w.status) {
        case 'mark':
          break;
        case 'sent':
          round.result.sent++;
          break;
        case 'skipped':
          round.result.skipped++;
          break;
        case 'failed':
          round.result.failed++;
          break;
        case 'pending':
          round.result.retried++;
          break;
        case 'uncertain':
          round.result.uncertain++;
          break;
      }
      return true;
    });
  }

  /** The state a claim not yet marked is held in. */
  #claimed(claim: ClaimedSend): SendFrom {
    return { status: 'pending', lease: claim.leaseUntil };
  }

  /** The write that records `outcome` for a send held in `from`. */
  #outcome(claim: ClaimedSend, from: SendFrom, outcome: SendOutcome): SendWrite {
    const key = { campaignId: claim.campaignId, subjectId: claim.subjectId };
    const at = this.#clock.now();
    return {
      claim,
      status: outcome.status,
      write: (db) => new CampaignsRepository(db).recordOutcome(key, from, outcome, at),
    };
  }

  #retryOrFail(
    claim: ClaimedSend,
    from: SendFrom,
    attempts: number,
    reason: string,
    attempted: boolean,
  ): SendWrite {
    if (attempts >= this.#retry.maxAttempts)
      return this.#outcome(claim, from, { status: 'failed', reason, attempted });
    return this.#outcome(claim, from, {
      status: 'pending',
      reason,
      nextAttemptAt: this.#later(Math.max(1, attempts)),
    });
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
