/**
 * What the consent service takes and gives: choices to record, the changes they made, the views of
 * the ledger and of a person's purposes, and what the service is built from.
 */
import type { AuditAppender } from '../audit/audit.service.js';
import type { Manifest, Purpose } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import type { Database } from '../platform/db/database.js';
import type { Transactions } from '../platform/db/db.js';
import type { UseKeys } from '../vault/use-keys.js';
import type { ConsentEvidence } from './consent.evidence.js';
import type { ChoiceState, ConsentMethod, ConsentState, Decision } from './consent.decide.js';
import type { ConsentRepository } from './consent.repository.js';
import type { LinkGenerationsRepository } from './link-generations.repository.js';

/** Whose choice it is: a known subject, or a browser before its person signs up. */
export type ConsentHolder = { subjectId: string } | { browserId: string };

export type { ConsentEvidence };

/** One choice to record. */
export interface RecordChoiceInput {
  holder: ConsentHolder;
  /** A declared purpose, or "*" for "opt out of the collection, use and distribution of my information". */
  purpose: string;
  /** A channel of the purpose (e.g. "email"); absent for the purpose on every channel. */
  channel?: string | undefined;
  state: ConsentState;
  method: ConsentMethod;
  /** The version of the notice text the person saw. */
  noticeVersion?: string | undefined;
  /** Where the person is (ISO country code or "EU"), when known at the time. */
  jurisdiction?: string | undefined;
  evidence?: ConsentEvidence | undefined;
}

/** A change that was recorded: what it was before and what it is now. */
export interface ConsentChange {
  eventId: string;
  holder: ConsentHolder;
  purpose: string;
  channel: string | undefined;
  state: ConsentState;
  method: ConsentMethod;
  /** The state before this change ("none" when the person had never chosen). */
  previous: ConsentState | 'none';
  at: Date;
}

/** A recorded event as the API shows it (evidence opened). */
export interface ConsentEventView {
  id: string;
  purpose: string;
  channel: string | undefined;
  state: ConsentState;
  method: ConsentMethod;
  noticeVersion: string | undefined;
  policyVersionId: number;
  jurisdiction: string | undefined;
  at: Date;
  evidence: ConsentEvidence | undefined;
  mergedFrom: string | undefined;
}

/** A purpose as a person sees it on a page: what it is, their choice and the decision. */
export interface PurposeChoiceView {
  purpose: Purpose;
  /** The person's own latest choice, if any. */
  choice: ChoiceState | undefined;
  decision: Decision;
  /** Whether the person can change it (not required, not forbidden by a pledge). */
  optional: boolean;
  /** Each channel the purpose is used on, with the person's choice for it and its decision. */
  channels: ChannelChoiceView[];
}

/** One channel of a purpose in a {@link PurposeChoiceView}. */
export interface ChannelChoiceView {
  channel: string;
  /** The person's own latest choice for this channel, if any. */
  choice: ChoiceState | undefined;
  decision: Decision;
}

/**
 * Called inside the transaction of every change (`ctx` is bound to it), to queue propagation
 * (webhooks) and lift opt-outs with it.
 */
export type PropagateChanges = (ctx: Context, changes: readonly ConsentChange[]) => Promise<void>;

/**
 * What consent needs of the vault: which subjects are live and where they are (it reads no table of
 * the vault's). Asked in the transaction of the context, so a change checks its subject inside it.
 */
export interface ConsentSubjects {
  liveJurisdictions(
    ctx: Context,
    subjectIds: readonly string[],
  ): Promise<Map<string, { jurisdiction: string | undefined }>>;
}

/** What the consent service uses. */
export interface ConsentServiceDeps {
  /** Transactions of the main database. */
  db: Transactions;
  repo: ConsentRepository;
  /** People's link generations (preference-center links; pages.routes.ts). */
  linkGenerations: LinkGenerationsRepository;
  subjects: ConsentSubjects;
  audit: AuditAppender;
  /** Where other instances' changes are heard (PostgreSQL). */
  notifications: Pick<Database, 'dialect' | 'channel' | 'listen'>;
  manifest: { manifest: Manifest; versionId: number };
  /** What the evidence key is derived from: the keyring's `evidence` use (or one secret, version 1). */
  evidenceSecret: Buffer | UseKeys;
  propagate?: PropagateChanges;
  /** Holders kept in the cache (default 200,000). */
  cacheSize?: number;
}

/** Reasons a batch decision may give beyond the per-purpose ones. */
export type BatchDecision = Decision | { allowed: false; reason: 'unknown_subject' };
