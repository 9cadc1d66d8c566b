/**
 * The one place a request's due dates come from. For now a fixed rule: an answer within 30 days of
 * receipt, extendable to 90; the manifest's per-jurisdiction rules (src/rights/deadlines.ts, with
 * business-day calendars) replace this file's body and nothing else changes.
 */

/** A request's due dates, computed at intake. */
export interface RequestDueDates {
  /** By when receipt must be confirmed, where the law asks for it. */
  confirmBy?: Date | undefined;
  answerBy: Date;
  /** The latest an extension may move the answer to. */
  extendedAnswerBy: Date;
}

const DAY_MS = 86_400_000;

/** The due dates of a request of `type` from `jurisdiction`, received at `receivedAt`. */
export function dueDatesOf(_type: string, _jurisdiction: string, receivedAt: Date): RequestDueDates {
  return {
    answerBy: new Date(receivedAt.getTime() + 30 * DAY_MS),
    extendedAnswerBy: new Date(receivedAt.getTime() + 90 * DAY_MS),
  };
}
