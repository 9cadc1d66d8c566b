/**
 * The share capability's seams: what the share gate asks of the parts around it (a recipient's
 * standing under the policy in force, a legal request's approved scope), and what it answers. The
 * gate (share.service.ts), acknowledgements (acknowledgements.service.ts) and legal requests
 * (legal.service.ts) meet here, so each can be built and tested on its own.
 */
import type { AuditEntry } from '../audit/audit.service.js';
import type { Context } from '../platform/context.js';

/** Whether a recipient may receive data now, under the policy version in force. */
export type RecipientStandingResult =
  | { ok: true; acknowledgedVersion: string }
  | {
      ok: false;
      /** `share.acknowledgement_required` (never acknowledged) or `share.recipient_paused` (a material change awaits its acknowledgement). */
      code: 'share.acknowledgement_required' | 'share.recipient_paused';
      /** The policy version the recipient must acknowledge. */
      policyVersion: string;
      message: string;
    };

/** Answers for a recipient's acknowledgement of the policy (acknowledgements.service.ts). */
export interface RecipientStanding {
  standingOf(ctx: Context, recipient: string): Promise<RecipientStandingResult>;
}

/** What a reviewer approved of a legal request: the most the share gate lets leave for it. */
export interface LegalScope {
  requestId: string;
  /** Subject ids the disclosure may name. */
  subjects: readonly string[];
  /** Categories (taxonomy keys; a category covers its descendants) that may leave. */
  categories: readonly string[];
}

/** Answers for a legal request's approval (legal.service.ts). */
export interface LegalApprovals {
  /** The approved scope of an open, approved (or narrowed) request; undefined otherwise. */
  approvedScopeOf(ctx: Context, requestId: string): Promise<LegalScope | undefined>;
}

/** A disclosure as asked of the share gate (`POST /api/v1/disclosures`). */
export interface DiscloseOptions {
  recipient: string;
  purpose: string;
  subjects: readonly string[];
  /** Field names as the vault knows them (the manifest's sources' fields). */
  fields: readonly string[];
  /** For the `authorities` recipient: the approved legal request it answers. */
  legalRequest?: string | undefined;
}

/** A hand-over the share gate allowed: the log entry of each person it concerns. */
export interface PassThroughAuthorization {
  entryFor(subjectId: string | undefined, details?: Record<string, unknown>): AuditEntry;
}

/**
 * What a capability that hands values to a recipient itself (collect's card to the card processor,
 * comms' mail to the delivery provider, the pages' link mail) asks of the share gate: is this flow
 * allowed (throws its refusal), and the entries to record, committed by the caller with its own
 * write or through {@link PassThroughGate.recordPassThrough}.
 */
export interface PassThroughGate {
  authorizePassThrough(
    ctx: Context,
    request: {
      recipient: string;
      purpose: string;
      fields: ReadonlyArray<{ name: string; category: string }>;
    },
  ): Promise<PassThroughAuthorization>;
  recordPassThrough(ctx: Context, entries: readonly AuditEntry[]): Promise<void>;
}
