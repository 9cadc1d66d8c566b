/**
 * The legal requests' tables: requests from authorities, what a reviewer approved of them, and the
 * people whose data left for them with when each was told. Subjects appear only as ids; the free text
 * a person could be named in is sealed (see docs/legal-requests.md, "What is stored").
 * Timestamps are ISO-8601 text and JSON is text, in both engines. Only legal.repository.ts reads them.
 */

/** A request from an authority, from intake to closure. */
export interface LegalRequestsTable {
  /** UUIDv7. */
  id: string;
  received_at: string;
  /** The authority's name (a court, an agency): sealed, as are reference, citation and reject_reason. */
  authority_name: string;
  /** court, law_enforcement, regulator, other. */
  authority_type: string;
  /** subpoena, court_order, search_warrant, emergency, regulatory_order, other. */
  legal_basis: string;
  /** The provision cited (e.g. a statute's section); optional. */
  citation: string | null;
  /** The authority's reference (docket or case number). */
  reference: string;
  /** JSON array of subject ids the authority asks about. */
  scope_subjects: string;
  /** JSON array of taxonomy categories it asks for. */
  scope_categories: string;
  /** The date the authority wants an answer by (YYYY-MM-DD). */
  deadline: string;
  /** 1 when the law forbids telling the people concerned. */
  notice_prohibited: number;
  /** When that prohibition ends; null with notice_prohibited = 1: until further order. */
  notice_prohibited_until: string | null;
  /** null until reviewed, then approved, narrowed or rejected. */
  decision: string | null;
  /** JSON arrays: what may leave (null until approved or narrowed). */
  approved_subjects: string | null;
  approved_categories: string | null;
  /** The reason code of a rejection (sealed). */
  reject_reason: string | null;
  /**
   * 1 once authority_name, citation, reference and reject_reason are sealed (`k<version>:<base64>`,
   * key use `legal_requests`, bound to the row's id and column); 0 on a row of an earlier version
   * until the first start seals it.
   */
  sealed: number;
  /** JSON: who made the intake ({ actor, key, holder, account }); names of staff, never of subjects. */
  intake_by: string;
  reviewed_at: string | null;
  reviewed_by: string | null;
  /** When data first left for it. */
  disclosed_at: string | null;
  closed_at: string | null;
  closed_by: string | null;
}

/** One person whose data left for a request, and whether and when they were told. */
export interface LegalNoticesTable {
  request_id: string;
  subject_id: string;
  disclosed_at: string;
  /** When the notice left (or was settled without a message: see notice_status). */
  notice_at: string | null;
  /** null while due or held; sent, no_address (no e-mail in the vault), mail_disabled. */
  notice_status: string | null;
}

/** The legal requests' tables. */
export interface LegalTables {
  legal_requests: LegalRequestsTable;
  legal_notices: LegalNoticesTable;
}
