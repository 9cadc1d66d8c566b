/**
 * The worker: claims due jobs with a lease, runs their handlers, renews the leases while they run,
 * records each outcome fenced by the lease, and re-queues the jobs of workers that stopped
 * heart-beating.
 *
 * - Claims: one statement per type and pass, for as many jobs as the type has free slots (times its
 *   batch size). Passes run when this process enqueued something (after the commit), when a handler
 *   finishes, and on a poll for what other instances enqueued and for retries that came due.
 * - Heartbeats: every sixth of the shortest lease the worker looks at its claims and renews each one
 *   that has used a third of its lease, in one statement per claim. A claim it finds taken over, or
 *   cannot renew before it runs out, aborts its handler's signal: the worker never works on a job it
 *   cannot prove it holds. The same tick enforces each type's timeout.
 * - Outcomes: the state each one leaves its job in is decided by jobs.outcomes.ts, and written in
 *   group commits fenced by the lease token (jobs.completions.ts).
 * - The watchdog re-queues jobs whose lease ended (allowing for clock skew between instances) as a
 *   failed attempt, or makes them dead when that was the last attempt or their type must not run
 *   twice. A job whose worker still heart-beats always has a lease in the future, so it is never
 *   taken from it.
 * - Stop: no new claims; claims that had not started are given back at once without counting an
 *   attempt; running handlers finish (their signals abort after a grace period) and are recorded.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Clock } from '../clock.js';
import { createContext, type Context } from '../context.js';
import type { Db } from '../db/db.js';
import { PledgeError } from '../errors.js';
import { DEFAULT_LEASE_MS, type JobHandlerResult, type ResolvedJobType } from './jobs.definition.js';
import { JobCompletions } from './jobs.completions.js';
import { handlerContext, toJob } from './jobs.handler-call.js';
import { describeError, expiredFinalState, finalState } from './jobs.outcomes.js';
import type { JobRecord, JobsRepository } from './jobs.repository.js';
import type {
  JobLogger,
  JobWorkerOptions,
  RunDueOptions,
  RunDueResult,
  StopOptions,
  WatchdogResult,
} from './jobs.worker.types.js';

/** A claim statement's jobs: they share a lease token and are renewed together. */
interface Claim {
  token: string;
  type: ResolvedJobType;
  leaseUntil: Date;
  renewedAt: Date;
  executions: Set<Execution>;
}

/** Why a handler was cut short. */
type Interruption = { kind: 'timeout' } | { kind: 'lease_lost'; reason: string };

/** One handler call: one job, or a batch of them. */
interface Execution {
  claim: Claim;
  jobs: JobRecord[];
  startedAt: Date;
  controller: AbortController;
  /** Ids whose lease a heartbeat found taken over. */
  lost: Set<string>;
  interrupt(reason: Interruption): void;
  interrupted: Promise<Interruption>;
  done: Promise<RunDueResult>;
}

const WATCHDOG_BATCH = 100;
const PRUNE_BATCH = 1000;
/** Prune chunks per watchdog run, so one run stays short; the next run goes on. */
const PRUNE_CHUNKS_PER_RUN = 20;

/** Runs the jobs of the registered types; one per queue. */
export class JobWorker {
  readonly #db: Db;
  readonly #repo: JobsRepository;
  readonly #completions: JobCompletions;
  readonly #types: ReadonlyMap<string, ResolvedJobType>;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #log: JobLogger;
  readonly #pollIntervalMs: number;
  readonly #watchdogIntervalMs: number;
  readonly #clockSkewMs: number;
  readonly #retainDoneMs: number;
  readonly #name: string;
  /** Slots in use (or reserved by a claim in flight) per type. */
  readonly #busy = new Map<string, number>();
  readonly #claims = new Map<string, Claim>();
  readonly #executions = new Set<Execution>();
  readonly #passes = new Set<Promise<unknown>>();
  #started = false;
  #stopping = false;
  #pollTimer: NodeJS.Timeout | undefined;
  #tickTimer: NodeJS.Timeout | undefined;
  #watchdogTimer: NodeJS.Timeout | undefined;
  #loopPass: Promise<void> | undefined;
  #again = false;
  #stopped: Promise<void> | undefined;
  /** Types this worker's loop leaves to others (see {@link start}). */
  #skip = new Set<string>();

  constructor(options: JobWorkerOptions) {
    this.#db = options.db;
    this.#repo = options.repository;
    this.#completions = new JobCompletions({
      db: options.db,
      repository: options.repository,
      clock: options.clock,
      log: options.log,
      ctx: () => this.#ctx(),
      describeError,
    });
    this.#types = options.types;
    this.#clock = options.clock;
    this.#random = options.random;
    this.#log = options.log;
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#watchdogIntervalMs = options.watchdogIntervalMs ?? 5000;
    this.#clockSkewMs = options.clockSkewMs ?? 5000;
    this.#retainDoneMs = options.retainDoneMs ?? 7 * 24 * 3_600_000;
    this.#name = options.workerName ?? `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  /** This worker's name, as `pledge jobs show` reports the holder of a running job. */
  get name(): string {
    return this.#name;
  }

  /**
   * Starts the loop: a pass at once, then on wakes and polls; heartbeats and watchdog on timers.
   * `skip` names types this process enqueues but does not run (a server without SMTP leaves its
   * campaign sends waiting for one that has it).
   */
  start(options: { skip?: readonly string[] } = {}): void {
    if (this.#started || this.#stopping) return;
    this.#skip = new Set(options.skip ?? []);
    this.#started = true;
    this.#schedule(0);
    this.#startHeartbeats();
    this.#watchdogTimer = setInterval(() => void this.#watchdogQuietly(), this.#watchdogIntervalMs);
    this.#watchdogTimer.unref();
  }

  /**
   * Looks for due jobs at once: called after a transaction that enqueued jobs has committed, and
   * when a handler finishes. Does nothing unless started.
   */
  wake(): void {
    if (!this.#started || this.#stopping) return;
    if (this.#loopPass) {
      this.#again = true;
      return;
    }
    this.#schedule(0);
  }

  /**
   * Stops: no new claims; claims not started are given back without counting an attempt; running
   * handlers finish (their signals abort after `abortAfterMs`) and their outcomes are recorded, with
   * heartbeats going on meanwhile. Resolves when all of that is done; calling it again waits the same.
   */
  stop(options: StopOptions = {}): Promise<void> {
    return (this.#stopped ??= this.#stop(options.abortAfterMs ?? 10_000));
  }

  async #stop(abortAfterMs: number): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#pollTimer);
    clearInterval(this.#watchdogTimer);
    while (this.#passes.size > 0) await Promise.allSettled([...this.#passes]);
    const abortAll = (): void => {
      for (const e of this.#executions) e.controller.abort(stoppingError());
    };
    const abortTimer = abortAfterMs > 0 ? setTimeout(abortAll, abortAfterMs) : undefined;
    if (abortAfterMs <= 0) abortAll();
    // Heartbeats keep the leases of the handlers that are finishing; they are stopped after them.
    this.#startHeartbeats();
    while (this.#executions.size > 0) await Promise.allSettled([...this.#executions].map((e) => e.done));
    clearTimeout(abortTimer);
    clearInterval(this.#tickTimer);
    await this.#completions.drain();
  }

  /**
   * Resolves once nothing is in flight in this worker: no pass claiming, no handler running, no
   * outcome waiting to be written (a test's "the work it was woken for is done").
   */
  async idle(): Promise<void> {
    for (;;) {
      const busy: Array<Promise<unknown>> = [...this.#passes, ...[...this.#executions].map((e) => e.done)];
      if (this.#completions.busy) busy.push(this.#completions.drain());
      if (busy.length === 0) return;
      await Promise.allSettled(busy);
    }
  }

  /**
   * One pass: claims the due jobs of the given types (as many as their free slots take), runs them,
   * and resolves when they have finished and been recorded. The loop makes the same passes; tests
   * and tools call it with an injected clock. After `stop` it claims nothing.
   */
  async runDue(options: RunDueOptions = {}): Promise<RunDueResult> {
    const pass = this.#pass(options.types);
    this.#passes.add(pass);
    let started: { executions: Execution[]; released: number; claimed: number };
    try {
      started = await pass;
    } finally {
      this.#passes.delete(pass);
    }
    const results = await Promise.all(started.executions.map((e) => e.done));
    const total = emptyResult();
    total.claimed = started.claimed;
    total.released = started.released;
    for (const r of results) {
      total.done += r.done;
      total.retried += r.retried;
      total.dead += r.dead;
      total.lost += r.lost;
    }
    return total;
  }

  /**
   * The heartbeat: renews each claim that has used a third of its lease (one statement per claim),
   * aborts the handlers of jobs found taken over or whose lease could not be renewed before it ran
   * out, and stops attempts past their type's timeout. The worker's timer calls it; tests call it
   * after moving an injected clock.
   */
  async heartbeat(): Promise<void> {
    const now = this.#clock.now();
    for (const claim of [...this.#claims.values()]) {
      for (const e of claim.executions) {
        if (now.getTime() - e.startedAt.getTime() >= claim.type.timeoutMs) e.interrupt({ kind: 'timeout' });
      }
      if (claim.executions.size === 0) continue;
      const { leaseMs } = claim.type;
      if (now.getTime() - claim.renewedAt.getTime() < leaseMs / 3) continue;
      const leaseUntil = new Date(now.getTime() + leaseMs);
      try {
        const held = await this.#repo.renew(this.#ctx(), claim.token, leaseUntil, now);
        claim.leaseUntil = leaseUntil;
        claim.renewedAt = now;
        for (const e of claim.executions) {
          for (const j of e.jobs) if (!held.has(j.id)) e.lost.add(j.id);
          if (e.lost.size === e.jobs.length) {
            e.interrupt({ kind: 'lease_lost', reason: 'its lease was taken over by another worker' });
          }
        }
      } catch (err) {
        this.#log.error({ err, type: claim.type.type }, 'job heartbeat failed; retrying at the next one');
        if (this.#clock.now() >= claim.leaseUntil) {
          for (const e of claim.executions) {
            e.interrupt({ kind: 'lease_lost', reason: 'its lease could not be renewed before it ran out' });
          }
        }
      }
    }
  }

  /**
   * The watchdog: re-queues running jobs of the registered types whose lease ended more than the
   * allowed clock skew ago (a failed attempt whose error says the worker stopped heart-beating, dead
   * when it was the last or the type must not run twice), then deletes done jobs past their
   * retention. The worker's timer calls it; tests call it with an injected clock.
   */
  async watchdog(): Promise<WatchdogResult> {
    const result: WatchdogResult = { requeued: 0, dead: 0, pruned: 0 };
    const now = this.#clock.now();
    const before = new Date(now.getTime() - this.#clockSkewMs);
    const types = [...this.#types.keys()];
    for (;;) {
      const found = await this.#db.transaction(this.#ctx(), async (tctx) => {
        const expired = await this.#repo.findExpired(tctx, { types, before, limit: WATCHDOG_BATCH });
        for (const job of expired) {
          const type = this.#types.get(job.type);
          if (type === undefined) continue;
          const final = expiredFinalState(type, job, now, this.#random);
          const changed = await this.#repo.finish(tctx, {
            id: job.id,
            leaseToken: job.leaseToken,
            final,
            now,
            expiredBefore: before,
          });
          if (!changed) continue;
          const fields = { job: job.id, type: job.type, attempt: job.attempts, worker: job.worker };
          if (final.state === 'dead') {
            result.dead++;
            this.#log.error(fields, `job is dead: ${final.error}`);
          } else {
            result.requeued++;
            this.#log.warn(fields, 'job re-queued: its worker stopped heart-beating');
          }
        }
        return expired.length;
      });
      if (found < WATCHDOG_BATCH) break;
    }
    // Types with a retention of their own first, each by its own cutoff; then every other type by
    // the queue's (rows of types this instance does not know included).
    const own = [...this.#types.values()].filter((t) => t.keepDoneMs !== undefined);
    for (const t of own)
      result.pruned += await this.#pruneDone(now, t.keepDoneMs ?? Infinity, { types: [t.type] });
    result.pruned += await this.#pruneDone(now, this.#retainDoneMs, { exceptTypes: own.map((t) => t.type) });
    if (result.requeued > 0) this.wake();
    return result;
  }

  /** Deletes done jobs finished more than `keepMs` before `now`, a few chunks at most; returns how many. */
  async #pruneDone(
    now: Date,
    keepMs: number,
    filter: { types?: readonly string[]; exceptTypes?: readonly string[] },
  ): Promise<number> {
    if (!Number.isFinite(keepMs)) return 0;
    const cutoff = new Date(now.getTime() - keepMs);
    let pruned = 0;
    for (let i = 0; i < PRUNE_CHUNKS_PER_RUN; i++) {
      const n = await this.#repo.pruneDone(this.#ctx(), cutoff, PRUNE_BATCH, filter);
      pruned += n;
      if (n < PRUNE_BATCH) break;
    }
    return pruned;
  }

  // ---- internals --------------------------------------------------------------------------------

  /** Heartbeats every sixth of the shortest lease, so each claim is renewed after a third of its own. */
  #startHeartbeats(): void {
    if (this.#tickTimer !== undefined) return;
    const shortestLease = Math.min(...[...this.#types.values()].map((t) => t.leaseMs), DEFAULT_LEASE_MS);
    this.#tickTimer = setInterval(
      () => void this.heartbeat().catch((err: unknown) => this.#log.error({ err }, 'job heartbeat failed')),
      shortestLease / 6,
    );
    this.#tickTimer.unref();
  }

  #ctx(): Context {
    return createContext({ kind: 'job', id: 'jobs.worker' }, { clock: this.#clock });
  }

  async #watchdogQuietly(): Promise<void> {
    try {
      await this.watchdog();
    } catch (err) {
      this.#log.error({ err }, 'job watchdog failed; retrying at its next run');
    }
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#pollTimer);
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = undefined;
      const pass = this.#pass(undefined);
      this.#passes.add(pass);
      this.#loopPass = pass
        .then(
          () => undefined,
          (err: unknown) => this.#log.error({ err }, 'claiming jobs failed; retrying at the next poll'),
        )
        .finally(() => {
          this.#passes.delete(pass);
          this.#loopPass = undefined;
          if (this.#stopping) return;
          const again = this.#again;
          this.#again = false;
          this.#schedule(again ? 0 : this.#pollIntervalMs);
        });
    }, delayMs);
    // Not unref'd: a started worker is a live part of the process, like a listening server, and
    // stop() is what ends it. (The heartbeat and watchdog timers are: they only serve work that
    // keeps the process alive by itself.)
  }

  /** Claims for each type with free slots and starts the handlers; returns what it started. */
  async #pass(
    only: readonly string[] | undefined,
  ): Promise<{ executions: Execution[]; released: number; claimed: number }> {
    const out = { executions: [] as Execution[], released: 0, claimed: 0 };
    if (this.#stopping) return out;
    const wanted = only === undefined ? undefined : new Set(only);
    for (const type of [...this.#types.values()]) {
      if (wanted !== undefined ? !wanted.has(type.type) : this.#skip.has(type.type)) continue;
      if (this.#stopping) break;
      const free = type.concurrency - (this.#busy.get(type.type) ?? 0);
      if (free <= 0) continue;
      // Reserve the slots before the claim, so a concurrent pass cannot claim them too.
      this.#busy.set(type.type, (this.#busy.get(type.type) ?? 0) + free);
      let used = 0;
      try {
        const now = this.#clock.now();
        const token = randomUUID();
        const jobs = await this.#repo.claim(this.#ctx(), {
          type: type.type,
          now,
          limit: free * type.batchSize,
          leaseToken: token,
          leaseUntil: new Date(now.getTime() + type.leaseMs),
          worker: this.#name,
        });
        if (jobs.length === 0) continue;
        out.claimed += jobs.length;
        if (this.#stopping) {
          out.released += await this.#repo.release(
            this.#ctx(),
            token,
            jobs.map((j) => j.id),
            this.#clock.now(),
          );
          continue;
        }
        const claim: Claim = {
          token,
          type,
          leaseUntil: new Date(now.getTime() + type.leaseMs),
          renewedAt: now,
          executions: new Set(),
        };
        this.#claims.set(token, claim);
        for (let at = 0; at < jobs.length; at += type.batchSize) {
          used++;
          out.executions.push(this.#execute(claim, jobs.slice(at, at + type.batchSize)));
        }
      } finally {
        this.#busy.set(type.type, (this.#busy.get(type.type) ?? 0) - (free - used));
      }
    }
    return out;
  }

  /** Starts one handler call and returns its execution (whose `done` settles once recorded). */
  #execute(claim: Claim, jobs: JobRecord[]): Execution {
    let interrupt!: (reason: Interruption) => void;
    const interrupted = new Promise<Interruption>((resolve) => (interrupt = resolve));
    const controller = new AbortController();
    const execution: Execution = {
      claim,
      jobs,
      startedAt: this.#clock.now(),
      controller,
      lost: new Set(),
      interrupt: (reason) => {
        controller.abort(
          reason.kind === 'timeout'
            ? new PledgeError(
                'jobs.timeout',
                `the attempt did not finish within ${claim.type.timeoutMs / 1000} s`,
              )
            : new PledgeError('jobs.lease_lost', `the job's lease was lost: ${reason.reason}`),
        );
        interrupt(reason);
      },
      interrupted,
      done: Promise.resolve(emptyResult()),
    };
    claim.executions.add(execution);
    this.#executions.add(execution);
    execution.done = this.#run(execution).finally(() => {
      claim.executions.delete(execution);
      if (claim.executions.size === 0) this.#claims.delete(claim.token);
      this.#executions.delete(execution);
      this.#busy.set(claim.type.type, (this.#busy.get(claim.type.type) ?? 1) - 1);
      this.wake();
    });
    return execution;
  }

  async #run(e: Execution): Promise<RunDueResult> {
    const { type } = e.claim;
    const definition = type.definition;
    const batchCtx = handlerContext(type, e.jobs[0], this.#clock);
    const contexts = e.jobs.map((j) =>
      definition.handleMany ? batchCtx : handlerContext(type, j, this.#clock),
    );
    type Settled =
      { kind: 'results'; results: readonly JobHandlerResult[] } | { kind: 'error'; error: unknown };
    const handled: Promise<Settled> = (async (): Promise<readonly JobHandlerResult[]> => {
      if (definition.handleMany) {
        return definition.handleMany(batchCtx, e.jobs.map(toJob), e.controller.signal);
      }
      const job = e.jobs[0];
      if (job === undefined) return [];
      return [await definition.handle(contexts[0] ?? batchCtx, toJob(job), e.controller.signal)];
    })().then(
      (results): Settled => ({ kind: 'results', results }),
      (error: unknown): Settled => ({ kind: 'error', error }),
    );
    const settled = await Promise.race([handled, e.interrupted]);
    const result = emptyResult();
    if (settled.kind === 'lease_lost') {
      result.lost = e.jobs.length;
      this.#log.warn(
        { type: type.type, jobs: e.jobs.map((j) => j.id) },
        `job attempt abandoned: the job's lease was lost: ${settled.reason}`,
      );
      return result;
    }
    let outcomes: JobHandlerResult[];
    if (settled.kind === 'timeout') {
      const error = `the attempt did not finish within ${type.timeoutMs / 1000} s; its signal was aborted`;
      outcomes = e.jobs.map(() => ({ outcome: 'retry', error }));
    } else if (settled.kind === 'error') {
      const error = describeError(settled.error);
      outcomes = e.jobs.map(() => ({ outcome: 'retry', error }));
    } else if (settled.results.length !== e.jobs.length) {
      const error = `handleMany answered ${settled.results.length} results for ${e.jobs.length} jobs; it must answer one per job, in order`;
      outcomes = e.jobs.map(() => ({ outcome: 'retry', error }));
    } else {
      outcomes = [...settled.results];
    }
    const now = this.#clock.now();
    const released = e.jobs.filter((job, i) => outcomes[i]?.outcome === 'release' && !e.lost.has(job.id));
    if (released.length > 0) {
      try {
        result.released += await this.#repo.release(
          this.#ctx(),
          e.claim.token,
          released.map((j) => j.id),
          now,
        );
      } catch (err) {
        // Nobody awaits an execution of the loop: a rejection here (the database unavailable, which
        // is also when leases get lost and batches give jobs back) would end the process.
        this.#log.error(
          { err, type: type.type, jobs: released.map((j) => j.id) },
          'giving back unstarted jobs failed; they are due again when their lease runs out',
        );
      }
    }
    const applied = await Promise.all(
      e.jobs.map((job, i) => {
        if (e.lost.has(job.id)) return Promise.resolve({ final: undefined, applied: false });
        const outcome: JobHandlerResult = outcomes[i] ?? { outcome: 'retry', error: 'no result' };
        if (outcome.outcome === 'release') return Promise.resolve(RELEASED);
        const final = finalState(type, job, outcome, now, this.#random);
        return this.#completions.complete({
          job,
          token: e.claim.token,
          final,
          record: outcome.record,
          ctx: contexts[i] ?? batchCtx,
          onRecordFailed: (error) =>
            finalState(
              type,
              job,
              { outcome: 'retry', error: `recording the outcome failed: ${error}` },
              now,
              this.#random,
            ),
        });
      }),
    );
    applied.forEach((settledJob, i) => {
      const job = e.jobs[i];
      if (job === undefined || settledJob === RELEASED) return;
      const { final, applied: ok } = settledJob;
      const fields = { job: job.id, type: job.type, attempt: job.attempts, requestId: job.requestId };
      if (!ok || final === undefined) {
        result.lost++;
        this.#log.warn(fields, "job outcome not recorded: the worker no longer holds the job's lease");
        return;
      }
      switch (final.state) {
        case 'done':
          result.done++;
          break;
        case 'pending':
          result.retried++;
          // Info, not warn: the capability's handler says what failed, in its own words, at warn.
          this.#log.info(
            { ...fields, runAt: final.runAt.toISOString(), error: final.error },
            'job attempt failed; it will be retried',
          );
          break;
        case 'dead':
          result.dead++;
          this.#log.error(
            { ...fields, error: final.error },
            'job is dead; `pledge jobs retry` runs it again',
          );
          break;
      }
    });
    if (result.lost > 0 && !e.controller.signal.aborted) {
      e.controller.abort(
        new PledgeError('jobs.lease_lost', "the job's lease was lost before its outcome was recorded"),
      );
    }
    return result;
  }
}

/** The settlement of a job its handler gave back (counted as released, not as an outcome). */
const RELEASED = Object.freeze({ final: undefined, applied: false });

function emptyResult(): RunDueResult {
  return { claimed: 0, done: 0, retried: 0, dead: 0, lost: 0, released: 0 };
}

function stoppingError(): PledgeError {
  return new PledgeError('jobs.stopping', 'the job queue is stopping');
}
