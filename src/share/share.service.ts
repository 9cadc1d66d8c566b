/**
 * The share gate: the only way personal data leaves for a recipient. A disclosure names a
 * recipient, a purpose, subjects and fields; the gate answers with only the values whose categories
 * that recipient may receive for that purpose (its declaration in the manifest), read through the
 * vault's use gate, only for the people whose choices allow it, and records per person exactly
 * which fields and categories left, in the transaction of the read. Values the caller holds rather
 * than the vault (a card at billing, a message handed to the e-mail provider) pass the same checks
 * as a pass-through and are recorded the same way. Bulk exports page through subjects with the
 * same gate and leave a record of their own (share_exports) beside the per-person entries.
 *
 * What is checked, in order (share.gate.ts for the manifest's part): the caller's system serves the
 * purpose; the recipient and purpose are declared; no sale (the second wall); the recipient is
 * declared for the purpose and the fields' categories; no pledge is broken; an authority only under
 * an approved legal request and within its scope; a processor or affiliate stands by the policy in
 * force; then, per person, the opt-out of distribution (see {@link optOutStops}) and the consent
 * decision.
 */
import { randomUUID } from 'node:crypto';
import type { AuditAppender, AuditEntry } from '../audit/audit.service.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import type { ManifestSource } from '../manifest/systems.gate.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { ForbiddenError, NotFoundError, PledgeError, ValidationError } from '../platform/errors.js';
import { UUID_PATTERN } from '../platform/ids.js';
import type { ReadManyOptions, ReadResult } from '../vault/vault.types.js';
import {
  shareFieldIndex,
  optOutStops,
  planFlow,
  SHARE_CODES,
  subjectRefusal,
  type FlowPlan,
  type SubjectRefusal,
} from './share.gate.js';
import type { ShareExport, ShareRepository } from './share.repository.js';
import type { DiscloseOptions, LegalApprovals, LegalScope, RecipientStanding } from './share.types.js';

export * from './share.gate.js';
export type { ShareExport } from './share.repository.js';

/** The most subjects one disclosure names (more is an export). */
export const MAX_DISCLOSE_SUBJECTS = 100;
/** The most fields one disclosure asks for. */
export const MAX_DISCLOSE_FIELDS = 100;
/** Subjects read per page of an export. */
export const EXPORT_PAGE_SIZE = 500;

/** What the gate needs of the vault: the use gate, for many subjects, with the disclosure's record joined to the read's. */
export interface ShareVault {
  readMany(
    ctx: Context,
    subjectIds: readonly string[],
    purpose: string,
    options?: ReadManyOptions,
  ): Promise<Array<ReadResult | undefined>>;
}

/** What the gate needs of the consent service. */
export interface ShareConsent {
  globalOptOutMany(ctx: Context, subjectIds: readonly string[]): Promise<Array<boolean | undefined>>;
  decideMany(
    ctx: Context,
    subjectIds: readonly string[],
    purpose: string,
    channel?: string,
  ): Promise<Array<{ allowed: boolean; reason: string }>>;
}

/** What the share service uses. */
export interface ShareServiceDeps {
  db: Transactions;
  repo: ShareRepository;
  audit: AuditAppender;
  manifest: ManifestSource;
  /** Holds the caller's system to its purposes (src/manifest/systems.gate.ts). */
  systems: { requirePurpose(ctx: Context, purposeKey: string): readonly string[] | undefined };
  vault: ShareVault;
  consent: ShareConsent;
  /** Live subject ids a page at a time (exports). */
  subjects: {
    liveIdsPage(
      ctx: Context,
      segment: object,
      page: { after: string | undefined; limit: number },
    ): Promise<string[]>;
  };
  standing: RecipientStanding;
  legal: LegalApprovals;
}

/** One subject in a disclosure's answer. */
export type SubjectDisclosure =
  | {
      subjectId: string;
      disclosed: true;
      /** The newest value of each field that left, by field name. */
      fields: Record<string, unknown>;
      /** The categories of the fields that left. */
      categories: string[];
    }
  | { subjectId: string; disclosed: false; refusal: SubjectRefusal };

/** What a disclosure answers. */
export interface DiscloseResult {
  id: string;
  recipient: string;
  purpose: string;
  legalRequest: string | undefined;
  subjects: SubjectDisclosure[];
}

/** A field handed over by the caller (pass-through): its name and category. */
export interface PassThroughField {
  name: string;
  category: string;
}

/** A pass-through the gate allowed: what may leave, and the record of each hand-over. */
export interface PassThroughGrant {
  readonly recipient: string;
  readonly purpose: string;
  readonly fields: readonly string[];
  readonly categories: readonly string[];
  /** The log entry of one hand-over (append it in the transaction that records the hand-over). */
  entryFor(subjectId: string | undefined, details?: Record<string, unknown>): AuditEntry;
}

/** What an export is asked for. */
export interface ExportOptions {
  recipient: string;
  purpose: string;
  /** Absent: every field the recipient may receive for the purpose. */
  fields?: readonly string[] | undefined;
  /** Subjects read per page (at most {@link EXPORT_PAGE_SIZE}). */
  pageSize?: number | undefined;
}

/** One line of an export: a subject's values, or the closing summary. */
export type ExportLine =
  | { kind: 'subject'; subjectId: string; fields: Record<string, unknown>; categories: string[] }
  | { kind: 'summary'; export: ShareExport };

/** Codes whose refusal is recorded in the log (flows someone tried that the manifest or a pledge forbids). */
const RECORDED_REFUSALS: ReadonlySet<string> = new Set([
  SHARE_CODES.recipientUndeclared,
  SHARE_CODES.purposeNotForRecipient,
  SHARE_CODES.categoryNotDeclared,
  SHARE_CODES.systemCategory,
  SHARE_CODES.saleForbidden,
  SHARE_CODES.pledgeBreach,
  SHARE_CODES.legalRequestRequired,
  SHARE_CODES.legalRequestNotApproved,
  SHARE_CODES.legalScopeExceeded,
  SHARE_CODES.acknowledgementRequired,
  SHARE_CODES.recipientPaused,
]);

/** The share gate. */
export class ShareService {
  readonly #deps: ShareServiceDeps;

  constructor(deps: ShareServiceDeps) {
    this.#deps = deps;
  }

  /** Field name → categories of the manifest in force. */
  #fieldIndex(): ReadonlyMap<string, readonly string[]> {
    return shareFieldIndex(this.#deps.manifest.manifest);
  }

  /**
   * Discloses `options.fields` of `options.subjects` to a recipient for a purpose: per subject, the
   * values that may leave, or the reason nothing did (`share.subject_not_found`, `share.opted_out`,
   * `share.consent_withheld`). Throws the refusal of the flow as a whole (share.gate.ts lists the
   * codes; `share.legal_*`, `share.acknowledgement_required`, `share.recipient_paused` here), after
   * recording it when an auditor would want to see it. Every subject's outcome is logged in the
   * transaction of its read.
   */
  async disclose(ctx: Context, options: DiscloseOptions): Promise<DiscloseResult> {
    const subjects = subjectIdsOrThrow(options.subjects);
    const fields = fieldNamesOrThrow(options.fields, 'fields');
    const plan = await this.#checkFlow(
      ctx,
      options.recipient,
      options.purpose,
      fields,
      options.legalRequest,
      subjects,
    );
    const id = randomUUID();
    const { results } = await this.#discloseTo(ctx, plan, subjects, {
      disclosure: id,
      legalRequest: options.legalRequest,
    });
    return {
      id,
      recipient: plan.recipient.key,
      purpose: plan.purpose.key,
      legalRequest: options.legalRequest,
      subjects: results,
    };
  }

  /**
   * The gate for values the caller hands to a recipient itself (not read from the vault): checks
   * the flow for these fields (the same codes as {@link disclose}; an authority is never a
   * pass-through recipient) and the recipient's standing, and returns a grant whose entries record
   * each hand-over. Per-person choices are the caller's gate (the collection point's decision, the
   * mail pipeline's), or {@link refusalsFor}.
   */
  async authorizePassThrough(
    ctx: Context,
    request: { recipient: string; purpose: string; fields: readonly PassThroughField[] },
  ): Promise<PassThroughGrant> {
    const plan = await this.#checkFlow(
      ctx,
      request.recipient,
      request.purpose,
      request.fields,
      undefined,
      [],
    );
    const fields = plan.fields.map((f) => f.name);
    const categories = [...plan.categories];
    return {
      recipient: plan.recipient.key,
      purpose: plan.purpose.key,
      fields,
      categories,
      entryFor: (subjectId, details = {}) => ({
        action: 'share.pass_through',
        ...(subjectId === undefined ? {} : { subjectId }),
        purpose: plan.purpose.key,
        details: { recipient: plan.recipient.key, categories, fields, ...details },
      }),
    };
  }

  /** Appends the records of hand-overs (in `ctx`'s transaction, when it has one). */
  async recordPassThrough(ctx: Context, entries: readonly AuditEntry[]): Promise<void> {
    await this.#deps.audit.append(ctx, entries);
  }

  /**
   * Per subject, why a pass-through to `grant`'s recipient may not carry their data (the opt-out
   * of distribution where it applies, the consent decision), or `undefined` when it may.
   */
  async refusalsFor(
    ctx: Context,
    grant: Pick<PassThroughGrant, 'recipient' | 'purpose'>,
    subjectIds: readonly string[],
  ): Promise<Array<SubjectRefusal | undefined>> {
    const plan = this.#planOf(grant.recipient, grant.purpose);
    const [optOuts, decisions] = await Promise.all([
      optOutStops(plan) ? this.#deps.consent.globalOptOutMany(ctx, subjectIds) : undefined,
      this.#deps.consent.decideMany(ctx, subjectIds, plan.purpose.key),
    ]);
    return subjectIds.map((_, i) => {
      const d = decisions[i];
      if (optOuts?.[i] === undefined && optOuts !== undefined) return subjectRefusal('unknown', plan);
      if (optOuts?.[i] === true) return subjectRefusal('global_opt_out', plan);
      if (d?.reason === 'unknown_subject') return subjectRefusal('unknown', plan);
      if (d !== undefined && !d.allowed) return subjectRefusal(d.reason, plan);
      return undefined;
    });
  }

  /**
   * A bulk export for a recipient: checks the flow once (throwing its refusal before anything
   * leaves), records the export, then yields each allowed subject's values a page at a time (never
   * more than a page in memory), each page's reads, log entries and counts in one transaction, and
   * ends with the export's record. A failure mid-way, or a reader that stops reading, marks the
   * export `failed`; what the gate let out before it stays recorded (a page is recorded when it is
   * read, before its lines are handed to the reader).
   */
  async *exportFor(ctx: Context, options: ExportOptions): AsyncGenerator<ExportLine> {
    const pageSize = options.pageSize ?? EXPORT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > EXPORT_PAGE_SIZE) {
      throw new ValidationError(
        'share.page_size_invalid',
        `pageSize must be a whole number from 1 to ${EXPORT_PAGE_SIZE}`,
        {
          path: 'pageSize',
        },
      );
    }
    const fields =
      options.fields === undefined || options.fields.length === 0
        ? this.#allFieldsFor(options.recipient, options.purpose)
        : fieldNamesOrThrow(options.fields, 'fields');
    const plan = await this.#checkFlow(ctx, options.recipient, options.purpose, fields, undefined, []);
    const id = randomUUID();
    const { db, repo, audit } = this.#deps;
    const planFields = plan.fields.map((f) => f.name);
    await db.transaction(ctx, async (trx) => {
      await repo.insertExport(trx, {
        id,
        recipient: plan.recipient.key,
        purpose: plan.purpose.key,
        categories: [...plan.categories],
        fields: planFields,
      });
      await audit.append(trx, [
        {
          action: 'share.export',
          purpose: plan.purpose.key,
          details: {
            export: id,
            recipient: plan.recipient.key,
            categories: plan.categories,
            fields: planFields,
          },
        },
      ]);
    });
    let after: string | undefined;
    let finished = false;
    try {
      for (;;) {
        const ids = await this.#deps.subjects.liveIdsPage(ctx, {}, { after, limit: pageSize });
        if (ids.length === 0) break;
        after = ids[ids.length - 1];
        const page = await db.transaction(ctx, async (trx) => {
          const done = await this.#discloseTo(trx, plan, ids, { export: id });
          await repo.addCounts(trx, id, done.sent, done.results.length - done.sent);
          return done.results;
        });
        for (const r of page) {
          if (r.disclosed)
            yield { kind: 'subject', subjectId: r.subjectId, fields: r.fields, categories: r.categories };
        }
        if (ids.length < pageSize) break;
      }
      finished = true;
    } finally {
      // Also when the reader went away mid-stream (the generator is returned early): the record
      // says what the gate let out, and that the export did not end.
      if (!finished) await repo.finish(ctx, id, 'failed');
    }
    await repo.finish(ctx, id, 'complete');
    const record = await repo.getExport(ctx, id);
    if (record === undefined) throw new PledgeError('share.internal', 'the export record vanished');
    yield { kind: 'summary', export: record };
  }

  /** An export's record; throws `share.export_not_found`. */
  async getExportOrThrow(ctx: Context, id: string): Promise<ShareExport> {
    const found = UUID_PATTERN.test(id) ? await this.#deps.repo.getExport(ctx, id) : undefined;
    if (found === undefined)
      throw new NotFoundError('share.export_not_found', 'there is no export with this id', { id });
    return found;
  }

  /** The newest exports' records, newest first. */
  listExports(ctx: Context, limit = 50): Promise<ShareExport[]> {
    return this.#deps.repo.listExports(ctx, Math.min(Math.max(1, limit), 500));
  }

  // ---- internals -----------------------------------------------------------------------------

  /** Every field a source declares whose category the recipient may receive for the purpose. */
  #allFieldsFor(recipient: string, purpose: string): string[] {
    const plan = this.#planOf(recipient, purpose);
    return [...this.#fieldIndex()]
      .filter(([, cats]) => cats.some((c) => plan.allowed.some((a) => coversCategory(a, c))))
      .filter(([, cats]) => !cats.some((c) => pledgedAway(this.#deps.manifest.manifest, c, recipient)))
      .map(([name]) => name);
  }

  /** The plan of a flow with no fields (its recipient, purpose and allowed categories), or its refusal. */
  #planOf(recipient: string, purpose: string): FlowPlan {
    return planFlow(this.#deps.manifest.manifest, { recipient, purpose, fields: [] }, this.#fieldIndex());
  }

  /**
   * Every check of a flow that does not depend on a person; records and throws a refusal. The
   * system is checked first: a caller may not learn what a purpose it does not serve may share.
   */
  async #checkFlow(
    ctx: Context,
    recipient: string,
    purpose: string,
    fields: ReadonlyArray<string | PassThroughField>,
    legalRequest: string | undefined,
    subjects: readonly string[],
  ): Promise<FlowPlan> {
    const systemCategories = this.#deps.systems.requirePurpose(ctx, purpose);
    try {
      const plan = planFlow(
        this.#deps.manifest.manifest,
        { recipient, purpose, fields, systemCategories },
        this.#fieldIndex(),
      );
      await this.#legalOrThrow(ctx, plan, legalRequest, subjects);
      if (plan.recipient.kind === 'processor' || plan.recipient.kind === 'affiliate') {
        const standing = await this.#deps.standing.standingOf(ctx, plan.recipient.key);
        if (!standing.ok) {
          throw new ForbiddenError(standing.code, standing.message, {
            path: 'recipient',
            recipient: plan.recipient.key,
            policyVersion: standing.policyVersion,
          });
        }
      }
      return plan;
    } catch (err) {
      if (err instanceof PledgeError && RECORDED_REFUSALS.has(err.code)) {
        await this.#deps.audit.append(ctx, [
          {
            action: 'share.refuse',
            purpose,
            details: {
              code: err.code,
              recipient,
              fields: fields.map((f) => (typeof f === 'string' ? f : f.name)),
              subjects: subjects.length,
              ...(legalRequest === undefined ? {} : { legalRequest }),
            },
          },
        ]);
      }
      throw err;
    }
  }

  /**
   * An authority receives only under an approved legal request and never beyond its scope (the
   * `legal_disclosure` pledge); a legal request names no other recipient.
   */
  async #legalOrThrow(
    ctx: Context,
    plan: FlowPlan,
    legalRequest: string | undefined,
    subjects: readonly string[],
  ): Promise<LegalScope | undefined> {
    const pledge = this.#deps.manifest.manifest.pledges.find((p) => p.kind === 'legal_disclosure');
    const pledgeNote = pledge === undefined ? '' : ` (pledge "${pledge.key}")`;
    if (plan.recipient.kind !== 'authority') {
      if (legalRequest === undefined) return undefined;
      throw new ValidationError(
        SHARE_CODES.legalRequestUnexpected,
        `legalRequest: a legal request is answered only to an authority; "${plan.recipient.key}" is a ${plan.recipient.kind}. Leave legalRequest out, or disclose to the authority`,
        { path: 'legalRequest', recipient: plan.recipient.key },
      );
    }
    if (legalRequest === undefined || legalRequest === '') {
      throw new ForbiddenError(
        SHARE_CODES.legalRequestRequired,
        `legalRequest: "${plan.recipient.key}" is an authority, which receives data only as the law requires, under an approved legal request${pledgeNote}; record the request (pledge legal), have it approved, and pass its id as legalRequest`,
        { path: 'legalRequest', recipient: plan.recipient.key, ...(pledge ? { pledge: pledge.key } : {}) },
      );
    }
    const scope = await this.#deps.legal.approvedScopeOf(ctx, legalRequest);
    if (scope === undefined) {
      throw new ForbiddenError(
        SHARE_CODES.legalRequestNotApproved,
        `legalRequest: legal request "${legalRequest}" is not open and approved${pledgeNote}; only an approved (or narrowed) request may be answered: have it reviewed first`,
        { path: 'legalRequest', legalRequest },
      );
    }
    const outside = subjects.filter((s) => !scope.subjects.includes(s));
    const beyond = plan.categories.filter((c) => !scope.categories.some((k) => coversCategory(k, c)));
    if (outside.length > 0 || beyond.length > 0) {
      const where = outside.length > 0 ? `subjects[${subjects.indexOf(outside[0]!)}]` : `fields`;
      throw new ForbiddenError(
        SHARE_CODES.legalScopeExceeded,
        `${where}: legal request "${legalRequest}" was approved for ${scope.subjects.length} subject(s) and categories ${scope.categories.map((c) => `"${c}"`).join(', ')}; ` +
          `${outside.length > 0 ? `${outside.length} subject(s) asked are outside it` : ''}${outside.length > 0 && beyond.length > 0 ? ' and ' : ''}${beyond.length > 0 ? `categories ${beyond.map((c) => `"${c}"`).join(', ')} are beyond it` : ''}. ` +
          'Ask only for what was approved, or have the request narrowed or approved for more',
        { path: where, legalRequest, subjectsOutside: outside.length, categoriesBeyond: beyond },
      );
    }
    return scope;
  }

  /**
   * The per-person part: the opt-out of distribution, then the use gate's read (with its consent
   * decision), the values that may leave picked from what it opened, and one log entry per person
   * committed with the read's own.
   */
  async #discloseTo(
    ctx: Context,
    plan: FlowPlan,
    subjectIds: readonly string[],
    refs: Record<string, string | undefined>,
  ): Promise<{ results: SubjectDisclosure[]; sent: number }> {
    const ref = Object.fromEntries(Object.entries(refs).filter(([, v]) => v !== undefined));
    const out = new Array<SubjectDisclosure>(subjectIds.length);
    const asked: number[] = [];
    if (optOutStops(plan)) {
      const optOuts = await this.#deps.consent.globalOptOutMany(ctx, subjectIds);
      subjectIds.forEach((subjectId, i) => {
        const o = optOuts[i];
        if (o === undefined)
          out[i] = { subjectId, disclosed: false, refusal: subjectRefusal('unknown', plan) };
        else if (o) out[i] = { subjectId, disclosed: false, refusal: subjectRefusal('global_opt_out', plan) };
        else asked.push(i);
      });
    } else subjectIds.forEach((_, i) => asked.push(i));

    const wanted = new Map(plan.fields.map((f) => [f.name, f.categories]));
    const pick = (read: ReadResult): SubjectDisclosure => {
      const records = [...read.records].sort((a, b) => a.collectedAt.getTime() - b.collectedAt.getTime());
      const fields: Record<string, unknown> = {};
      const categories = new Map<string, string>();
      for (const record of records) {
        for (const [name, f] of Object.entries(record.fields)) {
          const allowed = wanted.get(name);
          if (allowed === undefined || !allowed.some((c) => coversCategory(c, f.category))) continue;
          fields[name] = f.value;
          categories.set(name, f.category);
        }
      }
      return {
        subjectId: read.subjectId,
        disclosed: true,
        fields,
        categories: [...new Set(categories.values())],
      };
    };
    const entries = (): AuditEntry[] =>
      out.map((r) =>
        r.disclosed
          ? {
              action: 'share.disclose',
              subjectId: r.subjectId,
              purpose: plan.purpose.key,
              details: {
                ...ref,
                recipient: plan.recipient.key,
                categories: r.categories,
                fields: Object.keys(r.fields),
              },
            }
          : {
              action: 'share.refuse',
              subjectId: r.subjectId,
              purpose: plan.purpose.key,
              details: { ...ref, recipient: plan.recipient.key, code: r.refusal.code },
            },
      );

    if (asked.length === 0) {
      await this.#deps.audit.append(ctx, entries());
    } else {
      await this.#deps.vault.readMany(
        ctx,
        asked.map((i) => subjectIds[i]!),
        plan.purpose.key,
        {
          categories: plan.categories,
          // An approved legal request reaches what is held whatever it was collected for (and
          // never beyond its approved categories, which plan.categories already are).
          requiredByLaw: refs.legalRequest !== undefined,
          // Runs once the reads are opened, before their commit: the disclosures' entries join it.
          alsoRecord: (reads) => {
            asked.forEach((i, k) => {
              const read = reads[k];
              const subjectId = subjectIds[i]!;
              if (read === undefined)
                out[i] = { subjectId, disclosed: false, refusal: subjectRefusal('unknown', plan) };
              else if (!read.decision.allowed)
                out[i] = { subjectId, disclosed: false, refusal: subjectRefusal(read.decision.reason, plan) };
              else out[i] = pick(read);
            });
            return entries();
          },
        },
      );
    }
    return { results: out, sent: out.filter((r) => r.disclosed).length };
  }
}

/** True when a never_store pledge keeps `category` from `recipient`. */
function pledgedAway(manifest: Manifest, category: string, recipient: string): boolean {
  return manifest.pledges.some(
    (p) =>
      p.kind === 'never_store' &&
      p.only_to !== undefined &&
      !p.only_to.includes(recipient) &&
      (p.categories ?? []).some((k) => coversCategory(k, category)),
  );
}

function subjectIdsOrThrow(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_DISCLOSE_SUBJECTS) {
    throw new ValidationError(
      'share.subjects_invalid',
      `subjects must list 1 to ${MAX_DISCLOSE_SUBJECTS} subject ids; for more, export (POST /api/v1/disclosures/exports)`,
      { path: 'subjects', max: MAX_DISCLOSE_SUBJECTS },
    );
  }
  value.forEach((v, i) => {
    if (typeof v !== 'string' || !UUID_PATTERN.test(v)) {
      throw new ValidationError('share.subjects_invalid', `subjects[${i}] must be a subject id (a UUID)`, {
        path: `subjects[${i}]`,
      });
    }
  });
  return [...new Set((value as string[]).map((v) => v.toLowerCase()))];
}

function fieldNamesOrThrow(value: unknown, path: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_DISCLOSE_FIELDS) {
    throw new ValidationError(
      'share.fields_invalid',
      `${path} must list 1 to ${MAX_DISCLOSE_FIELDS} field names, as the manifest's sources name them`,
      { path, max: MAX_DISCLOSE_FIELDS },
    );
  }
  value.forEach((v, i) => {
    if (typeof v !== 'string' || v.length === 0 || v.length > 100) {
      throw new ValidationError('share.fields_invalid', `${path}[${i}] must be a field name`, {
        path: `${path}[${i}]`,
      });
    }
  });
  return [...new Set(value as string[])];
}
