/**
 * What leaves the server of a legal request: these fields only. Subjects appear as ids; staff as the
 * key id, holder and account recorded with each step. Nothing of anyone's data is in a request.
 */
import type { LegalActorRecord, LegalNoticeRecord, LegalRequestRecord } from './legal.repository.js';
import { noticeHeldUntil, statusOf, type LegalStatus } from './legal.service.js';

/** Who acted on a step, as shown. */
export interface LegalActorView {
  key?: string;
  holder?: string;
  account?: string;
}

/** A legal request as the API and the CLI show it. */
export interface LegalRequestView {
  id: string;
  status: LegalStatus;
  receivedAt: string;
  authority: { name: string; type: string };
  legalBasis: string;
  citation?: string;
  reference: string;
  scope: { subjects: string[]; categories: string[] };
  deadline: string;
  notice: { prohibited: boolean; until?: string; heldUntil?: string };
  decision?: string;
  approved?: { subjects: string[]; categories: string[] };
  rejectReason?: string;
  intakeBy: LegalActorView;
  reviewedAt?: string;
  reviewedBy?: LegalActorView;
  disclosedAt?: string;
  closedAt?: string;
  closedBy?: LegalActorView;
}

/** A person's notice of a request, as shown. */
export interface LegalNoticeView {
  subjectId: string;
  disclosedAt: string;
  noticeAt?: string;
  noticeStatus?: string;
  /** Until when the person may not be told: a date-time, or `indefinite`. */
  noticeHeldUntil?: string;
}

function actorView(a: LegalActorRecord): LegalActorView {
  return {
    ...(a.key !== undefined ? { key: a.key } : {}),
    ...(a.holder !== undefined ? { holder: a.holder } : {}),
    ...(a.account !== undefined ? { account: a.account } : {}),
  };
}

function heldView(held: Date | 'indefinite' | undefined): string | undefined {
  return held === undefined ? undefined : held === 'indefinite' ? held : held.toISOString();
}

/** The fields of a request that leave. */
export function presentLegalRequest(r: LegalRequestRecord, now: Date): LegalRequestView {
  const held = heldView(noticeHeldUntil(r, now));
  return {
    id: r.id,
    status: statusOf(r),
    receivedAt: r.receivedAt.toISOString(),
    authority: { name: r.authority.name, type: r.authority.type },
    legalBasis: r.legalBasis,
    ...(r.citation !== undefined ? { citation: r.citation } : {}),
    reference: r.reference,
    scope: { subjects: [...r.scope.subjects], categories: [...r.scope.categories] },
    deadline: r.deadline,
    notice: {
      prohibited: r.notice.prohibited,
      ...(r.notice.until !== undefined ? { until: r.notice.until.toISOString() } : {}),
      ...(held !== undefined ? { heldUntil: held } : {}),
    },
    ...(r.decision !== undefined ? { decision: r.decision } : {}),
    ...(r.approved !== undefined
      ? { approved: { subjects: [...r.approved.subjects], categories: [...r.approved.categories] } }
      : {}),
    ...(r.rejectReason !== undefined ? { rejectReason: r.rejectReason } : {}),
    intakeBy: actorView(r.intakeBy),
    ...(r.reviewedAt !== undefined ? { reviewedAt: r.reviewedAt.toISOString() } : {}),
    ...(r.reviewedBy !== undefined ? { reviewedBy: actorView(r.reviewedBy) } : {}),
    ...(r.disclosedAt !== undefined ? { disclosedAt: r.disclosedAt.toISOString() } : {}),
    ...(r.closedAt !== undefined ? { closedAt: r.closedAt.toISOString() } : {}),
    ...(r.closedBy !== undefined ? { closedBy: actorView(r.closedBy) } : {}),
  };
}

/** The fields of a notice that leave; `request` gives its hold. */
export function presentLegalNotice(
  n: LegalNoticeRecord,
  request: LegalRequestRecord,
  now: Date,
): LegalNoticeView {
  const held = n.noticeAt === undefined ? heldView(noticeHeldUntil(request, now)) : undefined;
  return {
    subjectId: n.subjectId,
    disclosedAt: n.disclosedAt.toISOString(),
    ...(n.noticeAt !== undefined ? { noticeAt: n.noticeAt.toISOString() } : {}),
    ...(n.noticeStatus !== undefined ? { noticeStatus: n.noticeStatus } : {}),
    ...(held !== undefined ? { noticeHeldUntil: held } : {}),
  };
}
