/** Campaigns and their sends. Only this file touches those tables; rows hold no personal data. */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { CampaignSendsTable, CampaignsTable, CampaignTables } from './campaigns.tables.js';

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

/** Which send: a campaign and a recipient. */
export interface SendKey {
  campaignId: string;
  subjectId: string;
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
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<CampaignTables> {
    return this.db.executor<CampaignTables>(ctx);
  }

  /** Adds a campaign (in draft). Returns false when a notice for its policy version exists already. */
  async insertCampaign(ctx: Context, c: Omit<Campaign, 'startedAt' | 'finishedAt'>): Promise<boolean> {
    const result = await this.#q(ctx)
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
        expanding: 0,
      })
      .onConflict((oc) => oc.column('policy_version_id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** A campaign, or `undefined`. */
  async get(ctx: Context, id: string): Promise<Campaign | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('campaigns')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toCampaign(row);
  }

  /** The policy-change notice of a manifest version, if one was made. */
  async getNotice(ctx: Context, policyVersionId: number): Promise<Campaign | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('campaigns')
      .selectAll()
      .where('policy_version_id', '=', policyVersionId)
      .executeTakeFirst();
    return row && toCampaign(row);
  }

  /** Moves a draft to sending; false when it was not a draft (started already). */
  async markStarted(
    ctx: Context,
    id: string,
    at: Date,
    options: { expanding?: boolean } = {},
  ): Promise<boolean> {
    const result = await this.#q(ctx)
      .updateTable('campaigns')
      .set({ status: 'sending', started_at: at.toISOString(), expanding: options.expanding === true ? 1 : 0 })
      .where('id', '=', id)
      .where('status', '=', 'draft')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Queues one pending send per subject, due at `at`; a subject already queued is skipped. */
  async insertSends(
    ctx: Context,
    campaignId: string,
    subjectIds: readonly string[],
    at: Date,
  ): Promise<void> {
    const now = at.toISOString();
    // 7 columns a row, well under SQLite's 32,766 bound parameters.
    for (let i = 0; i < subjectIds.length; i += 1000) {
      await this.#q(ctx)
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

  /** Where these sends stand, by `campaignId:subjectId` (absent: no such send). */
  async statusesOf(ctx: Context, keys: readonly SendKey[]): Promise<Map<string, SendStatus>> {
    const out = new Map<string, SendStatus>();
    for (const [campaignId, ids] of byCampaign(keys)) {
      for (let i = 0; i < ids.length; i += 1000) {
        const rows = await this.#q(ctx)
          .selectFrom('campaign_sends')
          .select(['subject_id', 'status'])
          .where('campaign_id', '=', campaignId)
          .where('subject_id', 'in', ids.slice(i, i + 1000))
          .execute();
        for (const r of rows) out.set(`${campaignId}:${r.subject_id}`, r.status as SendStatus);
      }
    }
    return out;
  }

  /**
   * At-most-once: sends found in `sending` by a job that runs again (the runner that marked them
   * stopped heart-beating) become `uncertain` and are never sent again. Returns how many.
   */
  async interruptSending(ctx: Context, keys: readonly SendKey[], now: Date): Promise<number> {
    let n = 0;
    for (const [campaignId, ids] of byCampaign(keys)) {
      const result = await this.#q(ctx)
        .updateTable('campaign_sends')
        .set({ status: 'uncertain', reason: 'interrupted', updated_at: now.toISOString() })
        .where('campaign_id', '=', campaignId)
        .where('subject_id', 'in', ids)
        .where('status', '=', 'sending')
        .executeTakeFirst();
      n += Number(result.numUpdatedRows);
    }
    return n;
  }

  /**
   * At-most-once: sends left in `sending` past their lease (their runner died between marking and
   * recording) become `uncertain` and are never sent again. Returns how many.
   */
  async expireSending(ctx: Context, now: Date): Promise<number> {
    const result = await this.#q(ctx)
      .updateTable('campaign_sends')
      .set({ status: 'uncertain', reason: 'interrupted', updated_at: now.toISOString() })
      .where('status', '=', 'sending')
      .where('next_attempt_at', '<', now.toISOString())
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /**
   * Marks a pending send `sending` until `sendLease`, only if it is still pending; false when it is
   * not (another runner has it, or it is finished: the send must then not be made). This is what
   * makes a send at most once, whatever happens to its job.
   */
  async markSending(
    ctx: Context,
    send: SendKey & { attempt: number },
    sendLease: Date,
    messageId: string,
    at: Date,
  ): Promise<boolean> {
    const result = await this.#q(ctx)
      .updateTable('campaign_sends')
      .set({
        status: 'sending',
        next_attempt_at: sendLease.toISOString(),
        message_id: messageId,
        attempts: send.attempt,
        updated_at: at.toISOString(),
      })
      .where('campaign_id', '=', send.campaignId)
      .where('subject_id', '=', send.subjectId)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Records an outcome. `from` is the state the runner holds the row in: not yet marked (pending),
   * or in flight (sending with the lease it marked). Returns false when the row moved on meanwhile
   * (another runner finished it, or its send lease ran out).
   */
  async recordOutcome(
    ctx: Context,
    key: SendKey,
    from: { status: 'pending' } | { status: 'sending'; lease: Date },
    outcome: SendOutcome,
    at: Date,
  ): Promise<boolean> {
    const result = await this.#q(ctx)
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
      .$if(from.status === 'sending', (qb) =>
        qb.where('next_attempt_at', '=', from.status === 'sending' ? from.lease.toISOString() : ''),
      )
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Records that a campaign's whole audience is queued (its last page of subjects). */
  async markExpanded(ctx: Context, id: string): Promise<void> {
    await this.#q(ctx).updateTable('campaigns').set({ expanding: 0 }).where('id', '=', id).execute();
  }

  /**
   * Marks done the sending campaigns with their whole audience queued and nothing pending or in
   * flight; returns their ids.
   */
  async finishCampaigns(ctx: Context, now: Date): Promise<string[]> {
    const rows = await this.#q(ctx)
      .updateTable('campaigns')
      .set({ status: 'done', finished_at: now.toISOString() })
      .where('status', '=', 'sending')
      .where('expanding', '=', 0)
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
  async counts(ctx: Context, campaignId: string): Promise<SendCounts> {
    const rows = await this.#q(ctx)
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
    ctx: Context,
    campaignId: string,
    options: { after?: string | undefined; limit: number },
  ): Promise<CampaignSend[]> {
    const rows = await this.#q(ctx)
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
  async getSend(ctx: Context, campaignId: string, subjectId: string): Promise<CampaignSend | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('campaign_sends')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .where('subject_id', '=', subjectId)
      .executeTakeFirst();
    return row && toSend(row);
  }
}

function byCampaign(keys: readonly SendKey[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const k of keys) {
    const ids = out.get(k.campaignId);
    if (ids) ids.push(k.subjectId);
    else out.set(k.campaignId, [k.subjectId]);
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
