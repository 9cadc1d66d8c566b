/**
 * The webhook delivery log: one row per event and webhook, written with the change it reports; the
 * job queue carries each delivery's attempts. Only this file touches the webhook_deliveries table.
 */
import type { Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { WebhookTables } from './webhooks.tables.js';

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

/** What an attempt came to, as the job queue settled it. */
export type AttemptOutcome =
  | { status: 'delivered'; at: Date; lastStatus: string; attempts: number }
  | { status: 'pending'; at: Date; lastStatus: string; attempts: number; nextAttemptAt: Date }
  | { status: 'failed'; at: Date; lastStatus: string; attempts: number };

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
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<WebhookTables> {
    return this.db.executor<WebhookTables>(ctx);
  }

  /**
   * Logs deliveries (in the caller's transaction) and returns the ids of those it added: an event
   * already logged for a webhook is skipped, so queueing is idempotent.
   */
  async insertMany(ctx: Context, deliveries: readonly NewDelivery[]): Promise<string[]> {
    const added: string[] = [];
    // SQLite allows 32,766 bound parameters per statement; 9 columns a row.
    for (let i = 0; i < deliveries.length; i += 500) {
      const rows = await this.#q(ctx)
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
        .returning('id')
        .execute();
      for (const r of rows) added.push(r.id);
    }
    return added;
  }

  /**
   * Records an attempt's outcome (in the transaction that settles its job, so the log and the queue
   * agree); only a pending delivery moves.
   */
  async recordAttempt(ctx: Context, id: string, outcome: AttemptOutcome): Promise<void> {
    await this.#q(ctx)
      .updateTable('webhook_deliveries')
      .set({
        status: outcome.status,
        attempts: outcome.attempts,
        last_attempt_at: outcome.at.toISOString(),
        last_status: outcome.lastStatus,
        ...(outcome.status === 'pending' ? { next_attempt_at: outcome.nextAttemptAt.toISOString() } : {}),
        ...(outcome.status === 'delivered' ? { delivered_at: outcome.at.toISOString() } : {}),
      })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .execute();
  }

  /** Marks a pending delivery failed without an attempt (its webhook left the manifest). */
  async abandon(ctx: Context, id: string, at: Date, reason: string): Promise<void> {
    await this.#q(ctx)
      .updateTable('webhook_deliveries')
      .set({ status: 'failed', last_status: reason, last_attempt_at: at.toISOString() })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .execute();
  }

  /**
   * Puts failed deliveries back in the queue, due at `now`, with their attempts reset; returns the
   * ids of those that were failed.
   */
  async requeueFailed(ctx: Context, ids: readonly string[], now: Date): Promise<string[]> {
    if (ids.length === 0) return [];
    const failed = await this.#q(ctx)
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('status', '=', 'failed')
      .where('id', 'in', [...ids])
      .execute();
    if (failed.length === 0) return [];
    const moved = failed.map((r) => r.id);
    await this.#q(ctx)
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', attempts: 0, next_attempt_at: now.toISOString() })
      .where('status', '=', 'failed')
      .where('id', 'in', moved)
      .execute();
    return moved;
  }

  /** One delivery, or `undefined`. */
  async get(ctx: Context, id: string): Promise<Delivery | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && fromRow(row);
  }

  /** The delivery log, newest first. */
  async list(ctx: Context, options: ListDeliveriesOptions): Promise<Delivery[]> {
    const rows = await this.#q(ctx)
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

type Row = Omit<WebhookTables['webhook_deliveries'], 'attempts'> & { attempts: number };

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
