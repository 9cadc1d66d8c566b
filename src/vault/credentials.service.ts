/**
 * Credentials: the one way a stored credential is used. The use gate never opens a credentials
 * field (field-batch.ts); this service opens the subject's newest one of a field or category, says
 * whether a given secret matches it, and moves secrets stored before verifiers to verifiers: on the
 * next successful verify, or all at once (`pledge vault rehash-credentials`). A rehash writes the
 * verifier as a new record through the vault's write path, which drops the old field in the same
 * transaction (vault.writes.ts), so the old secret is gone from the moment the verifier is stored.
 */
import type { AuditAppender } from '../audit/audit.service.js';
import { CREDENTIALS_CATEGORY, isCredentialCategory } from '../manifest/credentials.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { ValidationError } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import { isVerifier, matchesStored, secretOrThrow } from './credentials.js';
import type { DataKeys } from './data-keys.service.js';
import { OpenBatch } from './field-batch.js';
import type { RecordsRepository, UsableRecord } from './records.repository.js';
import type { SubjectsRepository } from './subjects.repository.js';
import type { WriteRecordInput } from './vault.types.js';
import { subjectNotFound } from './vault.writes.js';

/** Which credential to check: a field by name, or the newest field of a credentials category. */
export type CredentialSelector = { field: string } | { category: string };

/** What {@link Credentials.verify} answers. */
export interface VerifyResult {
  match: boolean;
}

/** What {@link Credentials.rehashAll} did. */
export interface RehashResult {
  /** Records holding a credential that were looked at. */
  scanned: number;
  /** Secrets stored before verifiers that are now verifiers. */
  rehashed: number;
  /** Secrets whose collection point no longer declares them (left as they are; see docs/vault.md). */
  failed: number;
}

/** What the credentials service uses. */
export interface CredentialsDeps {
  db: Transactions;
  subjects: SubjectsRepository;
  records: RecordsRepository;
  dataKeys: DataKeys;
  audit: AuditAppender;
  /** The vault's write path ({@link Vault.write}): it hashes credentials and drops earlier ones. */
  write: (ctx: Context, inputs: readonly WriteRecordInput[]) => Promise<string[]>;
}

/** A credential found in a record, opened. */
interface FoundCredential {
  record: UsableRecord;
  field: string;
  category: string;
  value: unknown;
}

/** Checks secrets against stored credential verifiers. */
export class Credentials {
  readonly #deps: CredentialsDeps;

  constructor(deps: CredentialsDeps) {
    this.#deps = deps;
  }

  /**
   * True when `secret` matches the subject's credential (its newest field of that name or
   * category). The same work runs whether or not there is one, and the comparison is constant-time.
   * A secret stored before verifiers that matches is replaced by its verifier. Audited (never the
   * secret). Throws `vault.subject_not_found` for an unknown or erased subject.
   */
  async verify(
    ctx: Context,
    subjectId: string,
    selector: CredentialSelector,
    secret: string,
  ): Promise<VerifyResult> {
    const wanted = selectorOrThrow(selector);
    secretOrThrow(secret, 'secret');
    const subject = await this.#deps.subjects.get(ctx, subjectId);
    if (!subject || subject.erasedAt !== undefined) throw subjectNotFound(subjectId);
    const records = await this.#deps.records.listForUse(ctx, [subjectId]);
    // Newest first: a record written later holds the credential in force.
    const holder = [...records].reverse().find((r) => fieldOf(r.fieldsJson, wanted) !== undefined);
    const found = holder && (await this.#open(ctx, holder, wanted));
    const match = await matchesStored(found?.value, secret);
    const rehashed =
      match && found !== undefined && !isVerifier(found.value) && (await this.#rehash(ctx, found, secret));
    await this.#deps.db.transaction(ctx, (trx) =>
      this.#deps.audit.append(trx, [
        {
          action: 'credentials.verify',
          subjectId,
          details: {
            ...('field' in wanted ? { field: wanted.field } : { category: wanted.category }),
            match,
            rehashed,
          },
        },
      ]),
    );
    return { match };
  }

  /**
   * Replaces every secret stored before verifiers by its verifier, `batchSize` records at a time.
   * Idempotent: a verifier is left as it is, so a second run (or a run beside servers that rehash
   * on verify) finds nothing more to do.
   */
  async rehashAll(ctx: Context, options: { batchSize?: number } = {}): Promise<RehashResult> {
    const batchSize = options.batchSize ?? 500;
    const result: RehashResult = { scanned: 0, rehashed: 0, failed: 0 };
    // Record ids are time-ordered: what this run writes sorts after `started` and is not walked again.
    const started = uuidv7();
    let after = '';
    for (;;) {
      const page = await this.#deps.records.listHolding(ctx, CREDENTIALS_CATEGORY, after, batchSize);
      if (page.length === 0) return result;
      for (const record of page) {
        if (record.id > started) return result;
        after = record.id;
        result.scanned++;
        for (const field of credentialFields(record.fieldsJson)) {
          const found = await this.#open(ctx, record, { field });
          if (found === undefined || isVerifier(found.value) || typeof found.value !== 'string') continue;
          if (await this.#rehash(ctx, found, found.value)) result.rehashed++;
          else result.failed++;
        }
      }
    }
  }

  /** Opens one credential field of a record (on this thread: the batch is one record). */
  async #open(
    ctx: Context,
    record: UsableRecord,
    wanted: CredentialSelector,
  ): Promise<FoundCredential | undefined> {
    const field = fieldOf(record.fieldsJson, wanted);
    if (field === undefined) return undefined;
    const key = await this.#deps.dataKeys.forRead(ctx, record.subjectId, record.keyVersion);
    if (!key) return undefined;
    const batch = new OpenBatch([field.category], { credentials: true });
    batch.addRecord(batch.addKey(key), record.subjectId, record.id, record.keyVersion, record.fieldsJson);
    const opened = batch.openHere()[0]?.[field.name];
    return opened && { record, field: field.name, category: opened.category, value: opened.value };
  }

  /**
   * Writes the verifier of a secret stored before verifiers, in a record of the same source,
   * purposes and collection time (so its retention is unchanged); the write drops the old field.
   * False when the write is refused (the manifest in force no longer declares the field).
   */
  async #rehash(ctx: Context, found: FoundCredential, secret: string): Promise<boolean> {
    try {
      await this.#deps.write(ctx, [
        {
          subjectId: found.record.subjectId,
          source: found.record.source,
          purposes: JSON.parse(found.record.purposesJson) as string[],
          collectedAt: new Date(found.record.collectedAt),
          fields: { [found.field]: { category: found.category, value: secret } },
        },
      ]);
      return true;
    } catch (err) {
      if (err instanceof ValidationError) return false;
      throw err;
    }
  }
}

/** The names of a stored record's credential fields (names and categories are not encrypted). */
function credentialFields(fieldsJson: string): string[] {
  const fields = JSON.parse(fieldsJson) as Record<string, { c?: unknown }>;
  return Object.keys(fields).filter((n) => {
    const c = fields[n]?.c;
    return typeof c === 'string' && isCredentialCategory(c);
  });
}

/** The field of a stored record that `wanted` names, if it holds one. */
function fieldOf(
  fieldsJson: string,
  wanted: CredentialSelector,
): { name: string; category: string } | undefined {
  const fields = JSON.parse(fieldsJson) as Record<string, { c?: unknown }>;
  for (const name of Object.keys(fields)) {
    const c = fields[name]?.c;
    if (typeof c !== 'string' || !isCredentialCategory(c)) continue;
    if (
      'field' in wanted ? name === wanted.field : c === wanted.category || c.startsWith(`${wanted.category}.`)
    )
      return { name, category: c };
  }
  return undefined;
}

function selectorOrThrow(selector: CredentialSelector): CredentialSelector {
  if ('category' in selector && !isCredentialCategory(selector.category)) {
    throw new ValidationError(
      'credentials.category_invalid',
      `"${selector.category}" is not a credentials category; name "${CREDENTIALS_CATEGORY}" or one under it, or the field`,
      { path: 'category', category: selector.category },
      422,
    );
  }
  return selector;
}
