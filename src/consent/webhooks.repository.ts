/** The webhook outbox and delivery log. Only this file touches the webhook_deliveries table. */
import type { Kysely } from 'kysely';
import { dialectOf } from '../platform/db/schema.js';
import type { Tables } from '../platform/db/tables.js';

/** Where a delivery stands. */
import type { DeliveryStatus } from './webhooks.constants.js';

export { DELIVERY_STATUSES, type DeliveryStatus } from './webhooks.constants.js';

/** A delivery to queue. */
export interface NewDelivery {
  id: string;
  webhook: string;
  eventId: string;
  eventType: string;
  payload: string;
  createdAt: Date;
  /** When the first attempt is due. */
  dueAt: Date;
}

/** A delivery as stored. */
export interface Delivery {
  id: string;
  webhook: string;
  eventId: string;
  eventType: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastAttemptAt: Date | undefined;
  lastStatus: string | undefined;
  createdAt: Date;
  deliveredAt: Date | undefined;
}

/** A delivery claimed for one attempt, with the lease that proves it is still this claimer's. */
export interface ClaimedDelivery extends Delivery {
  leaseUntil: Date;
}

/** What happened to an attempt. */
export type AttemptOutcome =
  | { status: 'delivered'; at: Date; lastStatus: string }
  | { status: 'pending'; at: Date; lastStatus: string; nextAttemptAt: Date }
  | { status: 'failed'; at: Date; lastStatus: string };

/** Filters of {@link WebhookDeliveriesRepository.list}. */
export interface ListDeliveriesOptions {
  status?: DeliveryStatus | undefined;
  webhook?: string | undefined;
  /** Only deliveries older than this id (the last id of the previous page). */
  before?: string | undefined;
  limit: number;
}

/** Reads and writes webhook deliveries. */
export class WebhookDeliveriesRepository {
  constructor(private readonly db: Kysely<Tables>) {}

  /**
   * Queues deliveries (in the caller's transaction). An event already queued for a webhook is
   * skipped, so queueing is idempotent.
   */
  async insertMany(deliveries: readonly NewDelivery[]): Promise<void> {
    // SQLite allows 32,766 bound parameters per statement; 9 columns a row.
    for (let i = 0; i < deliveries.length; i += 500) {
      await this.db
        .insertInto('webhook_deliveries')
        .values(
          deliveries.slice(i, i + 500).map((d) => ({
            id: d.id,
            webhook: d.webhook,
            event_id: d.eventId,
            event_type: d.eventType,
            payload: d.payload,
            status: 'pending',
            attempts: 0,
            next_attempt_at: d.dueAt.toISOString(),
            created_at: d.createdAt.toISOString(),
          })),
        )
        .onConflict((oc) => oc.columns(['webhook', 'event_id']).doNothing())
        .execute();
    }
  }

  /**
   * Claims up to `limit` pending deliveries due at `now` by moving their next attempt to
   * `leaseUntil`: until then no other dispatcher picks them up, and if this one dies mid-attempt
   * they are retried after it. Run it inside a (short) transaction: on PostgreSQL the rows are
   * locked with FOR UPDATE SKIP LOCKED, so concurrent claimers get disjoint rows without waiting.
   */
  async claimDue(now: Date, leaseUntil: Date, limit: number): Promise<ClaimedDelivery[]> {
    const rows = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now.toISOString())
      .orderBy('next_attempt_at')
      .orderBy('id')
      .limit(limit)
      // SQLite has one writer at a time (the transaction is the lock) and no such clause.
      .$if(dialectOf(this.db) === 'postgres', (qb) => qb.forUpdate().skipLocked())
      .execute();
    if (rows.length === 0) return [];
    await this.db
      .updateTable('webhook_deliveries')
      .set({ next_attempt_at: leaseUntil.toISOString() })
      .where(
        'id',
        'in',
        rows.map((r) => r.id),
      )
      .execute();
    return rows.map((r) => ({ ...fromRow(r), nextAttemptAt: leaseUntil, leaseUntil }));
  }

  /**
   * Records an attempt's outcome, only if the claim still holds (the row is pending with the
   * lease this claimer set); returns false when it did not (the lease ran out and another
   * dispatcher took the row over).
   */
  async recordAttempt(claim: ClaimedDelivery, outcome: AttemptOutcome): Promise<boolean> {
    const result = await this.db
      .updateTable('webhook_deliveries')
      .set({
        status: outcome.status,
        attempts: claim.attempts + 1,
        last_attempt_at: outcome.at.toISOString(),
        last_status: outcome.lastStatus,
        ...(outcome.status === 'pending' ? { next_attempt_at: outcome.nextAttemptAt.toISOString() } : {}),
        ...(outcome.status === 'delivered' ? { delivered_at: outcome.at.toISOString() } : {}),
      })
      .where('id', '=', claim.id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '=', claim.leaseUntil.toISOString())
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Marks a pending delivery failed without an attempt (its webhook left the manifest). */
  async abandon(claim: ClaimedDelivery, at: Date, reason: string): Promise<void> {
    await this.db
      .updateTable('webhook_deliveries')
      .set({ status: 'failed', last_status: reason, last_attempt_at: at.toISOString() })
      .where('id', '=', claim.id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '=', claim.leaseUntil.toISOString())
      .execute();
  }

  /** Puts failed deliveries back in the queue, due at `now`, with their attempts reset. */
  async requeueFailed(ids: readonly string[], now: Date): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.db
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', attempts: 0, next_attempt_at: now.toISOString() })
      .where('status', '=', 'failed')
      .where('id', 'in', [...ids])
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** One delivery, or `undefined`. */
  async get(id: string): Promise<Delivery | undefined> {
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && fromRow(row);
  }

  /** The delivery log, newest first. */
  async list(options: ListDeliveriesOptions): Promise<Delivery[]> {
    const rows = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .$if(options.status !== undefined, (qb) => qb.where('status', '=', options.status ?? ''))
      .$if(options.webhook !== undefined, (qb) => qb.where('webhook', '=', options.webhook ?? ''))
      .$if(options.before !== undefined, (qb) => qb.where('id', '<', options.before ?? ''))
      .orderBy('id', 'desc')
      .limit(options.limit)
      .execute();
    return rows.map(fromRow);
  }
}

type Row = Omit<Tables['webhook_deliveries'], 'attempts'> & { attempts: number };

function fromRow(row: Row): Delivery {
  return {
    id: row.id,
    webhook: row.webhook,
    eventId: row.event_id,
    eventType: row.event_type,
    payload: row.payload,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: new Date(row.next_attempt_at),
    lastAttemptAt: row.last_attempt_at === null ? undefined : new Date(row.last_attempt_at),
    lastStatus: row.last_status ?? undefined,
    createdAt: new Date(row.created_at),
    deliveredAt: row.delivered_at === null ? undefined : new Date(row.delivered_at),
  };
}
