/**
 * The suppression list (keyed hashes of addresses only).
 * Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as text) and JSON is text,
 * in both engines. Only this capability's repositories read these types.
 */

/** Addresses that must not receive marketing (for one list, or "*" for all), as keyed hashes. */
export interface SuppressionsTable {
  address_hash: string;
  list: string;
  /** unsubscribe, hard_bounce, complaint, soft_bounces or manual. */
  reason: string;
  created_at: string;
}

/** Soft bounces per address (keyed hash), until the limit suppresses it. */
export interface SoftBouncesTable {
  address_hash: string;
  count: number;
  last_at: string;
}

/** The suppression list's tables. */
export interface SuppressionTables {
  suppressions: SuppressionsTable;
  soft_bounces: SoftBouncesTable;
}
