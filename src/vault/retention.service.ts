/**
 * The retention sweeper: deletes the records whose deadline (set when they came in, see
 * retention.ts) has passed. It works in batches, each its own transaction with its own audit entry,
 * so a crash loses at most the batch in flight and the next run carries on where this one stopped;
 * running it again when nothing has expired deletes nothing.
 *
 * `pledge retention run` runs it once; inside `serve` a {@link RetentionSchedule} runs it every
 * PLEDGE_RETENTION_INTERVAL seconds. With PostgreSQL several instances may sweep at once: each batch
 * locks its rows and the others skip them (records.repository.ts).
 */
import type { AuditAppender } from '../audit/audit.service.js';
import { createContext, type Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { ValidationError } from '../platform/errors.js';
import type { RecordsRepository } from './records.repository.js';

/** The largest batch: SQLite binds every id of a batch as a parameter of one DELETE. */
export const MAX_RETENTION_BATCH_SIZE = 10_000;

/** What the sweeper uses. */
export interface RetentionServiceDeps {
  /** Transactions of the main database (records and audit). */
  db: Transactions;
  records: RecordsRepository;
  audit: AuditAppender;
}

/** Options of one sweep. */
export interface RetentionRunOptions {
  /** Records deleted per transaction (default 1000). */
  batchSize?: number;
  /** The moment deadlines are compared with (default: the context's clock). */
  now?: Date;
  /** Stops the sweep between two batches (shutdown); what is left waits for the next run. */
  signal?: AbortSignal;
}

/** What one sweep deleted. */
export interface RetentionRunResult {
  deleted: number;
  /** Batches that deleted something (each one transaction and one `retention.sweep` audit entry). */
  batches: number;
  /** Deleted records per source. */
  sources: Record<string, number>;
}

/** What one batch deleted. */
export interface RetentionBatchResult {
  deleted: number;
  sources: Record<string, number>;
}

/** Deletes records past their retention deadline. */
export class RetentionService {
  readonly #db: Transactions;
  readonly #records: RecordsRepository;
  readonly #audit: AuditAppender;

  constructor(deps: RetentionServiceDeps) {
    this.#db = deps.db;
    this.#records = deps.records;
    this.#audit = deps.audit;
  }

  /**
   * Sweeps until a batch comes back short of `batchSize` (nothing more has expired) or `signal`
   * aborts. Throws `retention.batch_size_invalid` for a batch size that is not a whole number from
   * 1 to {@link MAX_RETENTION_BATCH_SIZE}; a database error ends the sweep, keeping the batches
   * already committed.
   */
  async run(ctx: Context, options: RetentionRunOptions = {}): Promise<RetentionRunResult> {
    const batchSize = options.batchSize ?? 1000;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_RETENTION_BATCH_SIZE) {
      throw new ValidationError(
        'retention.batch_size_invalid',
        `the batch size must be a whole number from 1 to ${MAX_RETENTION_BATCH_SIZE}, got ${batchSize}`,
        { batchSize },
        422,
      );
    }
    // One moment for the whole sweep: a record that expires while it runs waits for the next one,
    // which keeps "deleted up to T" a single, reportable T.
    const now = options.now ?? ctx.clock.now();
    const result: RetentionRunResult = { deleted: 0, batches: 0, sources: {} };
    while (options.signal?.aborted !== true) {
      const batch = await this.sweepBatch(ctx, now, batchSize);
      if (batch.deleted > 0) {
        result.batches++;
        result.deleted += batch.deleted;
        for (const [source, n] of Object.entries(batch.sources))
          result.sources[source] = (result.sources[source] ?? 0) + n;
      }
      if (batch.deleted < batchSize) break;
    }
    return result;
  }

  /**
   * One batch in one transaction: deletes up to `batchSize` expired records and appends one
   * `retention.sweep` audit entry (counts per source, never ids or data). Either both commit or
   * neither does, so the audit never claims a deletion that did not happen.
   */
  sweepBatch(ctx: Context, now: Date, batchSize: number): Promise<RetentionBatchResult> {
    return this.#db.transaction(ctx, async (trx) => {
      const deleted = await this.#records.deleteExpired(trx, now, batchSize);
      const sources: Record<string, number> = {};
      for (const r of deleted) sources[r.source] = (sources[r.source] ?? 0) + 1;
      if (deleted.length > 0) {
        await this.#audit.append(trx, [
          { action: 'retention.sweep', details: { records: deleted.length, sources } },
        ]);
      }
      return { deleted: deleted.length, sources };
    });
  }
}

/** Where the schedule reports; Fastify's (pino) logger fits. */
export interface RetentionLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Options of {@link RetentionSchedule}. */
export interface RetentionScheduleOptions {
  /** Time between the end of one sweep and the start of the next. */
  intervalMs: number;
  /**
   * Time before the first sweep (default: the interval, at most one minute), so a server restarted
   * more often than the interval still sweeps.
   */
  firstDelayMs?: number;
  /** Records per transaction (default 1000). */
  batchSize?: number;
  log: RetentionLogger;
}

/**
 * Runs the sweeper on a timer inside `serve`. The next sweep is armed only when the previous one has
 * finished, so sweeps never overlap; a failed sweep is logged and the schedule goes on; the timer is
 * unref'd so it never keeps a process alive on its own.
 */
export class RetentionSchedule {
  readonly #service: Pick<RetentionService, 'run'>;
  readonly #intervalMs: number;
  readonly #firstDelayMs: number;
  readonly #batchSize: number | undefined;
  readonly #log: RetentionLogger;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #abort: AbortController | undefined;

  constructor(service: Pick<RetentionService, 'run'>, options: RetentionScheduleOptions) {
    this.#service = service;
    this.#intervalMs = options.intervalMs;
    this.#firstDelayMs = options.firstDelayMs ?? Math.min(options.intervalMs, 60_000);
    this.#batchSize = options.batchSize;
    this.#log = options.log;
  }

  /** True between {@link start} and {@link stop}. */
  get started(): boolean {
    return this.#abort !== undefined;
  }

  /** Arms the first sweep; does nothing when already started. */
  start(): void {
    if (this.#abort) return;
    this.#abort = new AbortController();
    this.#arm(this.#firstDelayMs);
  }

  /**
   * Disarms the timer and asks a sweep in flight to stop after its current batch; resolves once it
   * has (the batch commits or rolls back whole, so nothing is left half done).
   */
  async stop(): Promise<void> {
    this.#abort?.abort();
    this.#abort = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.idle();
  }

  /** Resolves when no sweep is in flight. */
  async idle(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
  }

  #arm(delayMs: number): void {
    const signal = this.#abort?.signal;
    if (!signal) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#inFlight = this.#sweep(signal).finally(() => {
        this.#inFlight = undefined;
        // Armed only now: a sweep slower than the interval delays the next instead of overlapping it.
        if (!signal.aborted) this.#arm(this.#intervalMs);
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #sweep(signal: AbortSignal): Promise<void> {
    const ctx = createContext({ kind: 'job', id: 'retention' });
    try {
      const result = await this.#service.run(ctx, {
        signal,
        ...(this.#batchSize !== undefined ? { batchSize: this.#batchSize } : {}),
      });
      if (result.deleted > 0) {
        this.#log.info(
          {
            requestId: ctx.requestId,
            deleted: result.deleted,
            batches: result.batches,
            sources: result.sources,
          },
          'retention sweep deleted expired records',
        );
      }
    } catch (err) {
      // A sweep that fails (database restarting, disk full) must not take the server down with it;
      // the next one retries, and batches already committed stay done.
      this.#log.error(
        { err, requestId: ctx.requestId },
        'retention sweep failed; retrying at the next interval',
      );
    }
  }
}
