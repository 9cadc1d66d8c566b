/**
 * The audit capability's table: what was done with personal data.
 * Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as text) and JSON is text,
 * in both engines. Only this capability's repositories read these types.
 */
import type { Generated } from 'kysely';

/** Append-only record of what was done with personal data (no personal data in it). */
export interface AuditEventsTable {
  id: Generated<number>;
  at: string;
  /** JSON: the actor from the context (api key id, cli user, system job). */
  actor: string;
  action: string;
  subject_id: string | null;
  purpose: string | null;
  request_id: string | null;
  /** JSON object of non-personal details (counts, field names, categories). */
  details: string;
}

/** The audit capability's tables. */
export interface AuditTables {
  audit_events: AuditEventsTable;
}
