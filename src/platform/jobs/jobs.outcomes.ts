/**
 * Where a job goes after an attempt: the state its handler's outcome or a lost lease leaves it in
 * (done, pending again at a backed-off time, or dead with its last error). Pure rules, apart from
 * the worker that applies them.
 */
import {
  retryDelayMs,
  type JobFinalState,
  type JobHandlerResult,
  type ResolvedJobType,
} from './jobs.definition.js';
import type { JobRecord } from './jobs.repository.js';

const MAX_ERROR_LENGTH = 2000;

/** The state a handler's outcome leaves its job in. */
export function finalState(
  type: ResolvedJobType,
  job: JobRecord,
  outcome: JobHandlerResult,
  now: Date,
  random: () => number,
): JobFinalState {
  switch (outcome.outcome) {
    case 'done':
      return { state: 'done' };
    case 'dead':
      return { state: 'dead', error: truncate(outcome.error) };
    case 'release':
      // Given back by the worker before outcomes are settled; never reaches here.
      return { state: 'pending', runAt: now, error: 'released unstarted' };
    case 'retry': {
      const error = truncate(outcome.error);
      if (job.attempts >= job.maxAttempts) {
        return { state: 'dead', error: `${error} (the last of ${job.maxAttempts} attempts)` };
      }
      const runAt = outcome.runAt ?? new Date(now.getTime() + retryDelayMs(type.retry, job.attempts, random));
      return { state: 'pending', runAt, error };
    }
  }
}

/** The state a job is left in when its worker stopped heart-beating and its lease ran out. */
export function expiredFinalState(
  type: ResolvedJobType,
  job: JobRecord,
  now: Date,
  random: () => number,
): JobFinalState {
  const base =
    `its worker${job.worker === undefined ? '' : ` (${job.worker})`} stopped heart-beating: ` +
    `the lease of attempt ${job.attempts} ran out at ${job.leaseUntil?.toISOString() ?? '?'}`;
  if (!type.rerunAfterLeaseLoss) {
    return {
      state: 'dead',
      error: `${base}; not run again because ${type.type} must not run twice (it may have run once already); retry it by hand once checked`,
    };
  }
  if (job.attempts >= job.maxAttempts)
    return { state: 'dead', error: `${base} (the last of ${job.maxAttempts} attempts)` };
  return {
    state: 'pending',
    runAt:
      type.rerunAfterLeaseLossDelay === 'immediate'
        ? now
        : new Date(now.getTime() + retryDelayMs(type.retry, job.attempts, random)),
    error: base,
  };
}

/** A thrown value as a job's error text, cut to the length kept. */
export function describeError(err: unknown): string {
  const message = err instanceof Error ? err.message || err.name : String(err);
  return truncate(message);
}

/** An error text cut to the length a job keeps. */
export function truncate(message: string): string {
  return message.length > MAX_ERROR_LENGTH ? `${message.slice(0, MAX_ERROR_LENGTH - 1)}…` : message;
}
