/**
 * The tables as Kysely sees them. Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which
 * sorts as text) and JSON is text, in both engines: one representation, no driver-specific parsing.
 * Repositories turn rows into domain objects; nothing else reads these types.
 */
import type { Generated } from 'kysely';

/** Every manifest that has been in force, kept forever so records can name their policy version. */
export interface ManifestVersionsTable {
  id: Generated<number>;
  /** SHA-256 of the manifest file's bytes, hex. */
  hash: string;
  /** The manifest's own `version` field. */
  version: string;
  /** The manifest's `effective` date. */
  effective: string;
  /** The manifest file as it was (YAML). */
  source: string;
  first_seen_at: string;
  /** When this manifest last came into force; the newest is the one in force now. */
  in_force_from: string;
}

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
}

/** All of Pledge's tables. */
export interface Tables {
  manifest_versions: ManifestVersionsTable;
  api_keys: ApiKeysTable;
}
