/**
 * The legal requests' SQL: requests and the notices of the people whose data left for them. Only
 * this file touches legal_requests and legal_notices; every other part asks legal.service.ts. The
 * free text of a request (the authority's name, its reference, the citation, a rejection's reason)
 * is sealed before it is written and opened as it is read (sealed-columns.ts, key use
 * `legal_requests`); the report reads only the columns it groups by, never these.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { LegalNoticesTable, LegalRequestsTable, LegalTables } from './legal.tables.js';
import type { ColumnBinding, ColumnSeal } from './sealed-columns.js';

/** The columns of legal_requests kept sealed. */
type SealedColumn = 'authority_name' | 'reference' | 'citation' | 'reject_reason';

const SEALED_COLUMNS: readonly SealedColumn[] = ['authority_name', 'reference', 'citation', 'reject_reason'];

/** How many rows of plaintext one statement of {@link LegalRepository.sealPlaintext} reads. */
const SEAL_BATCH = 500;

/** Who acted on a request, as kept with it: staff, never subjects. */
export interface LegalActorRecord {
  /** The typed actor of the context (`system`, `cli` ...). */
  actor: Context['actor'];
  /** The API key's id, when a key acted. */
  key?: string | undefined;
  /** The person responsible: the key's holder, or the CLI's `--by`. */
  holder?: string | undefined;
  /** The operating-system account, when the CLI acted. */
  account?: string | undefined;
}

/** The review of a request. */
export type LegalDecision = 'approved' | 'narrowed' | 'rejected';

/** A request as the service sees it. */
export interface LegalRequestRecord {
  id: string;
  receivedAt: Date;
  authority: { name: string; type: string };
  legalBasis: string;
  citation: string | undefined;
  reference: string;
  scope: { subjects: string[]; categories: string[] };
  deadline: string;
  notice: { prohibited: boolean; until: Date | undefined };
  decision: LegalDecision | undefined;
  approved: { subjects: string[]; categories: string[] } | undefined;
  rejectReason: string | undefined;
  intakeBy: LegalActorRecord;
  reviewedAt: Date | undefined;
  reviewedBy: LegalActorRecord | undefined;
  disclosedAt: Date | undefined;
  closedAt: Date | undefined;
  closedBy: LegalActorRecord | undefined;
}

/** A person whose data left for a request. */
export interface LegalNoticeRecord {
  requestId: string;
  subjectId: string;
  disclosedAt: Date;
  noticeAt: Date | undefined;
  noticeStatus: string | undefined;
}

/** A new request's row. */
export type NewLegalRequest = Omit<
  LegalRequestRecord,
  | 'decision'
  | 'approved'
  | 'rejectReason'
  | 'reviewedAt'
  | 'reviewedBy'
  | 'disclosedAt'
  | 'closedAt'
  | 'closedBy'
>;

/** What the transparency report counts of one request. */
export interface LegalReportRow {
  id: string;
  authorityType: string;
  legalBasis: string;
  decision: string | undefined;
  closed: boolean;
  subjects: string[];
}

/** Reads and writes the legal requests' tables, in the transaction of the context given. */
export class LegalRepository {
  readonly #db: Db;
  readonly #seal: ColumnSeal;

  /** `seal`: the `legal_requests` use's seal (`new ColumnSeal(keyring.use('legal_requests'))`). */
  constructor(db: Db, seal: ColumnSeal) {
    this.#db = db;
    this.#seal = seal;
  }

  #q(ctx: Context): Kysely<LegalTables> {
    return this.#db.executor<LegalTables>(ctx);
  }

  /** Stores a new request. */
  async insert(ctx: Context, r: NewLegalRequest): Promise<void> {
    await this.#q(ctx)
      .insertInto('legal_requests')
      .values({
        id: r.id,
        received_at: r.receivedAt.toISOString(),
        authority_name: this.#seal.seal(bindingOf(r.id, 'authority_name'), r.authority.name),
        authority_type: r.authority.type,
        legal_basis: r.legalBasis,
        citation: this.#seal.sealOptional(bindingOf(r.id, 'citation'), r.citation),
        reference: this.#seal.seal(bindingOf(r.id, 'reference'), r.reference),
        sealed: 1,
        scope_subjects: JSON.stringify(r.scope.subjects),
        scope_categories: JSON.stringify(r.scope.categories),
        deadline: r.deadline,
        notice_prohibited: r.notice.prohibited ? 1 : 0,
        notice_prohibited_until: r.notice.until?.toISOString() ?? null,
        intake_by: JSON.stringify(r.intakeBy),
      })
      .execute();
  }

  /** One request, or `undefined`; `lock` takes it FOR UPDATE on PostgreSQL (a review, a disclosure). */
  async get(
    ctx: Context,
    id: string,
    options: { lock?: boolean } = {},
  ): Promise<LegalRequestRecord | undefined> {
    let query = this.#q(ctx).selectFrom('legal_requests').selectAll().where('id', '=', id);
    if (options.lock === true && this.#db.dialect === 'postgres') query = query.forUpdate();
    const row = await query.executeTakeFirst();
    return row && this.#toRecord(row);
  }

  /** Requests, newest first; `open` only those not closed. */
  async list(
    ctx: Context,
    options: { open?: boolean | undefined; limit: number; before?: string | undefined },
  ): Promise<LegalRequestRecord[]> {
    let query = this.#q(ctx)
      .selectFrom('legal_requests')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(options.limit);
    if (options.open === true) query = query.where('closed_at', 'is', null);
    if (options.open === false) query = query.where('closed_at', 'is not', null);
    if (options.before !== undefined) query = query.where('id', '<', options.before);
    return (await query.execute()).map((row) => this.#toRecord(row));
  }

  /** Records the review. Only a request not reviewed yet changes; false when it was (a race lost). */
  async review(
    ctx: Context,
    id: string,
    review: {
      decision: LegalDecision;
      approved: { subjects: string[]; categories: string[] } | undefined;
      rejectReason: string | undefined;
      at: Date;
      by: LegalActorRecord;
    },
  ): Promise<boolean> {
    // The reason is written sealed: a row an instance of an earlier version wrote meanwhile is
    // sealed first, so no row holds sealed and plaintext columns at once.
    const legacy = await this.#q(ctx)
      .selectFrom('legal_requests')
      .select(['id', ...SEALED_COLUMNS])
      .where('id', '=', id)
      .where('sealed', '=', 0)
      .executeTakeFirst();
    if (legacy !== undefined) await this.#sealRow(ctx, legacy);
    const result = await this.#q(ctx)
      .updateTable('legal_requests')
      .set({
        decision: review.decision,
        approved_subjects: review.approved ? JSON.stringify(review.approved.subjects) : null,
        approved_categories: review.approved ? JSON.stringify(review.approved.categories) : null,
        reject_reason: this.#seal.sealOptional(bindingOf(id, 'reject_reason'), review.rejectReason),
        reviewed_at: review.at.toISOString(),
        reviewed_by: JSON.stringify(review.by),
      })
      .where('id', '=', id)
      .where('decision', 'is', null)
      .where('closed_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Seals the free text of requests written before it was sealed (`sealed = 0`: rows of an
   * earlier version of Pledge), in the transaction of `ctx`; returns how many rows it sealed. A
   * row another instance sealed meanwhile is left as it is (the update asks `sealed = 0`).
   */
  async sealPlaintext(ctx: Context): Promise<number> {
    const q = this.#q(ctx);
    let sealed = 0;
    for (;;) {
      const rows = await q
        .selectFrom('legal_requests')
        .select(['id', ...SEALED_COLUMNS])
        .where('sealed', '=', 0)
        .orderBy('id')
        .limit(SEAL_BATCH)
        .execute();
      for (const row of rows) sealed += await this.#sealRow(ctx, row);
      if (rows.length < SEAL_BATCH) return sealed;
    }
  }

  /** Seals one plaintext row (1), or leaves it when another instance did meanwhile (0). */
  async #sealRow(
    ctx: Context,
    row: Pick<Selectable<LegalRequestsTable>, 'id' | SealedColumn>,
  ): Promise<number> {
    const result = await this.#q(ctx)
      .updateTable('legal_requests')
      .set({
        authority_name: this.#seal.seal(bindingOf(row.id, 'authority_name'), row.authority_name),
        reference: this.#seal.seal(bindingOf(row.id, 'reference'), row.reference),
        citation: this.#seal.sealOptional(bindingOf(row.id, 'citation'), row.citation),
        reject_reason: this.#seal.sealOptional(bindingOf(row.id, 'reject_reason'), row.reject_reason),
        sealed: 1,
      })
      .where('id', '=', row.id)
      .where('sealed', '=', 0)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Replaces the terms of a request's notice (a prohibition extended, ended or lifted). */
  async setNotice(ctx: Context, id: string, prohibited: boolean, until: Date | undefined): Promise<void> {
    await this.#q(ctx)
      .updateTable('legal_requests')
      .set({ notice_prohibited: prohibited ? 1 : 0, notice_prohibited_until: until?.toISOString() ?? null })
      .where('id', '=', id)
      .execute();
  }

  /** Closes a request; false when it was closed already. */
  async close(ctx: Context, id: string, at: Date, by: LegalActorRecord): Promise<boolean> {
    const result = await this.#q(ctx)
      .updateTable('legal_requests')
      .set({ closed_at: at.toISOString(), closed_by: JSON.stringify(by) })
      .where('id', '=', id)
      .where('closed_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Records that the data of `subjectIds` left for a request at `at` (a person disclosed twice keeps
   * the first time), and the request's first disclosure.
   */
  async recordDisclosure(ctx: Context, id: string, subjectIds: readonly string[], at: Date): Promise<void> {
    const q = this.#q(ctx);
    await q
      .updateTable('legal_requests')
      .set({ disclosed_at: at.toISOString() })
      .where('id', '=', id)
      .where('disclosed_at', 'is', null)
      .execute();
    if (subjectIds.length === 0) return;
    await q
      .insertInto('legal_notices')
      .values(subjectIds.map((s) => ({ request_id: id, subject_id: s, disclosed_at: at.toISOString() })))
      .onConflict((oc) => oc.columns(['request_id', 'subject_id']).doNothing())
      .execute();
  }

  /** The people of a request, in id order. */
  async notices(ctx: Context, requestId: string): Promise<LegalNoticeRecord[]> {
    const rows = await this.#q(ctx)
      .selectFrom('legal_notices')
      .selectAll()
      .where('request_id', '=', requestId)
      .orderBy('subject_id')
      .execute();
    return rows.map(toNotice);
  }

  /** One person's notice of a request, or `undefined`. */
  async notice(ctx: Context, requestId: string, subjectId: string): Promise<LegalNoticeRecord | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('legal_notices')
      .selectAll()
      .where('request_id', '=', requestId)
      .where('subject_id', '=', subjectId)
      .executeTakeFirst();
    return row && toNotice(row);
  }

  /** Records a notice's outcome; false when it was recorded already (a second attempt). */
  async recordNotice(
    ctx: Context,
    requestId: string,
    subjectId: string,
    at: Date,
    status: string,
  ): Promise<boolean> {
    const result = await this.#q(ctx)
      .updateTable('legal_notices')
      .set({ notice_at: at.toISOString(), notice_status: status })
      .where('request_id', '=', requestId)
      .where('subject_id', '=', subjectId)
      .where('notice_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** The legal requests whose data about `subjectId` left, with each request's notice terms. */
  async disclosuresOf(
    ctx: Context,
    subjectId: string,
  ): Promise<Array<LegalNoticeRecord & { noticeProhibited: boolean; prohibitedUntil: Date | undefined }>> {
    const rows = await this.#q(ctx)
      .selectFrom('legal_notices as n')
      .innerJoin('legal_requests as r', 'r.id', 'n.request_id')
      .select([
        'n.request_id',
        'n.subject_id',
        'n.disclosed_at',
        'n.notice_at',
        'n.notice_status',
        'r.notice_prohibited',
        'r.notice_prohibited_until',
      ])
      .where('n.subject_id', '=', subjectId)
      .orderBy('n.disclosed_at')
      .execute();
    return rows.map((r) => ({
      ...toNotice(r),
      noticeProhibited: r.notice_prohibited === 1,
      prohibitedUntil: dateOrUndefined(r.notice_prohibited_until),
    }));
  }

  /** The requests received in [from, to), for the transparency report. */
  async receivedBetween(ctx: Context, from: Date, to: Date): Promise<LegalReportRow[]> {
    const q = this.#q(ctx);
    const requests = await q
      .selectFrom('legal_requests')
      .select(['id', 'authority_type', 'legal_basis', 'decision', 'closed_at', 'scope_subjects'])
      .where('received_at', '>=', from.toISOString())
      .where('received_at', '<', to.toISOString())
      .orderBy('id')
      .execute();
    return requests.map((r) => ({
      id: r.id,
      authorityType: r.authority_type,
      legalBasis: r.legal_basis,
      decision: r.decision ?? undefined,
      closed: r.closed_at !== null,
      subjects: JSON.parse(r.scope_subjects) as string[],
    }));
  }

  /** The subjects whose data left for each of `requestIds` (read in chunks: bound parameters are limited). */
  async disclosedSubjects(
    ctx: Context,
    requestIds: readonly string[],
  ): Promise<Array<{ requestId: string; subjectId: string }>> {
    const out: Array<{ requestId: string; subjectId: string }> = [];
    for (let i = 0; i < requestIds.length; i += 500) {
      const rows = await this.#q(ctx)
        .selectFrom('legal_notices')
        .select(['request_id', 'subject_id'])
        .where('request_id', 'in', requestIds.slice(i, i + 500))
        .execute();
      for (const r of rows) out.push({ requestId: r.request_id, subjectId: r.subject_id });
    }
    return out;
  }

  #toRecord(row: Selectable<LegalRequestsTable>): LegalRequestRecord {
    // A row of an earlier version stays plaintext only until the first start seals it.
    const text = (column: SealedColumn): string | undefined =>
      row[column] === null
        ? undefined
        : row.sealed === 1
          ? this.#seal.open(bindingOf(row.id, column), row[column])
          : row[column];
    const approved =
      row.approved_subjects === null || row.approved_categories === null
        ? undefined
        : {
            subjects: JSON.parse(row.approved_subjects) as string[],
            categories: JSON.parse(row.approved_categories) as string[],
          };
    return {
      id: row.id,
      receivedAt: new Date(row.received_at),
      authority: { name: text('authority_name') ?? '', type: row.authority_type },
      legalBasis: row.legal_basis,
      citation: text('citation'),
      reference: text('reference') ?? '',
      scope: {
        subjects: JSON.parse(row.scope_subjects) as string[],
        categories: JSON.parse(row.scope_categories) as string[],
      },
      deadline: row.deadline,
      notice: {
        prohibited: row.notice_prohibited === 1,
        until: dateOrUndefined(row.notice_prohibited_until),
      },
      decision: (row.decision ?? undefined) as LegalDecision | undefined,
      approved,
      rejectReason: text('reject_reason'),
      intakeBy: JSON.parse(row.intake_by) as LegalActorRecord,
      reviewedAt: dateOrUndefined(row.reviewed_at),
      reviewedBy: actorOrUndefined(row.reviewed_by),
      disclosedAt: dateOrUndefined(row.disclosed_at),
      closedAt: dateOrUndefined(row.closed_at),
      closedBy: actorOrUndefined(row.closed_by),
    };
  }
}

function dateOrUndefined(value: string | null): Date | undefined {
  return value === null ? undefined : new Date(value);
}

function actorOrUndefined(value: string | null): LegalActorRecord | undefined {
  return value === null ? undefined : (JSON.parse(value) as LegalActorRecord);
}

function bindingOf(id: string, column: SealedColumn): ColumnBinding {
  return { table: 'legal_requests', rowId: id, column };
}

function toNotice(
  row: Pick<
    Selectable<LegalNoticesTable>,
    'request_id' | 'subject_id' | 'disclosed_at' | 'notice_at' | 'notice_status'
  >,
): LegalNoticeRecord {
  return {
    requestId: row.request_id,
    subjectId: row.subject_id,
    disclosedAt: new Date(row.disclosed_at),
    noticeAt: dateOrUndefined(row.notice_at),
    noticeStatus: row.notice_status ?? undefined,
  };
}
