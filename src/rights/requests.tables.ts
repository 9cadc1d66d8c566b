/**
 * The data-subject requests' tables: requests, their steps, the verification codes of the
 * identifiers they act on, and their events. No identifier rests in plaintext: each is a keyed hash
 * (for lookups and rate limits) beside a value sealed to its request (to write to the person).
 * A code is kept only as its HMAC. Timestamps are ISO-8601 text and JSON is text, in both engines.
 * Only the rights repositories read them.
 */

/** One request from a person, from intake to its end. */
export interface DsrRequestsTable {
  /** UUIDv7. */
  id: string;
  /** access, export, erasure, rectification, restriction, objection, inquiry. */
  type: string;
  /** verifying, verified, running, waiting, done, rejected, failed. */
  status: string;
  /** The jurisdiction whose deadlines apply (EU, US-CA ...). */
  jurisdiction: string;
  received_at: string;
  /** When the answer is due (moved to the extended date by an extension). */
  due_at: string;
  /** The latest date an extension may move the answer to (the answer date when none is allowed). */
  extended_due_at: string;
  /** By when the receipt must be confirmed, where the law asks for it. */
  confirm_by: string | null;
  /** When the answer was due before any extension (null: received before the manifest's rules applied). */
  answer_by: string | null;
  /** The last day to notify an extension (null: the rule allows none). */
  extension_notice_by: string | null;
  /** The key of the manifest's deadline rule applied at receipt (`builtin`: the manifest had none). */
  deadline_rule: string | null;
  /** When receipt was confirmed to the requester (the first mail or text that reached them). */
  confirmed_at: string | null;
  /** JSON list of the `request.due` notices sent, as `deadline:status` (`answer:due_soon`). */
  due_notices: string;
  /** When an extension was recorded (null: none). */
  extended_at: string | null;
  /** The keyed hash of the e-mail address given (null: none given). */
  email_hash: string | null;
  /** The keyed hash of the phone number given. */
  phone_hash: string | null;
  /** The identifiers given, sealed to this request (JSON of { email, phone, details }). */
  sealed: string;
  /** The subject, once a verified identifier matched one. */
  subject_id: string | null;
  /** Who filed it: `person` (the public page), or the system key that called the API. */
  agent: string;
  /** 1 when no progress was seen for longer than the configured time. */
  stalled: number;
  /** 1 when a step was re-run after its worker's lease expired. */
  requeued: number;
  /** A reason code (rejection, extension), never free text about a person. */
  reason: string | null;
  /** The last time anything moved; the watchdog measures stalls from it. */
  progressed_at: string;
  finished_at: string | null;
}

/** One step of a request (verify, collect per store, assemble, deliver, erase, notify, confirm). */
export interface DsrStepsTable {
  id: string;
  request_id: string;
  /** Its place in the request's plan, from 0. */
  position: number;
  /** verify, collect, assemble, deliver, erase, notify, confirm, apply, answer. */
  name: string;
  /** The store it acts on (`pledge`, a connector's key, a system's key), or '' for none. */
  store: string;
  /** pending, queued, running, waiting (a task for staff or a system), done, failed, skipped. */
  status: string;
  attempts: number;
  /** How many times it was queued (the job's idempotency key carries it). */
  runs: number;
  error: string | null;
  /** The lease-expiry re-runs seen (the watchdog re-queued the job). */
  requeued: number;
  /** For a task: when it is due. */
  due_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  /** JSON: counts and names of what was done, never the data itself. */
  result: string | null;
}

/** One identifier to verify, with its current code. */
export interface DsrVerificationsTable {
  id: string;
  request_id: string;
  /** email or phone. */
  kind: string;
  /** The keyed hash of the identifier (rate limits per address). */
  identifier_hash: string;
  /** HMAC of the code under the `request_codes` key, bound to this row; null once settled. */
  code_hmac: string | null;
  /** The key version the HMAC was made under. */
  key_version: number;
  expires_at: string;
  attempts: number;
  /** pending, verified, failed (attempts used up), expired. */
  status: string;
  created_at: string;
  verified_at: string | null;
  /** The client address's keyed hash, for the per-IP limit of code sends. */
  ip_hash: string;
}

/** What happened to a request, in order (the requester's status page and staff read it). */
export interface DsrEventsTable {
  id: string;
  request_id: string;
  at: string;
  /** received, verified, unverified, approved, extended, rejected, step.*, stalled, requeued ... */
  kind: string;
  /** JSON: step names, counts, reason codes; never personal data. */
  details: string;
}

/** The requests' tables. */
export interface RightsTables {
  dsr_requests: DsrRequestsTable;
  dsr_steps: DsrStepsTable;
  dsr_verifications: DsrVerificationsTable;
  dsr_events: DsrEventsTable;
}

/** An authorized agent registered by staff (Data Rights Protocol 1.0): a company, never a person. */
export interface DsrAgentsTable {
  /** The agent's DRP `agent-id`. */
  id: string;
  name: string;
  /** The raw 32-byte Ed25519 public key, base64. */
  public_key: string;
  /** active or revoked. */
  status: string;
  /** The staff key or CLI user that registered it. */
  registered_by: string;
  registered_at: string;
  revoked_at: string | null;
}

/** A signed agent message already seen (replays are refused), kept until it expires. */
export interface DsrAgentMessagesTable {
  /** SHA-256 of the signed message, hex. */
  id: string;
  agent_id: string;
  request_id: string;
  expires_at: string;
}

/** The authorized agents' tables. */
export interface AgentTables {
  dsr_agents: DsrAgentsTable;
  dsr_agent_messages: DsrAgentMessagesTable;
}
