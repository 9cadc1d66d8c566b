/**
 * The campaign runner: sends what campaigns queued, as jobs of the platform's queue. Starting a
 * campaign enqueues one `campaigns.send` job per recipient in the transaction that queues its sends;
 * the queue claims them in batches (a lease, FOR UPDATE SKIP LOCKED on PostgreSQL, so runners on
 * several instances share the work and never hold the same send), retries temporary failures with
 * backoff, and re-queues the work of a runner that stopped heart-beating.
 *
 * - A batch is prepared in parts of about one second's sending (the mail pipeline,
 *   message.pipeline.ts: one consent decision and one suppression query per part, the use-gate
 *   reads together), one part ahead of the messages being sent.
 * - Sends in waves of at most `concurrency` messages (the messages in flight at once). Just before a
 *   wave goes out, its recipients' decision and suppression are asked again (one batch), so a person
 *   who opts out mid-campaign gets nothing more: at most the messages already in flight when the
 *   choice is recorded still go out.
 * - Throttled by a token bucket to PLEDGE_MAIL_RATE messages a second.
 * - At most once, whatever the queue does: a wave's sends are marked `sending` (committed, and only
 *   from `pending`) before their SMTP transactions, and their outcomes recorded after, in the
 *   transaction that marks the next wave. A runner that dies in between leaves them `sending`; once
 *   their send lease has run out they become `uncertain` and are never sent again, and a job that
 *   finds its send already `sending`, or finished, sends nothing. Jobs not yet started when the
 *   runner stops are given back to the queue at once.
 * - A temporary failure (an SMTP 4xx, a connection that failed before the message was handed over)
 *   is a failed attempt of the job, retried by the queue with exponential backoff; a permanent one
 *   (5xx) is recorded as failed, and a 5xx on the recipient suppresses the address as a hard bounce.
 *   A connection lost while the message was being handed over is `uncertain`: it may have been
 *   delivered, so it is not sent again.
 */
import type { AuditEntry } from '../audit/audit.service.js';
import { systemClock, type Clock } from '../platform/clock.js';
import { PledgeError } from '../platform/errors.js';
import type { Context } from '../platform/context.js';
import { GroupCommit, type WriteOutcome } from '../platform/db/group-commit.js';
import {
  jobDone,
  jobRelease,
  jobRetry,
  retryDelayMs,
  type Job,
  type JobHandlerResult,
  type RetryPolicy,
} from '../platform/jobs/jobs.definition.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { Campaign, CampaignsRepository, SendKey, SendOutcome } from './campaigns.repository.js';
import { classifySmtpError } from './smtp-errors.js';
import { TokenBucket } from './token-bucket.js';
import {
  addTo,
  count,
  DEFAULT_RUNNER_RETRY,
  emptyResult,
  EXPAND_JOB,
  SEND_JOB,
  sendJobKey,
  type CampaignRunnerDeps,
  type ExpandJobPayload,
  type HeldSend,
  type PreparedSend,
  type ReadySend,
  type Round,
  type RunnerBatchResult,
  type SendFrom,
  type SendJobPayload,
  type SendWrite,
} from './campaign.runner.types.js';

export * from './campaign.runner.types.js';

/** Sends queued campaign messages. */
export class CampaignRunner {
  readonly #repo: CampaignsRepository;
  readonly #queue: JobQueue;
  readonly #deps: CampaignRunnerDeps;
  readonly #clock: Clock;
  readonly #retry: RetryPolicy;
  readonly #concurrency: number;
  readonly #prepareBatch: number;
  readonly #leaseMs: number;
  readonly #bucket: TokenBucket;
  readonly #campaigns = new Map<string, Campaign>();
  readonly #writes: GroupCommit<SendWrite, boolean>;
  /** The counts of the batches since the last {@link runOnce} began. */
  #tally: RunnerBatchResult = emptyResult();
  #started = false;
  /** Aborted by {@link halt}: batches in flight start no new wave and give their other jobs back. */
  #halt = new AbortController();

  constructor(deps: CampaignRunnerDeps) {
    this.#repo = deps.repo;
    this.#queue = deps.queue;
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#retry = { ...DEFAULT_RUNNER_RETRY, ...deps.retry };
    this.#concurrency = Math.max(1, Math.min(deps.concurrency ?? 8, deps.ratePerSecond));
    // About one second's sending, so a message is made at most about a second before it leaves.
    this.#prepareBatch = Math.max(this.#concurrency, Math.min(64, Math.floor(deps.ratePerSecond)));
    this.#leaseMs = deps.leaseMs ?? 600_000;
    this.#bucket = new TokenBucket(deps.ratePerSecond);
    this.#writes = new GroupCommit(deps.db, async (group, writes) => {
      const outcomes: Array<WriteOutcome<boolean>> = [];
      // The hand-overs of the sends this commit marks, recorded in it: one INSERT for the group.
      const disclosures: Array<{ ctx: Context; entries: AuditEntry[] }> = [];
      for (const w of writes) {
        const value = await w.write(group);
        if (value && w.disclosure) disclosures.push({ ctx: w.disclosure.ctx, entries: [w.disclosure.entry] });
        outcomes.push({ ok: true, value });
      }
      if (disclosures.length > 0) await deps.recordDisclosures?.(group, disclosures);
      return outcomes;
    });
    deps.queue.define<SendJobPayload>({
      type: SEND_JOB,
      retry: this.#retry,
      leaseMs: this.#leaseMs,
      timeoutMs: this.#leaseMs,
      // One batch at a time: its waves are the messages in flight, and the next part of it is
      // prepared while one is sent.
      concurrency: 1,
      batchSize: deps.batchSize ?? 128,
      // A send records its own progress (pending, sending, done): a batch taken over from a dead
      // runner runs at once, and sends nothing twice.
      rerunAfterLeaseLossDelay: 'immediate',
      handleMany: (ctx, jobs, signal) => this.#handle(ctx, jobs, signal),
    });
    const { expand } = deps;
    if (expand !== undefined) {
      deps.queue.define<ExpandJobPayload>({
        type: EXPAND_JOB,
        // A page is queued in one transaction and its sends and next page are keyed: a page run
        // again after a lost lease queues nothing twice.
        handle: async (ctx, job) => {
          await expand(ctx, job.payload);
          return jobDone();
        },
      });
    }
  }

  /** True between {@link start} and {@link stop}. */
  get started(): boolean {
    return this.#started;
  }

  /** Starts sending: the queue's worker takes send jobs as they come due. */
  start(): void {
    if (this.#halt.signal.aborted) this.#halt = new AbortController();
    this.#started = true;
    this.#queue.start();
  }

  /** Looks for work now (a campaign was started): the queue is woken when its jobs commit. */
  wake(): void {
    // Enqueueing wakes this process's worker after the commit; nothing else to do.
  }

  /**
   * Stops: no new message is started, messages in flight finish and are recorded, and jobs not
   * started are given back for any runner to take at once. Resolves when all that is done. This
   * stops the worker of the queue the runner was given.
   */
  async stop(): Promise<void> {
    this.halt();
    await this.#queue.stop();
  }

  /**
   * Starts no new message: batches in flight finish the wave they are sending (SMTP transactions
   * are never cut) and give their other jobs back to the queue. For a shutdown, before the queue
   * stops (the queue's own stop waits for its other jobs, such as webhooks, to finish).
   */
  halt(): void {
    this.#started = false;
    this.#halt.abort();
  }

  /** Resolves when no batch is in flight. */
  async idle(): Promise<void> {
    await this.#queue.idle();
  }

  /**
   * One round: re-queues what a dead runner held, takes the due send jobs and sends them (the
   * throttle applies). Tests call it with a clock; the queue's worker does the same by itself.
   */
  async runOnce(): Promise<RunnerBatchResult> {
    this.#tally = emptyResult();
    await this.#queue.watchdog();
    const types = this.#deps.expand === undefined ? [SEND_JOB] : [EXPAND_JOB, SEND_JOB];
    const r = await this.#queue.runDue({ types });
    const result = this.#tally;
    this.#tally = emptyResult();
    return { ...result, claimed: r.claimed, released: r.released };
  }

  /** The longest delay before the attempt after `attempts` failed ones (the queue adds up to the jitter). */
  retryDelayMs(attempts: number): number {
    return retryDelayMs(this.#retry, attempts, () => 1);
  }

  /** Sends a batch of jobs; one answer per job. */
  async #handle(
    ctx: Context,
    jobs: ReadonlyArray<Job<SendJobPayload>>,
    queueSignal: AbortSignal,
  ): Promise<JobHandlerResult[]> {
    const signal = AbortSignal.any([queueSignal, this.#halt.signal]);
    const result = emptyResult();
    const round: Round = { ctx, result, writes: [], answers: jobs.map(() => jobDone()) };
    const now = this.#clock.now();
    result.expired = await this.#repo.expireSending(ctx, now);
    if (result.expired > 0) {
      this.#deps.log.warn(
        { sends: result.expired },
        'campaign sends interrupted mid-send (their runner stopped) are marked uncertain and will not be sent again',
      );
    }
    // Only sends still pending are sent; a job whose send is finished is done. A send still marked
    // `sending` was its runner's when that runner stopped heart-beating (its job came back to the
    // queue): it may have gone out, so it is uncertain, never sent again.
    const statuses = await this.#repo.statusesOf(
      ctx,
      jobs.map((j) => j.payload),
    );
    const held: HeldSend[] = [];
    const interrupted: SendKey[] = [];
    jobs.forEach((j, index) => {
      const status = statuses.get(sendJobKey(j.payload));
      if (status === 'pending') held.push({ ...j.payload, attempt: j.attempt, index });
      else if (status === 'sending') interrupted.push(j.payload);
    });
    if (interrupted.length > 0) {
      const n = await this.#repo.interruptSending(ctx, interrupted, now);
      result.expired += n;
      if (n > 0) {
        this.#deps.log.warn(
          { sends: n },
          'campaign sends found in flight when their runner stopped are marked uncertain and will not be sent again',
        );
      }
    }
    const batches: HeldSend[][] = [];
    for (let i = 0; i < held.length; i += this.#prepareBatch)
      batches.push(held.slice(i, i + this.#prepareBatch));
    const unstarted: HeldSend[] = [];
    // The next part is prepared while this one is sent.
    let preparing = batches[0] && this.#prepare(round, batches[0]);
    let stopped = false;
    for (let b = 0; b < batches.length; b++) {
      if (stopped || signal.aborted) {
        stopped = true;
        unstarted.push(...batches[b]!);
        continue;
      }
      const prepared = await preparing!;
      preparing = batches[b + 1] && this.#prepare(round, batches[b + 1]!);
      const ready: ReadySend[] = [];
      for (const p of prepared) {
        switch (p.message.kind) {
          case 'ready':
            ready.push({ send: p.send, campaign: p.campaign!, message: p.message });
            break;
          case 'skip':
            round.writes.push(
              this.#outcome(p.send, { status: 'pending' }, { status: 'skipped', reason: p.message.reason }),
            );
            break;
          case 'error': {
            // The share gate's refusal (the delivery provider may not receive the mail) is named on
            // the job and the send, so a paused provider stops sends loudly, not silently.
            const refused =
              p.message.error instanceof PledgeError && p.message.error.code.startsWith('share.');
            this.#deps.log.error(
              { err: p.message.error, campaign: p.send.campaignId, subject: p.send.subjectId },
              refused
                ? 'campaign message refused by the share gate: the e-mail delivery provider may not receive it'
                : 'campaign message could not be prepared',
            );
            const reason = refused ? (p.message.error as PledgeError).code : 'prepare_failed';
            this.#retryLater(round, p.send, { status: 'pending' }, reason, false);
            break;
          }
        }
      }
      for (let w = 0; w < ready.length; w += this.#concurrency) {
        const wave = ready.slice(w, w + this.#concurrency);
        if (!(await this.#takeTokens(wave.length, signal))) {
          stopped = true;
          unstarted.push(...ready.slice(w).map((r) => r.send));
          break;
        }
        await this.#sendWave(round, wave);
      }
    }
    // A part prepared ahead of a stop is given back with the rest.
    await preparing;
    await this.#commit(round, round.writes.splice(0));
    for (const send of unstarted) round.answers[send.index] = jobRelease();
    const done = await this.#repo.finishCampaigns(ctx, this.#clock.now());
    for (const id of done) {
      this.#campaigns.delete(id);
      this.#deps.log.info({ campaign: id }, 'campaign done');
    }
    addTo(this.#tally, result);
    return round.answers;
  }

  /** Runs the pipeline for a part of the batch, per campaign; never throws. */
  async #prepare(round: Round, sends: readonly HeldSend[]): Promise<PreparedSend[]> {
    const byCampaign = new Map<string, number[]>();
    sends.forEach((c, i) => {
      const at = byCampaign.get(c.campaignId);
      if (at) at.push(i);
      else byCampaign.set(c.campaignId, [i]);
    });
    const out = new Array<PreparedSend>(sends.length);
    for (const [campaignId, at] of byCampaign) {
      let campaign: Campaign;
      try {
        campaign = await this.#campaign(round.ctx, campaignId);
      } catch (error) {
        for (const i of at)
          out[i] = { send: sends[i]!, campaign: undefined, message: { kind: 'error', error } };
        continue;
      }
      const messages = await this.#deps.pipeline.prepareMany(
        round.ctx,
        campaign,
        at.map((i) => sends[i]!.subjectId),
      );
      at.forEach((i, k) => {
        out[i] = { send: sends[i]!, campaign, message: messages[k]! };
      });
    }
    return out;
  }

  /** Takes a token for each message of a wave; false when stopped meanwhile. */
  async #takeTokens(n: number, signal: AbortSignal): Promise<boolean> {
    for (let i = 0; i < n; i++) {
      if (signal.aborted || !(await this.#bucket.take(signal))) return false;
    }
    return !signal.aborted;
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
          round.writes.push(this.#outcome(send.send, { status: 'pending' }, { status: 'skipped', reason }));
      });
    } catch (err) {
      // The check could not be made: nothing is sent; try again later.
      this.#deps.log.error(
        { err, sends: wave.length },
        'campaign messages could not be checked before sending',
      );
      for (const send of wave)
        this.#retryLater(round, send.send, { status: 'pending' }, 'prepare_failed', false);
    }
    const lease = new Date(this.#clock.now().getTime() + this.#leaseMs);
    const at = this.#clock.now();
    // Committed before the SMTP transactions start: from here these sends are never made twice.
    const marks: SendWrite[] = toMark.map((send) => ({
      send: send.send,
      status: 'mark',
      write: (ctx) => this.#repo.markSending(ctx, send.send, lease, send.message.messageId, at),
      disclosure: send.message.disclosure && { ctx: round.ctx, entry: send.message.disclosure },
    }));
    const held = await this.#commit(round, [...round.writes.splice(0), ...marks]);
    const marked = toMark.filter((_, i) => held[held.length - marks.length + i] === true);
    const sending = { status: 'sending' as const, lease };
    const writes = await Promise.all(marked.map((send) => this.#deliver(round, send, sending)));
    for (const w of writes) if (w !== undefined) round.writes.push(w);
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
        at.map((i) => ({ subjectId: wave[i]!.send.subjectId, to: wave[i]!.message.to })),
      );
      at.forEach((i, k) => (out[i] = reasons[k]));
    }
    return out;
  }

  /**
   * Hands one marked message to SMTP; returns the write that records how it went, or nothing when
   * the outcome is a retry (recorded with the job's own outcome).
   */
  async #deliver(round: Round, ready: ReadySend, from: SendFrom): Promise<SendWrite | undefined> {
    const { send, message } = ready;
    try {
      const result = await this.#deps.transport.sendRaw(round.ctx, {
        envelopeFrom: message.envelopeFrom,
        to: message.to,
        raw: message.raw,
      });
      if (!result.sent) {
        this.#retryLater(round, send, from, 'mail_disabled', false);
        return undefined;
      }
      return this.#outcome(send, from, { status: 'sent', messageId: message.messageId });
    } catch (err) {
      const failure = classifySmtpError(err);
      const fields = { campaign: send.campaignId, subject: send.subjectId, reason: failure.reason };
      switch (failure.kind) {
        case 'temporary':
          this.#deps.log.warn(fields, 'campaign message deferred; it will be retried');
          this.#retryLater(round, send, from, failure.reason, true);
          return undefined;
        case 'permanent':
          this.#deps.log.warn(fields, 'campaign message refused');
          if (failure.recipient) {
            try {
              await this.#deps.suppression.suppress(round.ctx, {
                address: message.to,
                reason: 'hard_bounce',
                subjectId: send.subjectId,
              });
            } catch (suppressErr) {
              this.#deps.log.error(
                { err: suppressErr, campaign: send.campaignId, subject: send.subjectId },
                'a hard-bounced address could not be suppressed',
              );
            }
          }
          return this.#outcome(send, from, {
            status: 'failed',
            reason: failure.recipient ? 'hard_bounce' : failure.reason,
            attempted: true,
          });
        case 'uncertain':
          this.#deps.log.error(
            fields,
            'campaign message may or may not have been delivered; it will not be sent again',
          );
          return this.#outcome(send, from, { status: 'uncertain', reason: failure.reason });
      }
    }
  }

  /**
   * Commits writes together (one group commit) and counts what they recorded. Returns, in
   * order, whether each held: false when the row moved on meanwhile (another runner took the send
   * over) or the write failed (logged; the send is then left to its lease).
   */
  async #commit(round: Round, writes: readonly SendWrite[]): Promise<boolean[]> {
    if (writes.length === 0) return [];
    const settled = await Promise.allSettled(writes.map((w) => this.#writes.submit(w)));
    return settled.map((s, i) => {
      const w = writes[i]!;
      const where = { campaign: w.send.campaignId, subject: w.send.subjectId };
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
      if (w.status !== 'mark') count(round.result, w.status);
      return true;
    });
  }

  /** The write that records `outcome` for a send held in `from`. */
  #outcome(send: HeldSend, from: SendFrom, outcome: SendOutcome): SendWrite {
    const at = this.#clock.now();
    return {
      send,
      status: outcome.status,
      write: (ctx) => this.#repo.recordOutcome(ctx, send, from, outcome, at),
    };
  }

  /**
   * A failed attempt: the send's job is retried by the queue with backoff, and the send is recorded
   * (pending with the reason and the next attempt's time, or failed after the last attempt) in the
   * transaction that settles the job.
   */
  #retryLater(round: Round, send: HeldSend, from: SendFrom, reason: string, attempted: boolean): void {
    const at = this.#clock.now();
    round.answers[send.index] = jobRetry(reason, {
      record: async (ctx, final) => {
        const outcome: SendOutcome =
          final.state === 'pending'
            ? { status: 'pending', reason, nextAttemptAt: final.runAt }
            : { status: 'failed', reason, attempted };
        if (await this.#repo.recordOutcome(ctx, send, from, outcome, at)) {
          count(this.#tally, outcome.status);
        }
      },
    });
  }

  async #campaign(ctx: Context, id: string): Promise<Campaign> {
    let campaign = this.#campaigns.get(id);
    if (campaign === undefined) {
      campaign = await this.#repo.get(ctx, id);
      if (campaign === undefined) throw new Error(`campaign ${id} vanished`);
      if (this.#campaigns.size >= 100) this.#campaigns.clear();
      this.#campaigns.set(id, campaign);
    }
    return campaign;
  }
}
