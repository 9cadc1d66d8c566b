/** Encrypted records. Only this file touches the records table. */
import { sql, type ExpressionBuilder, type Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import { RowInserter } from '../platform/db/row-inserter.js';
import type { VaultTables } from './vault.tables.js';

/** A field as stored: its category and its sealed value. */
export interface StoredField {
  category: string;
  sealed: Buffer;
}

/** A record as stored. */
export interface StoredRecord {
  id: string;
  subjectId: string;
  source: string;
  categories: string[];
  purposes: string[];
  policyVersionId: number;
  collectedAt: Date;
  retainUntil: Date;
  keyVersion: number;
  fields: Record<string, StoredField>;
}

type FieldsJson = Record<string, { c: string; v: string }>;

/**
 * A record to insert, its fields already sealed into the `fields` column's JSON text
 * (`{"email":{"c":"user.contact.email","v":"<base64 sealed value>"}}`), as the crypto batch makes it.
 */
export interface NewRecord extends Omit<StoredRecord, 'fields'> {
  /** The `fields` column text. */
  fieldsJson: string;
}

/**
 * A record as the use gate reads it: the JSON columns as stored, unparsed. The purposes text is the
 * same for every record of a source, so the gate parses each distinct text once; the fields text
 * goes whole to the crypto batch, which parses it where it decrypts.
 */
export interface UsableRecord {
  id: string;
  subjectId: string;
  source: string;
  /** The `purposes` column text (a JSON array). */
  purposesJson: string;
  policyVersionId: number;
  /** ISO-8601, as stored. */
  collectedAt: string;
  keyVersion: number;
  /** The `fields` column text (category `c`, base64 sealed value `v` per field). */
  fieldsJson: string;
}

/** The records table's INSERT, built once per chunk size (a write of 500 records is a hot path). */
const RECORD_ROWS = new RowInserter<VaultTables, 'records'>('records', [
  'id',
  'subject_id',
  'source',
  'categories',
  'purposes',
  'policy_version_id',
  'collected_at',
  'retain_until',
  'key_version',
  'fields',
]);

/** The columns of a {@link UsableRecord}. */
const USABLE_COLUMNS = [
  'id',
  'subject_id',
  'source',
  'purposes',
  'policy_version_id',
  'collected_at',
  'key_version',
  'fields',
] as const;

function usableOf(row: Pick<VaultTables['records'], (typeof USABLE_COLUMNS)[number]>): UsableRecord {
  return {
    id: row.id,
    subjectId: row.subject_id,
    source: row.source,
    purposesJson: row.purposes,
    policyVersionId: row.policy_version_id,
    collectedAt: row.collected_at,
    keyVersion: row.key_version,
    fieldsJson: row.fields,
  };
}

/**
 * Records whose purposes (a JSON array of keys) name `purpose`: a LIKE on the quoted key, its `_`
 * and `%` escaped (keys may hold `_`). The gate checks the parsed array again; this only keeps
 * other purposes' records out of a page.
 */
function collectedFor(purpose: string) {
  const pattern = `%${JSON.stringify(purpose).replace(/[\\%_]/g, '\\$&')}%`;
  return sql<boolean>`${sql.ref('purposes')} like ${pattern} escape '\\'`;
}

/**
 * The records of some subjects, read 500 subjects at a time (an IN list a driver takes), the rows
 * of each chunk in the order the query gives them.
 */
async function inChunks(
  subjectIds: readonly string[],
  read: (chunk: string[]) => Promise<Array<Pick<VaultTables['records'], (typeof USABLE_COLUMNS)[number]>>>,
): Promise<UsableRecord[]> {
  const out: UsableRecord[] = [];
  const unique = [...new Set(subjectIds)];
  for (let i = 0; i < unique.length; i += 500) {
    for (const row of await read(unique.slice(i, i + 500))) out.push(usableOf(row));
  }
  return out;
}

/**
 * `subject_id` is one of `chunk`. One subject (the use gate's usual call) is an equality, which the
 * (subject_id, id) index answers in order without a sort.
 */
function ofSubjects(eb: ExpressionBuilder<VaultTables, 'records'>, chunk: readonly string[]) {
  return chunk.length === 1 ? eb('subject_id', '=', chunk[0] ?? '') : eb('subject_id', 'in', chunk);
}

/** Reads and writes records. */
export class RecordsRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<VaultTables> {
    return this.db.executor<VaultTables>(ctx);
  }

  /** Inserts records, many rows per statement. */
  async insertMany(ctx: Context, records: readonly NewRecord[]): Promise<void> {
    await RECORD_ROWS.insert(this.#q(ctx), records.map(rowMaker()));
  }

  /**
   * Some subjects' records for the use gate, each subject's in the order they were written, with the
   * JSON columns as stored: the gate decrypts only the fields the purpose may use.
   */
  async listForUse(ctx: Context, subjectIds: readonly string[]): Promise<UsableRecord[]> {
    return inChunks(subjectIds, (chunk) =>
      this.#q(ctx)
        .selectFrom('records')
        .select(USABLE_COLUMNS)
        .where((eb) => ofSubjects(eb, chunk))
        .orderBy('subject_id')
        .orderBy('id')
        .execute(),
    );
  }

  /**
   * Some subjects' records collected for `purpose`, for the use gate: each subject's newest
   * `perSubject` at most, in the order they were written, with the JSON columns as stored (the gate
   * decrypts only the fields the purpose may use). The bound keeps one read of a subject with a
   * long history from loading all of it; the newest are kept because newer values win.
   */
  async listNewestForUse(
    ctx: Context,
    subjectIds: readonly string[],
    /** Only records collected for it; `undefined` (a disclosure the law requires): every record. */
    purpose: string | undefined,
    perSubject: number,
  ): Promise<UsableRecord[]> {
    const [only] = subjectIds;
    if (subjectIds.length === 1 && only !== undefined) {
      // One subject (a disclosure for one person): its newest rows by the index, without ranking
      // every row of the subject first.
      const rows = await this.#q(ctx)
        .selectFrom('records')
        .select(USABLE_COLUMNS)
        .where('subject_id', '=', only)
        .$if(purpose !== undefined, (q) => q.where(collectedFor(purpose!)))
        .orderBy('id', 'desc')
        .limit(perSubject)
        .execute();
      return rows.reverse().map(usableOf);
    }
    return inChunks(subjectIds, (chunk) => {
      const ranked = this.#q(ctx)
        .selectFrom('records')
        .select(USABLE_COLUMNS)
        .select((eb) =>
          eb.fn
            .agg<number>('row_number')
            .over((ob) => ob.partitionBy('subject_id').orderBy('id', 'desc'))
            .as('newest'),
        )
        .where((eb) => ofSubjects(eb, chunk))
        .$if(purpose !== undefined, (q) => q.where(collectedFor(purpose!)));
      return this.#q(ctx)
        .selectFrom(ranked.as('r'))
        .select(USABLE_COLUMNS)
        .where('newest', '<=', perSubject)
        .orderBy('subject_id')
        .orderBy('id')
        .execute();
    });
  }

  /**
   * A page of one subject's records collected for `purpose`, in the order they were written: at most
   * `limit`, after the record `after` when given (the use gate's cursor).
   */
  async listPageForUse(
    ctx: Context,
    subjectId: string,
    /** Only records collected for it; `undefined` (a disclosure the law requires): every record. */
    purpose: string | undefined,
    page: { after: string | undefined; limit: number },
  ): Promise<UsableRecord[]> {
    const rows = await this.#q(ctx)
      .selectFrom('records')
      .select(USABLE_COLUMNS)
      .where('subject_id', '=', subjectId)
      .$if(page.after !== undefined, (qb) => qb.where('id', '>', page.after ?? ''))
      .$if(purpose !== undefined, (qb) => qb.where(collectedFor(purpose!)))
      .orderBy('id')
      .limit(page.limit)
      .execute();
    return rows.map(usableOf);
  }

  /**
   * Drops from each subject's records written before `recordId` the fields of these credentials
   * categories (a field of a record is its own sealed value, so the others stay as they are); a
   * record left with no field is deleted. Returns how many fields were dropped.
   */
  async dropEarlierCredentials(
    ctx: Context,
    writes: ReadonlyArray<{ subjectId: string; recordId: string; categories: readonly string[] }>,
  ): Promise<number> {
    let dropped = 0;
    for (const w of writes) {
      const rows = await this.#q(ctx)
        .selectFrom('records')
        .select(['id', 'fields'])
        .where('subject_id', '=', w.subjectId)
        .where('id', '<', w.recordId)
        .where((eb) => eb.or(w.categories.map((c) => eb('categories', 'like', `%${JSON.stringify(c)}%`))))
        .execute();
      for (const row of rows) {
        const fields = JSON.parse(row.fields) as FieldsJson;
        const kept: FieldsJson = {};
        for (const [name, f] of Object.entries(fields)) {
          if (w.categories.includes(f.c)) dropped++;
          else
            Object.defineProperty(kept, name, {
              value: f,
              enumerable: true,
              writable: true,
              configurable: true,
            });
        }
        const names = Object.keys(kept);
        if (names.length === Object.keys(fields).length) continue;
        if (names.length === 0) {
          await this.#q(ctx).deleteFrom('records').where('id', '=', row.id).execute();
          continue;
        }
        const categories = [...new Set(names.map((n) => (kept[n] as { c: string }).c))].sort();
        await this.#q(ctx)
          .updateTable('records')
          .set({ fields: JSON.stringify(kept), categories: JSON.stringify(categories) })
          .where('id', '=', row.id)
          .execute();
      }
    }
    return dropped;
  }

  /**
   * Records that hold a field of a category under `categoryPrefix` (the credentials category), as
   * the use gate reads them, `limit` at a time in id order after `afterId`: what `pledge vault
   * rehash-credentials` walks.
   */
  async listHolding(
    ctx: Context,
    categoryPrefix: string,
    afterId: string,
    limit: number,
  ): Promise<UsableRecord[]> {
    const rows = await this.#q(ctx)
      .selectFrom('records')
      .select(USABLE_COLUMNS)
      .where('id', '>', afterId)
      .where('categories', 'like', `%${JSON.stringify(categoryPrefix).slice(0, -1)}%`)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(usableOf);
  }

  /** One record, or `undefined`. */
  async get(ctx: Context, id: string): Promise<StoredRecord | undefined> {
    const row = await this.#q(ctx).selectFrom('records').selectAll().where('id', '=', id).executeTakeFirst();
    return row && fromRow(row);
  }

  /**
   * A page of a subject's records as erasure weighs them: ids and the categories their fields hold
   * (kept in clear beside the sealed values), never a value. In id order, after `after`.
   */
  async listCategoriesPage(
    ctx: Context,
    subjectId: string,
    page: { after: string | undefined; limit: number },
  ): Promise<Array<{ id: string; categories: string[] }>> {
    const rows = await this.#q(ctx)
      .selectFrom('records')
      .select(['id', 'categories'])
      .where('subject_id', '=', subjectId)
      .$if(page.after !== undefined, (qb) => qb.where('id', '>', page.after ?? ''))
      .orderBy('id')
      .limit(page.limit)
      .execute();
    return rows.map((r) => ({ id: r.id, categories: JSON.parse(r.categories) as string[] }));
  }

  /** Deletes some of a subject's records by id; returns how many went. */
  async deleteByIds(ctx: Context, subjectId: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.#q(ctx)
      .deleteFrom('records')
      .where('subject_id', '=', subjectId)
      .where('id', 'in', [...ids])
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Deletes every record of a subject; returns how many. */
  async deleteBySubject(ctx: Context, subjectId: string): Promise<number> {
    const result = await this.#q(ctx)
      .deleteFrom('records')
      .where('subject_id', '=', subjectId)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /**
   * Deletes up to `limit` records whose retention ended at or before `now`; returns the deleted
   * records' ids and sources (for the audit), never their data. Run it inside a transaction: on
   * PostgreSQL the selected rows stay locked until the commit and other sweepers skip them.
   */
  async deleteExpired(
    ctx: Context,
    now: Date,
    limit: number,
  ): Promise<Array<{ id: string; subjectId: string; source: string }>> {
    const expired = await this.#q(ctx)
      .selectFrom('records')
      .select(['id', 'subject_id', 'source'])
      .where('retain_until', '<=', now.toISOString())
      .orderBy('retain_until')
      .limit(limit)
      // Several instances may sweep at once: SKIP LOCKED gives each its own rows instead of making
      // them wait on (then re-delete) the same batch. SQLite has one writer at a time and no such clause.
      .$if(this.db.dialect === 'postgres', (qb) => qb.forUpdate().skipLocked())
      .execute();
    if (expired.length === 0) return [];
    await this.#q(ctx)
      .deleteFrom('records')
      .where(
        'id',
        'in',
        expired.map((r) => r.id),
      )
      .execute();
    return expired.map((r) => ({ id: r.id, subjectId: r.subject_id, source: r.source }));
  }
}

/**
 * Turns records into rows. The records of one write share their lists and dates by reference (one
 * per shape), so each is serialized once per insert, not once per row.
 */
function rowMaker(): (r: NewRecord) => VaultTables['records'] {
  const json = new Map<readonly string[], string>();
  const iso = new Map<Date, string>();
  const jsonOf = (list: readonly string[]) => {
    let text = json.get(list);
    if (text === undefined) json.set(list, (text = JSON.stringify(list)));
    return text;
  };
  const isoOf = (date: Date) => {
    let text = iso.get(date);
    if (text === undefined) iso.set(date, (text = date.toISOString()));
    return text;
  };
  return (r) => ({
    id: r.id,
    subject_id: r.subjectId,
    source: r.source,
    categories: jsonOf(r.categories),
    purposes: jsonOf(r.purposes),
    policy_version_id: r.policyVersionId,
    collected_at: isoOf(r.collectedAt),
    retain_until: isoOf(r.retainUntil),
    key_version: r.keyVersion,
    fields: r.fieldsJson,
  });
}

function fromRow(row: VaultTables['records']): StoredRecord {
  const fields: Record<string, StoredField> = {};
  for (const [name, f] of Object.entries(JSON.parse(row.fields) as FieldsJson)) {
    fields[name] = { category: f.c, sealed: Buffer.from(f.v, 'base64') };
  }
  return {
    id: row.id,
    subjectId: row.subject_id,
    source: row.source,
    categories: JSON.parse(row.categories) as string[],
    purposes: JSON.parse(row.purposes) as string[],
    policyVersionId: row.policy_version_id,
    collectedAt: new Date(row.collected_at),
    retainUntil: new Date(row.retain_until),
    keyVersion: row.key_version,
    fields,
  };
}
