/**
 * What leaves the server about choices. Decisions carry only the subject id, purpose, channel, the
 * outcome and its reason; histories show evidence only to callers holding consent:read.
 */
import type { BatchDecision, ConsentChange, ConsentEventView, PurposeChoiceView } from './consent.service.js';

/** A recorded change. */
export function presentChange(c: ConsentChange): Record<string, unknown> {
  return {
    eventId: c.eventId,
    ...('subjectId' in c.holder ? { subject: c.holder.subjectId } : { browser: c.holder.browserId }),
    purpose: c.purpose,
    channel: c.channel ?? null,
    state: c.state,
    previous: c.previous,
    method: c.method,
    at: c.at.toISOString(),
  };
}

/** A purpose with the holder's choice and the decision. */
export function presentPurposeChoice(v: PurposeChoiceView): Record<string, unknown> {
  return {
    purpose: v.purpose.key,
    name: v.purpose.name,
    optional: v.optional,
    choice: v.choice
      ? { state: v.choice.state, method: v.choice.method, at: v.choice.at.toISOString() }
      : null,
    allowed: v.decision.allowed,
    reason: v.decision.reason,
  };
}

/** An event of the ledger. */
export function presentEvent(e: ConsentEventView): Record<string, unknown> {
  return {
    id: e.id,
    purpose: e.purpose,
    channel: e.channel ?? null,
    state: e.state,
    method: e.method,
    noticeVersion: e.noticeVersion ?? null,
    policyVersionId: e.policyVersionId,
    jurisdiction: e.jurisdiction ?? null,
    at: e.at.toISOString(),
    evidence: e.evidence ? { userAgent: e.evidence.userAgent ?? null, ip: e.evidence.ip ?? null } : null,
    mergedFrom: e.mergedFrom ?? null,
  };
}

/** One decision of a batch. */
export function presentBatchDecision(
  subject: string,
  d: BatchDecision,
): { subject: string; allowed: boolean; reason: string } {
  return { subject, allowed: d.allowed, reason: d.reason };
}
