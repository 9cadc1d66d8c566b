/**
 * The transparency log's work on the platform queue (docs/jobs.md):
 * - `audit.integrate`, a recurring chain like the beacons' jobs (analytics.jobs.ts): a job per time
 *   slot, which in the transaction that records it done enqueues the next slot's, keyed by slot so
 *   any number of instances enqueue it once. Inside its slot the job loops: an integration pass, then
 *   a wait until an append in this process commits (a cheap in-process signal) or a short poll
 *   passes (appends of other instances), so an entry is integrated within a second of its commit.
 *   After a pass that integrated something (with nothing more waiting) it lingers a moment before
 *   the next pass even when woken: appends keep committing meanwhile, and one pass then sequences
 *   all of them in one commit, where a pass per append would double the commits (each an fsync on
 *   SQLite) and halve append throughput.
 *   It stops promptly when its signal aborts or the log stops.
 * - `audit.checkpoint_webhook`: POSTs a signed checkpoint to PLEDGE_LOG_CHECKPOINT_WEBHOOK, retried.
 */
import type { Context } from '../platform/context.js';
import { jobDead, jobDone, jobRetry, type JobFinalState } from '../platform/jobs/jobs.definition.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { LogIntegrator } from './log.integrator.js';
import type { LogRepository } from './log.repository.js';

/** The job types. */
export const INTEGRATE_JOB = 'audit.integrate';
export const CHECKPOINT_WEBHOOK_JOB = 'audit.checkpoint_webhook';

/** How long one integrate job runs (its slot). */
export const INTEGRATE_SLOT_MS = 5_000;

/** How often the integrator looks for entries of other instances when nothing woke it. */
export const INTEGRATE_POLL_MS = 200;

/**
 * How long the integrator waits after a pass that integrated entries before the next one, so passes
 * coalesce the commits made meanwhile; bounded well below the second an entry may wait.
 */
export const INTEGRATE_LINGER_MS = 100;

/** How long the log's done jobs are kept (they come every few seconds; their keys matter for a slot). */
export const LOG_JOBS_KEEP_DONE_MS = 3_600_000;

/** Resolves after `ms` or when a signal aborts, whichever is first (no wake ends it). */
function pause(ms: number, ...signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const s of signals) {
      if (s.aborted) done();
      else s.addEventListener('abort', done, { once: true });
    }
  });
}

/** Where the jobs report (Fastify's logger fits). */
export interface LogJobsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A wake-up: `wake()` resolves whoever waits; a wait also ends on its timeout or an abort. */
export class Wake {
  #waiters = new Set<() => void>();

  /** Wakes every waiter (after an append commits). */
  wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /** Resolves on the next wake, after `ms`, or when a signal aborts, whichever is first. */
  wait(ms: number, ...signals: AbortSignal[]): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        for (const s of signals) s.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
      for (const s of signals) {
        if (s.aborted) done();
        else s.addEventListener('abort', done, { once: true });
      }
    });
  }
}

interface SlotPayload {
  slot: string;
}

/** What {@link defineLogJobs} gives back. */
export interface LogJobs {
  /** Enqueues the current slot's integrate job (nothing when already there); call at start. */
  schedule(ctx: Context): Promise<void>;
  /**
   * Enqueues the current slot's integrate job again just after each slot boundary (nothing when the
   * chain already did), until the returned function is called. The chain moves on when a slot's job
   * finishes; when the instance running it dies, the job stays `running` until its lease ends and
   * the watchdog re-queues it, and no instance integrates meanwhile. With every instance seeding each
   * slot, a survivor runs the next slot's job: a takeover within one slot, whatever the lease.
   */
  keepScheduled(ctx: Context): () => void;
  /** Enqueues the webhook POST of a checkpoint, in `ctx`'s transaction (when a webhook is set). */
  enqueueWebhook(ctx: Context, size: number): Promise<void>;
}

/**
 * How long after a slot boundary the instances seed the new slot's job: the job of the slot that
 * ends enqueues it itself at the boundary, so a seed finds it there unless that job's instance died.
 */
export const INTEGRATE_SEED_DELAY_MS = 250;

/** Defines the log's job types on `queue` (at boot, before the queue starts). */
export function defineLogJobs(
  queue: JobQueue,
  deps: {
    integrator: Pick<LogIntegrator, 'integrateOnce'>;
    repo: Pick<LogRepository, 'getCheckpoint'>;
    wake: Wake;
    /** Aborted when the log stops (before the queue does), so the loop ends at once. */
    stopped: AbortSignal;
    webhookUrl: string | undefined;
    log: LogJobsLogger;
    slotMs?: number;
    pollMs?: number;
    lingerMs?: number;
  },
): LogJobs {
  const every = deps.slotMs ?? INTEGRATE_SLOT_MS;
  const pollMs = deps.pollMs ?? INTEGRATE_POLL_MS;
  const lingerMs = deps.lingerMs ?? INTEGRATE_LINGER_MS;
  const slotOf = (ms: number) => Math.floor(ms / every) * every;
  queue.define<SlotPayload>({
    type: INTEGRATE_JOB,
    timeoutMs: every * 4 + 60_000,
    // A short lease: while a dead instance's run still holds the chain, no instance integrates, so
    // another takes it over soon (heartbeats renew it every third of it).
    leaseMs: 5_000,
    retry: { baseDelayMs: 1000, maxDelayMs: 10_000, maxAttempts: 5 },
    rerunAfterLeaseLossDelay: 'immediate',
    // A job every slot: ~17,000 done rows a day at the queue's 7 days. Its key only has to outlive
    // its slot (the seeding enqueues the current slot's key again).
    keepDoneMs: LOG_JOBS_KEEP_DONE_MS,
    handle: async (ctx, job, signal) => {
      const slot = Date.parse(job.payload.slot);
      // The next slot starts where this one ends, or where now is when this one ran late: never a
      // backlog, and never a gap of a whole slot.
      const next = (c: Context, final: JobFinalState) => {
        if (final.state === 'pending') return Promise.resolve();
        const following = Math.max(slot + every, slotOf(c.clock.now().getTime()));
        const key = new Date(following).toISOString();
        return queue
          .enqueue(c, INTEGRATE_JOB, { slot: key }, { key, runAt: new Date(following) })
          .then(() => undefined);
      };
      const end = Math.max(slot + every, ctx.clock.now().getTime() + pollMs);
      // A clock that stands still (a test's) must not hold the job forever.
      const realEnd = performance.now() + 2 * every;
      let integrated = 0;
      try {
        while (!signal.aborted && !deps.stopped.aborted) {
          const r = await deps.integrator.integrateOnce(ctx);
          integrated += r.integrated;
          if (r.more) continue;
          if (ctx.clock.now().getTime() >= end || performance.now() >= realEnd) break;
          if (r.integrated > 0 && lingerMs > 0) await pause(lingerMs, signal, deps.stopped);
          else await deps.wake.wait(pollMs, signal, deps.stopped);
        }
      } catch (err) {
        return jobRetry(err instanceof Error ? err.message : String(err), { record: next });
      }
      if (integrated > 0)
        deps.log.info({ job: job.id, slot: job.payload.slot, integrated }, `${INTEGRATE_JOB} ran`);
      return jobDone(next);
    },
  });
  if (deps.webhookUrl !== undefined) {
    const url = deps.webhookUrl;
    queue.define<{ size: number }>({
      type: CHECKPOINT_WEBHOOK_JOB,
      retry: { baseDelayMs: 10_000, maxDelayMs: 3_600_000, maxAttempts: 20 },
      // One per checkpoint (one every 10 s while entries arrive); a checkpoint's key is never
      // enqueued again once its job ran.
      keepDoneMs: LOG_JOBS_KEEP_DONE_MS,
      handle: async (ctx, job, signal) => {
        const checkpoint = await deps.repo.getCheckpoint(ctx, job.payload.size);
        if (checkpoint === undefined) return jobDead(`no checkpoint of size ${job.payload.size}`);
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'text/plain; charset=utf-8' },
            body: checkpoint.note,
            signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
          });
          await res.body?.cancel();
          if (!res.ok) return jobRetry(`the checkpoint webhook answered ${res.status}`);
          return jobDone();
        } catch (err) {
          return jobRetry(
            `the checkpoint webhook failed: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      },
    });
  }
  return {
    async schedule(ctx) {
      const slot = new Date(slotOf(ctx.clock.now().getTime())).toISOString();
      await queue.enqueue(ctx, INTEGRATE_JOB, { slot }, { key: slot });
    },
    keepScheduled(ctx) {
      let timer: NodeJS.Timeout | undefined;
      let stopped = false;
      const arm = () => {
        if (stopped) return;
        const now = ctx.clock.now().getTime();
        timer = setTimeout(seed, slotOf(now) + every - now + INTEGRATE_SEED_DELAY_MS);
        timer.unref();
      };
      const seed = () => {
        const slot = new Date(slotOf(ctx.clock.now().getTime())).toISOString();
        queue
          .enqueue(ctx, INTEGRATE_JOB, { slot }, { key: slot })
          .catch((err: unknown) =>
            deps.log.warn(
              { slot, error: err instanceof Error ? err.message : String(err) },
              `${INTEGRATE_JOB}: the slot's job could not be enqueued; the next slot tries again`,
            ),
          )
          .finally(arm);
      };
      arm();
      return () => {
        stopped = true;
        clearTimeout(timer);
      };
    },
    async enqueueWebhook(ctx, size) {
      if (deps.webhookUrl === undefined) return;
      await queue.enqueue(ctx, CHECKPOINT_WEBHOOK_JOB, { size }, { key: `checkpoint-${size}` });
    },
  };
}
