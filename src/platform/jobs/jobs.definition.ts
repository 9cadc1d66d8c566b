/**
 * What a capability declares to do work later: a job type with its handler, retry policy, lease,
 * concurrency and (for handlers that prepare many jobs together) batch size; and what a handler
 * answers. The queue (jobs.service.ts) and the worker (jobs.worker.ts) read these; nothing here
 * touches the database.
 */
import type { Actor, Context } from '../context.js';
import { ValidationError } from '../errors.js';

/** A JSON value: what a payload is made of. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** When failed attempts are retried. */
export interface RetryPolicy {
  /** The delay after the first failed attempt; it doubles after each further one. */
  baseDelayMs: number;
  /** The longest delay between two attempts. */
  maxDelayMs: number;
  /** Attempts before the job is dead (the first one included). */
  maxAttempts: number;
  /** Up to this fraction of each delay is added at random, so retries of a burst spread out. */
  jitter: number;
}

/** The retry policy of a type that names none: 10 s, 20 s, 40 s ... up to one hour, 10 attempts. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  baseDelayMs: 10_000,
  maxDelayMs: 3_600_000,
  maxAttempts: 10,
  jitter: 0.2,
});

/** The lease of a type that names none; heartbeats renew it every third of it. */
export const DEFAULT_LEASE_MS = 30_000;

/** How long an attempt may run, for a type that names no timeout. */
export const DEFAULT_TIMEOUT_MS = 5 * 60_000;

/**
 * A job as its handler sees it. The payload holds ids (and flags), never personal data: the handler
 * loads what it needs from the capability's own tables, through its services, when it runs.
 */
export interface Job<P = JsonValue> {
  id: string;
  type: string;
  payload: P;
  /** This attempt's number, from 1. */
  attempt: number;
  maxAttempts: number;
  /** The idempotency key it was enqueued with, if any. */
  key: string | undefined;
  /** The actor whose action enqueued it. */
  enqueuedBy: Actor;
  /** The system that action was for; the handler's context acts for it. */
  enqueuedFor: string | undefined;
  /** The id of the request that enqueued it. */
  requestId: string;
  createdAt: Date;
}

/** Where a job ends up after an attempt, as a {@link JobRecorder} is told it. */
export type JobFinalState =
  { state: 'done' } | { state: 'pending'; runAt: Date; error: string } | { state: 'dead'; error: string };

/**
 * Writes the domain's outcome of an attempt (a delivery-log row, a send's status) in the transaction
 * that moves the job to `final`: both commit, or neither. `ctx` is bound to that transaction. It is
 * not called when the worker has lost the job's lease (the job is another worker's by then). When it
 * throws, the transaction rolls back and the attempt counts as failed with that error.
 */
export type JobRecorder = (ctx: Context, final: JobFinalState) => Promise<void>;

/** What a handler answers for one job. */
export type JobHandlerResult =
  | { outcome: 'done'; record?: JobRecorder | undefined }
  | { outcome: 'retry'; error: string; runAt?: Date | undefined; record?: JobRecorder | undefined }
  | { outcome: 'dead'; error: string; record?: JobRecorder | undefined }
  | { outcome: 'release' };

/** The job is finished. */
export function jobDone(record?: JobRecorder): JobHandlerResult {
  return { outcome: 'done', record };
}

/**
 * The attempt failed and may succeed later: at `runAt` (a receiver's Retry-After) or after the type's
 * backoff. On the last attempt the job is dead instead, with this error.
 */
export function jobRetry(
  error: string,
  options: { runAt?: Date; record?: JobRecorder } = {},
): JobHandlerResult {
  return { outcome: 'retry', error, runAt: options.runAt, record: options.record };
}

/**
 * The job was not started (a batch handler that saw its signal abort before reaching it): given
 * back, due at once, without counting an attempt, for any worker to take.
 */
export function jobRelease(): JobHandlerResult {
  return { outcome: 'release' };
}

/** The job can never succeed (its subject was erased, its target left the manifest): dead at once. */
export function jobDead(error: string, record?: JobRecorder): JobHandlerResult {
  return { outcome: 'dead', error, record };
}

/** What every job type declares. */
interface JobDefinitionBase {
  /** The type's name, `capability.what` (`webhooks.deliver`); unique in the queue. */
  type: string;
  /** Retries; what is left out comes from {@link DEFAULT_RETRY_POLICY}. */
  retry?: Partial<RetryPolicy>;
  /** How long a claim holds without a heartbeat (default 30 s); heartbeats renew it every third. */
  leaseMs?: number;
  /**
   * The longest an attempt may run (default 5 minutes). Past it the handler's signal is aborted and
   * the attempt fails with that reason, whether or not the handler returns.
   */
  timeoutMs?: number;
  /** Handler calls of this type running at once in this process (default 1). */
  concurrency?: number;
  /**
   * Whether a job whose worker stopped heart-beating runs again (default true: at least once). Set it
   * to false for work that must not be done twice (a marketing e-mail): such a job goes dead with the
   * reason instead, and a person decides (`pledge jobs retry`).
   */
  rerunAfterLeaseLoss?: boolean;
  /**
   * When a job re-queued after a lost lease runs again: after the type's backoff (default, so a job
   * that kills its worker every time cannot loop), or at once (`'immediate'`), for work whose handler
   * finds out for itself what the dead worker did (a campaign send records its own progress).
   */
  rerunAfterLeaseLossDelay?: 'backoff' | 'immediate';
  /**
   * How long done jobs of this type are kept, their idempotency keys with them, before the watchdog
   * deletes them (default: the queue's `retainDoneMs`, 7 days; Infinity keeps them). Short for
   * frequent housekeeping (a job every few seconds leaves thousands of done rows a day); never
   * shorter than the time within which enqueueing a key again must still do nothing.
   */
  keepDoneMs?: number;
  /**
   * Who the handler acts as: the job (`{ kind: 'job', id: type }`, the default) or the actor
   * whose action enqueued the job, when the work is that actor's in the audit log's eyes. A batch
   * handler's context always acts as the system (each job carries its own `enqueuedBy`).
   */
  actAs?: 'system' | 'enqueuer';
}

/** A job type whose handler takes one job at a time. */
export interface SingleJobDefinition<P = JsonValue> extends JobDefinitionBase {
  /**
   * Does the work of one job. `signal` aborts when the job's lease is lost, its timeout passes or the
   * queue stops; a thrown error is a failed attempt (retried with backoff, dead after the last).
   */
  handle(ctx: Context, job: Job<P>, signal: AbortSignal): Promise<JobHandlerResult>;
  handleMany?: undefined;
  batchSize?: undefined;
}

/** A job type whose handler takes up to `batchSize` jobs at a time (a campaign's sends). */
export interface BatchJobDefinition<P = JsonValue> extends JobDefinitionBase {
  /**
   * Does the work of several jobs, answering one result per job in the same order. `ctx` acts as the
   * system (each job carries its own `enqueuedBy` and `requestId`). A thrown error fails them all.
   */
  handleMany(
    ctx: Context,
    jobs: ReadonlyArray<Job<P>>,
    signal: AbortSignal,
  ): Promise<readonly JobHandlerResult[]>;
  /** Jobs per call (at least 1). */
  batchSize: number;
  handle?: undefined;
}

/** A job type: its name, handler and how it is run. */
export type JobDefinition<P = JsonValue> = SingleJobDefinition<P> | BatchJobDefinition<P>;

/**
 * The delay before the attempt after `attempt` failed ones: base × 2^(attempt − 1), plus up to
 * `jitter` of it at random (`random` in [0, 1)), at most the maximum delay.
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, random: () => number): number {
  const exponential = policy.baseDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40);
  return Math.min(policy.maxDelayMs, Math.round(exponential * (1 + policy.jitter * random())));
}

/** A registered job type with every default filled in. */
export interface ResolvedJobType {
  readonly type: string;
  readonly definition: JobDefinition<never>;
  readonly retry: Readonly<RetryPolicy>;
  readonly leaseMs: number;
  readonly timeoutMs: number;
  readonly concurrency: number;
  /** 1 for a handler of one job at a time. */
  readonly batchSize: number;
  readonly rerunAfterLeaseLoss: boolean;
  readonly rerunAfterLeaseLossDelay: 'backoff' | 'immediate';
  readonly actAs: 'system' | 'enqueuer';
  /** The type's own retention of done jobs; undefined: the queue's. */
  readonly keepDoneMs: number | undefined;
}

/** A type name: lower-case words joined by dots, dashes or underscores (`webhooks.deliver`). */
const TYPE_NAME = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$/;

/**
 * Fills in a definition's defaults and checks it; throws `jobs.definition_invalid` listing every
 * problem (a definition is code, so this fails at boot, never later).
 */
export function resolveJobDefinition<P>(definition: JobDefinition<P>): ResolvedJobType {
  const retry: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...definition.retry };
  const resolved: ResolvedJobType = {
    type: definition.type,
    definition,
    retry,
    leaseMs: definition.leaseMs ?? DEFAULT_LEASE_MS,
    timeoutMs: definition.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    concurrency: definition.concurrency ?? 1,
    batchSize: definition.handleMany ? definition.batchSize : 1,
    rerunAfterLeaseLoss: definition.rerunAfterLeaseLoss ?? true,
    rerunAfterLeaseLossDelay: definition.rerunAfterLeaseLossDelay ?? 'backoff',
    actAs: definition.actAs ?? 'system',
    keepDoneMs: definition.keepDoneMs,
  };
  const problems: string[] = [];
  const positiveInteger = (name: string, value: number): void => {
    if (!Number.isInteger(value) || value < 1)
      problems.push(`${name} must be a whole number of at least 1, got ${value}`);
  };
  if (!TYPE_NAME.test(definition.type) || definition.type.length > 100) {
    problems.push(
      `type "${definition.type}" must be lower-case words joined by dots, like "webhooks.deliver"`,
    );
  }
  if ((definition.handle === undefined) === (definition.handleMany === undefined)) {
    problems.push('give exactly one of handle (one job at a time) and handleMany (a batch)');
  }
  positiveInteger('batchSize', resolved.batchSize);
  positiveInteger('concurrency', resolved.concurrency);
  positiveInteger('retry.maxAttempts', retry.maxAttempts);
  // A lease shorter than a second would have heartbeats racing the database's own latency.
  if (!Number.isFinite(resolved.leaseMs) || resolved.leaseMs < 1000) {
    problems.push(`leaseMs must be at least 1000, got ${resolved.leaseMs}`);
  }
  if (!Number.isFinite(resolved.timeoutMs) || resolved.timeoutMs <= 0) {
    problems.push(`timeoutMs must be a positive number of milliseconds, got ${resolved.timeoutMs}`);
  }
  if (resolved.keepDoneMs !== undefined && !(resolved.keepDoneMs > 0)) {
    problems.push(
      `keepDoneMs must be a positive number of milliseconds (or Infinity), got ${resolved.keepDoneMs}`,
    );
  }
  if (!(retry.baseDelayMs >= 0) || !(retry.maxDelayMs >= retry.baseDelayMs)) {
    problems.push('retry delays must satisfy 0 <= baseDelayMs <= maxDelayMs');
  }
  if (!(retry.jitter >= 0 && retry.jitter <= 1))
    problems.push(`retry.jitter must be from 0 to 1, got ${retry.jitter}`);
  if (problems.length > 0) {
    throw new ValidationError(
      'jobs.definition_invalid',
      `job type "${definition.type}" is not valid: ${problems.join('; ')}`,
      { type: definition.type, problems },
    );
  }
  return resolved;
}
