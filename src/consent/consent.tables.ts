/**
 * The consent ledger and its projection.
 * Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as text) and JSON is text,
 * in both engines. Only this capability's repositories read these types.
 */

/**
 * The consent ledger: one row per choice a person made (or a signal their browser sent). Append-only:
 * the database refuses UPDATE, and DELETE unless the subject was erased.
 */
export interface ConsentEventsTable {
  /** UUIDv7: the order events were recorded in. */
  id: string;
  /** "s:<subject id>" or "b:<browser id>". */
  holder: string;
  /** Set when the holder is a subject (so erasure can find the events). */
  subject_id: string | null;
  /** A purpose key, or "*" for the global opt-out. */
  purpose: string;
  /** A channel ("email"), or "" for the purpose on every channel. */
  channel: string;
  /** granted, denied or withdrawn. */
  state: string;
  /** How the choice was made: preference_center, unsubscribe_link, one_click, banner, api, gpc, import. */
  method: string;
  /** The version of the notice text the person saw, when given. */
  notice_version: string | null;
  policy_version_id: number;
  jurisdiction: string | null;
  at: string;
  /** Evidence (user agent, truncated IP), sealed with the evidence key; null when none was given. */
  evidence: string | null;
  /** The browser event this subject event was merged from at sign-up. */
  merged_from: string | null;
}

/** The projection of the ledger: the latest choice per holder, purpose and channel. */
export interface ConsentStateTable {
  holder: string;
  purpose: string;
  channel: string;
  state: string;
  method: string;
  event_id: string;
  at: string;
}

/**
 * A person's link generation: preference-center links carry the generation they were made in and
 * work only while it is the current one. "Sign out every link" and erasure raise it. A subject
 * without a row is at generation 0.
 */
export interface LinkGenerationsTable {
  subject_id: string;
  generation: number;
  updated_at: string;
}

/** The consent capability's tables. */
export interface ConsentTables {
  consent_events: ConsentEventsTable;
  consent_state: ConsentStateTable;
  link_generations: LinkGenerationsTable;
}
