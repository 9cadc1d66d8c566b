/**
 * The job queue's SQL; the only file that touches the `jobs` table. Every write a worker makes to a
 * job it holds is fenced by its lease token (and the state `running`), so a worker whose lease was
 * taken over changes nothing.
 */
import { CompiledQuery, sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import { PledgeError } from '../errors.js';
import type { Actor, Context } from '../context.js';
import type { Db } from '../db/db.js';
import type { JobFinalState, JsonValue } from './jobs.definition.js';
import type { JobState, JobsTable, JobTables } from './jobs.tables.js';

/** A job as stored, for the queue's administrators (the payload parsed, the rest as it is). */
export interface JobRecord {
  id: string;
  type: string;
  key: string | undefined;
  payload: JsonValue;
  state: JobState;
  /** When it is due (pending), or was when last claimed. */
  runAt: Date;
  attempts: number;
  maxAttempts: number;
  leaseUntil: Date | undefined;
  worker: string | undefined;
  lastError: string | undefined;
  enqueuedBy: Actor;
  /** The system the enqueuing call acted for; the job acts for it too. */
  enqueuedFor: string | undefined;
  requestId: string;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | undefined;
  finishedAt: Date | undefined;
}

/** A row to insert (the service has made its id, serialized its payload and checked it). */
export interface NewJobRow {
  id: string;
  type: string;
  key: string | undefined;
  payload: string;
  runAt: Date;
  maxAttempts: number;
  enqueuedBy: Actor;
  enqueuedFor: string | undefined;
  requestId: string;
  createdAt: Date;
}

/** A running job whose lease ran out, with the token that fences the watchdog's change to it. */
export interface ExpiredJob extends JobRecord {
  leaseToken: string;
}

/** What {@link JobsRepository.claim} asks for. */
export interface ClaimOptions {
  type: string;
  now: Date;
  limit: number;
  leaseToken: string;
  leaseUntil: Date;
  worker: string;
}

/** Filters of {@link JobsRepository.list}. */
export interface ListJobsOptions {
  state?: JobState | undefined;
  type?: string | undefined;
  /** Only jobs older than this id (the last id of the previous page). */
  before?: string | undefined;
  limit: number;
}

/** One line of {@link JobsRepository.counts}. */
export interface JobCountRow {
  type: string;
  state: JobState;
  count: number;
}

/** The columns of an INSERT, in the order their parameters are bound. */
const INSERT_COLUMNS = [
  'id',
  'type',
  'key',
  'payload',
  'state',
  'run_at',
  'attempts',
  'max_attempts',
  'lease_token',
  'lease_until',
  'worker',
  'last_error',
  'enqueued_by',
  'request_id',
  'created_at',
  'updated_at',
  'started_at',
  'finished_at',
] as const satisfies ReadonlyArray<keyof JobsTable>;
/** Rows per SQLite INSERT, a power of two: 18 parameters a row stays below its 32,766. */
const SQLITE_CHUNK = 256;
/** Rows per PostgreSQL INSERT (one array per column). */
const UNNEST_CHUNK = 5000;
/** Ids per `IN (...)` list. */
const ID_CHUNK = 500;

/** Reads and writes jobs, through the executor of the context it is given. */
export class JobsRepository {
  readonly #db: Db;
  /** SQLite INSERTs by row count (see #sqliteInsert). */
  readonly #inserts = new Map<number, string>();

  constructor(db: Db) {
    this.#db = db;
  }

  #x(ctx: Context): Kysely<JobTables> {
    return this.#db.executor<JobTables>(ctx);
  }

  /**
   * Inserts jobs in the context's transaction; a job whose type and key are taken (or repeated
   * earlier in `jobs`) is skipped. Returns the ids of the jobs inserted.
   */
  async insertMany(ctx: Context, jobs: readonly NewJobRow[]): Promise<string[]> {
    const db = this.#x(ctx);
    const created: string[] = [];
    const rows = jobs.map(toRow);
    if (this.#db.dialect === 'postgres') {
      // One array per column, unnested into rows: a statement of 18 parameters however many rows,
      // where a multi-row VALUES list has 18 a row for the server to parse and plan.
      for (let at = 0; at < rows.length; at += UNNEST_CHUNK) {
        const chunk = rows.slice(at, at + UNNEST_CHUNK);
        const column = <K extends keyof Insertable<JobsTable>>(name: K) => chunk.map((r) => r[name] ?? null);
        const inserted = await db
          .insertInto('jobs')
          .columns(INSERT_COLUMNS)
          .expression(
            sql<Insertable<JobsTable>>`select * from unnest(${sql.join(
              INSERT_COLUMNS.map(
                (c) =>
                  sql`${column(c)}::${sql.raw(c === 'attempts' || c === 'max_attempts' ? 'integer' : 'text')}[]`,
              ),
            )})`,
          )
          .onConflict((oc) => oc.columns(['type', 'key']).doNothing())
          .returning('id')
          .execute();
        for (const r of inserted) created.push(r.id);
      }
      return created;
    }
    for (let at = 0; at < rows.length;) {
      let size = SQLITE_CHUNK;
      while (size > rows.length - at) size >>= 1;
      const chunk = rows.slice(at, at + size);
      at += size;
      const parameters: unknown[] = [];
      for (const row of chunk) for (const c of INSERT_COLUMNS) parameters.push(row[c] ?? null);
      const result = await db.executeQuery<{ id: string }>(
        CompiledQuery.raw(this.#sqliteInsert(db, chunk, parameters), parameters),
      );
      for (const r of result.rows) created.push(r.id);
    }
    return created;
  }

  /**
   * The SQLite INSERT of `rows.length` rows, built by Kysely once per size and kept: building a
   * multi-row INSERT makes an operation node per value, on every call. The first build of a size
   * checks that Kysely binds the parameters in the order this file lists them.
   */
  #sqliteInsert(
    db: Kysely<JobTables>,
    rows: ReadonlyArray<Insertable<JobsTable>>,
    parameters: readonly unknown[],
  ): string {
    let text = this.#inserts.get(rows.length);
    if (text !== undefined) return text;
    const ordered = rows.map((r) =>
      Object.fromEntries(INSERT_COLUMNS.map((c) => [c, r[c] ?? null])),
    ) as never;
    const compiled = db
      .insertInto('jobs')
      .values(ordered)
      .onConflict((oc) => oc.columns(['type', 'key']).doNothing())
      .returning('id')
      .compile();
    if (
      compiled.parameters.length !== parameters.length ||
      !compiled.parameters.every((p, i) => Object.is(p, parameters[i]))
    ) {
      throw new PledgeError(
        'db.internal',
        'the INSERT into jobs did not bind its parameters in column order',
      );
    }
    text = compiled.sql;
    this.#inserts.set(rows.length, text);
    return text;
  }

  /** The ids of the jobs of `type` with these keys, by key. */
  async idsByKey(ctx: Context, type: string, keys: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (let at = 0; at < keys.length; at += ID_CHUNK) {
      const rows = await this.#x(ctx)
        .selectFrom('jobs')
        .select(['id', 'key'])
        .where('type', '=', type)
        .where('key', 'in', keys.slice(at, at + ID_CHUNK))
        .execute();
      for (const r of rows) if (r.key !== null) found.set(r.key, r.id);
    }
    return found;
  }

  /**
   * Claims up to `limit` pending jobs of a type that are due, oldest first, in one statement: they
   * become running under `leaseToken` until `leaseUntil`, and their attempt count goes up by one. On
   * PostgreSQL the rows are chosen FOR UPDATE SKIP LOCKED, so claimers on any number of instances get
   * disjoint jobs without waiting for each other; on SQLite the statement is the lock (one writer).
   */
  async claim(ctx: Context, options: ClaimOptions): Promise<JobRecord[]> {
    const db = this.#x(ctx);
    const now = options.now.toISOString();
    const due = db
      .selectFrom('jobs')
      .select('id')
      // A literal, not a parameter: the planners match it against the partial index's predicate.
      .where('state', '=', sql.lit('pending'))
      .where('type', '=', options.type)
      .where('run_at', '<=', now)
      .orderBy('run_at')
      .limit(options.limit)
      .$if(this.#db.dialect === 'postgres', (qb) => qb.forUpdate().skipLocked());
    const rows = await db
      .updateTable('jobs')
      .set((eb) => ({
        state: 'running',
        attempts: eb('attempts', '+', 1),
        lease_token: options.leaseToken,
        lease_until: options.leaseUntil.toISOString(),
        worker: options.worker,
        started_at: now,
        updated_at: now,
      }))
      // On PostgreSQL, `= any(array(...))` makes the subquery an init plan that runs once, and the
      // update a primary-key lookup of its ids; with `in (...)` the planner may join the whole table.
      .$if(this.#db.dialect === 'postgres', (qb) =>
        qb.where(sql<boolean>`${sql.ref('id')} = any(array(${due}))`),
      )
      .$if(this.#db.dialect !== 'postgres', (qb) => qb.where('id', 'in', due))
      .returningAll()
      .execute();
    // RETURNING keeps no order; run them in the order they were due.
    return rows.map(fromRow).sort((a, b) => a.runAt.getTime() - b.runAt.getTime() || cmp(a.id, b.id));
  }

  /** Extends the lease of a claim; returns the ids it still holds (the others were taken over). */
  async renew(ctx: Context, leaseToken: string, leaseUntil: Date, now: Date): Promise<Set<string>> {
    const rows = await this.#x(ctx)
      .updateTable('jobs')
      .set({ lease_until: leaseUntil.toISOString(), updated_at: now.toISOString() })
      .where('lease_token', '=', leaseToken)
      .where('state', '=', sql.lit('running'))
      .returning('id')
      .execute();
    return new Set(rows.map((r) => r.id));
  }

  /** Gives back claimed jobs that never started: pending again, due as before, the attempt uncounted. */
  async release(ctx: Context, leaseToken: string, ids: readonly string[], now: Date): Promise<number> {
    let n = 0;
    for (let at = 0; at < ids.length; at += ID_CHUNK) {
      const result = await this.#x(ctx)
        .updateTable('jobs')
        .set((eb) => ({
          state: 'pending',
          attempts: eb('attempts', '-', 1),
          lease_token: null,
          lease_until: null,
          worker: null,
          updated_at: now.toISOString(),
        }))
        .where('lease_token', '=', leaseToken)
        .where('state', '=', sql.lit('running'))
        .where('id', 'in', ids.slice(at, at + ID_CHUNK))
        .executeTakeFirst();
      n += Number(result.numUpdatedRows);
    }
    return n;
  }

  /** Marks jobs of one claim done; returns the ids it could (those whose lease still held). */
  async completeMany(ctx: Context, leaseToken: string, ids: readonly string[], now: Date): Promise<string[]> {
    const done: string[] = [];
    for (let at = 0; at < ids.length; at += ID_CHUNK) {
      const rows = await this.#x(ctx)
        .updateTable('jobs')
        .set({
          state: 'done',
          lease_token: null,
          lease_until: null,
          updated_at: now.toISOString(),
          finished_at: now.toISOString(),
        })
        .where('lease_token', '=', leaseToken)
        .where('state', '=', sql.lit('running'))
        .where('id', 'in', ids.slice(at, at + ID_CHUNK))
        .returning('id')
        .execute();
      for (const r of rows) done.push(r.id);
    }
    return done;
  }

  /**
   * Moves a running job to its final state, only while `leaseToken` holds it (and, for the watchdog,
   * only while its lease is still expired at `expiredBefore`, so a heartbeat that landed in between
   * wins). Returns false when it did not.
   */
  async finish(
    ctx: Context,
    change: { id: string; leaseToken: string; final: JobFinalState; now: Date; expiredBefore?: Date },
  ): Promise<boolean> {
    const now = change.now.toISOString();
    const { final } = change;
    const result = await this.#x(ctx)
      .updateTable('jobs')
      .set({
        state: final.state,
        lease_token: null,
        lease_until: null,
        updated_at: now,
        ...(final.state === 'pending' ? { run_at: final.runAt.toISOString(), last_error: final.error } : {}),
        ...(final.state === 'dead' ? { last_error: final.error, finished_at: now } : {}),
        ...(final.state === 'done' ? { finished_at: now } : {}),
      })
      .where('id', '=', change.id)
      .where('lease_token', '=', change.leaseToken)
      .where('state', '=', sql.lit('running'))
      .$if(change.expiredBefore !== undefined, (qb) =>
        qb.where('lease_until', '<', change.expiredBefore?.toISOString() ?? ''),
      )
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Running jobs of these types whose lease ended before `before`, oldest lease first. Run it in a
   * transaction: on PostgreSQL the rows are locked (SKIP LOCKED) so two watchdogs split them.
   */
  async findExpired(
    ctx: Context,
    options: { types: readonly string[]; before: Date; limit: number },
  ): Promise<ExpiredJob[]> {
    if (options.types.length === 0) return [];
    const rows = await this.#x(ctx)
      .selectFrom('jobs')
      .selectAll()
      .where('state', '=', sql.lit('running'))
      .where('lease_until', '<', options.before.toISOString())
      .where('type', 'in', [...options.types])
      .orderBy('lease_until')
      .limit(options.limit)
      .$if(this.#db.dialect === 'postgres', (qb) => qb.forUpdate().skipLocked())
      .execute();
    return rows.map((r) => ({ ...fromRow(r), leaseToken: r.lease_token ?? '' }));
  }

  /** Moves a dead job back to pending, due at `now`, with no attempts made; false if it is not dead. */
  async requeueDead(ctx: Context, id: string, now: Date): Promise<boolean> {
    const result = await this.#x(ctx)
      .updateTable('jobs')
      .set({
        state: 'pending',
        attempts: 0,
        run_at: now.toISOString(),
        updated_at: now.toISOString(),
        finished_at: null,
        worker: null,
      })
      .where('id', '=', id)
      .where('state', '=', 'dead')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** One job, or `undefined`. */
  async get(ctx: Context, id: string): Promise<JobRecord | undefined> {
    const row = await this.#x(ctx).selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row && fromRow(row);
  }

  /** Jobs, newest first. */
  async list(ctx: Context, options: ListJobsOptions): Promise<JobRecord[]> {
    const rows = await this.#x(ctx)
      .selectFrom('jobs')
      .selectAll()
      .$if(options.state !== undefined, (qb) => qb.where('state', '=', options.state ?? 'pending'))
      .$if(options.type !== undefined, (qb) => qb.where('type', '=', options.type ?? ''))
      .$if(options.before !== undefined, (qb) => qb.where('id', '<', options.before ?? ''))
      .orderBy('id', 'desc')
      .limit(options.limit)
      .execute();
    return rows.map(fromRow);
  }

  /** How many jobs there are per type and state (zero counts left out). */
  async counts(ctx: Context): Promise<JobCountRow[]> {
    const rows = await this.#x(ctx)
      .selectFrom('jobs')
      .select((eb) => ['type', 'state', eb.fn.countAll<number | string | bigint>().as('n')])
      .groupBy(['state', 'type'])
      .execute();
    return rows
      .map((r) => ({ type: r.type, state: r.state, count: Number(r.n) }))
      .sort((a, b) => cmp(a.type, b.type) || cmp(a.state, b.state));
  }

  /** The run time of the oldest pending job of each type that has one. */
  async oldestPending(ctx: Context): Promise<Map<string, Date>> {
    const rows = await this.#x(ctx)
      .selectFrom('jobs')
      .select((eb) => ['type', eb.fn.min('run_at').as('oldest')])
      .where('state', '=', sql.lit('pending'))
      .groupBy('type')
      .execute();
    return new Map(rows.map((r) => [r.type, new Date(r.oldest)]));
  }

  /**
   * Deletes up to `limit` done jobs finished before `before`, of only `types` or of every type but
   * `exceptTypes` when given; returns how many.
   */
  async pruneDone(
    ctx: Context,
    before: Date,
    limit: number,
    filter: { types?: readonly string[]; exceptTypes?: readonly string[] } = {},
  ): Promise<number> {
    if (filter.types !== undefined && filter.types.length === 0) return 0;
    const db = this.#x(ctx);
    const result = await db
      .deleteFrom('jobs')
      .where(
        'id',
        'in',
        db
          .selectFrom('jobs')
          .select('id')
          .where('state', '=', sql.lit('done'))
          .$if(filter.types !== undefined, (q) => q.where('type', 'in', filter.types ?? []))
          .$if((filter.exceptTypes?.length ?? 0) > 0, (q) =>
            q.where('type', 'not in', filter.exceptTypes ?? []),
          )
          .where('finished_at', '<', before.toISOString())
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toRow(job: NewJobRow): Insertable<JobsTable> {
  const at = job.createdAt.toISOString();
  return {
    id: job.id,
    type: job.type,
    key: job.key ?? null,
    payload: job.payload,
    state: 'pending',
    run_at: job.runAt.toISOString(),
    attempts: 0,
    max_attempts: job.maxAttempts,
    lease_token: null,
    lease_until: null,
    worker: null,
    last_error: null,
    enqueued_by: serializeEnqueuer(job.enqueuedBy, job.enqueuedFor),
    request_id: job.requestId,
    created_at: at,
    updated_at: at,
    started_at: null,
    finished_at: null,
  };
}

function fromRow(row: Selectable<JobsTable>): JobRecord {
  return {
    id: row.id,
    type: row.type,
    key: row.key ?? undefined,
    payload: JSON.parse(row.payload) as JsonValue,
    state: row.state,
    runAt: new Date(row.run_at),
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    leaseUntil: row.lease_until === null ? undefined : new Date(row.lease_until),
    worker: row.worker ?? undefined,
    lastError: row.last_error ?? undefined,
    ...parseEnqueuer(row.enqueued_by),
    requestId: row.request_id,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    startedAt: row.started_at === null ? undefined : new Date(row.started_at),
    finishedAt: row.finished_at === null ? undefined : new Date(row.finished_at),
  };
}

/**
 * The enqueuer as stored: the actor's JSON, with `system` added only when the call acted for a
 * system the actor does not name itself (a CLI command run with `--system`); rows written before
 * jobs knew systems parse as they are.
 */
function serializeEnqueuer(actor: Actor, system: string | undefined): string {
  const own = actor.kind === 'system' ? actor.id : undefined;
  return JSON.stringify(system === undefined || system === own ? actor : { ...actor, system });
}

function parseEnqueuer(json: string): { enqueuedBy: Actor; enqueuedFor: string | undefined } {
  const { system, ...actor } = JSON.parse(json) as Actor & { system?: string };
  const enqueuedBy = actor;
  return { enqueuedBy, enqueuedFor: system ?? (enqueuedBy.kind === 'system' ? enqueuedBy.id : undefined) };
}
