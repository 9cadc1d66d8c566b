/**
 * The vault's tables: subjects, their blind index and encrypted records; and, in a database of its
 * own, the key store.
 * Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as text) and JSON is text,
 * in both engines. Only this capability's repositories read these types.
 */

/** A person the company holds data on. No personal data: identifiers live in subject_identifiers as hashes. */
export interface SubjectsTable {
  id: string;
  /** customer, trial_user, visitor or prospect. */
  kind: string;
  /** Where the person is, for consent defaults (ISO country code, "EU"...); null when unknown. */
  jurisdiction: string | null;
  created_at: string;
  /** Set when the subject was erased; the row stays as a tombstone without data. */
  erased_at: string | null;
}

/** The blind index: keyed hashes of normalized identifiers. */
export interface SubjectIdentifiersTable {
  /** email, account_id or phone. */
  kind: string;
  /** HMAC-SHA256(index key, kind ":" normalized), hex. */
  hash: string;
  subject_id: string;
  created_at: string;
}

/** A record: what one collection brought in, each field encrypted under the subject's data key. */
export interface RecordsTable {
  id: string;
  subject_id: string;
  /** The collection point's key. */
  source: string;
  /** JSON array of the categories the record's fields hold. */
  categories: string;
  /** JSON array of the purposes it was collected for. */
  purposes: string;
  /** The manifest version in force when it came in. */
  policy_version_id: number;
  collected_at: string;
  /** When retention ends; the sweeper deletes the record after it. */
  retain_until: string;
  /** The subject's data-key version the fields are encrypted with. */
  key_version: number;
  /** JSON object: field name -> { c: category, v: base64 sealed value }. */
  fields: string;
}

/**
 * The key store (a separate database: keys.db, or its own PostgreSQL schema) so that backups of the
 * records never carry the keys that open them: destroying a subject's keys here erases every copy.
 */
export interface DataKeysTable {
  subject_id: string;
  version: number;
  /** The data key sealed with a KEK (base64). */
  wrapped: string;
  kek_version: number;
  /** Encryptions reserved under this key; a new version is made long before 2^32. */
  encryptions: number;
  created_at: string;
}

/** The vault's tables in the main database. */
export interface VaultTables {
  subjects: SubjectsTable;
  subject_identifiers: SubjectIdentifiersTable;
  records: RecordsTable;
}

/** The key store's tables (its own database: keys.db, or its own PostgreSQL schema). */
export interface KeystoreTables {
  data_keys: DataKeysTable;
}
