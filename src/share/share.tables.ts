/**
 * The share capability's table: the record of every bulk export (which recipient, for which
 * purpose, which categories and fields, how many subjects were sent). The subjects themselves are
 * in the audit log, one `share.disclose` entry each naming the export. Timestamps are ISO-8601 text
 * and JSON is text, in both engines. Only the share repository reads these types.
 */

/** One bulk export to a recipient (no personal data: keys, counts and category names). */
export interface ShareExportsTable {
  id: string;
  recipient: string;
  purpose: string;
  /** JSON array: the categories that may leave in this export. */
  categories: string;
  /** JSON array: the field names asked for. */
  fields: string;
  /** `running`, `complete` or `failed`. */
  status: string;
  /** Subjects whose data was sent. */
  subject_count: number;
  /** Subjects refused (their choices, the opt-out of distribution). */
  refused_count: number;
  /** JSON: the actor from the context. */
  actor: string;
  started_at: string;
  finished_at: string | null;
}

/** The share capability's tables. */
export interface ShareTables {
  share_exports: ShareExportsTable;
}
