/** What the job worker is given and what it reports: the shapes its callers use. */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import type { ResolvedJobType } from './jobs.definition.js';
import type { JobsRepository } from './jobs.repository.js';

/** Where the worker reports; Fastify's (pino) logger fits. It is never given a payload. */
export interface JobLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the job worker (jobs.worker.ts) is given. */
export interface JobWorkerOptions {
  db: Db;
  repository: JobsRepository;
  /** The registered types; read on every pass, so types defined later are picked up. */
  types: ReadonlyMap<string, ResolvedJobType>;
  clock: Clock;
  random: () => number;
  log: JobLogger;
  /** How often to look for due jobs besides the wakes (default 1 s). */
  pollIntervalMs?: number | undefined;
  /** How often the watchdog looks for expired leases (default 5 s). */
  watchdogIntervalMs?: number | undefined;
  /**
   * How far instances' clocks may disagree (default 5 s): the watchdog takes a job over only this
   * long after its lease ended by its own clock, so a fast clock elsewhere cannot take live work.
   */
  clockSkewMs?: number | undefined;
  /** How long done jobs are kept before the watchdog deletes them (default 7 days). */
  retainDoneMs?: number | undefined;
  /** This worker's name in the table (default host:pid:random). */
  workerName?: string | undefined;
}

/** Which types a pass claims (all registered types when absent). */
export interface RunDueOptions {
  types?: readonly string[] | undefined;
}

/** What one pass did, counted in jobs. */
export interface RunDueResult {
  claimed: number;
  done: number;
  /** Failed attempts that will be retried. */
  retried: number;
  dead: number;
  /**
   * Attempts whose outcome this worker could not record: its lease had been taken over (the job is
   * another worker's now), or the database failed (the watchdog re-queues the job once the lease ends).
   */
  lost: number;
  /** Claims given back unstarted because the queue was stopping. */
  released: number;
}

/** What one watchdog run did. */
export interface WatchdogResult {
  /** Jobs of a stopped worker put back in the queue. */
  requeued: number;
  /** Jobs of a stopped worker that were on their last attempt or must not run twice. */
  dead: number;
  /** Done jobs deleted after their retention. */
  pruned: number;
}

/** How the worker's `stop` ends the handlers still running. */
export interface StopOptions {
  /** How long running handlers have before their signals abort (default 10 s; 0 aborts at once). */
  abortAfterMs?: number;
}
