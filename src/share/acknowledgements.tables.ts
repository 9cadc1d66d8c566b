/**
 * The share capability's tables for processors bound to the policy: what each recipient
 * acknowledged, the pauses a material change put on its disclosures, the notices sent about them,
 * and which activations of the manifest have been weighed. Timestamps are ISO-8601 text, JSON is
 * text, in both engines. Only acknowledgements.repository.ts reads these types.
 */
import type { Generated } from 'kysely';

/** One acknowledgement of a policy version by a recipient: who and when. */
export interface ShareAcknowledgementsTable {
  /** uuidv7. */
  id: string;
  /** The recipient's key in the manifest. */
  recipient: string;
  /** The manifest's `policy.version` acknowledged. */
  policy_version: string;
  /** The stored manifest version in force when it was acknowledged (manifest_versions.id). */
  manifest_version_id: number;
  /** The typed actor that recorded it (JSON of the context's actor). */
  actor: string;
  /**
   * The person who acknowledged for the recipient, as they gave it, or the agreement's reference:
   * sealed (`k<version>:<base64>`, key use `share_signatories`, bound to the row's id) when
   * `sealed` is 1.
   */
  acknowledged_by: string;
  /** 1 once `acknowledged_by` is sealed; 0 on a row of an earlier version until the first start seals it. */
  sealed: number;
  /** `cli`, `api`, or `agreement` (counted from its agreement when first named). */
  method: string;
  acknowledged_at: string;
}

/** Disclosures to a recipient paused until it acknowledges a policy version. */
export interface SharePausesTable {
  id: string;
  recipient: string;
  /** The policy version it must acknowledge. */
  policy_version: string;
  manifest_version_id: number;
  /** The version the change was weighed against (manifest_versions.id). */
  previous_manifest_version_id: number;
  /** The material changes that touch it, as `pledge diff` names them (JSON: kind, path, summary). */
  changes: string;
  paused_at: string;
  lifted_at: string | null;
  /** The acknowledgement that lifted it. */
  lifted_by: string | null;
}

/** A notice of a pause sent to a recipient's contact (e-mail) or webhook, and what became of it. */
export interface ShareNoticesTable {
  id: string;
  pause_id: string;
  recipient: string;
  /** `email` or `webhook`. */
  channel: string;
  /** `pending`, `sent` or `failed`. */
  status: string;
  attempts: number;
  last_status: string | null;
  created_at: string;
  sent_at: string | null;
}

/** The recipients of kind processor or affiliate Pledge has seen named by a manifest in force. */
export interface ShareRecipientsTable {
  recipient: string;
  first_manifest_version_id: number;
  first_seen_at: string;
}

/** Each change of the manifest in force that the share capability weighed, once. */
export interface ShareActivationsTable {
  id: Generated<number>;
  manifest_version_id: number;
  /** The version before it (0 for the first). */
  previous_manifest_version_id: number;
  /** The version's in_force_from when weighed: a rollback to it is weighed again. */
  in_force_from: string;
  activated_at: string;
}

/** The tables of acknowledgements. */
export interface AcknowledgementTables {
  share_acknowledgements: ShareAcknowledgementsTable;
  share_pauses: SharePausesTable;
  share_notices: ShareNoticesTable;
  share_recipients: ShareRecipientsTable;
  share_activations: ShareActivationsTable;
}
