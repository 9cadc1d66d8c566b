/**
 * The job queue's table as Kysely sees it. Timestamps are ISO-8601 text (`toISOString()`, which sorts
 * as text) and JSON is text, in both engines, as for every other table.
 */

/** Where a job stands: waiting for its time, held by a worker, finished, or given up on. */
export type JobState = 'pending' | 'running' | 'done' | 'dead';

/** One unit of work to do later. Only jobs.repository.ts reads and writes it. */
export interface JobsTable {
  /** UUIDv7: creation order is id order. */
  id: string;
  /** The registered job type, e.g. `webhooks.deliver`. */
  type: string;
  /** The idempotency key, unique per type; null when the job has none. */
  key: string | null;
  /** JSON: ids and flags only, never personal data. */
  payload: string;
  state: JobState;
  /** When the job is due (pending), or was when it was claimed. */
  run_at: string;
  /** Attempts started, the one running included. */
  attempts: number;
  max_attempts: number;
  /** The claim that holds the job while it runs; every write by a worker is fenced by it. */
  lease_token: string | null;
  /** Until when that claim holds unless renewed by a heartbeat. */
  lease_until: string | null;
  /** The worker holding the claim (host:pid:random), for people reading `pledge jobs show`. */
  worker: string | null;
  /** The error of the latest failed attempt. */
  last_error: string | null;
  /** JSON of the Actor whose action enqueued the job. */
  enqueued_by: string;
  /** The request that enqueued it, so the job's logs follow on from the request's. */
  request_id: string;
  created_at: string;
  updated_at: string;
  /** When the latest attempt started. */
  started_at: string | null;
  /** When it became done or dead. */
  finished_at: string | null;
}

/** The tables of the job queue. */
export interface JobTables {
  jobs: JobsTable;
}
