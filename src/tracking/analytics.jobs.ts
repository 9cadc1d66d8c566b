/**
 * The beacons' recurring work, as jobs of the platform's one queue (docs/jobs.md): the daily
 * roll-up (`analytics.rollup`), the salts (`beacons.salts`: tomorrow's ahead of midnight, those
 * older than 48 hours deleted) and the expiry of raw events (`beacons.expire`).
 *
 * The queue has no timers of its own, so each type is a chain: a job runs for one time slot (an
 * hour) and, in the transaction that records it done (or dead), enqueues the job of the next slot,
 * keyed by that slot. Every instance enqueues the current slot's job at start; the key makes that
 * once per slot however many instances start, and restarts a chain that a database outage broke. A
 * job that runs late (the servers were down) is followed by the slot after now, not by a backlog.
 */
import type { Context } from '../platform/context.js';
import { jobDone, jobRetry, type JobFinalState } from '../platform/jobs/jobs.definition.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { AnalyticsService } from './analytics.service.js';
import type { BeaconExpiry } from './expiry.service.js';
import type { SaltRotation } from './salts.service.js';

/** The job types. */
export const ROLLUP_JOB = 'analytics.rollup';
export const SALTS_JOB = 'beacons.salts';
export const EXPIRE_JOB = 'beacons.expire';

/** How often each runs: every hour, on the hour. */
export const BEACON_JOB_INTERVAL_MS = 3_600_000;

/** Where the jobs report (Fastify's logger fits). */
export interface BeaconJobsLogger {
  info(obj: object, msg: string): void;
}

/** A recurring type's payload: the start of its slot (also its key). */
interface SlotPayload {
  slot: string;
}

/** What {@link defineBeaconJobs} gives back. */
export interface BeaconJobs {
  /** Enqueues the current slot's job of each type (nothing when already there); call at start. */
  schedule(ctx: Context): Promise<void>;
}

/** One recurring type: what it runs each slot. */
interface Recurring {
  type: string;
  run(ctx: Context, signal: AbortSignal): Promise<object | undefined>;
}

/** Defines the three types on `queue` (at boot, before the queue starts). */
export function defineBeaconJobs(
  queue: JobQueue,
  deps: {
    analytics: Pick<AnalyticsService, 'rollUpRecent'>;
    salts: Pick<SaltRotation, 'run'>;
    expiry: Pick<BeaconExpiry, 'run'>;
    log: BeaconJobsLogger;
    intervalMs?: number;
  },
): BeaconJobs {
  const every = deps.intervalMs ?? BEACON_JOB_INTERVAL_MS;
  const slotOf = (at: Date) => new Date(Math.floor(at.getTime() / every) * every);
  const recurring: Recurring[] = [
    {
      type: ROLLUP_JOB,
      run: async (ctx, signal) => {
        const days = await deps.analytics.rollUpRecent(ctx, signal);
        const unreadable = days.reduce((n, d) => n + d.unreadable, 0);
        return {
          days: days.map((d) => d.day),
          events: days.reduce((n, d) => n + d.events, 0),
          // Fields that no longer open: a beacons key version left the keyring, or rows were altered.
          ...(unreadable > 0 ? { unreadable } : {}),
        };
      },
    },
    {
      type: SALTS_JOB,
      run: async (ctx) => {
        const r = await deps.salts.run(ctx);
        return r.madeFor === undefined && r.deleted === 0 ? undefined : r;
      },
    },
    {
      type: EXPIRE_JOB,
      run: async (ctx, signal) => {
        const r = await deps.expiry.run(ctx, signal);
        return r.deleted === 0 ? undefined : r;
      },
    },
  ];
  for (const r of recurring) {
    // The next slot's job, in the transaction that finishes this one: the chain cannot break
    // between them. A failed attempt waiting for its retry keeps the chain where it is.
    const next = (ctx: Context, final: JobFinalState) =>
      final.state === 'pending'
        ? Promise.resolve()
        : enqueueSlot(ctx, r.type, slotOf(ctx.clock.now()), every);
    queue.define<SlotPayload>({
      type: r.type,
      // A run is idempotent (roll-up rewrites days, salts and expiry delete what is due), so it may
      // run again after a lost lease; it gives up early and retries soon.
      timeoutMs: 10 * 60_000,
      retry: { baseDelayMs: 30_000, maxDelayMs: every / 2, maxAttempts: 5 },
      handle: async (ctx, job, signal) => {
        try {
          const report = await r.run(ctx, signal);
          if (report !== undefined)
            deps.log.info({ job: job.id, slot: job.payload.slot, ...report }, `${r.type} ran`);
          return jobDone(next);
        } catch (err) {
          return jobRetry(err instanceof Error ? err.message : String(err), { record: next });
        }
      },
    });
  }
  async function enqueueSlot(ctx: Context, type: string, current: Date, intervalMs: number): Promise<void> {
    const slot = new Date(current.getTime() + intervalMs).toISOString();
    await queue.enqueue(ctx, type, { slot }, { key: slot, runAt: new Date(slot) });
  }
  return {
    async schedule(ctx) {
      const slot = slotOf(ctx.clock.now()).toISOString();
      for (const r of recurring) await queue.enqueue(ctx, r.type, { slot }, { key: slot });
    },
  };
}
