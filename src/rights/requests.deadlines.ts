/**
 * The one place a request's due dates come from: the manifest's `requests:` block in force at
 * receipt (src/rights/deadlines.ts, docs/requests.md#deadlines). The dates are stored with the
 * request, with the key of the rule applied, so a later manifest does not move them.
 */
import type { ManifestRequests } from '../manifest/requests.schema.js';
import { deadlinesFor, deadlinesForJurisdiction, dueStatus, type RequestDeadlines } from './deadlines.js';

/** A request's due dates, computed at intake, and the rule they come from. */
export interface RequestDueDates extends RequestDeadlines {
  /** The manifest's rule key, or `builtin` when the manifest declares no `requests:` block. */
  rule: string;
}

/** The rule key used when the manifest declares no deadlines. */
export const BUILTIN_RULE = 'builtin';

/**
 * The due dates of a request from `jurisdiction` (undefined: the requester named none, so the
 * manifest's default rule applies), received at `receivedAt`. A manifest without a `requests:`
 * block gets the GDPR's periods counted in UTC (one month, extendable by two with notice within the
 * first), the shortest answer period Pledge's example declares, so no request is promised more time.
 */
export function dueDatesOf(
  requests: ManifestRequests | undefined,
  jurisdiction: string | undefined,
  receivedAt: Date,
): RequestDueDates {
  const found = deadlinesForJurisdiction(requests, jurisdiction, receivedAt);
  if (found !== undefined) return { rule: found.rule.key, ...found.deadlines };
  return {
    rule: BUILTIN_RULE,
    ...deadlinesFor({ answer: 'P1M', extension: 'P2M', extension_notice_within: 'P1M' }, {}, receivedAt),
  };
}

/** What {@link dueStatusOf} reads of a request. */
export interface DueRecord {
  answerBy: Date;
  extendedDueAt: Date;
  extensionNoticeBy: Date | undefined;
  confirmBy: Date | undefined;
  confirmedAt: Date | undefined;
  extendedAt: Date | undefined;
  finishedAt: Date | undefined;
}

/**
 * Where an open request stands against its stored deadlines at `now` (dueStatus of deadlines.ts:
 * the confirmation while unconfirmed, and the answer, extended or not); undefined once it is closed.
 */
export function dueStatusOf(
  r: DueRecord,
  now: Date,
  withinMs: number,
): ReturnType<typeof dueStatus> | undefined {
  if (r.finishedAt !== undefined) return undefined;
  const deadlines: RequestDeadlines = {
    answerBy: r.answerBy,
    ...(r.confirmBy === undefined ? {} : { confirmBy: r.confirmBy }),
    ...(r.extensionNoticeBy === undefined
      ? {}
      : { extensionNoticeBy: r.extensionNoticeBy, extendedAnswerBy: r.extendedDueAt }),
  };
  return dueStatus(deadlines, r.extendedAt !== undefined, now, withinMs, {
    confirmed: r.confirmedAt !== undefined,
  });
}
