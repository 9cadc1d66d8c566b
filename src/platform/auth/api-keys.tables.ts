/**
 * The API keys' table (only a digest of each secret).
 * Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as text) and JSON is text,
 * in both engines. Only this capability's repositories read these types.
 */

/** API keys. Only a digest of the secret is stored. */
export interface ApiKeysTable {
  /** The public lookup part of the key. */
  id: string;
  name: string;
  /** SHA-256 of the secret part, hex. */
  secret_hash: string;
  /** JSON array of scope names. */
  scopes: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  /** The manifest system the key acts for; null for an operator key (management only). */
  system: string | null;
  /** Who is responsible for the key (a staff login or team name, never a secret). */
  holder: string | null;
  /** After this the key is refused. */
  expires_at: string | null;
}

/** The API keys' tables. */
export interface ApiKeyTables {
  api_keys: ApiKeysTable;
}
