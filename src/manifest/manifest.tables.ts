/**
 * The manifest capability's table: every manifest that has been in force.
 * Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as text) and JSON is text,
 * in both engines. Only this capability's repositories read these types.
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

/**
 * Each time a version came into force: its first time, and every rollback to it (which moves its
 * `in_force_from`, so only this table keeps the order versions were in force in).
 */
export interface ManifestActivationsTable {
  id: Generated<number>;
  /** manifest_versions.id. */
  manifest_version_id: number;
  /** When it came into force (its `in_force_from` then). */
  at: string;
}

/** The manifest capability's tables. */
export interface ManifestTables {
  manifest_versions: ManifestVersionsTable;
  manifest_activations: ManifestActivationsTable;
}
