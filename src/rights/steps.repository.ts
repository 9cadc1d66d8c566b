/** The SQL of requests' steps. Only this file touches dsr_steps. */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { DsrStepsTable, RightsTables } from './requests.tables.js';

/** Where a step is. */
export type StepStatus = 'pending' | 'queued' | 'running' | 'waiting' | 'done' | 'failed' | 'skipped';

/** A step as the engine sees it. */
export interface StepRecord {
  id: string;
  requestId: string;
  position: number;
  name: string;
  store: string;
  status: StepStatus;
  attempts: number;
  runs: number;
  error: string | undefined;
  requeued: number;
  dueAt: Date | undefined;
  startedAt: Date | undefined;
  finishedAt: Date | undefined;
  result: Record<string, unknown> | undefined;
}

/** What a change to a step may set (`null` clears). */
export interface StepChange {
  status?: StepStatus;
  attempts?: number;
  runs?: number;
  error?: string | null;
  requeued?: number;
  dueAt?: Date | null;
  startedAt?: Date | null;
  finishedAt?: Date | null;
  result?: Record<string, unknown> | null;
}

/** Reads and writes steps, in the transaction of the context given. */
export class StepsRepository {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<RightsTables> {
    return this.#db.executor<RightsTables>(ctx);
  }

  /** Stores a request's plan. */
  async insertMany(ctx: Context, steps: readonly StepRecord[]): Promise<void> {
    if (steps.length === 0) return;
    await this.#q(ctx)
      .insertInto('dsr_steps')
      .values(
        steps.map((s) => ({
          id: s.id,
          request_id: s.requestId,
          position: s.position,
          name: s.name,
          store: s.store,
          status: s.status,
          attempts: s.attempts,
          runs: s.runs,
          error: s.error ?? null,
          requeued: s.requeued,
          due_at: s.dueAt?.toISOString() ?? null,
          started_at: null,
          finished_at: null,
          result: null,
        })),
      )
      .execute();
  }

  /** One step, or `undefined`; `lock` takes it FOR UPDATE on PostgreSQL. */
  async get(ctx: Context, id: string, options: { lock?: boolean } = {}): Promise<StepRecord | undefined> {
    let query = this.#q(ctx).selectFrom('dsr_steps').selectAll().where('id', '=', id);
    if (options.lock === true && this.#db.dialect === 'postgres') query = query.forUpdate();
    const row = await query.executeTakeFirst();
    return row === undefined ? undefined : fromRow(row);
  }

  /** A request's steps in plan order. */
  async ofRequest(ctx: Context, requestId: string): Promise<StepRecord[]> {
    const rows = await this.#q(ctx)
      .selectFrom('dsr_steps')
      .selectAll()
      .where('request_id', '=', requestId)
      .orderBy('position')
      .execute();
    return rows.map(fromRow);
  }

  /**
   * Changes a step; with `from`, only while it is in one of those statuses (returns whether it
   * changed), so two workers cannot both move it.
   */
  async update(ctx: Context, id: string, change: StepChange, from?: readonly StepStatus[]): Promise<boolean> {
    const set: Partial<DsrStepsTable> = {};
    if (change.status !== undefined) set.status = change.status;
    if (change.attempts !== undefined) set.attempts = change.attempts;
    if (change.runs !== undefined) set.runs = change.runs;
    if (change.error !== undefined) set.error = change.error;
    if (change.requeued !== undefined) set.requeued = change.requeued;
    if (change.dueAt !== undefined) set.due_at = change.dueAt?.toISOString() ?? null;
    if (change.startedAt !== undefined) set.started_at = change.startedAt?.toISOString() ?? null;
    if (change.finishedAt !== undefined) set.finished_at = change.finishedAt?.toISOString() ?? null;
    if (change.result !== undefined)
      set.result = change.result === null ? null : JSON.stringify(change.result);
    let query = this.#q(ctx).updateTable('dsr_steps').set(set).where('id', '=', id);
    if (from !== undefined) query = query.where('status', 'in', [...from]);
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }
}

function date(v: string | null): Date | undefined {
  return v === null ? undefined : new Date(v);
}

function fromRow(row: Selectable<DsrStepsTable>): StepRecord {
  return {
    id: row.id,
    requestId: row.request_id,
    position: Number(row.position),
    name: row.name,
    store: row.store,
    status: row.status as StepStatus,
    attempts: Number(row.attempts),
    runs: Number(row.runs),
    error: row.error ?? undefined,
    requeued: Number(row.requeued),
    dueAt: date(row.due_at),
    startedAt: date(row.started_at),
    finishedAt: date(row.finished_at),
    result: row.result === null ? undefined : (JSON.parse(row.result) as Record<string, unknown>),
  };
}
