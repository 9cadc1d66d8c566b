/**
 * What the vault takes and gives: subjects and records to write, what the use gate answers, what it
 * is built from, and the decision the manifest alone makes.
 */
import type { AuditAppender, AuditEntry } from '../audit/audit.service.js';
import { consentModeFor, type Manifest, type Purpose } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { ValidationError } from '../platform/errors.js';
import { UUID_PATTERN } from '../platform/ids.js';
import type { DataKeys } from './data-keys.service.js';
import type { IdentifierKind } from './identifiers.js';
import type { Keyring } from './keyring.js';
import type { RecordsRepository } from './records.repository.js';
import type { Subject, SubjectsRepository } from './subjects.repository.js';

/** The kinds of subject. */
export const SUBJECT_KINDS = ['customer', 'trial_user', 'visitor', 'prospect'] as const;
export type SubjectKind = (typeof SUBJECT_KINDS)[number];

/** Identifiers by kind, as given (they are normalized and hashed, never stored). */
export type Identifiers = Partial<Record<IdentifierKind, string>>;

/** A field to store: its category and its value (any JSON). */
export interface FieldInput {
  category: string;
  value: unknown;
}

/** One record to write. */
export interface WriteRecordInput {
  subjectId: string;
  source: string;
  fields: Record<string, FieldInput>;
  /** Defaults to the source's purposes. */
  purposes?: readonly string[];
  collectedAt?: Date;
}

/** A subject to create in the same transaction as its first records. */
export interface NewSubjectInput {
  id: string;
  kind: SubjectKind;
  jurisdiction: string | undefined;
  identifiers: Identifiers;
  /**
   * An identifier matches the tombstone of an erased person (src/rights/tombstones.ts): the new
   * subject's `subject.create` entry says so, so staff see a returning person for what it is.
   */
  previouslyErased?: boolean | undefined;
}

/**
 * New identifiers for a subject that exists, written with its records: only for a subject the
 * calling system names by id (it vouches that it authenticated the person).
 */
export interface AttachIdentifiersInput {
  attachTo: string;
  identifiers: Identifiers;
}

/**
 * Why the use gate allowed or refused a purpose: the reason of whoever decides (the consent
 * service's reasons, such as `withdrawn`; the manifest's defaults below).
 */
export type UseReason = string;

/** The decision about one subject and purpose. */
export interface UseDecision {
  allowed: boolean;
  reason: UseReason;
}

/**
 * Decides whether a purpose may use a subject's data. The vault declares what it needs and nothing
 * more; `createApp` hands it the consent service's decision.
 */
export type Decide = (ctx: Context, subject: Subject, purpose: Purpose) => Promise<UseDecision>;

/** What the use gate returns. */
export interface ReadResult {
  subjectId: string;
  purpose: string;
  decision: UseDecision;
  records: Array<{
    id: string;
    source: string;
    collectedAt: Date;
    policyVersionId: number;
    fields: Record<string, { category: string; value: unknown }>;
  }>;
  /** Records whose keys are gone (restored from a backup after an erasure): nothing of them is returned. */
  unreadable: number;
  /** A page of `Vault.read` that is not the last: the cursor of the next one. */
  nextCursor?: string;
}

/** The most records one use-gate read returns (a page, or each subject's newest in readMany). */
export const MAX_READ_RECORDS = 1000;
/** The records a use-gate read returns when no limit is given: the most, so most callers need no cursor. */
export const DEFAULT_READ_RECORDS = MAX_READ_RECORDS;

/** A page of the use gate: how many records, and after which (the previous page's `nextCursor`). */
export interface ReadPage {
  limit?: number | undefined;
  cursor?: string | undefined;
}

/** The record id a cursor names, or `undefined` for none; throws `vault.cursor_invalid` (400). */
export function readCursorOrThrow(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  if (!UUID_PATTERN.test(cursor)) {
    throw new ValidationError(
      'vault.cursor_invalid',
      'cursor must be the nextCursor of the previous page (a record id); leave it out for the first page',
      { path: 'cursor' },
    );
  }
  return cursor.toLowerCase();
}

/** What a caller of `Vault.readMany` may add to the use gate (the share gate does). */
export interface ReadManyOptions {
  /** Narrower than the purpose's (and the system's): only fields of these categories are opened. */
  categories?: readonly string[] | undefined;
  /**
   * Entries to append with the reads' own, in the same commit (a disclosure's record, written in
   * the transaction of the read it came from), made from the results in the order asked.
   */
  alsoRecord?: (results: ReadonlyArray<ReadResult | undefined>) => AuditEntry[];
  /**
   * A disclosure the law requires (the share gate answering an approved legal request): the records
   * of every collection purpose are read, not only those collected for this purpose, since a court
   * order reaches what is held whatever it was collected for. Only for a purpose whose legal basis
   * is `legal_obligation`; any other purpose refuses the read (`vault.legal_basis_required`).
   */
  requiredByLaw?: boolean | undefined;
}

/** The manifest in force and the id of its recorded version. */
export interface VaultManifest {
  manifest: Manifest;
  versionId: number;
}

/** What the vault uses. */
export interface VaultDeps {
  /** Transactions of the main database. */
  db: Transactions;
  subjects: SubjectsRepository;
  records: RecordsRepository;
  audit: AuditAppender;
  dataKeys: DataKeys;
  keyring: Keyring;
  manifest: VaultManifest;
  /** Holds each system to its purposes and categories; defaults to a gate over `manifest`. */
  systems?: PurposeGate;
  /** Defaults to the manifest's consent mode for the subject's jurisdiction (no choices known). */
  decide?: Decide;
  /**
   * What else erasure removes, inside its transaction (`ctx` is bound to it, after the subject is
   * marked erased): the person's consent ledger, a `subject.erased` webhook. Work that must wait
   * for the commit is deferred with `Transactions.afterCommit`.
   */
  erasure?: Erasure;
}

/**
 * What the vault asks of the system gate (src/manifest/systems.gate.ts): may the caller's system
 * use this purpose, and which categories of it (`undefined`: all of the purpose's).
 */
export interface PurposeGate {
  requirePurpose(ctx: Context, purposeKey: string): readonly string[] | undefined;
}

/** See {@link VaultDeps.erasure}. */
export type Erasure = (ctx: Context, subjectId: string) => Promise<void>;

/** The decision the manifest alone makes, before any choice is recorded. */
export function manifestDefaultDecision(purpose: Purpose, jurisdiction: string | undefined): UseDecision {
  const mode = consentModeFor(purpose, jurisdiction);
  switch (mode) {
    case 'required':
      return { allowed: true, reason: 'required' };
    case 'opt_out':
      return { allowed: true, reason: 'opt_out_default' };
    case 'opt_in':
      return { allowed: false, reason: 'opt_in_missing' };
  }
}
