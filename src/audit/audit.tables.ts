/**
 * The audit capability's tables: the transparency log (what was done with personal data) and the
 * Merkle tree over it. Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as
 * text) and JSON is text, in both engines; hashes are bytes (blob, bytea). Only this capability's
 * repositories read these types.
 */
import type { Generated } from 'kysely';

/**
 * Append-only record of what was done with personal data (no personal data in it): each row is a
 * leaf of the log once the integrator gives it a `leaf_index`.
 */
export interface AuditEventsTable {
  id: Generated<number>;
  at: string;
  /** JSON: the actor as the entry records it (a person's own link by commitment only). */
  actor: string;
  action: string;
  /**
   * A plaintext subject id: only in rows written before the transparency log, until the service's
   * start converts them (then NULL). New rows never have one (the database refuses it).
   */
  subject_id: string | null;
  /** The subject's keyed commitment (hex HMAC-SHA256 under `log_subjects`): the lookup column. */
  subject: string | null;
  purpose: string | null;
  request_id: string | null;
  /** JSON object of non-personal details (counts, field names, categories). */
  details: string;
  /** The canonical entry (log.entry.ts) whose UTF-8 bytes the leaf hashes; NULL only before conversion. */
  entry: string | null;
  /** The leaf's index in the tree, set once by the integrator; NULL while pending. */
  leaf_index: number | null;
}

/** The integrator's state: one row (id 1), the tree's right edge. */
export interface LogStateTable {
  id: number;
  size: number;
  /** The hashes of the frontier's maximal complete subtrees, largest first, concatenated. */
  frontier: Buffer;
  root: Buffer;
  updated_at: string;
}

/** Hash tiles (C2SP tlog-tiles): tile `tile_index` of level `level`, `width` hashes of 32 bytes. */
export interface LogTilesTable {
  level: number;
  tile_index: number;
  width: number;
  hashes: Buffer;
  /** The tree levels inside the tile above its hashes (rows 1 to 7 one after another); see tiles.ts. */
  inner: Buffer | null;
}

/** Signed checkpoints (C2SP tlog-checkpoint notes). */
export interface LogCheckpointsTable {
  size: number;
  root: Buffer;
  note: string;
  created_at: string;
}

/** Witnesses' cosignatures of checkpoints (C2SP tlog-cosignature lines). */
export interface LogCosignaturesTable {
  size: number;
  witness: string;
  line: string;
  created_at: string;
}

/** The audit capability's tables. */
export interface AuditTables {
  audit_events: AuditEventsTable;
  log_state: LogStateTable;
  log_tiles: LogTilesTable;
  log_checkpoints: LogCheckpointsTable;
  log_cosignatures: LogCosignaturesTable;
}
