/**
 * The tombstones of erased people: a keyed hash (the `tombstones` key use) of each blind-index hash
 * the person had, so a later collection or import of the same identifier is recognized as someone
 * erased, without keeping anything that finds or names them. Only tombstones.repository.ts reads it.
 */

/** One identifier of an erased person, as a keyed hash. */
export interface ErasureTombstonesTable {
  /** HMAC-SHA256 (hex) of kind and blind-index hash under the `tombstones` key of `key_version`. */
  hash: string;
  key_version: number;
  /** email, account_id, phone. */
  kind: string;
  erased_at: string;
}

/** The tombstones' tables. */
export interface TombstoneTables {
  erasure_tombstones: ErasureTombstonesTable;
}
