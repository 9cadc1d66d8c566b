/**
 * What leaves the server about disclosures. A disclosure's answer carries, per subject, only the
 * values the gate let through (by field name) and their categories, or the code and message of the
 * refusal; an export's record carries keys, category names and counts, never a value.
 */
import type { ShareExport } from './share.repository.js';
import type { DiscloseResult, ExportLine, SubjectDisclosure } from './share.service.js';

/** One subject of a disclosure as the API shows it. */
export function presentSubjectDisclosure(s: SubjectDisclosure) {
  return s.disclosed
    ? { subject: s.subjectId, disclosed: true as const, fields: s.fields, categories: s.categories }
    : {
        subject: s.subjectId,
        disclosed: false as const,
        error: { code: s.refusal.code, message: s.refusal.message },
      };
}

/** A disclosure's answer as the API shows it. */
export function presentDisclosure(r: DiscloseResult) {
  return {
    disclosure: {
      id: r.id,
      recipient: r.recipient,
      purpose: r.purpose,
      legalRequest: r.legalRequest ?? null,
      subjects: r.subjects.map(presentSubjectDisclosure),
    },
  };
}

/** An export's record as the API and CLI show it. */
export function presentExport(e: ShareExport) {
  return {
    id: e.id,
    recipient: e.recipient,
    purpose: e.purpose,
    categories: e.categories,
    fields: e.fields,
    status: e.status,
    subjectCount: e.subjectCount,
    refusedCount: e.refusedCount,
    startedAt: e.startedAt.toISOString(),
    finishedAt: e.finishedAt?.toISOString() ?? null,
  };
}

/** One NDJSON line of an export: a subject's values, or the closing record. */
export function presentExportLine(line: ExportLine) {
  return line.kind === 'subject'
    ? { subject: line.subjectId, fields: line.fields, categories: line.categories }
    : { export: presentExport(line.export) };
}
