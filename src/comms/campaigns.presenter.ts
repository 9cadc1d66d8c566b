/**
 * What leaves the server about campaigns: their settings, where their sends stand, counted or by
 * subject id. Never an address, never a rendered message, never the list of a campaign's subjects
 * beyond its sends' own page.
 */
import type { Campaign, CampaignSend, SendCounts } from './campaigns.repository.js';

/** A campaign as the API shows it. */
export interface CampaignView {
  id: string;
  kind: string;
  name: string;
  list: string;
  status: string;
  template: { subject: string; text: string; html: string };
  /** How the audience was given: a count of subject ids, or the segment. */
  audience:
    | { type: 'subjects'; count: number }
    | { type: 'segment'; jurisdiction: string | null; kind: string | null };
  /** Set on a policy-change notice: the manifest version it announces. */
  policyVersionId: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Present once started: sends by status, and the reasons of those not sent. */
  counts?: { total: number; byStatus: Record<string, number>; byReason: Record<string, number> };
}

/** One send as the API shows it. */
export interface CampaignSendView {
  subjectId: string;
  status: string;
  reason: string | null;
  attempts: number;
  /** The message's Message-ID once it was handed to the SMTP server (no personal data in it). */
  messageId: string | null;
  updatedAt: string;
}

/** A campaign, with its counts when given. */
export function presentCampaign(campaign: Campaign, counts?: SendCounts): CampaignView {
  const a = campaign.audience;
  return {
    id: campaign.id,
    kind: campaign.kind,
    name: campaign.name,
    list: campaign.list,
    status: campaign.status,
    template: {
      subject: campaign.templates.subject,
      text: campaign.templates.text,
      html: campaign.templates.html,
    },
    audience:
      'subjects' in a
        ? { type: 'subjects', count: a.subjects.length }
        : { type: 'segment', jurisdiction: a.segment.jurisdiction ?? null, kind: a.segment.kind ?? null },
    policyVersionId: campaign.policyVersionId ?? null,
    createdAt: campaign.createdAt.toISOString(),
    startedAt: campaign.startedAt?.toISOString() ?? null,
    finishedAt: campaign.finishedAt?.toISOString() ?? null,
    ...(counts !== undefined
      ? {
          counts: { total: counts.total, byStatus: { ...counts.byStatus }, byReason: { ...counts.byReason } },
        }
      : {}),
  };
}

/** A send of a campaign. */
export function presentSend(send: CampaignSend): CampaignSendView {
  return {
    subjectId: send.subjectId,
    status: send.status,
    reason: send.reason ?? null,
    attempts: send.attempts,
    messageId: send.status === 'skipped' ? null : (send.messageId ?? null),
    updatedAt: send.updatedAt.toISOString(),
  };
}
