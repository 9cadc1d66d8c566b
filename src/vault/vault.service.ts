/**
 * The vault: the only way personal data is stored or read. Values are encrypted per field under the
 * subject's data key before they reach a repository; reads go through the use gate, which returns
 * only what a purpose may use and only where the person's choices allow, and records every read.
 *
 * Writes are group-committed: writes that arrive while a transaction is being prepared share the
 * next one, and each caller is answered only after the commit that holds its write. That keeps
 * "answer after commit" at the throughput of batched writes (one fsync for many requests).
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { AuditRepository, type AuditEntry } from '../audit/audit.repository.js';
import { consentModeFor, type Manifest, type Purpose } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import type { Tables } from '../platform/db/tables.js';
import { ConflictError, NotFoundError, PledgeError, ValidationError } from '../platform/errors.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { DataKey, DataKeys } from './data-keys.service.js';
import { identifierHash, normalizeIdentifierOrThrow, type IdentifierKind } from './identifiers.js';
import type { Keyring } from './keyring.js';
import {
  RecordsRepository,
  type StoredField,
  type StoredRecord,
  type UsableRecord,
} from './records.repository.js';
import { retentionDeadline } from './retention.js';
import { SubjectsRepository, type Subject } from './subjects.repository.js';
import { openBatch, sealBatch, type CryptoBatch } from './field-batch.js';
import { uuidv7 } from '../platform/ids.js';

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
}

/** Why the use gate allowed or refused a purpose. */
export type UseReason = 'required' | 'opt_out_default' | 'opt_in_missing';

/** The decision about one subject and purpose. */
export interface UseDecision {
  allowed: boolean;
  reason: UseReason;
}

/** Decides whether a purpose may use a subject's data (the consent issue plugs its ledger in here). */
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
}

/** The manifest in force and the id of its recorded version. */
export interface VaultManifest {
  manifest: Manifest;
  versionId: number;
}

/** What the vault uses. */
export interface VaultDeps {
  db: Kysely<Tables>;
  dataKeys: DataKeys;
  keyring: Keyring;
  manifest: VaultManifest;
  /** Defaults to the manifest's consent mode for the subject's jurisdiction. */
  decide?: Decide;
}

/** A subject to create, with its identifiers already validated and hashed (once, before queueing). */
interface PendingSubject {
  input: NewSubjectInput;
  hashes: Array<{ kind: IdentifierKind; hash: string }>;
}

interface PendingWrite {
  ctx: Context;
  subject: PendingSubject | undefined;
  records: StoredRecord[];
  audit: AuditEntry[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

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

/** Stores and reads personal data. */
export class Vault {
  readonly #db: Kysely<Tables>;
  readonly #dataKeys: DataKeys;
  readonly #keyring: Keyring;
  readonly #manifest: VaultManifest;
  readonly #decide: Decide;
  #queue: PendingWrite[] = [];
  #flushing: Promise<void> | undefined;

  constructor(deps: VaultDeps) {
    this.#db = deps.db;
    this.#dataKeys = deps.dataKeys;
    this.#keyring = deps.keyring;
    this.#manifest = deps.manifest;
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
    _ctx: Context,
    kind: IdentifierKind,
    value: string,
  ): Promise<Subject | undefined> {
    const hash = identifierHash(this.#keyring.indexKey, kind, normalizeIdentifierOrThrow(kind, value, kind));
    const subject = await new SubjectsRepository(this.#db).findByIdentifier(kind, hash);
    return subject && subject.erasedAt === undefined ? subject : undefined;
  }

  /** The subject with this id; throws `vault.subject_not_found` when unknown or erased. */
  async getSubjectOrThrow(_ctx: Context, id: string): Promise<Subject> {
    const subject = await new SubjectsRepository(this.#db).get(id);
    if (!subject || subject.erasedAt !== undefined) {
      throw new NotFoundError(
        'vault.subject_not_found',
        'there is no subject with this id (or it was erased)',
        {
          subjectId: id,
        },
      );
    }
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
   * Encrypts and stores records in one transaction, after creating `newSubject` when given. Every
   * field's category must be one its source declares (closed world); throws before anything is
   * stored otherwise. Resolves after the commit, with the records' ids.
   */
  async write(
    ctx: Context,
    inputs: readonly WriteRecordInput[],
    newSubject?: NewSubjectInput,
  ): Promise<string[]> {
    const records: StoredRecord[] = [];
    const audit: AuditEntry[] = [];
    // Encryptions per subject, so each data key is reserved once for the whole batch.
    const counts = new Map<string, number>();
    for (const input of inputs)
      counts.set(input.subjectId, (counts.get(input.subjectId) ?? 0) + Object.keys(input.fields).length);
    // Validated before anything is encrypted, so a bad identifier costs nothing.
    const pendingSubject = newSubject && {
      input: newSubject,
      hashes: this.hashIdentifiers(newSubject.identifiers),
    };
    const keys = new Map<string, DataKey>();
    for (const [subjectId, n] of counts) keys.set(subjectId, await this.#dataKeys.forWrite(subjectId, n));

    const batch: CryptoBatch = {
      keys: [],
      records: { key: [], subjectId: [], recordId: [], keyVersion: [], firstField: [] },
      fields: { name: [], data: [] },
    };
    const keyIndex = new Map<string, number>();
    for (const [subjectId, key] of keys) keyIndex.set(subjectId, batch.keys.push(key.key) - 1);
    const pending: Array<{ record: Omit<StoredRecord, 'fields'>; categories: string[] }> = [];
    for (const input of inputs) {
      const source = this.#sourceOrThrow(input.source);
      const purposes = [...(input.purposes ?? source.purposes)];
      for (const p of purposes) {
        if (!source.purposes.includes(p)) {
          throw new ValidationError(
            'vault.purpose_undeclared',
            `source "${source.key}" does not collect for purpose "${p}"`,
            { source: source.key, purpose: p },
            422,
          );
        }
      }
      const key = keys.get(input.subjectId);
      const k = keyIndex.get(input.subjectId);
      if (!key || k === undefined) throw new PledgeError('vault.internal', 'missing data key');
      const id = uuidv7();
      batch.records.key.push(k);
      batch.records.subjectId.push(input.subjectId);
      batch.records.recordId.push(id);
      batch.records.keyVersion.push(key.version);
      batch.records.firstField.push(batch.fields.name.length);
      const fieldCategories: string[] = [];
      const categories = new Set<string>();
      for (const [name, field] of Object.entries(input.fields)) {
        if (!source.categories.some((c) => coversCategory(c, field.category))) {
          throw new ValidationError(
            'vault.category_undeclared',
            `source "${source.key}" does not declare that it collects "${field.category}" (field "${name}")`,
            { source: source.key, field: name, category: field.category },
            422,
          );
        }
        categories.add(field.category);
        fieldCategories.push(field.category);
        batch.fields.name.push(name);
        batch.fields.data.push(JSON.stringify(field.value) ?? 'null');
      }
      const collectedAt = input.collectedAt ?? ctx.clock.now();
      const cats = [...categories].sort();
      pending.push({
        categories: fieldCategories,
        record: {
          id,
          subjectId: input.subjectId,
          source: source.key,
          categories: cats,
          purposes,
          policyVersionId: this.#manifest.versionId,
          collectedAt,
          retainUntil: retentionDeadline(this.#manifest.manifest, source, cats, purposes, collectedAt),
          keyVersion: key.version,
        },
      });
    }
    const sealed = sealBatch(batch);
    pending.forEach((p, r) => {
      const fields: Record<string, StoredField> = {};
      const first = batch.records.firstField[r] ?? 0;
      p.categories.forEach((category, i) => {
        const value = sealed[first + i];
        const name = batch.fields.name[first + i];
        if (!value || name === undefined)
          throw new PledgeError('vault.internal', 'sealed values out of step');
        fields[name] = { category, sealed: value };
      });
      records.push({ ...p.record, fields });
    });
    // One audit entry per subject and call (not per record): a batch of 1,000 product events is
    // one collection, and the entry lists the records it made.
    const bySubject = new Map<string, StoredRecord[]>();
    for (const r of records) {
      const list = bySubject.get(r.subjectId);
      if (list) list.push(r);
      else bySubject.set(r.subjectId, [r]);
    }
    for (const [subjectId, recs] of bySubject) {
      audit.push({
        action: 'vault.write',
        subjectId,
        details: {
          records: recs.map((r) => r.id),
          sources: [...new Set(recs.map((r) => r.source))],
          fields: [...new Set(recs.flatMap((r) => Object.keys(r.fields)))].sort(),
          categories: [...new Set(recs.flatMap((r) => r.categories))].sort(),
          purposes: [...new Set(recs.flatMap((r) => r.purposes))],
        },
      });
    }
    if (newSubject)
      audit.unshift({
        action: 'subject.create',
        subjectId: newSubject.id,
        details: { kind: newSubject.kind },
      });
    await this.#enqueue(ctx, pendingSubject, records, audit);
    return records.map((r) => r.id);
  }

  #enqueue(
    ctx: Context,
    subject: PendingSubject | undefined,
    records: StoredRecord[],
    audit: AuditEntry[],
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ ctx, subject, records, audit, resolve, reject });
      if (this.#flushing === undefined) {
        this.#flushing = new Promise<void>((done) => setImmediate(done)).then(() => this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        await this.#db.transaction().execute(async (trx) => {
          for (const item of batch) await this.#apply(trx, item);
        });
        for (const item of batch) item.resolve();
      } catch {
        // One bad write must not fail its neighbours: retry each alone, so each gets its own answer.
        for (const item of batch) {
          try {
            await this.#db.transaction().execute((trx) => this.#apply(trx, item));
            item.resolve();
          } catch (err) {
            item.reject(err);
          }
        }
      }
    }
    this.#flushing = undefined;
  }

  async #apply(trx: Kysely<Tables>, item: PendingWrite): Promise<void> {
    const subjects = new SubjectsRepository(trx);
    const at = item.ctx.clock.now();
    if (item.subject) {
      const { input: s, hashes } = item.subject;
      await subjects.insert({ id: s.id, kind: s.kind, jurisdiction: s.jurisdiction, at });
      await subjects.addIdentifiers(s.id, hashes, at);
      for (const h of hashes) {
        const owner = await subjects.findByIdentifier(h.kind, h.hash);
        if (owner && owner.id !== s.id) {
          throw new ConflictError('vault.identifier_taken', `the ${h.kind} belongs to another subject`, {
            kind: h.kind,
          });
        }
      }
    }
    const subjectIds = new Set(item.records.map((r) => r.subjectId));
    for (const id of subjectIds) {
      const subject = await subjects.get(id);
      if (!subject || subject.erasedAt !== undefined) {
        throw new NotFoundError(
          'vault.subject_not_found',
          'there is no subject with this id (or it was erased)',
          {
            subjectId: id,
          },
        );
      }
    }
    await new RecordsRepository(trx).insertMany(item.records);
    await new AuditRepository(trx).append(item.ctx, item.audit);
  }

  /** Resolves once every write queued so far is committed or failed (for a graceful shutdown). */
  async drain(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
  }

  // ---- the use gate --------------------------------------------------------------------------

  /**
   * The use gate: the fields of a subject's records that `purpose` may use (its categories, on
   * records collected for it), only when the decision allows, decrypted. Every call is audited.
   */
  async read(ctx: Context, subjectId: string, purposeKey: string): Promise<ReadResult> {
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
    const subject = await this.getSubjectOrThrow(ctx, subjectId);
    const decision = await this.#decide(ctx, subject, purpose);
    const result: ReadResult = { subjectId, purpose: purposeKey, decision, records: [], unreadable: 0 };
    let fieldCount = 0;
    if (decision.allowed) {
      const stored = await new RecordsRepository(this.#db).listForUse(subjectId);
      const batch: CryptoBatch = {
        keys: [],
        records: { key: [], subjectId: [], recordId: [], keyVersion: [], firstField: [] },
        fields: { name: [], data: [] },
      };
      const keyIndex = new Map<number, number>();
      const plan: Array<{ record: UsableRecord; names: string[] }> = [];
      for (const r of stored) {
        if (!r.purposes.includes(purposeKey)) continue;
        const names = Object.keys(r.fields).filter((name) => {
          const category = r.fields[name]?.c;
          return category !== undefined && purpose.categories.some((c) => coversCategory(c, category));
        });
        if (names.length === 0) continue;
        let k = keyIndex.get(r.keyVersion);
        if (k === undefined) {
          const key = await this.#dataKeys.forRead(subjectId, r.keyVersion);
          k = key ? batch.keys.push(key) - 1 : -1;
          keyIndex.set(r.keyVersion, k);
        }
        if (k < 0) {
          result.unreadable++;
          continue;
        }
        batch.records.key.push(k);
        batch.records.subjectId.push(subjectId);
        batch.records.recordId.push(r.id);
        batch.records.keyVersion.push(r.keyVersion);
        batch.records.firstField.push(batch.fields.name.length);
        for (const name of names) {
          batch.fields.name.push(name);
          batch.fields.data.push(Buffer.from(r.fields[name]?.v ?? '', 'base64'));
        }
        plan.push({ record: r, names });
      }
      // A value that does not open under a key that exists was altered: that is an integrity
      // failure and fails the read (vault.decrypt_failed), never a silently shorter answer.
      const opened = openBatch(batch);
      let at = 0;
      for (const { record: r, names } of plan) {
        const fields: Record<string, { category: string; value: unknown }> = {};
        for (const name of names) {
          fields[name] = {
            category: r.fields[name]?.c ?? '',
            value: JSON.parse((opened[at++] ?? Buffer.from('null')).toString('utf8')),
          };
        }
        fieldCount += names.length;
        result.records.push({
          id: r.id,
          source: r.source,
          collectedAt: new Date(r.collectedAt),
          policyVersionId: r.policyVersionId,
          fields,
        });
      }
    }
    await new AuditRepository(this.#db).append(ctx, [
      {
        action: 'vault.read',
        subjectId,
        purpose: purposeKey,
        details: {
          allowed: decision.allowed,
          reason: decision.reason,
          records: result.records.length,
          fields: fieldCount,
        },
      },
    ]);
    return result;
  }

  // ---- erasure -------------------------------------------------------------------------------

  /**
   * Erases a subject: its data keys are destroyed first (so every copy of its records, backups
   * included, is unreadable from that moment), then its records and identifiers are deleted and the
   * subject is kept as a tombstone. Idempotent.
   */
  async erase(ctx: Context, subjectId: string): Promise<{ keysDestroyed: number; recordsDeleted: number }> {
    const subject = await new SubjectsRepository(this.#db).get(subjectId);
    if (!subject)
      throw new NotFoundError('vault.subject_not_found', 'there is no subject with this id', { subjectId });
    const keysDestroyed = await this.#dataKeys.destroy(subjectId);
    const recordsDeleted = await this.#db.transaction().execute(async (trx) => {
      const deleted = await new RecordsRepository(trx).deleteBySubject(subjectId);
      await new SubjectsRepository(trx).markErased(subjectId, ctx.clock.now());
      await new AuditRepository(trx).append(ctx, [
        { action: 'subject.erase', subjectId, details: { keysDestroyed, recordsDeleted: deleted } },
      ]);
      return deleted;
    });
    return { keysDestroyed, recordsDeleted };
  }

  #sourceOrThrow(key: string) {
    const source = this.#manifest.manifest.sources.find((s) => s.key === key);
    if (!source) {
      throw new NotFoundError(
        'collect.source_unknown',
        `the manifest declares no collection point "${key}"`,
        {
          source: key,
          sources: this.#manifest.manifest.sources.map((s) => s.key),
        },
      );
    }
    return source;
  }
}
