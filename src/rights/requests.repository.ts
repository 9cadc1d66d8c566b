/**
 * The SQL of data-subject requests and their events. Only this file touches dsr_requests and
 * dsr_events; steps and codes have their own repositories (steps.repository.ts,
 * verification.repository.ts); every other part asks requests.service.ts.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import { uuidv7 } from '../platform/ids.js';
import type { DsrRequestsTable, RightsTables } from './requests.tables.js';

/** The kinds of request a person can make. */
export const REQUEST_TYPES = [
  'access',
  'export',
  'erasure',
  'rectification',
  'restriction',
  'objection',
  'inquiry',
] as const;
/** A kind of request. */
export type RequestType = (typeof REQUEST_TYPES)[number];

/** Where a request is. */
export type RequestStatus = 'verifying' | 'verified' | 'running' | 'waiting' | 'done' | 'rejected' | 'failed';

/** Statuses after which nothing more happens. */
export const FINAL_STATUSES: readonly RequestStatus[] = ['done', 'rejected', 'failed'];

/** A request as the service sees it. */
export interface RequestRecord {
  id: string;
  type: RequestType;
  status: RequestStatus;
  jurisdiction: string;
  receivedAt: Date;
  /** When the answer is due now: `answerBy`, or `extendedDueAt` once extended. */
  dueAt: Date;
  /** When the answer was due before any extension. */
  answerBy: Date;
  /** The latest an extension may move the answer to (`answerBy` when the rule allows none). */
  extendedDueAt: Date;
  /** The last day to notify an extension; undefined when the rule allows none. */
  extensionNoticeBy: Date | undefined;
  confirmBy: Date | undefined;
  /** When receipt was confirmed to the requester. */
  confirmedAt: Date | undefined;
  /** The manifest's deadline rule applied at receipt (`builtin` without one). */
  deadlineRule: string | undefined;
  extendedAt: Date | undefined;
  /** The `request.due` notices sent, as `deadline:status`. */
  dueNotices: string[];
  emailHash: string | undefined;
  phoneHash: string | undefined;
  sealed: string;
  subjectId: string | undefined;
  agent: string;
  stalled: boolean;
  requeued: boolean;
  reason: string | undefined;
  progressedAt: Date;
  finishedAt: Date | undefined;
}

/** An event of a request. */
export interface RequestEventRecord {
  id: string;
  at: Date;
  kind: string;
  details: Record<string, unknown>;
}

/** Filters of {@link RequestsRepository.list}. */
export interface ListRequestsFilter {
  /** Open requests only (not done, rejected or failed). */
  open?: boolean | undefined;
  /** Requests whose answer, or whose unconfirmed receipt, is due before this time. */
  dueBefore?: Date | undefined;
  status?: RequestStatus | undefined;
  stalled?: boolean | undefined;
  limit: number;
}

/** What a change to a request may set. */
export type RequestChange = Partial<
  Pick<
    RequestRecord,
    | 'status'
    | 'dueAt'
    | 'extendedAt'
    | 'confirmedAt'
    | 'dueNotices'
    | 'subjectId'
    | 'stalled'
    | 'requeued'
    | 'reason'
    | 'progressedAt'
    | 'finishedAt'
  >
>;

/** Reads and writes requests and their events, in the transaction of the context given. */
export class RequestsRepository {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<RightsTables> {
    return this.#db.executor<RightsTables>(ctx);
  }

  /** Stores a new request. */
  async insert(ctx: Context, r: RequestRecord): Promise<void> {
    await this.#q(ctx)
      .insertInto('dsr_requests')
      .values({
        id: r.id,
        type: r.type,
        status: r.status,
        jurisdiction: r.jurisdiction,
        received_at: r.receivedAt.toISOString(),
        due_at: r.dueAt.toISOString(),
        extended_due_at: r.extendedDueAt.toISOString(),
        confirm_by: r.confirmBy?.toISOString() ?? null,
        answer_by: r.answerBy.toISOString(),
        extension_notice_by: r.extensionNoticeBy?.toISOString() ?? null,
        deadline_rule: r.deadlineRule ?? null,
        confirmed_at: r.confirmedAt?.toISOString() ?? null,
        due_notices: JSON.stringify(r.dueNotices),
        extended_at: null,
        email_hash: r.emailHash ?? null,
        phone_hash: r.phoneHash ?? null,
        sealed: r.sealed,
        subject_id: r.subjectId ?? null,
        agent: r.agent,
        stalled: 0,
        requeued: 0,
        reason: null,
        progressed_at: r.progressedAt.toISOString(),
        finished_at: null,
      })
      .execute();
  }

  /** One request, or `undefined`; `lock` takes it FOR UPDATE on PostgreSQL. */
  async get(ctx: Context, id: string, options: { lock?: boolean } = {}): Promise<RequestRecord | undefined> {
    let query = this.#q(ctx).selectFrom('dsr_requests').selectAll().where('id', '=', id);
    if (options.lock === true && this.#db.dialect === 'postgres') query = query.forUpdate();
    const row = await query.executeTakeFirst();
    return row === undefined ? undefined : fromRow(row);
  }

  /** Requests by due date, soonest first. */
  async list(ctx: Context, filter: ListRequestsFilter): Promise<RequestRecord[]> {
    let query = this.#q(ctx).selectFrom('dsr_requests').selectAll();
    if (filter.open === true) query = query.where('finished_at', 'is', null);
    if (filter.open === false) query = query.where('finished_at', 'is not', null);
    const dueBefore = filter.dueBefore?.toISOString();
    if (dueBefore !== undefined) {
      query = query.where((eb) =>
        eb.or([
          eb('due_at', '<', dueBefore),
          eb.and([eb('confirm_by', '<', dueBefore), eb('confirmed_at', 'is', null)]),
        ]),
      );
    }
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.stalled !== undefined) query = query.where('stalled', '=', filter.stalled ? 1 : 0);
    const rows = await query.orderBy('due_at').orderBy('id').limit(filter.limit).execute();
    return rows.map(fromRow);
  }

  /** Open requests with no progress since `before` and not flagged yet. */
  async idleSince(ctx: Context, before: Date, limit: number): Promise<RequestRecord[]> {
    const rows = await this.#q(ctx)
      .selectFrom('dsr_requests')
      .selectAll()
      .where('finished_at', 'is', null)
      .where('stalled', '=', 0)
      .where('progressed_at', '<', before.toISOString())
      .orderBy('progressed_at')
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }

  /** Changes a request. */
  async update(ctx: Context, id: string, change: RequestChange): Promise<void> {
    const set: Partial<DsrRequestsTable> = {};
    if (change.status !== undefined) set.status = change.status;
    if (change.dueAt !== undefined) set.due_at = change.dueAt.toISOString();
    if (change.extendedAt !== undefined) set.extended_at = change.extendedAt.toISOString();
    if (change.confirmedAt !== undefined) set.confirmed_at = change.confirmedAt.toISOString();
    if (change.dueNotices !== undefined) set.due_notices = JSON.stringify(change.dueNotices);
    if (change.subjectId !== undefined) set.subject_id = change.subjectId;
    if (change.stalled !== undefined) set.stalled = change.stalled ? 1 : 0;
    if (change.requeued !== undefined) set.requeued = change.requeued ? 1 : 0;
    if (change.reason !== undefined) set.reason = change.reason;
    if (change.progressedAt !== undefined) set.progressed_at = change.progressedAt.toISOString();
    if (change.finishedAt !== undefined) set.finished_at = change.finishedAt.toISOString();
    if (Object.keys(set).length === 0) return;
    await this.#q(ctx).updateTable('dsr_requests').set(set).where('id', '=', id).execute();
  }

  /** Records an event of a request. */
  async addEvent(
    ctx: Context,
    requestId: string,
    kind: string,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.#q(ctx)
      .insertInto('dsr_events')
      .values({
        id: uuidv7(),
        request_id: requestId,
        at: ctx.clock.now().toISOString(),
        kind,
        details: JSON.stringify(details),
      })
      .execute();
  }

  /** A request's events, oldest first. */
  async events(ctx: Context, requestId: string): Promise<RequestEventRecord[]> {
    const rows = await this.#q(ctx)
      .selectFrom('dsr_events')
      .selectAll()
      .where('request_id', '=', requestId)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      at: new Date(r.at),
      kind: r.kind,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }));
  }
}

function date(v: string | null): Date | undefined {
  return v === null ? undefined : new Date(v);
}

function fromRow(row: Selectable<DsrRequestsTable>): RequestRecord {
  return {
    id: row.id,
    type: row.type as RequestType,
    status: row.status as RequestStatus,
    jurisdiction: row.jurisdiction,
    receivedAt: new Date(row.received_at),
    dueAt: new Date(row.due_at),
    // A request from before the manifest's rules has no answer_by: its due date stands for it.
    answerBy: date(row.answer_by) ?? new Date(row.due_at),
    extendedDueAt: new Date(row.extended_due_at),
    extensionNoticeBy: date(row.extension_notice_by),
    confirmBy: date(row.confirm_by),
    confirmedAt: date(row.confirmed_at),
    deadlineRule: row.deadline_rule ?? undefined,
    extendedAt: date(row.extended_at),
    dueNotices: JSON.parse(row.due_notices) as string[],
    emailHash: row.email_hash ?? undefined,
    phoneHash: row.phone_hash ?? undefined,
    sealed: row.sealed,
    subjectId: row.subject_id ?? undefined,
    agent: row.agent,
    stalled: Number(row.stalled) === 1,
    requeued: Number(row.requeued) === 1,
    reason: row.reason ?? undefined,
    progressedAt: new Date(row.progressed_at),
    finishedAt: date(row.finished_at),
  };
}
