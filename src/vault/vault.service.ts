/**
 * The vault: the only way personal data is stored or read. Values are encrypted per field under the
 * subject's data key before they reach a repository; reads go through the use gate, which returns
 * only what a purpose may use and only where the person's choices allow, and records every read.
 *
 * Writes are group-committed: writes that arrive while a transaction is being prepared share the
 * next one, and each caller is answered only after the commit that holds its write. That keeps
 * "answer after commit" at the throughput of batched writes (one fsync for many requests). How a
 * write's rows are built and how a group is applied is in vault.writes.ts.
 */
import { randomUUID } from 'node:crypto';
import type { AuditAppender, AuditEntry } from '../audit/audit.service.js';
import type { Purpose } from '../manifest/manifest.schema.js';
import { SystemGate } from '../manifest/systems.gate.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { GroupCommit, type WriteOutcome } from '../platform/db/group-commit.js';
import {
  ForbiddenError,
  NotFoundError,
  pageLimitOrThrow,
  PledgeError,
  ValidationError,
} from '../platform/errors.js';
import { CryptoPool } from './crypto-pool.js';
import { withVerifiers } from './credentials.js';
import type { DataKeys } from './data-keys.service.js';
import { OpenBatch, SealBatch } from './field-batch.js';
import {
  IDENTIFIER_KINDS,
  identifierHash,
  normalizeIdentifierOrThrow,
  type IdentifierKind,
} from './identifiers.js';
import type { Keyring } from './keyring.js';
import type { NewRecord, RecordsRepository, UsableRecord } from './records.repository.js';
import type { Subject, SubjectsRepository } from './subjects.repository.js';
import {
  manifestDefaultDecision,
  type AttachIdentifiersInput,
  type Decide,
  type Erasure,
  type Identifiers,
  type NewSubjectInput,
  DEFAULT_READ_RECORDS,
  MAX_READ_RECORDS,
  readCursorOrThrow,
  type ReadPage,
  type ReadResult,
  type SubjectKind,
  type VaultDeps,
  type VaultManifest,
  type PurposeGate,
  type ReadManyOptions,
  type WriteRecordInput,
} from './vault.types.js';
import {
  applyWrites,
  buildRecords,
  subjectNotFound,
  writeAuditEntries,
  type PendingSubject,
  type PendingWrite,
} from './vault.writes.js';

/**
 * The categories both lists allow: each entry of one that the other covers. `narrower` undefined
 * leaves the purpose's as they are.
 */
function narrowCategories(
  purpose: readonly string[],
  narrower: readonly string[] | undefined,
): readonly string[] {
  if (narrower === undefined) return purpose;
  const both = [
    ...narrower.filter((n) => purpose.some((p) => coversCategory(p, n))),
    ...purpose.filter((p) => narrower.some((n) => coversCategory(n, p))),
  ];
  return [...new Set(both)];
}

/** True when a stored record has a field of a category `purpose` may use. */
function hasFieldFor(fieldsJson: string, purpose: Purpose): boolean {
  const fields = JSON.parse(fieldsJson) as Record<string, { c?: unknown }>;
  return Object.values(fields).some(
    (f) => typeof f.c === 'string' && purpose.categories.some((c) => coversCategory(c, f.c as string)),
  );
}

export * from './vault.types.js';

/** Stores and reads personal data. */
export class Vault {
  readonly #db: Transactions;
  readonly #subjects: SubjectsRepository;
  readonly #records: RecordsRepository;
  readonly #audit: AuditAppender;
  readonly #dataKeys: DataKeys;
  readonly #keyring: Keyring;
  readonly #manifest: VaultManifest;
  readonly #decide: Decide;
  readonly #systems: PurposeGate;
  readonly #erasure: Erasure | undefined;
  readonly #crypto = CryptoPool.shared();
  readonly #writes: GroupCommit<PendingWrite, void>;

  constructor(deps: VaultDeps) {
    this.#db = deps.db;
    this.#subjects = deps.subjects;
    this.#records = deps.records;
    this.#audit = deps.audit;
    this.#dataKeys = deps.dataKeys;
    this.#keyring = deps.keyring;
    this.#manifest = deps.manifest;
    this.#systems = deps.systems ?? new SystemGate(deps.manifest);
    this.#erasure = deps.erasure;
    this.#writes = new GroupCommit(deps.db, (trx, items) => this.#apply(trx, items));
    this.#decide =
      deps.decide ??
      ((_ctx, subject, purpose) => Promise.resolve(manifestDefaultDecision(purpose, subject.jurisdiction)));
  }

  // ---- subjects ------------------------------------------------------------------------------

  /** The blind-index hashes of some identifiers (validated and normalized first). */
  hashIdentifiers(
    identifiers: Identifiers,
    path = 'identifiers',
  ): Array<{ kind: IdentifierKind; hash: string }> {
    return Object.entries(identifiers).flatMap(([kind, raw]) => {
      if (raw === undefined) return [];
      const k = kind as IdentifierKind;
      return [
        {
          kind: k,
          hash: identifierHash(this.#keyring.indexKey, k, normalizeIdentifierOrThrow(k, raw, `${path}.${k}`)),
        },
      ];
    });
  }

  /** The subject an identifier belongs to, or `undefined` (also for erased subjects). */
  async findSubjectByIdentifier(
    ctx: Context,
    kind: IdentifierKind,
    value: string,
  ): Promise<Subject | undefined> {
    const hash = identifierHash(this.#keyring.indexKey, kind, normalizeIdentifierOrThrow(kind, value, kind));
    const subject = await this.#subjects.findByIdentifier(ctx, kind, hash);
    return subject && subject.erasedAt === undefined ? subject : undefined;
  }

  /** The subject with this id; throws `vault.subject_not_found` when unknown or erased. */
  async getSubjectOrThrow(ctx: Context, id: string): Promise<Subject> {
    const subject = await this.#subjects.get(ctx, id);
    if (!subject || subject.erasedAt !== undefined) throw subjectNotFound(id);
    return subject;
  }

  /** The first subject any of these identifiers belongs to, or `undefined`. */
  async matchSubject(ctx: Context, identifiers: Identifiers): Promise<Subject | undefined> {
    for (const [kind, value] of Object.entries(identifiers)) {
      if (value === undefined) continue;
      const found = await this.findSubjectByIdentifier(ctx, kind as IdentifierKind, value);
      if (found) return found;
    }
    return undefined;
  }

  /** Creates a subject with identifiers (and no records). */
  async createSubject(
    ctx: Context,
    input: { kind: SubjectKind; jurisdiction?: string; identifiers?: Identifiers },
  ): Promise<Subject> {
    const subject: NewSubjectInput = {
      id: randomUUID(),
      kind: input.kind,
      jurisdiction: input.jurisdiction,
      identifiers: input.identifiers ?? {},
    };
    await this.#enqueue(
      ctx,
      { input: subject, hashes: this.hashIdentifiers(subject.identifiers) },
      [],
      [{ action: 'subject.create', subjectId: subject.id, details: { kind: input.kind } }],
    );
    return this.getSubjectOrThrow(ctx, subject.id);
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Encrypts and stores records in one transaction, after creating `newSubject` when given (or,
   * given `{ attachTo, identifiers }`, after linking new identifiers to that existing subject:
   * `vault.identifier_taken` when one belongs to someone else). Every field's category must be one
   * its source declares (closed world); throws before anything is stored otherwise. Resolves after
   * the commit, with the records' ids.
   */
  async write(
    ctx: Context,
    inputs: readonly WriteRecordInput[],
    newSubject?: NewSubjectInput | AttachIdentifiersInput,
  ): Promise<string[]> {
    // Encryptions per subject, so each data key is reserved once for the whole batch.
    const counts = new Map<string, number>();
    for (const input of inputs)
      counts.set(input.subjectId, (counts.get(input.subjectId) ?? 0) + Object.keys(input.fields).length);
    // Validated before anything is encrypted, so a bad identifier costs nothing.
    const pendingSubject = newSubject && {
      input: newSubject,
      hashes: this.hashIdentifiers(newSubject.identifiers),
    };
    // A credential's value is replaced by its verifier before anything is sealed (credentials.ts).
    const verified = withVerifiers(inputs);
    inputs = Array.isArray(verified) ? verified : await verified;
    const batch = new SealBatch();
    const keys = new Map<string, { index: number; version: number }>();
    for (const [subjectId, n] of counts) {
      const key = await this.#dataKeys.forWrite(ctx, subjectId, n);
      keys.set(subjectId, { index: batch.addKey(key.key), version: key.version });
    }

    const { records, shapes } = buildRecords(this.#manifest, inputs, keys, batch, ctx.clock.now());
    const sealed = await this.#crypto.seal(batch);
    if (sealed.length !== records.length)
      throw new PledgeError('vault.internal', 'sealed records out of step');
    records.forEach((record, i) => (record.fieldsJson = sealed[i] ?? ''));
    const audit: AuditEntry[] = [];
    if (newSubject && 'attachTo' in newSubject) {
      const kinds = pendingSubject?.hashes.map((h) => h.kind) ?? [];
      audit.push({ action: 'subject.identify', subjectId: newSubject.attachTo, details: { kinds } });
    } else if (newSubject)
      audit.push({
        action: 'subject.create',
        subjectId: newSubject.id,
        // A person erased before and collected again: flagged in the log (see NewSubjectInput).
        details:
          newSubject.previouslyErased === true
            ? { kind: newSubject.kind, previouslyErased: true }
            : { kind: newSubject.kind },
      });
    audit.push(...writeAuditEntries(records, shapes));
    await this.#enqueue(ctx, pendingSubject, records, audit);
    return records.map((r) => r.id);
  }

  /**
   * Writes with the next group commit, or, when `ctx` is already bound to a transaction (a caller
   * that writes to several capabilities at once), in that transaction: then the write commits or
   * rolls back with the caller's.
   */
  async #enqueue(
    ctx: Context,
    subject: PendingSubject | undefined,
    records: NewRecord[],
    audit: AuditEntry[],
  ): Promise<void> {
    const item: PendingWrite = { ctx, subject, records, audit };
    if (!this.#db.inTransaction(ctx)) return this.#writes.submit(item);
    const [outcome] = await this.#apply(ctx, [item]);
    if (outcome?.ok !== true)
      throw outcome?.error ?? new PledgeError('vault.internal', 'a write came to nothing');
  }

  /** Applies queued writes in one transaction (see {@link applyWrites}). */
  #apply(group: Context, items: readonly PendingWrite[]): Promise<Array<WriteOutcome<void>>> {
    return applyWrites(
      { subjects: this.#subjects, records: this.#records, audit: this.#audit },
      group,
      items,
    );
  }

  /** Resolves once every write queued so far is committed or failed (for a graceful shutdown). */
  drain(): Promise<void> {
    return this.#writes.drain();
  }

  // ---- the use gate --------------------------------------------------------------------------

  /**
   * The use gate: the fields of a subject's records that `purpose` may use (its categories, on
   * records collected for it), only when the decision allows, decrypted. Every call is audited.
   * A page: at most `page.limit` records (default {@link DEFAULT_READ_RECORDS}, at most
   * {@link MAX_READ_RECORDS}) collected for the purpose, oldest first, after `page.cursor`;
   * `nextCursor` is set when more follow. `options.requiredByLaw` reads records of every collection
   * purpose, as in {@link readMany}. Throws `vault.subject_not_found` for an unknown or erased
   * subject, `vault.limit_invalid` and `vault.cursor_invalid` for a bad page.
   */
  async read(
    ctx: Context,
    subjectId: string,
    purposeKey: string,
    page: ReadPage = {},
    options: Pick<ReadManyOptions, 'requiredByLaw'> = {},
  ): Promise<ReadResult> {
    const limit = pageLimitOrThrow('vault.limit_invalid', page.limit, MAX_READ_RECORDS, DEFAULT_READ_RECORDS);
    const after = readCursorOrThrow(page.cursor);
    // An access request pages through everything held, whatever it was collected for (see
    // ReadManyOptions.requiredByLaw): the law requires the copy.
    const anyCollection = this.#requiredByLaw(purposeKey, options);
    let nextCursor: string | undefined;
    const [result] = await this.#use(
      ctx,
      [subjectId],
      purposeKey,
      async () => {
        // One more than the page, to know whether another follows.
        const rows = await this.#records.listPageForUse(
          ctx,
          subjectId,
          anyCollection ? undefined : purposeKey,
          { after, limit: limit + 1 },
        );
        if (rows.length <= limit) return rows;
        nextCursor = rows[limit - 1]?.id;
        return rows.slice(0, limit);
      },
      options,
    );
    if (!result) throw subjectNotFound(subjectId);
    return nextCursor === undefined ? result : { ...result, nextCursor };
  }

  /**
   * The use gate for several subjects at once (a page of a mail campaign's recipients): what
   * {@link read} returns for each, in the order of `subjectIds`, `undefined` for a subject that is
   * unknown or erased; of each subject, its newest {@link MAX_READ_RECORDS} records collected for
   * the purpose (newer values win), without a cursor. One query for the subjects, one for their
   * records, one crypto batch, and one audit entry per subject, all in one group commit.
   */
  async readMany(
    ctx: Context,
    subjectIds: readonly string[],
    purposeKey: string,
    options: ReadManyOptions = {},
  ): Promise<Array<ReadResult | undefined>> {
    const anyCollection = this.#requiredByLaw(purposeKey, options);
    return this.#use(
      ctx,
      subjectIds,
      purposeKey,
      (allowed) =>
        this.#records.listNewestForUse(
          ctx,
          allowed,
          anyCollection ? undefined : purposeKey,
          MAX_READ_RECORDS,
        ),
      options,
    );
  }

  /** True when a read may take records of every collection purpose (see ReadManyOptions.requiredByLaw). */
  #requiredByLaw(purposeKey: string, options: ReadManyOptions): boolean {
    if (options.requiredByLaw !== true) return false;
    const purpose = this.#purposeOrThrow(purposeKey);
    if (purpose.legal_basis !== 'legal_obligation') {
      throw new ForbiddenError(
        'vault.legal_basis_required',
        `purpose "${purposeKey}" has legal basis "${purpose.legal_basis}": only a purpose of legal basis legal_obligation reads records collected for other purposes (a disclosure the law requires)`,
        { purpose: purposeKey, legalBasis: purpose.legal_basis },
      );
    }
    return true;
  }

  /** The use gate over the records `load` gives for the subjects allowed (see {@link readMany}). */
  async #use(
    ctx: Context,
    subjectIds: readonly string[],
    purposeKey: string,
    load: (allowed: string[]) => Promise<UsableRecord[]>,
    options: ReadManyOptions = {},
  ): Promise<Array<ReadResult | undefined>> {
    const purpose = this.#purposeOrThrow(purposeKey);
    const anyCollection = this.#requiredByLaw(purposeKey, options);
    // The purpose is the caller's claim; its system must serve it, and may narrow its categories
    // (and a caller such as the share gate narrows them further to what may leave).
    const categories = narrowCategories(
      narrowCategories(purpose.categories, this.#systems.requirePurpose(ctx, purposeKey)),
      options.categories,
    );
    const subjects = await this.#subjects.listLive(ctx, subjectIds);
    const results = new Map<string, ReadResult>();
    await Promise.all(
      [...subjects.values()].map(async (subject) => {
        const decision = await this.#decide(ctx, subject, purpose);
        results.set(subject.id, {
          subjectId: subject.id,
          purpose: purposeKey,
          decision,
          records: [],
          unreadable: 0,
        });
      }),
    );
    const allowed = [...results.values()].filter((r) => r.decision.allowed).map((r) => r.subjectId);
    const stored = allowed.length === 0 ? [] : await load(allowed);
    const batch = new OpenBatch(categories);
    const keyIndex = new Map<string, number>();
    // Records of one source share their purposes text: parse each distinct text once.
    const collectedFor = new Map<string, boolean>();
    const kept: UsableRecord[] = [];
    for (const r of stored) {
      let forPurpose = collectedFor.get(r.purposesJson);
      if (forPurpose === undefined) {
        forPurpose = (JSON.parse(r.purposesJson) as string[]).includes(purposeKey);
        collectedFor.set(r.purposesJson, forPurpose);
      }
      if (!forPurpose && !anyCollection) continue;
      const keyId = `${r.subjectId}:${r.keyVersion}`;
      let k = keyIndex.get(keyId);
      if (k === undefined) {
        const key = await this.#dataKeys.forRead(ctx, r.subjectId, r.keyVersion);
        k = key ? batch.addKey(key) : -1;
        keyIndex.set(keyId, k);
      }
      if (k < 0) {
        const result = results.get(r.subjectId);
        if (result && hasFieldFor(r.fieldsJson, purpose)) result.unreadable++;
        continue;
      }
      batch.addRecord(k, r.subjectId, r.id, r.keyVersion, r.fieldsJson);
      kept.push(r);
    }
    // A value that does not open under a key that exists was altered: that is an integrity failure
    // and fails the read (vault.decrypt_failed), never a silently shorter answer.
    const opened = kept.length === 0 ? [] : await this.#crypto.open(batch);
    const fieldCounts = new Map<string, number>();
    kept.forEach((r, i) => {
      const fields = opened[i];
      const result = results.get(r.subjectId);
      if (!fields || !result) return;
      const n = Object.keys(fields).length;
      if (n === 0) return;
      fieldCounts.set(r.subjectId, (fieldCounts.get(r.subjectId) ?? 0) + n);
      result.records.push({
        id: r.id,
        source: r.source,
        collectedAt: new Date(r.collectedAt),
        policyVersionId: r.policyVersionId,
        fields,
      });
    });
    // The reads' audit entries join the group commit: reads in flight together share one
    // transaction and one fsync, and each answers after it.
    await this.#enqueue(
      ctx,
      undefined,
      [],
      [
        ...[...results.values()].map((result) => ({
          action: 'vault.read',
          subjectId: result.subjectId,
          purpose: purposeKey,
          details: {
            allowed: result.decision.allowed,
            reason: result.decision.reason,
            records: result.records.length,
            fields: fieldCounts.get(result.subjectId) ?? 0,
          },
        })),
        ...(options.alsoRecord?.(subjectIds.map((id) => results.get(id))) ?? []),
      ],
    );
    return subjectIds.map((id) => results.get(id));
  }

  #purposeOrThrow(purposeKey: string): Purpose {
    const purpose = this.#manifest.manifest.purposes.find((p) => p.key === purposeKey);
    if (!purpose) {
      throw new ValidationError(
        'vault.purpose_unknown',
        `the manifest declares no purpose "${purposeKey}"`,
        {
          purpose: purposeKey,
          purposes: this.#manifest.manifest.purposes.map((p) => p.key),
        },
        422,
      );
    }
    return purpose;
  }

  // ---- erasure -------------------------------------------------------------------------------

  /**
   * The blind-index hashes of a live subject's identifiers (what an erasure keeps a tombstone of, so
   * a later collection of the same person is recognized); empty for an unknown or erased subject.
   */
  async identifierHashesOf(
    ctx: Context,
    subjectId: string,
  ): Promise<Array<{ kind: IdentifierKind; hash: string }>> {
    const live = await this.#subjects.listLiveIds(ctx, [subjectId]);
    if (!live.has(subjectId)) return [];
    const out: Array<{ kind: IdentifierKind; hash: string }> = [];
    for (const kind of IDENTIFIER_KINDS)
      for (const hash of await this.#subjects.identifierHashesOf(ctx, subjectId, kind))
        out.push({ kind, hash });
    return out;
  }

  /**
   * An erasure held in part (a legal hold covers some of the data): deletes, record by record, every
   * record `keep` does not claim (given each record's categories) and the subject's blind-index
   * entries, in one transaction with its audit entry. The subject and its data key stay, so what is
   * held can still be read for the authority; {@link erase} finishes once the hold ends.
   */
  async eraseExcept(
    ctx: Context,
    subjectId: string,
    keep: (categories: readonly string[]) => boolean,
  ): Promise<{ recordsDeleted: number; recordsKept: number; identifiersRemoved: number }> {
    await this.getSubjectOrThrow(ctx, subjectId);
    return this.#db.transaction(ctx, async (trx) => {
      let recordsDeleted = 0;
      let recordsKept = 0;
      let after: string | undefined;
      for (;;) {
        const page = await this.#records.listCategoriesPage(trx, subjectId, { after, limit: 1000 });
        if (page.length === 0) break;
        after = page[page.length - 1]?.id;
        const doomed = page.filter((r) => !keep(r.categories)).map((r) => r.id);
        recordsKept += page.length - doomed.length;
        recordsDeleted += await this.#records.deleteByIds(trx, subjectId, doomed);
      }
      const identifiersRemoved = await this.#subjects.deleteIdentifiers(trx, subjectId);
      await this.#audit.append(trx, [
        {
          action: 'subject.erase_partial',
          subjectId,
          details: { recordsDeleted, recordsKept, identifiersRemoved },
        },
      ]);
      return { recordsDeleted, recordsKept, identifiersRemoved };
    });
  }

  /**
   * Erases a subject: its data keys are destroyed first (so every copy of its records, backups
   * included, is unreadable from that moment), then its records and identifiers are deleted and the
   * subject is kept as a tombstone. Idempotent.
   */
  async erase(ctx: Context, subjectId: string): Promise<{ keysDestroyed: number; recordsDeleted: number }> {
    const subject = await this.#subjects.get(ctx, subjectId);
    if (!subject)
      throw new NotFoundError('vault.subject_not_found', 'there is no subject with this id', { subjectId });
    const keysDestroyed = await this.#dataKeys.destroy(ctx, subjectId);
    const recordsDeleted = await this.#db.transaction(ctx, async (trx) => {
      const deleted = await this.#records.deleteBySubject(trx, subjectId);
      await this.#subjects.markErased(trx, subjectId, ctx.clock.now());
      await this.#erasure?.(trx, subjectId);
      await this.#audit.append(trx, [
        { action: 'subject.erase', subjectId, details: { keysDestroyed, recordsDeleted: deleted } },
      ]);
      return deleted;
    });
    return { keysDestroyed, recordsDeleted };
  }
}
