/** Campaigns and their sends. Only this file touches those tables; rows hold no personal data. */
import type { Kysely, Selectable } from 'kysely';
import { dialectOf } from '../platform/db/schema.js';
import type { CampaignsTable, CampaignSendsTable, Tables } from '../platform/db/tables.js';

/** Where a campaign stands. */
export const CAMPAIGN_STATUSES = ['draft', 'sending', 'done'] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

/** Where one send stands. */
export const SEND_STATUSES = ['pending', 'sending', 'sent', 'skipped', 'failed', 'uncertain'] as const;
export type SendStatus = (typeof SEND_STATUSES)[number];

/** The two kinds of message. */
export type CampaignKind = 'marketing' | 'service';

/** Who a campaign goes to. */
export type Audience =
  { subjects: string[] } | { segment: { jurisdiction?: string | undefined; kind?: string | undefined } };

/** A campaign as stored. */
export interface Campaign {
  id: string;
  kind: CampaignKind;
  name: string;
  list: string;
  templates: { subject: string; text: string; html: string };
  audience: Audience;
  status: CampaignStatus;
  policyVersionId: number | undefined;
  createdAt: Date;
  startedAt: Date | undefined;
  finishedAt: Date | undefined;
}

/** A send as stored. */
export interface CampaignSend {
  campaignId: string;
  subjectId: string;
  status: SendStatus;
  reason: string | undefined;
  attempts: number;
  nextAttemptAt: Date;
  messageId: string | undefined;
  createdAt: Date;
  updatedAt: Date;
}

/** A pending send claimed by one runner until `leaseUntil`. */
export interface ClaimedSend {
  campaignId: string;
  subjectId: string;
  attempts: number;
  leaseUntil: Date;
}

/** How a send ended (or will be tried again). */
export type SendOutcome =
  | { status: 'sent'; messageId: string }
  | { status: 'skipped'; reason: string }
  | { status: 'failed'; reason: string; attempted: boolean }
  | { status: 'uncertain'; reason: string }
  | { status: 'pending'; reason: string; nextAttemptAt: Date };

/** Counts of a campaign's sends by status and by reason. */
export interface SendCounts {
  total: number;
  byStatus: Record<SendStatus, number>;
  /** Reasons of skipped, failed and uncertain sends (and of pending retries). */
  byReason: Record<string, number>;
}

/** Reads and writes campaigns and sends. */
export class CampaignsRepository {
  constructor(private readonly db: Kysely<Tables>) {}

  /** Adds a campaign (in draft). Returns false when a notice for its policy version exists already. */
  async insertCampaign(c: Omit<Campaign, 'startedAt' | 'finishedAt'>): Promise<boolean> {
    const result = await this.db
      .insertInto('campaigns')
      .values({
        id: c.id,
        kind: c.kind,
        name: c.name,
        list: c.list,
        subject_template: c.templates.subject,
        text_template: c.templates.text,
        html_template: c.templates.html,
        audience: JSON.stringify(c.audience),
        status: c.status,
        policy_version_id: c.policyVersionId ?? null,
        created_at: c.createdAt.toISOString(),
        started_at: null,
        finished_at: null,
      })
      .onConflict((oc) => oc.column('policy_version_id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** A campaign, or `undefined`. */
  async get(id: string): Promise<Campaign | undefined> {
    const row = await this.db.selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toCampaign(row);
  }

  /** The policy-change notice of a manifest version, if one was made. */
  async getNotice(policyVersionId: number): Promise<Campaign | undefined> {
    const row = await this.db
      .selectFrom('campaigns')
      .selectAll()
      .where('policy_version_id', '=', policyVersionId)
      .executeTakeFirst();
    return row && toCampaign(row);
  }

  /** Moves a draft to sending; false when it was not a draft (started already). */
  async markStarted(id: string, at: Date): Promise<boolean> {
    const result = await this.db
      .updateTable('campaigns')
      .set({ status: 'sending', started_at: at.toISOString() })
      .where('id', '=', id)
      .where('status', '=', 'draft')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * The ids of live (not erased) subjects, optionally of one jurisdiction and kind, or created
   * before `createdBefore`. Reads the vault's subjects table for ids only: no personal data.
   */
  async liveSubjectIds(filter: {
    jurisdiction?: string | undefined;
    kind?: string | undefined;
    createdBefore?: Date | undefined;
  }): Promise<string[]> {
    const rows = await this.db
      .selectFrom('subjects')
      .select('id')
      .where('erased_at', 'is', null)
      .$if(filter.jurisdiction !== undefined, (qb) =>
        qb.where('jurisdiction', '=', filter.jurisdiction ?? ''),
      )
      .$if(filter.kind !== undefined, (qb) => qb.where('kind', '=', filter.kind ?? ''))
      .$if(filter.createdBefore !== undefined, (qb) =>
        qb.where('created_at', '<', filter.createdBefore?.toISOString() ?? ''),
      )
      .orderBy('id')
      .execute();
    return rows.map((r) => r.id);
  }

  /** Queues one pending send per subject, due at `at`; a subject already queued is skipped. */
  async insertSends(campaignId: string, subjectIds: readonly string[], at: Date): Promise<void> {
    const now = at.toISOString();
    // 7 columns a row, well under SQLite's 32,766 bound parameters.
    for (let i = 0; i < subjectIds.length; i += 1000) {
      await this.db
        .insertInto('campaign_sends')
        .values(
          subjectIds.slice(i, i + 1000).map((subjectId) => ({
            campaign_id: campaignId,
            subject_id: subjectId,
            status: 'pending',
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
          })),
        )
        .onConflict((oc) => oc.columns(['campaign_id', 'subject_id']).doNothing())
        .execute();
    }
  }

  /**
   * Claims up to `limit` pending sends due at `now` by moving their due time to `leaseUntil`. Run it
   * in a short transaction: on PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED, so runners on
   * several instances get disjoint rows without waiting.
   */
  async claimDue(now: Date, leaseUntil: Date, limit: number): Promise<ClaimedSend[]> {
    const rows = await this.db
      .selectFrom('campaign_sends')
      .select(['campaign_id', 'subject_id', 'attempts'])
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now.toISOString())
      .orderBy('next_attempt_at')
      .orderBy('campaign_id')
      .orderBy('subject_id')
      .limit(limit)
      .$if(dialectOf(this.db) === 'postgres', (qb) => qb.forUpdate().skipLocked())
      .execute();
    if (rows.length === 0) return [];
    const lease = leaseUntil.toISOString();
    for (const [campaignId, ids] of groupByCampaign(rows)) {
      await this.db
        .updateTable('campaign_sends')
        .set({ next_attempt_at: lease })
        .where('campaign_id', '=', campaignId)
        .where('subject_id', 'in', ids)
        .where('status', '=', 'pending')
        .execute();
    }
    return rows.map((r) => ({
      campaignId: r.campaign_id,
      subjectId: r.subject_id,
      attempts: Number(r.attempts),
      leaseUntil,
    }));
  }

  /**
   * At-most-once: sends left in `sending` past their lease (their runner died between marking and
   * recording) become `uncertain` and are never sent again. Returns how many.
   */
  async expireSending(now: Date): Promise<number> {
    const result = await this.db
      .updateTable('campaign_sends')
      .set({ status: 'uncertain', reason: 'interrupted', updated_at: now.toISOString() })
      .where('status', '=', 'sending')
      .where('next_attempt_at', '<', now.toISOString())
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /**
   * Marks a claimed send `sending` until `sendLease`, only if the claim still holds; false when it
   * does not (the send must then not be made).
   */
  async markSending(claim: ClaimedSend, sendLease: Date, messageId: string, at: Date): Promise<boolean> {
    const result = await this.db
      .updateTable('campaign_sends')
      .set({
        status: 'sending',
        next_attempt_at: sendLease.toISOString(),
        message_id: messageId,
        attempts: claim.attempts + 1,
        updated_at: at.toISOString(),
      })
      .where('campaign_id', '=', claim.campaignId)
      .where('subject_id', '=', claim.subjectId)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '=', claim.leaseUntil.toISOString())
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Records an outcome. `from` is the state the runner holds the row in: a claim (pending with the
   * claim's lease) or a send in flight (sending with its lease). Returns false when the row moved
   * on meanwhile (its lease ran out).
   */
  async recordOutcome(
    key: { campaignId: string; subjectId: string },
    from: { status: 'pending' | 'sending'; lease: Date },
    outcome: SendOutcome,
    at: Date,
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('campaign_sends')
      .set({
        status: outcome.status,
        reason: outcome.status === 'sent' ? null : outcome.reason,
        updated_at: at.toISOString(),
        ...(outcome.status === 'pending' ? { next_attempt_at: outcome.nextAttemptAt.toISOString() } : {}),
        ...(outcome.status === 'sent' ? { message_id: outcome.messageId } : {}),
      })
      .where('campaign_id', '=', key.campaignId)
      .where('subject_id', '=', key.subjectId)
      .where('status', '=', from.status)
      .where('next_attempt_at', '=', from.lease.toISOString())
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Gives claims back (a runner stopping): due at `now` again, for any runner. */
  async releaseClaims(claims: readonly ClaimedSend[], now: Date): Promise<void> {
    for (const c of claims) {
      await this.db
        .updateTable('campaign_sends')
        .set({ next_attempt_at: now.toISOString() })
        .where('campaign_id', '=', c.campaignId)
        .where('subject_id', '=', c.subjectId)
        .where('status', '=', 'pending')
        .where('next_attempt_at', '=', c.leaseUntil.toISOString())
        .execute();
    }
  }

  /** Marks done the sending campaigns with nothing pending or in flight; returns their ids. */
  async finishCampaigns(now: Date): Promise<string[]> {
    const rows = await this.db
      .updateTable('campaigns')
      .set({ status: 'done', finished_at: now.toISOString() })
      .where('status', '=', 'sending')
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('campaign_sends')
              .select('campaign_sends.campaign_id')
              .whereRef('campaign_sends.campaign_id', '=', 'campaigns.id')
              .where('campaign_sends.status', 'in', ['pending', 'sending']),
          ),
        ),
      )
      .returning('id')
      .execute();
    return rows.map((r) => r.id);
  }

  /** A campaign's sends counted by status and by reason. */
  async counts(campaignId: string): Promise<SendCounts> {
    const rows = await this.db
      .selectFrom('campaign_sends')
      .select(['status', 'reason', (eb) => eb.fn.countAll().as('n')])
      .where('campaign_id', '=', campaignId)
      .groupBy(['status', 'reason'])
      .execute();
    const byStatus = Object.fromEntries(SEND_STATUSES.map((s) => [s, 0])) as Record<SendStatus, number>;
    const byReason: Record<string, number> = {};
    let total = 0;
    for (const r of rows) {
      const n = Number(r.n);
      total += n;
      byStatus[r.status as SendStatus] += n;
      if (r.reason !== null && r.status !== 'sent') byReason[r.reason] = (byReason[r.reason] ?? 0) + n;
    }
    return { total, byStatus, byReason };
  }

  /** A page of a campaign's sends, by subject id, after `after`. */
  async listSends(
    campaignId: string,
    options: { after?: string | undefined; limit: number },
  ): Promise<CampaignSend[]> {
    const rows = await this.db
      .selectFrom('campaign_sends')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .$if(options.after !== undefined, (qb) => qb.where('subject_id', '>', options.after ?? ''))
      .orderBy('subject_id')
      .limit(options.limit)
      .execute();
    return rows.map(toSend);
  }

  /** Sends of a campaign to one subject (tests and support). */
  async getSend(campaignId: string, subjectId: string): Promise<CampaignSend | undefined> {
    const row = await this.db
      .selectFrom('campaign_sends')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .where('subject_id', '=', subjectId)
      .executeTakeFirst();
    return row && toSend(row);
  }

  /** The earliest due time of a pending send, to know when to look again. */
  async nextDue(): Promise<Date | undefined> {
    const row = await this.db
      .selectFrom('campaign_sends')
      .select((eb) => eb.fn.min('next_attempt_at').as('due'))
      .where('status', 'in', ['pending', 'sending'])
      .executeTakeFirst();
    const due = row?.due;
    return typeof due === 'string' ? new Date(due) : undefined;
  }
}

function groupByCampaign(rows: ReadonlyArray<{ campaign_id: string; subject_id: string }>) {
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const ids = out.get(r.campaign_id);
    if (ids) ids.push(r.subject_id);
    else out.set(r.campaign_id, [r.subject_id]);
  }
  return out;
}

function toCampaign(row: Selectable<CampaignsTable>): Campaign {
  return {
    id: row.id,
    kind: row.kind as CampaignKind,
    name: row.name,
    list: row.list,
    templates: { subject: row.subject_template, text: row.text_template, html: row.html_template },
    audience: JSON.parse(row.audience) as Audience,
    status: row.status as CampaignStatus,
    policyVersionId: row.policy_version_id ?? undefined,
    createdAt: new Date(row.created_at),
    startedAt: row.started_at === null ? undefined : new Date(row.started_at),
    finishedAt: row.finished_at === null ? undefined : new Date(row.finished_at),
  };
}

function toSend(row: Selectable<CampaignSendsTable>): CampaignSend {
  return {
    campaignId: row.campaign_id,
    subjectId: row.subject_id,
    status: row.status as SendStatus,
    reason: row.reason ?? undefined,
    attempts: Number(row.attempts),
    nextAttemptAt: new Date(row.next_attempt_at),
    messageId: row.message_id ?? undefined,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}
