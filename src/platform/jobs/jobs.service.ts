/**
 * The platform's one durable job queue: the one way to do work later.
 *
 * A job is enqueued in the transaction of the change that makes it (an outbox): it exists if and
 * only if that change committed. After the commit this process's worker looks at once; other
 * instances find the job on their next poll. Workers claim jobs with a lease, renew it while they
 * run, and record each outcome fenced by it; a watchdog re-queues the jobs of workers that stopped
 * heart-beating. Failed attempts are retried with exponential backoff and jitter; a job that runs
 * out of attempts is dead, keeping its last error, until someone retries it. See docs/jobs.md.
 */
import { systemClock, type Clock } from '../clock.js';
import type { Context } from '../context.js';
import type { Db } from '../db/db.js';
import { ConflictError, NotFoundError, pageLimitOrThrow, ValidationError } from '../errors.js';
import { uuidv7 } from '../ids.js';
import {
  resolveJobDefinition,
  type JobDefinition,
  type JsonValue,
  type ResolvedJobType,
} from './jobs.definition.js';
import { JobsRepository, type JobRecord, type NewJobRow } from './jobs.repository.js';
import type { JobState } from './jobs.tables.js';
import { JobWorker } from './jobs.worker.js';
import type {
  JobLogger,
  RunDueOptions,
  RunDueResult,
  StopOptions,
  WatchdogResult,
} from './jobs.worker.types.js';

export type { JobRecord } from './jobs.repository.js';
export type { JobState } from './jobs.tables.js';

/** Every state a job can be in, in the order of its life. */
export const JOB_STATES: readonly JobState[] = ['pending', 'running', 'done', 'dead'];

/** The largest page of {@link JobQueue.list}. */
export const MAX_JOBS_PAGE = 500;

/** What the queue uses. */
export interface JobQueueOptions {
  db: Db;
  /** Time for scheduling and leases (default: the wall clock); tests pass a fixed clock. */
  clock?: Clock;
  /** Random numbers in [0, 1) for the retry jitter (default Math.random). */
  random?: () => number;
  log?: JobLogger;
  /** How often the worker looks for jobs it was not woken for (default 1 s). */
  pollIntervalMs?: number;
  /** How often the watchdog looks for expired leases (default 5 s). */
  watchdogIntervalMs?: number;
  /** How far instances' clocks may disagree before a lease counts as expired (default 5 s). */
  clockSkewMs?: number;
  /** How long done jobs are kept, idempotency keys with them (default 7 days; Infinity keeps them). */
  retainDoneMs?: number;
  /** The largest payload, in bytes of JSON (default 16 KiB): payloads carry ids, not documents. */
  maxPayloadBytes?: number;
  /** This worker's name in the table (default host:pid:random). */
  workerName?: string;
}

/** How to enqueue a job. */
export interface EnqueueOptions {
  /**
   * An idempotency key, unique per type: enqueueing the same key again does nothing and says so. Like
   * the payload it holds ids, never personal data (`consent-change:<event id>:<webhook>`).
   */
  key?: string | undefined;
  /** When the job is due (default: now). */
  runAt?: Date | undefined;
  /** Attempts before it is dead (default: its type's retry policy). */
  maxAttempts?: number | undefined;
}

/** One job of {@link JobQueue.enqueueMany}. */
export interface EnqueueManyItem extends EnqueueOptions {
  type: string;
  /** JSON of ids and flags, never personal data. */
  payload: JsonValue;
}

/** What {@link JobQueue.enqueue} did. */
export interface EnqueueResult {
  /** The job's id: the new one, or the one already enqueued with the same key. */
  id: string;
  /** False when a job of this type already had the key (nothing was enqueued). */
  created: boolean;
}

/** What {@link JobQueue.enqueueMany} did. */
export interface EnqueueManyResult {
  /** The id of each item's job, in the order given (the existing job's when its key was taken). */
  ids: string[];
  created: number;
  /** Items skipped because their type and key were taken (earlier, or by an item before them). */
  existing: number;
}

/** Filters of {@link JobQueue.list}. */
export interface ListJobsOptions {
  state?: JobState | undefined;
  type?: string | undefined;
  /** The id of the last job of the previous page. */
  before?: string | undefined;
  /** At most this many, newest first (1 to 500, default 50). */
  limit?: number | undefined;
}

/** Jobs by state, overall and per type: for metrics and the health detail view. */
export interface JobCountsResult {
  states: Record<JobState, number>;
  types: Array<{ type: string; states: Record<JobState, number>; oldestPendingRunAt: Date | undefined }>;
}

/** A registered type, with typed enqueueing of its payload. */
export interface JobType<P> {
  readonly type: string;
  /** {@link JobQueue.enqueue} for this type. */
  enqueue(ctx: Context, payload: P, options?: EnqueueOptions): Promise<EnqueueResult>;
  /** {@link JobQueue.enqueueMany} for this type. */
  enqueueMany(
    ctx: Context,
    items: ReadonlyArray<EnqueueOptions & { payload: P }>,
  ): Promise<EnqueueManyResult>;
}

const MAX_KEY_LENGTH = 200;

/** Enqueues jobs, runs them (its worker), and lets administrators see and retry them. */
export class JobQueue {
  readonly #db: Db;
  readonly #repo: JobsRepository;
  readonly #types = new Map<string, ResolvedJobType>();
  readonly #worker: JobWorker;
  readonly #clock: Clock;
  readonly #maxPayloadBytes: number;

  constructor(options: JobQueueOptions) {
    this.#db = options.db;
    this.#repo = new JobsRepository(options.db);
    this.#clock = options.clock ?? systemClock;
    this.#maxPayloadBytes = options.maxPayloadBytes ?? 16 * 1024;
    this.#worker = new JobWorker({
      db: options.db,
      repository: this.#repo,
      types: this.#types,
      clock: this.#clock,
      random: options.random ?? Math.random,
      log: options.log ?? silentLog,
      pollIntervalMs: options.pollIntervalMs,
      watchdogIntervalMs: options.watchdogIntervalMs,
      clockSkewMs: options.clockSkewMs,
      retainDoneMs: options.retainDoneMs,
      workerName: options.workerName,
    });
  }

  /**
   * Registers a job type; throws `jobs.definition_invalid` (listing every problem) or
   * `jobs.type_duplicate`. Register every type at boot, before `start`, in every instance.
   */
  define<P = JsonValue>(definition: JobDefinition<P>): JobType<P> {
    const resolved = resolveJobDefinition(definition);
    if (this.#types.has(resolved.type)) {
      throw new ValidationError('jobs.type_duplicate', `job type "${resolved.type}" is defined twice`, {
        type: resolved.type,
      });
    }
    this.#types.set(resolved.type, resolved);
    return {
      type: resolved.type,
      enqueue: (ctx, payload, options) => this.enqueue(ctx, resolved.type, payload as JsonValue, options),
      enqueueMany: (ctx, items) =>
        this.enqueueMany(
          ctx,
          items.map((i) => ({ ...i, type: resolved.type, payload: i.payload as JsonValue })),
        ),
    };
  }

  /** The registered type names, sorted. */
  types(): string[] {
    return [...this.#types.keys()].sort();
  }

  // ---- enqueueing (inside the caller's transaction) ----------------------------------------------

  /**
   * Enqueues a job in the transaction `ctx` is bound to (or on its own when it has none), so it
   * exists if and only if that transaction commits; the enqueuing actor and request id are kept with
   * it. The payload is JSON holding ids only, never personal data: the handler loads what it needs
   * when it runs (and finds nothing of an erased subject). With a key already taken for the type,
   * nothing is enqueued and the result says so. Throws `jobs.type_unknown`, `jobs.payload_invalid`,
   * `jobs.payload_too_large` or `jobs.options_invalid`.
   */
  async enqueue(
    ctx: Context,
    type: string,
    payload: JsonValue,
    options: EnqueueOptions = {},
  ): Promise<EnqueueResult> {
    const result = await this.enqueueMany(ctx, [{ ...options, type, payload }]);
    return { id: result.ids[0] ?? '', created: result.created === 1 };
  }

  /**
   * Enqueues many jobs in one transaction (the caller's, or one of its own), in multi-row INSERTs: a
   * campaign enqueues one job per recipient this way. The same rules as {@link enqueue}; a key that
   * is taken, or repeated within `items`, keeps the first job.
   */
  async enqueueMany(ctx: Context, items: readonly EnqueueManyItem[]): Promise<EnqueueManyResult> {
    if (items.length === 0) return { ids: [], created: 0, existing: 0 };
    // The queue's clock, not the caller's: due times are compared with it when jobs are claimed.
    const now = this.#clock.now();
    const rows = items.map((item, index) => this.#newRow(ctx, item, index, now));
    return this.#db.transaction(ctx, async (tctx) => {
      const created = new Set(await this.#repo.insertMany(tctx, rows));
      const ids = rows.map((r) => r.id);
      // Items whose key was taken get the id of the job that has it.
      const skipped = new Map<string, number[]>();
      rows.forEach((r, i) => {
        if (created.has(r.id) || r.key === undefined) return;
        let list = skipped.get(r.type);
        if (list === undefined) skipped.set(r.type, (list = []));
        list.push(i);
      });
      for (const [type, indexes] of skipped) {
        const keys = indexes.map((i) => rows[i]?.key ?? '');
        const existing = await this.#repo.idsByKey(tctx, type, [...new Set(keys)]);
        indexes.forEach((i, n) => (ids[i] = existing.get(keys[n] ?? '') ?? ids[i] ?? ''));
      }
      if (created.size > 0) this.#db.afterCommit(tctx, () => this.#worker.wake());
      return { ids, created: created.size, existing: rows.length - created.size };
    });
  }

  // ---- running ----------------------------------------------------------------------------------

  /**
   * Starts this process's worker (claims, heartbeats, watchdog). Does nothing when started. `skip`
   * names types this process enqueues but leaves for other instances to run.
   */
  start(options: { skip?: readonly string[] } = {}): void {
    this.#worker.start(options);
  }

  /**
   * Stops the worker gracefully: no new claims, unstarted claims given back without counting an
   * attempt, running handlers finished (their signals abort after `abortAfterMs`, default 10 s) and
   * recorded. Enqueueing still works (other instances run what is enqueued).
   */
  stop(options?: StopOptions): Promise<void> {
    return this.#worker.stop(options);
  }

  /** Resolves once this process's worker has nothing in flight (for tests and graceful tools). */
  idle(): Promise<void> {
    return this.#worker.idle();
  }

  /** One pass of the worker: claims due jobs, runs them, resolves with what happened. For tests and tools. */
  runDue(options?: RunDueOptions): Promise<RunDueResult> {
    return this.#worker.runDue(options);
  }

  /** One heartbeat of the worker (renew leases, enforce timeouts); its timer calls it. For tests. */
  heartbeat(): Promise<void> {
    return this.#worker.heartbeat();
  }

  /** One run of the watchdog (re-queue expired leases, prune done jobs); its timer calls it. For tests. */
  watchdog(): Promise<WatchdogResult> {
    return this.#worker.watchdog();
  }

  // ---- administration ---------------------------------------------------------------------------

  /** Jobs, newest first. Throws `jobs.limit_invalid` for a limit out of range. */
  async list(ctx: Context, options: ListJobsOptions = {}): Promise<JobRecord[]> {
    const limit = pageLimitOrThrow('jobs.limit_invalid', options.limit, MAX_JOBS_PAGE, 50);
    return this.#repo.list(ctx, { ...options, limit });
  }

  /** One job, or `undefined`. */
  get(ctx: Context, id: string): Promise<JobRecord | undefined> {
    return this.#repo.get(ctx, id);
  }

  /** One job; throws `jobs.not_found`. */
  async getOrThrow(ctx: Context, id: string): Promise<JobRecord> {
    const job = await this.#repo.get(ctx, id);
    if (job === undefined) throw jobNotFound(id);
    return job;
  }

  /**
   * Moves a dead job back to pending, due now, with a fresh set of attempts (its last error is kept
   * until an attempt replaces it). Throws `jobs.not_found`, or `jobs.not_dead` for a job in any other
   * state (only dead jobs are retried by hand; the others are in the queue already).
   */
  async retry(ctx: Context, id: string): Promise<JobRecord> {
    return this.#db.transaction(ctx, async (tctx) => {
      const moved = await this.#repo.requeueDead(tctx, id, this.#clock.now());
      const job = await this.#repo.get(tctx, id);
      if (job === undefined) throw jobNotFound(id);
      if (!moved) {
        throw new ConflictError(
          'jobs.not_dead',
          `job ${id} is ${job.state}, not dead; only dead jobs are retried (the others are still in the queue or finished)`,
          { id, state: job.state },
        );
      }
      this.#db.afterCommit(tctx, () => this.#worker.wake());
      return job;
    });
  }

  /**
   * Moves the dead jobs of `type` with these idempotency keys back to pending, due now, with a fresh
   * set of attempts (a capability's own "try again": redelivering failed webhooks); returns how many
   * were dead. Keys of jobs in another state, or of no job, are left alone.
   */
  async retryDeadByKeys(ctx: Context, type: string, keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.#db.transaction(ctx, async (tctx) => {
      const ids = await this.#repo.idsByKey(tctx, type, [...new Set(keys)]);
      let moved = 0;
      for (const id of ids.values()) if (await this.#repo.requeueDead(tctx, id, this.#clock.now())) moved++;
      if (moved > 0) this.#db.afterCommit(tctx, () => this.#worker.wake());
      return moved;
    });
  }

  /**
   * How many jobs there are in each state, overall and per type, with the run time of each type's
   * oldest pending job (how far behind the queue is). It reads an index of the whole table: for a
   * metrics scrape or a health detail view, not for every request.
   */
  async counts(ctx: Context): Promise<JobCountsResult> {
    const [rows, oldest] = await Promise.all([this.#repo.counts(ctx), this.#repo.oldestPending(ctx)]);
    const states = emptyStates();
    const types = new Map<string, JobCountsResult['types'][number]>();
    for (const name of [...this.#types.keys(), ...rows.map((r) => r.type)]) {
      if (!types.has(name))
        types.set(name, { type: name, states: emptyStates(), oldestPendingRunAt: oldest.get(name) });
    }
    for (const r of rows) {
      states[r.state] += r.count;
      const t = types.get(r.type);
      if (t) t.states[r.state] += r.count;
    }
    return {
      states,
      types: [...types.values()].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)),
    };
  }

  // ---- internals --------------------------------------------------------------------------------

  #newRow(ctx: Context, item: EnqueueManyItem, index: number, now: Date): NewJobRow {
    const where = (field: string) => `${field} of job ${index + 1} (type "${item.type}")`;
    const type = this.#types.get(item.type);
    if (type === undefined) {
      const known = this.types();
      throw new ValidationError(
        'jobs.type_unknown',
        `there is no job type "${item.type}"; ${known.length > 0 ? `the types are ${known.map((k) => `"${k}"`).join(', ')}` : 'none is defined'} (define it with queue.define before enqueueing)`,
        { type: item.type },
      );
    }
    let payload: string | undefined;
    try {
      payload = JSON.stringify(item.payload);
    } catch (err) {
      throw new ValidationError(
        'jobs.payload_invalid',
        `${where('the payload')} is not JSON: ${(err as Error).message}`,
        {
          type: item.type,
          index,
        },
      );
    }
    if (typeof payload !== 'string') {
      throw new ValidationError(
        'jobs.payload_invalid',
        `${where('the payload')} is not JSON (give ids in an object)`,
        {
          type: item.type,
          index,
        },
      );
    }
    const bytes = Buffer.byteLength(payload);
    if (bytes > this.#maxPayloadBytes) {
      throw new ValidationError(
        'jobs.payload_too_large',
        `${where('the payload')} is ${bytes} bytes of JSON, more than ${this.#maxPayloadBytes}; a payload names things by id, and the handler loads them`,
        { type: item.type, index, bytes, max: this.#maxPayloadBytes },
      );
    }
    if (
      item.key !== undefined &&
      (typeof item.key !== 'string' || item.key.length < 1 || item.key.length > MAX_KEY_LENGTH)
    ) {
      throw new ValidationError(
        'jobs.options_invalid',
        `${where('the key')} must be 1 to ${MAX_KEY_LENGTH} characters`,
        {
          type: item.type,
          index,
        },
      );
    }
    const maxAttempts = item.maxAttempts ?? type.retry.maxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new ValidationError(
        'jobs.options_invalid',
        `${where('maxAttempts')} must be a whole number of at least 1, got ${maxAttempts}`,
        {
          type: item.type,
          index,
        },
      );
    }
    if (item.runAt !== undefined && !(item.runAt instanceof Date && Number.isFinite(item.runAt.getTime()))) {
      throw new ValidationError('jobs.options_invalid', `${where('runAt')} must be a valid Date`, {
        type: item.type,
        index,
      });
    }
    return {
      id: uuidv7(),
      type: item.type,
      key: item.key,
      payload,
      runAt: item.runAt ?? now,
      maxAttempts,
      // A handler acts for the system the enqueuing call acted for, and is held to its purposes.
      enqueuedBy: ctx.actor,
      enqueuedFor: ctx.system,
      requestId: ctx.requestId,
      createdAt: now,
    };
  }
}

function emptyStates(): Record<JobState, number> {
  return { pending: 0, running: 0, done: 0, dead: 0 };
}

function jobNotFound(id: string): NotFoundError {
  return new NotFoundError(
    'jobs.not_found',
    `there is no job "${id}" (done jobs are deleted after their retention)`,
    {
      id,
    },
  );
}

const silentLog: JobLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
