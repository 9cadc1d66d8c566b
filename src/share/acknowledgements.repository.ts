/**
 * The SQL of acknowledgements, pauses, notices and activations (acknowledgements.tables.ts), in the
 * transaction of the context it is given. Only this file touches those tables. The signatory of an
 * acknowledgement (a person's name) is sealed before it is written and opened as it is read
 * (sealed-columns.ts, key use `share_signatories`).
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Actor, Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type {
  AcknowledgementTables,
  ShareAcknowledgementsTable,
  ShareNoticesTable,
  SharePausesTable,
} from './acknowledgements.tables.js';
import type { ColumnBinding, ColumnSeal } from './sealed-columns.js';

/** How an acknowledgement came to be recorded. */
export type AcknowledgementMethod = 'cli' | 'api' | 'agreement';

/** A recipient's acknowledgement of a policy version. */
export interface Acknowledgement {
  id: string;
  recipient: string;
  policyVersion: string;
  manifestVersionId: number;
  /** Who recorded it (the typed actor of the context). */
  actor: Actor;
  /** The person who acknowledged for the recipient (or the agreement's reference). */
  acknowledgedBy: string;
  method: AcknowledgementMethod;
  acknowledgedAt: Date;
}

/** One material change as `pledge diff` names it, without the manifest around it. */
export interface PauseChange {
  kind: string;
  path: string;
  summary: string;
}

/** Disclosures to a recipient paused until it acknowledges `policyVersion`. */
export interface Pause {
  id: string;
  recipient: string;
  policyVersion: string;
  manifestVersionId: number;
  previousManifestVersionId: number;
  changes: PauseChange[];
  pausedAt: Date;
  liftedAt: Date | undefined;
  liftedBy: string | undefined;
}

/** Where a notice goes. */
export type NoticeChannel = 'email' | 'webhook';
/** What became of a notice. */
export type NoticeStatus = 'pending' | 'sent' | 'failed';

/** A notice of a pause to a recipient. */
export interface Notice {
  id: string;
  pauseId: string;
  recipient: string;
  channel: NoticeChannel;
  status: NoticeStatus;
  attempts: number;
  lastStatus: string | undefined;
  createdAt: Date;
  sentAt: Date | undefined;
}

/** The last activation weighed: which manifest version, and when it came into force. */
export interface Activation {
  manifestVersionId: number;
  inForceFrom: string;
}

/** How many rows of plaintext one statement of {@link AcknowledgementsRepository.sealPlaintext} reads. */
const SEAL_BATCH = 500;

/** Reads and writes the acknowledgements tables. */
export class AcknowledgementsRepository {
  readonly #seal: ColumnSeal;

  /** `seal`: the `share_signatories` use's seal (`new ColumnSeal(keyring.use('share_signatories'))`). */
  constructor(
    private readonly db: Db,
    seal: ColumnSeal,
  ) {
    this.#seal = seal;
  }

  #q(ctx: Context): Kysely<AcknowledgementTables> {
    return this.db.executor<AcknowledgementTables>(ctx);
  }

  #toAcknowledgement(row: Selectable<ShareAcknowledgementsTable>): Acknowledgement {
    return {
      id: row.id,
      recipient: row.recipient,
      policyVersion: row.policy_version,
      manifestVersionId: row.manifest_version_id,
      actor: JSON.parse(row.actor) as Actor,
      // A row of an earlier version stays plaintext only until the first start seals it.
      acknowledgedBy:
        row.sealed === 1 ? this.#seal.open(signatoryOf(row.id), row.acknowledged_by) : row.acknowledged_by,
      method: row.method as AcknowledgementMethod,
      acknowledgedAt: new Date(row.acknowledged_at),
    };
  }

  async insertAcknowledgement(ctx: Context, ack: Acknowledgement): Promise<void> {
    await this.#q(ctx)
      .insertInto('share_acknowledgements')
      .values({
        id: ack.id,
        recipient: ack.recipient,
        policy_version: ack.policyVersion,
        manifest_version_id: ack.manifestVersionId,
        actor: JSON.stringify(ack.actor),
        acknowledged_by: this.#seal.seal(signatoryOf(ack.id), ack.acknowledgedBy),
        sealed: 1,
        method: ack.method,
        acknowledged_at: ack.acknowledgedAt.toISOString(),
      })
      .execute();
  }

  /**
   * Seals the signatories of rows written before they were sealed (`sealed = 0`: rows of an
   * earlier version of Pledge), in the transaction of `ctx`; returns how many it sealed. A row
   * another instance sealed meanwhile is left as it is (the update asks `sealed = 0`).
   */
  async sealPlaintext(ctx: Context): Promise<number> {
    const q = this.#q(ctx);
    let sealed = 0;
    for (;;) {
      const rows = await q
        .selectFrom('share_acknowledgements')
        .select(['id', 'acknowledged_by'])
        .where('sealed', '=', 0)
        .orderBy('id')
        .limit(SEAL_BATCH)
        .execute();
      for (const row of rows) {
        const result = await q
          .updateTable('share_acknowledgements')
          .set({ acknowledged_by: this.#seal.seal(signatoryOf(row.id), row.acknowledged_by), sealed: 1 })
          .where('id', '=', row.id)
          .where('sealed', '=', 0)
          .executeTakeFirst();
        sealed += Number(result.numUpdatedRows);
      }
      if (rows.length < SEAL_BATCH) return sealed;
    }
  }

  /** A recipient's acknowledgements, newest first. */
  async listAcknowledgements(ctx: Context, recipient: string, limit: number): Promise<Acknowledgement[]> {
    const rows = await this.#q(ctx)
      .selectFrom('share_acknowledgements')
      .selectAll()
      .where('recipient', '=', recipient)
      .orderBy('acknowledged_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((row) => this.#toAcknowledgement(row));
  }

  /** The newest acknowledgement of a recipient, if any. */
  async latestAcknowledgement(ctx: Context, recipient: string): Promise<Acknowledgement | undefined> {
    return (await this.listAcknowledgements(ctx, recipient, 1))[0];
  }

  async insertPause(ctx: Context, pause: Pause): Promise<void> {
    await this.#q(ctx)
      .insertInto('share_pauses')
      .values({
        id: pause.id,
        recipient: pause.recipient,
        policy_version: pause.policyVersion,
        manifest_version_id: pause.manifestVersionId,
        previous_manifest_version_id: pause.previousManifestVersionId,
        changes: JSON.stringify(pause.changes),
        paused_at: pause.pausedAt.toISOString(),
        lifted_at: null,
        lifted_by: null,
      })
      .execute();
  }

  /** A recipient's pauses not yet lifted, newest first. */
  async openPauses(ctx: Context, recipient: string): Promise<Pause[]> {
    const rows = await this.#q(ctx)
      .selectFrom('share_pauses')
      .selectAll()
      .where('recipient', '=', recipient)
      .where('lifted_at', 'is', null)
      .orderBy('paused_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map(toPause);
  }

  /** A recipient's pauses, lifted or not, newest first. */
  async listPauses(ctx: Context, recipient: string, limit: number): Promise<Pause[]> {
    const rows = await this.#q(ctx)
      .selectFrom('share_pauses')
      .selectAll()
      .where('recipient', '=', recipient)
      .orderBy('paused_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toPause);
  }

  async getPause(ctx: Context, id: string): Promise<Pause | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('share_pauses')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toPause(row);
  }

  /** Lifts the open pauses of `recipient` that wait for `policyVersion`; returns their ids. */
  async liftPauses(
    ctx: Context,
    recipient: string,
    policyVersion: string,
    acknowledgementId: string,
    at: Date,
  ): Promise<string[]> {
    const rows = await this.#q(ctx)
      .updateTable('share_pauses')
      .set({ lifted_at: at.toISOString(), lifted_by: acknowledgementId })
      .where('recipient', '=', recipient)
      .where('policy_version', '=', policyVersion)
      .where('lifted_at', 'is', null)
      .returning('id')
      .execute();
    return rows.map((r) => r.id);
  }

  async insertNotices(ctx: Context, notices: readonly Notice[]): Promise<void> {
    if (notices.length === 0) return;
    await this.#q(ctx)
      .insertInto('share_notices')
      .values(
        notices.map((n) => ({
          id: n.id,
          pause_id: n.pauseId,
          recipient: n.recipient,
          channel: n.channel,
          status: n.status,
          attempts: n.attempts,
          last_status: n.lastStatus ?? null,
          created_at: n.createdAt.toISOString(),
          sent_at: n.sentAt?.toISOString() ?? null,
        })),
      )
      .execute();
  }

  async getNotice(ctx: Context, id: string): Promise<Notice | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('share_notices')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toNotice(row);
  }

  /** A recipient's notices, newest first. */
  async listNotices(ctx: Context, recipient: string, limit: number): Promise<Notice[]> {
    const rows = await this.#q(ctx)
      .selectFrom('share_notices')
      .selectAll()
      .where('recipient', '=', recipient)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toNotice);
  }

  /** Records an attempt of a notice. */
  async recordNoticeAttempt(
    ctx: Context,
    id: string,
    outcome: { status: NoticeStatus; attempts: number; lastStatus: string; sentAt?: Date },
  ): Promise<void> {
    await this.#q(ctx)
      .updateTable('share_notices')
      .set({
        status: outcome.status,
        attempts: outcome.attempts,
        last_status: outcome.lastStatus,
        sent_at: outcome.sentAt?.toISOString() ?? null,
      })
      .where('id', '=', id)
      .execute();
  }

  /** The recipients seen before, among `keys`. */
  async seenRecipients(ctx: Context, keys: readonly string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const rows = await this.#q(ctx)
      .selectFrom('share_recipients')
      .select('recipient')
      .where('recipient', 'in', [...keys])
      .execute();
    return new Set(rows.map((r) => r.recipient));
  }

  async insertSeenRecipients(
    ctx: Context,
    keys: readonly string[],
    manifestVersionId: number,
    at: Date,
  ): Promise<void> {
    if (keys.length === 0) return;
    await this.#q(ctx)
      .insertInto('share_recipients')
      .values(
        keys.map((recipient) => ({
          recipient,
          first_manifest_version_id: manifestVersionId,
          first_seen_at: at.toISOString(),
        })),
      )
      .onConflict((oc) => oc.column('recipient').doNothing())
      .execute();
  }

  /**
   * Announces on PostgreSQL, at the commit of the transaction of `ctx`, that the standing of
   * `recipients` changed (the payload is their keys, space-separated).
   */
  async notify(ctx: Context, channel: string, recipients: readonly string[]): Promise<void> {
    if (recipients.length === 0) return;
    await sql`select pg_notify(${channel}, ${recipients.join(' ')})`.execute(this.#q(ctx));
  }

  /** The activation weighed last, if any. */
  async lastActivation(ctx: Context): Promise<Activation | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('share_activations')
      .select(['manifest_version_id', 'in_force_from'])
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && { manifestVersionId: row.manifest_version_id, inForceFrom: row.in_force_from };
  }

  /**
   * Claims the weighing of an activation: true when this call recorded it, false when another
   * instance did (the unique index on version and in_force_from decides).
   */
  async claimActivation(
    ctx: Context,
    activation: Activation & { previousManifestVersionId: number; at: Date },
  ): Promise<boolean> {
    const inserted = await this.#q(ctx)
      .insertInto('share_activations')
      .values({
        manifest_version_id: activation.manifestVersionId,
        previous_manifest_version_id: activation.previousManifestVersionId,
        in_force_from: activation.inForceFrom,
        activated_at: activation.at.toISOString(),
      })
      .onConflict((oc) => oc.columns(['manifest_version_id', 'in_force_from']).doNothing())
      .returning('id')
      .executeTakeFirst();
    return inserted !== undefined;
  }
}

function signatoryOf(id: string): ColumnBinding {
  return { table: 'share_acknowledgements', rowId: id, column: 'acknowledged_by' };
}

function toPause(row: Selectable<SharePausesTable>): Pause {
  return {
    id: row.id,
    recipient: row.recipient,
    policyVersion: row.policy_version,
    manifestVersionId: row.manifest_version_id,
    previousManifestVersionId: row.previous_manifest_version_id,
    changes: JSON.parse(row.changes) as PauseChange[],
    pausedAt: new Date(row.paused_at),
    liftedAt: row.lifted_at === null ? undefined : new Date(row.lifted_at),
    liftedBy: row.lifted_by ?? undefined,
  };
}

function toNotice(row: Selectable<ShareNoticesTable>): Notice {
  return {
    id: row.id,
    pauseId: row.pause_id,
    recipient: row.recipient,
    channel: row.channel as NoticeChannel,
    status: row.status as NoticeStatus,
    attempts: row.attempts,
    lastStatus: row.last_status ?? undefined,
    createdAt: new Date(row.created_at),
    sentAt: row.sent_at === null ? undefined : new Date(row.sent_at),
  };
}
