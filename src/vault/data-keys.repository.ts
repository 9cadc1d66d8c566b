/** The key store's table: each subject's wrapped data keys. Only this file touches it. */
import type { Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { KeystoreTables } from './vault.tables.js';

/** A wrapped data key as stored; a destroyed one has kekVersion 0 and no bytes. */
export interface WrappedDataKey {
  subjectId: string;
  version: number;
  wrapped: Buffer;
  kekVersion: number;
  encryptions: number;
}

/** Reads and writes wrapped data keys. */
export class DataKeysRepository {
  /** `db` is the key store's database, not the main one. */
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<KeystoreTables> {
    return this.db.executor<KeystoreTables>(ctx);
  }

  /** The newest key of a subject, destroyed or not, or `undefined` when it never had one. */
  async getLatest(ctx: Context, subjectId: string): Promise<WrappedDataKey | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('data_keys')
      .selectAll()
      .where('subject_id', '=', subjectId)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toKey(row);
  }

  /** One version of a subject's key, or `undefined` when destroyed or never made. */
  async get(ctx: Context, subjectId: string, version: number): Promise<WrappedDataKey | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('data_keys')
      .selectAll()
      .where('subject_id', '=', subjectId)
      .where('version', '=', version)
      .where('kek_version', '!=', 0)
      .executeTakeFirst();
    return row && toKey(row);
  }

  /** Adds a key version; false when that version already exists (another writer made it first). */
  async insert(ctx: Context, key: WrappedDataKey, at: Date): Promise<boolean> {
    const result = await this.#q(ctx)
      .insertInto('data_keys')
      .values({
        subject_id: key.subjectId,
        version: key.version,
        wrapped: key.wrapped.toString('base64'),
        kek_version: key.kekVersion,
        encryptions: key.encryptions,
        created_at: at.toISOString(),
      })
      .onConflict((oc) => oc.columns(['subject_id', 'version']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /** Reserves `count` more encryptions under a key; returns the new total. */
  async reserve(ctx: Context, subjectId: string, version: number, count: number): Promise<number> {
    const row = await this.#q(ctx)
      .updateTable('data_keys')
      .set((eb) => ({ encryptions: eb('encryptions', '+', count) }))
      .where('subject_id', '=', subjectId)
      .where('version', '=', version)
      .returning('encryptions')
      .executeTakeFirst();
    return row?.encryptions ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Destroys every key of a subject (crypto-shredding); returns how many were destroyed. The rows
   * stay as tombstones without key material (wrapped = '', kek_version = 0) so a key made later for
   * the same subject id gets a new version number: a record restored from a pre-erasure backup then
   * names a version whose key is gone, instead of one that was made anew.
   */
  async destroyAll(ctx: Context, subjectId: string): Promise<number> {
    const result = await this.#q(ctx)
      .updateTable('data_keys')
      .set({ wrapped: '', kek_version: 0 })
      .where('subject_id', '=', subjectId)
      .where('kek_version', '!=', 0)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Up to `limit` keys wrapped with a KEK other than `kekVersion`, for rewrapping in batches. */
  async listNotUnder(ctx: Context, kekVersion: number, limit: number): Promise<WrappedDataKey[]> {
    const rows = await this.#q(ctx)
      .selectFrom('data_keys')
      .selectAll()
      .where('kek_version', '!=', kekVersion)
      .where('kek_version', '!=', 0)
      .orderBy('subject_id')
      .orderBy('version')
      .limit(limit)
      .execute();
    return rows.map(toKey);
  }

  /** Replaces a key's wrapping, only if it is still wrapped with `fromKek` (safe against a concurrent rewrap). */
  async rewrap(
    ctx: Context,
    subjectId: string,
    version: number,
    fromKek: number,
    wrapped: Buffer,
    toKek: number,
  ): Promise<boolean> {
    const result = await this.#q(ctx)
      .updateTable('data_keys')
      .set({ wrapped: wrapped.toString('base64'), kek_version: toKek })
      .where('subject_id', '=', subjectId)
      .where('version', '=', version)
      .where('kek_version', '=', fromKek)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** How many keys each KEK version wraps. */
  async countByKek(ctx: Context): Promise<Map<number, number>> {
    const rows = await this.#q(ctx)
      .selectFrom('data_keys')
      .select(['kek_version', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('kek_version', '!=', 0)
      .groupBy('kek_version')
      .execute();
    return new Map(rows.map((r) => [r.kek_version, Number(r.n)]));
  }
}

function toKey(row: KeystoreTables['data_keys']): WrappedDataKey {
  return {
    subjectId: row.subject_id,
    version: row.version,
    wrapped: Buffer.from(row.wrapped, 'base64'),
    kekVersion: row.kek_version,
    encryptions: Number(row.encryptions),
  };
}
