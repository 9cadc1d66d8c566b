/**
 * Campaigns and their sends: templates, audiences and where each message stands, never an address.
 * Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as text) and JSON is text,
 * in both engines. Only this capability's repositories read these types.
 */
import type { Generated } from 'kysely';

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
  /**
   * 1 while a segment's subjects are still being queued, page by page (a campaign is not done
   * before its whole audience is queued); 0 otherwise.
   */
  expanding: Generated<number>;
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

/** The campaigns' tables. */
export interface CampaignTables {
  campaigns: CampaignsTable;
  campaign_sends: CampaignSendsTable;
}
