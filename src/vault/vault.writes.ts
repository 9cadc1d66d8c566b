/**
 * The vault's write path apart from the class: turning record inputs into rows (closed-world
 * checks, the seal batch, shared shapes), the audit entries of a write, and applying a group of
 * queued writes in one transaction. vault.service.ts owns the keys, the crypto pool and the group
 * commit, and calls these in order.
 */
import type { AuditAppender, AuditEntry } from '../audit/audit.service.js';
import { isCredentialCategory } from '../manifest/credentials.js';
import type { Source } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { Context } from '../platform/context.js';
import type { WriteOutcome } from '../platform/db/group-commit.js';
import { ConflictError, NotFoundError, PledgeError, ValidationError } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import type { SealBatch } from './field-batch.js';
import type { IdentifierKind } from './identifiers.js';
import type { NewRecord, RecordsRepository } from './records.repository.js';
import { retentionDeadline } from './retention.js';
import type { SubjectsRepository } from './subjects.repository.js';
import type {
  AttachIdentifiersInput,
  FieldInput,
  NewSubjectInput,
  VaultManifest,
  WriteRecordInput,
} from './vault.types.js';

/** A subject to create, with its identifiers already validated and hashed (once, before queueing). */
export interface PendingSubject {
  /** A subject to create, or new identifiers of an existing one. */
  input: NewSubjectInput | AttachIdentifiersInput;
  hashes: Array<{ kind: IdentifierKind; hash: string }>;
}

/** One caller's write as queued for the group commit: its subject, records and audit entries. */
export interface PendingWrite {
  ctx: Context;
  subject: PendingSubject | undefined;
  records: NewRecord[];
  audit: AuditEntry[];
}

/** What the records of one write that share a source, fields, purposes and time have in common. */
export interface RecordShape {
  source: string;
  /** Sorted. */
  fieldNames: string[];
  /** Sorted, distinct. */
  categories: string[];
  purposes: string[];
  collectedAt: Date;
  retainUntil: Date;
}

/**
 * One audit entry per subject and call (not per record): a batch of 1,000 product events is one
 * collection, and the entry lists the records it made. A subject whose records share one shape (the
 * usual case) takes that shape's lists as they are.
 */
export function writeAuditEntries(
  records: readonly NewRecord[],
  shapes: readonly RecordShape[],
): AuditEntry[] {
  const bySubject = new Map<string, { ids: string[]; shapes: Set<RecordShape> }>();
  records.forEach((r, i) => {
    const shape = shapes[i] as RecordShape;
    const group = bySubject.get(r.subjectId);
    if (group) {
      group.ids.push(r.id);
      group.shapes.add(shape);
    } else bySubject.set(r.subjectId, { ids: [r.id], shapes: new Set([shape]) });
  });
  const entries: AuditEntry[] = [];
  for (const [subjectId, { ids, shapes: used }] of bySubject) {
    const list = [...used];
    const one = list.length === 1 ? list[0] : undefined;
    entries.push({
      action: 'vault.write',
      subjectId,
      details: {
        records: ids,
        sources: one ? [one.source] : [...new Set(list.map((s) => s.source))],
        fields: one ? one.fieldNames : [...new Set(list.flatMap((s) => s.fieldNames))].sort(),
        categories: one ? one.categories : [...new Set(list.flatMap((s) => s.categories))].sort(),
        purposes: one ? one.purposes : [...new Set(list.flatMap((s) => s.purposes))],
      },
    });
  }
  return entries;
}

/** The error of a subject id that is unknown or erased. */
export function subjectNotFound(subjectId: string): NotFoundError {
  return new NotFoundError('vault.subject_not_found', 'there is no subject with this id (or it was erased)', {
    subjectId,
  });
}

/** The manifest's source with this key; throws `collect.source_unknown` when it declares none. */
function sourceOrThrow(manifest: VaultManifest, key: string): Source {
  const source = manifest.manifest.sources.find((s) => s.key === key);
  if (!source) {
    throw new NotFoundError('collect.source_unknown', `the manifest declares no collection point "${key}"`, {
      source: key,
      sources: manifest.manifest.sources.map((s) => s.key),
    });
  }
  return source;
}

/** The records of one write, unsealed (`fieldsJson` empty), with the shape each shares. */
export interface BuiltRecords {
  records: NewRecord[];
  /** `shapes[i]` is the shape of `records[i]`. */
  shapes: RecordShape[];
}

/**
 * Checks each input against its source (closed world: declared purposes and categories), gives it
 * an id and adds it and its fields to `batch` under its subject's key. Throws at the first input
 * that does not fit, before anything is sealed or stored.
 */
export function buildRecords(
  manifest: VaultManifest,
  inputs: readonly WriteRecordInput[],
  keys: ReadonlyMap<string, { index: number; version: number }>,
  batch: SealBatch,
  now: Date,
): BuiltRecords {
  // The records of one call mostly share a source, fields, purposes and time: what follows from
  // those (sorted categories and field names, retention deadline, the audit's lists) is worked out
  // once per distinct shape and shared by reference, so the repository serializes it once too.
  const declared = new Map<string, boolean>();
  const shapes = new Map<string, RecordShape>();
  const records: NewRecord[] = [];
  const recordShapes: RecordShape[] = [];
  for (const input of inputs) {
    const source = sourceOrThrow(manifest, input.source);
    const purposes = input.purposes === undefined ? source.purposes : [...input.purposes];
    if (input.purposes !== undefined) {
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
    }
    const key = keys.get(input.subjectId);
    if (!key) throw new PledgeError('vault.internal', 'missing data key');
    const id = uuidv7();
    batch.addRecord(key.index, input.subjectId, id, key.version);
    let shapeKey = `${source.key}\u0000${purposes.join('\u0000')}\u0000`;
    for (const name of Object.keys(input.fields)) {
      const field = input.fields[name] as FieldInput;
      const check = `${source.key}\u0000${field.category}`;
      let ok = declared.get(check);
      if (ok === undefined) {
        ok = source.categories.some((c) => coversCategory(c, field.category));
        declared.set(check, ok);
      }
      if (!ok) {
        throw new ValidationError(
          'vault.category_undeclared',
          `source "${source.key}" does not declare that it collects "${field.category}" (field "${name}")`,
          { source: source.key, field: name, category: field.category },
          422,
        );
      }
      shapeKey += `${name}\u0000${field.category}\u0000`;
      batch.addField(name, field.category, JSON.stringify(field.value) ?? 'null');
    }
    const collectedAt = input.collectedAt ?? now;
    shapeKey += String(collectedAt.getTime());
    let shape = shapes.get(shapeKey);
    if (!shape) {
      const fieldNames = Object.keys(input.fields);
      const categories = [...new Set(fieldNames.map((n) => (input.fields[n] as FieldInput).category))].sort();
      shape = {
        source: source.key,
        fieldNames: [...fieldNames].sort(),
        categories,
        purposes,
        collectedAt,
        retainUntil: retentionDeadline(manifest.manifest, source, categories, purposes, collectedAt),
      };
      shapes.set(shapeKey, shape);
    }
    records.push({
      id,
      subjectId: input.subjectId,
      source: source.key,
      categories: shape.categories,
      purposes: shape.purposes,
      policyVersionId: manifest.versionId,
      collectedAt: shape.collectedAt,
      retainUntil: shape.retainUntil,
      keyVersion: key.version,
      fieldsJson: '',
    });
    recordShapes.push(shape);
  }
  return { records, shapes: recordShapes };
}

/** The stores a group of writes goes to. */
export interface WriteStores {
  subjects: SubjectsRepository;
  records: RecordsRepository;
  audit: AuditAppender;
}

/**
 * Applies queued writes in one transaction: subjects first, then one check of every subject
 * written to, one insert of every record and one of every audit entry. A write to a subject that
 * does not exist (or was erased) is left out and refused with its error, so it fails alone
 * without its neighbours being retried one by one.
 */
export async function applyWrites(
  stores: WriteStores,
  group: Context,
  items: readonly PendingWrite[],
): Promise<Array<WriteOutcome<void>>> {
  const subjects = stores.subjects;
  const created = new Set<string>();
  for (const item of items) {
    if (!item.subject) continue;
    const at = item.ctx.clock.now();
    const { input: s, hashes } = item.subject;
    const id = 'attachTo' in s ? s.attachTo : s.id;
    if ('attachTo' in s) {
      // No identifier joins a subject that is gone (erased while this write was queued).
      if (!(await subjects.listLiveIds(group, [id])).has(id)) throw subjectNotFound(id);
    } else await subjects.insert(group, { id, kind: s.kind, jurisdiction: s.jurisdiction, at });
    await subjects.addIdentifiers(group, id, hashes, at);
    for (const h of hashes) {
      const owner = await subjects.findByIdentifier(group, h.kind, h.hash);
      if (owner && owner.id !== id) {
        throw new ConflictError('vault.identifier_taken', `the ${h.kind} belongs to another subject`, {
          kind: h.kind,
        });
      }
    }
    if (!('attachTo' in s)) created.add(id);
  }
  const named = new Set<string>();
  for (const item of items)
    for (const r of item.records) if (!created.has(r.subjectId)) named.add(r.subjectId);
  // One query for every subject the group writes to, not one per write: inside the transaction,
  // so an erasure either committed before it (and the write fails) or waits for it.
  const live = named.size === 0 ? named : await subjects.listLiveIds(group, [...named]);
  const records: NewRecord[] = [];
  const audit: Array<{ ctx: Context; entries: AuditEntry[] }> = [];
  const outcomes = items.map((item): WriteOutcome<void> => {
    const missing = item.records.find((r) => !created.has(r.subjectId) && !live.has(r.subjectId));
    if (missing) return { ok: false, error: subjectNotFound(missing.subjectId) };
    for (const r of item.records) records.push(r);
    audit.push({ ctx: item.ctx, entries: item.audit });
    return { ok: true, value: undefined };
  });
  await stores.records.insertMany(group, records);
  // A new credential replaces the subject's earlier one of its category: the old verifier (or a
  // secret stored before verifiers) leaves its record in the same transaction.
  const credentials = records.flatMap((r) => {
    const categories = r.categories.filter(isCredentialCategory);
    return categories.length === 0 ? [] : [{ subjectId: r.subjectId, recordId: r.id, categories }];
  });
  if (credentials.length > 0) await stores.records.dropEarlierCredentials(group, credentials);
  await stores.audit.appendEach(group, audit);
  return outcomes;
}
