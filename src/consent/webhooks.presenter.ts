/**
 * What leaves the server about webhook deliveries: where each stands, never its payload (which
 * names a subject) nor anything a receiver answered.
 */
import type { Delivery } from './webhooks.repository.js';

/** A delivery of the log, as the API and `pledge webhooks deliveries --format json` show it. */
export interface DeliveryView {
  id: string;
  webhook: string;
  eventId: string;
  eventType: string;
  status: string;
  attempts: number;
  /** When the next attempt is due; null once delivered or failed. */
  nextAttemptAt: string | null;
  lastAttemptAt: string | null;
  lastStatus: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

/** A delivery of the log. */
export function presentDelivery(d: Delivery): DeliveryView {
  return {
    id: d.id,
    webhook: d.webhook,
    eventId: d.eventId,
    eventType: d.eventType,
    status: d.status,
    attempts: d.attempts,
    nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
    lastAttemptAt: d.lastAttemptAt?.toISOString() ?? null,
    lastStatus: d.lastStatus ?? null,
    createdAt: d.createdAt.toISOString(),
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
  };
}
