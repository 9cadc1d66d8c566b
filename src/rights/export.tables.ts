/**
 * The export deliveries' tables: one row per export made available to a person (its download
 * budget and expiry, no personal data), and the zip itself in chunks, each sealed (AES-256-GCM under
 * a key derived for the delivery from the keyring's `export_files` use). Deleted by a job when the
 * delivery expires. Only export.repository.ts reads them.
 */

/** An export made available through a signed link. */
export interface ExportDeliveriesTable {
  /** UUIDv7. */
  id: string;
  subject_id: string;
  created_at: string;
  expires_at: string;
  max_downloads: number;
  /** Downloads started; raised atomically, never beyond max_downloads. */
  downloads: number;
  /** The `export_files` key version the chunks are sealed with. */
  key_version: number;
  size: number;
  /** Set when the job deleted the chunks. */
  deleted_at: string | null;
}

/** One sealed chunk of an export zip. */
export interface ExportChunksTable {
  delivery_id: string;
  seq: number;
  /** IV (12 bytes), ciphertext, tag (16 bytes). */
  data: Buffer;
}

/** The export deliveries' tables. */
export interface ExportTables {
  export_deliveries: ExportDeliveriesTable;
  export_chunks: ExportChunksTable;
}
