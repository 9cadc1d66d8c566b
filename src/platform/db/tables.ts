/**
 * The tables as Kysely sees them. Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which
 * sorts as text) and JSON is text, in both engines: one representation, no driver-specific parsing.
 * Repositories turn rows into domain objects; nothing else reads these types.
 */
import type { Generated } from 'kysely';

/** Every manifest that has been in force, kept forever so records can name their policy version. */
export interface ManifestVersionsTable {
  id: Generated<number>;
  /** SHA-256 of the manifest file's bytes, hex. */
  hash: string;
  /** The manifest's own `version` field. */
  version: string;
  /** The manifest's `effective` date. */
  effective: string;
  /** The manifest file as it was (YAML). */
  source: string;
  first_seen_at: string;
  /** When this manifest last came into force; the newest is the one in force now. */
  in_force_from: string;
}

/** API keys. Only a digest of the secret is stored. */
export interface ApiKeysTable {
  /** The public lookup part of the key. */
  id: string;
  name: string;
  /** SHA-256 of the secret part, hex. */
  secret_hash: string;
  /** JSON array of scope names. */
  scopes: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** A person the company holds data on. No personal data: identifiers live in subject_identifiers as hashes. */
export interface SubjectsTable {
  id: string;
  /** customer, trial_user, visitor or prospect. */
  kind: string;
  /** Where the person is, for consent defaults (ISO country code, "EU"...); null when unknown. */
  jurisdiction: string | null;
  created_at: string;
  /** Set when the subject was erased; the row stays as a tombstone without data. */
  erased_at: string | null;
}

/** The blind index: keyed hashes of normalized identifiers. */
export interface SubjectIdentifiersTable {
  /** email, account_id or phone. */
  kind: string;
  /** HMAC-SHA256(index key, kind ":" normalized), hex. */
  hash: string;
  subject_id: string;
  created_at: string;
}

/** A record: what one collection brought in, each field encrypted under the subject's data key. */
export interface RecordsTable {
  id: string;
  subject_id: string;
  /** The collection point's key. */
  source: string;
  /** JSON array of the categories the record's fields hold. */
  categories: string;
  /** JSON array of the purposes it was collected for. */
  purposes: string;
  /** The manifest version in force when it came in. */
  policy_version_id: number;
  collected_at: string;
  /** When retention ends; the sweeper deletes the record after it. */
  retain_until: string;
  /** The subject's data-key version the fields are encrypted with. */
  key_version: number;
  /** JSON object: field name -> { c: category, v: base64 sealed value }. */
  fields: string;
}

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

/**
 * The key store (a separate database: keys.db, or its own PostgreSQL schema) so that backups of the
 * records never carry the keys that open them: destroying a subject's keys here erases every copy.
 */
export interface DataKeysTable {
  subject_id: string;
  version: number;
  /** The data key sealed with a KEK (base64). */
  wrapped: string;
  kek_version: number;
  /** Encryptions reserved under this key; a new version is made long before 2^32. */
  encryptions: number;
  created_at: string;
}

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

/** A campaign (or a policy-change notice): templates and audience, never a rendered message. */
export interface CampaignsTable {
  id: string;
  /** marketing or service. */
  kind: string;
  name: string;
  /** The purpose the messages are sent for (a marketing campaign's list). */
  list: string;
  subject_template: string;
  text_template: string;
  html_template: string;
  /** JSON: { subjects: [ids] } or { segment: { jurisdiction?, kind? } }. */
  audience: string;
  /** draft, sending or done. */
  status: string;
  /** A policy-change notice: the manifest version it announces (unique). */
  policy_version_id: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** One message of a campaign to one subject: where it stands, never an address. */
export interface CampaignSendsTable {
  campaign_id: string;
  subject_id: string;
  /** pending, sending, sent, skipped, failed or uncertain. */
  status: string;
  reason: string | null;
  attempts: Generated<number>;
  /** Pending: when due (or a claim's lease end); sending: the lease end. */
  next_attempt_at: string;
  message_id: string | null;
  created_at: string;
  updated_at: string;
}

/** All of Pledge's tables. */
export interface Tables {
  manifest_versions: ManifestVersionsTable;
  api_keys: ApiKeysTable;
  subjects: SubjectsTable;
  subject_identifiers: SubjectIdentifiersTable;
  records: RecordsTable;
  audit_events: AuditEventsTable;
  consent_events: ConsentEventsTable;
  consent_state: ConsentStateTable;
  suppressions: SuppressionsTable;
  soft_bounces: SoftBouncesTable;
  data_keys: DataKeysTable;
  webhook_deliveries: WebhookDeliveriesTable;
  campaigns: CampaignsTable;
  campaign_sends: CampaignSendsTable;
}
