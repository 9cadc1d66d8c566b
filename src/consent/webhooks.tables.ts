/**
 * The webhook delivery log.
 * Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as text) and JSON is text,
 * in both engines. Only this capability's repositories read these types.
 */
import type { Generated } from 'kysely';

/**
 * The webhook outbox and delivery log: one row per event and webhook. No personal data: the payload
 * names the subject by id, and `last_status` is an HTTP status or an error, never a response body.
 */
export interface WebhookDeliveriesTable {
  /** UUIDv7, also sent as Pledge-Delivery-Id. */
  id: string;
  /** The webhook's key in the manifest. */
  webhook: string;
  /** The event reported (a consent event's id), sent as Pledge-Event-Id. */
  event_id: string;
  /** consent.changed or subject.erased. */
  event_type: string;
  /** The JSON body, exactly as it is sent (and signed). */
  payload: string;
  /** pending, delivered or failed. */
  status: string;
  /** Attempts made so far. */
  attempts: Generated<number>;
  /** When the next attempt is due; while an attempt is in flight, when its lease ends. */
  next_attempt_at: string;
  last_attempt_at: string | null;
  /** "HTTP 503", or the error of the last attempt ("timed out after 10 s"). */
  last_status: string | null;
  created_at: string;
  delivered_at: string | null;
}

/** The webhooks' tables. */
export interface WebhookTables {
  webhook_deliveries: WebhookDeliveriesTable;
}
