/**
 * What leaves the server about subjects and their data. A subject is shown by id, kind, jurisdiction
 * and creation time; its identifiers never leave (they are not even stored). Data leaves only as the
 * use gate returned it, for the purpose asked.
 */
import type { Subject } from './subjects.repository.js';
import type { ReadResult } from './vault.service.js';

/** A subject as the API shows it. */
export function presentSubject(s: Subject) {
  return {
    id: s.id,
    kind: s.kind,
    jurisdiction: s.jurisdiction ?? null,
    createdAt: s.createdAt.toISOString(),
  };
}

/** The use gate's answer as the API shows it. */
export function presentReadResult(r: ReadResult) {
  return {
    subjectId: r.subjectId,
    purpose: r.purpose,
    decision: { allowed: r.decision.allowed, reason: r.decision.reason },
    records: r.records.map((rec) => ({
      id: rec.id,
      source: rec.source,
      collectedAt: rec.collectedAt.toISOString(),
      policyVersionId: rec.policyVersionId,
      fields: rec.fields,
    })),
    unreadable: r.unreadable,
    nextCursor: r.nextCursor ?? null,
  };
}
