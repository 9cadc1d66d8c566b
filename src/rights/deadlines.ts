/**
 * The legal deadlines of a data-subject request, from the manifest's `requests:` block
 * (docs/requests.md#deadlines). Pure functions: no clock, no database; the caller passes the
 * instant of receipt and `now`.
 *
 * How days are counted, for every rule:
 * - The day of receipt is the civil date of `receivedAt` in the calendar's `time_zone` (UTC when it
 *   names none); it is not itself counted (Regulation 1182/71 Art. 3(1); Cal. Civ. Code §10).
 * - A period in months ends on the same date of the last month, or on that month's last day when it
 *   has no such date (31 January + P1M = 28 or 29 February; Regulation 1182/71 Art. 3(2)(c)). Days and
 *   weeks are added to the date.
 * - A period that would end on a weekend day or a holiday of the calendar ends on the next working
 *   day (Regulation 1182/71 Art. 3(4); for California, Cal. Civ. Code §§ 11, 12a do the same).
 * - `{ business_days: n }` ends on the n-th working day after the day of receipt.
 * - Every deadline is the end of its day in the calendar's time zone: the last millisecond before
 *   the next local midnight. An answer sent at or before that instant is on time.
 * - An extension is counted from the end of the answer period before it is moved off a weekend or
 *   holiday (31 January + P1M = 28 February, + P2M = 28 April, then moved to a working day): of the
 *   two readings of "extended by two further months" this is the earlier one, so it never promises
 *   more time than the law gives.
 * - The notice of an extension is due within `extension_notice_within` of receipt, by default the
 *   answer period itself (GDPR Art. 12(3): within the first month; CCPA: within the first 45 days).
 */
import { ValidationError } from '../platform/errors.js';
import { DURATION_PATTERN } from '../manifest/duration.js';
import {
  jurisdictionCandidates,
  type DeadlineRule,
  type ManifestRequests,
  type RequestCalendar,
  type RequestPeriod,
} from '../manifest/requests.schema.js';
import {
  addMonths,
  addWorkingDays,
  endOfDay,
  isWorkingDay,
  localDay,
  nextWorkingDay,
  type CalendarRules,
  type Day,
} from './calendar.js';

/** When a request must be confirmed, answered, and (if extended) told of and answered at the latest. */
export interface RequestDeadlines {
  /** Acknowledge receipt by then; only when the rule has `confirm`. */
  confirmBy?: Date;
  /** Answer by then, unless extended. */
  answerBy: Date;
  /** Answer by then when extended; only when the rule allows an extension. */
  extendedAnswerBy?: Date;
  /** Tell the requester of an extension, with its reasons, by then; only when the rule allows one. */
  extensionNoticeBy?: Date;
}

/** What a deadline rule needs to be counted; the manifest's rules are these. */
export type DeadlineRuleInput = Pick<DeadlineRule, 'answer'> &
  Partial<Pick<DeadlineRule, 'confirm' | 'extension' | 'extension_notice_within'>>;

/** The deadlines of a request received at `receivedAt` under `rule`, counted on `calendar`. */
export function deadlinesFor(
  rule: DeadlineRuleInput,
  calendar: CalendarRules,
  receivedAt: Date,
): RequestDeadlines {
  assertInstant(receivedAt, 'receivedAt');
  const received = localDay(calendar, receivedAt);
  const answerEnd = periodEnd(calendar, received, rule.answer);
  const out: RequestDeadlines = { answerBy: endOfDay(calendar, nextWorkingDay(calendar, answerEnd)) };
  if (rule.confirm !== undefined) {
    out.confirmBy = endOfDay(calendar, nextWorkingDay(calendar, periodEnd(calendar, received, rule.confirm)));
  }
  if (rule.extension !== undefined) {
    const extendedEnd = periodEnd(calendar, answerEnd, rule.extension);
    out.extendedAnswerBy = endOfDay(calendar, nextWorkingDay(calendar, extendedEnd));
    const noticeEnd = periodEnd(calendar, received, rule.extension_notice_within ?? rule.answer);
    out.extensionNoticeBy = endOfDay(calendar, nextWorkingDay(calendar, noticeEnd));
  }
  return out;
}

/** The day a period counted from `from` ends, before it is moved off a weekend or holiday. */
function periodEnd(calendar: CalendarRules, from: Day, period: RequestPeriod): Day {
  if (typeof period !== 'string') return addWorkingDays(calendar, from, period.business_days);
  const m = DURATION_PATTERN.exec(period);
  if (!m) throw new RangeError(`not an ISO 8601 duration: ${period}`);
  const [, y, mo, w, d] = m;
  const months = Number(y ?? 0) * 12 + Number(mo ?? 0);
  return addMonths(from, months) + Number(w ?? 0) * 7 + Number(d ?? 0);
}

/**
 * The end of the `n`th business day after `from`'s day (that day not counted), in the calendar's
 * zone; n = 0 gives the end of `from`'s day when it is a business day, else of the next one.
 */
export function addBusinessDays(calendar: CalendarRules, from: Date, n: number): Date {
  assertInstant(from, 'from');
  return endOfDay(calendar, addWorkingDays(calendar, localDay(calendar, from), n));
}

/** Whether `date` falls, in the calendar's zone, on a day that is neither weekend nor holiday. */
export function isBusinessDay(calendar: CalendarRules, date: Date): boolean {
  assertInstant(date, 'date');
  return isWorkingDay(calendar, localDay(calendar, date));
}

/**
 * The rule for a requester's jurisdiction code (`FR`, `US-CA`): the rule naming it, else its country,
 * else `EU`/`EEA` for a member state, else `requests.default`; undefined when none applies. An
 * unknown jurisdiction (`undefined`) gets the default, which the manifest sets to the strictest rule.
 */
export function ruleFor(
  requests: ManifestRequests | undefined,
  jurisdiction: string | undefined,
): DeadlineRule | undefined {
  if (requests === undefined) return undefined;
  if (jurisdiction !== undefined) {
    for (const c of jurisdictionCandidates(jurisdiction)) {
      const rule = requests.deadlines.find((r) => r.jurisdictions.includes(c));
      if (rule !== undefined) return rule;
    }
  }
  return requests.default === undefined
    ? undefined
    : requests.deadlines.find((r) => r.key === requests.default);
}

/** The calendar a rule counts on; undefined only for a manifest `pledge check` would refuse. */
export function calendarFor(requests: ManifestRequests, rule: DeadlineRule): RequestCalendar | undefined {
  return requests.calendars.find((c) => c.key === rule.calendar);
}

/** The deadlines of a request from `jurisdiction` (rule, calendar and dates), or undefined without a rule. */
export function deadlinesForJurisdiction(
  requests: ManifestRequests | undefined,
  jurisdiction: string | undefined,
  receivedAt: Date,
): { rule: DeadlineRule; deadlines: RequestDeadlines } | undefined {
  const rule = ruleFor(requests, jurisdiction);
  if (requests === undefined || rule === undefined) return undefined;
  const calendar = calendarFor(requests, rule);
  if (calendar === undefined) return undefined;
  return { rule, deadlines: deadlinesFor(rule, calendar, receivedAt) };
}

/** How a request stands against its deadlines. */
export type DueState = 'on_time' | 'due_soon' | 'overdue';

/** Which deadline a status is about. */
export type DeadlineKind = 'confirm' | 'answer' | 'extended_answer';

/** The outcome of `dueStatus`: the state, and the deadline it is about. */
export interface DueStatusResult {
  status: DueState;
  deadline: DeadlineKind;
  due: Date;
  /** Milliseconds from `now` to `due`; negative when overdue. */
  remainingMs: number;
}

/** What `dueStatus` knows of the request beyond its deadlines. */
export interface DueStatusOptions {
  /** The receipt was acknowledged; the confirmation deadline no longer counts. Default false. */
  confirmed?: boolean;
}

const SEVERITY: Record<DueState, number> = { on_time: 0, due_soon: 1, overdue: 2 };

/**
 * Where an open request stands at `now`: `overdue` once a pending deadline has passed, `due_soon`
 * when one falls within `withinMs`, else `on_time`; the worst of the pending deadlines (the
 * confirmation while unconfirmed, and the answer, extended or not), the earliest among equals.
 */
export function dueStatus(
  deadlines: RequestDeadlines,
  extended: boolean,
  now: Date,
  withinMs: number,
  options: DueStatusOptions = {},
): DueStatusResult {
  assertInstant(now, 'now');
  if (!Number.isFinite(withinMs) || withinMs < 0) {
    throw new RangeError(`the due window is a length of time ≥ 0 in milliseconds, got ${withinMs}`);
  }
  const pending: Array<{ deadline: DeadlineKind; due: Date }> = [];
  if (deadlines.confirmBy !== undefined && options.confirmed !== true) {
    pending.push({ deadline: 'confirm', due: deadlines.confirmBy });
  }
  pending.push(
    extended && deadlines.extendedAnswerBy !== undefined
      ? { deadline: 'extended_answer', due: deadlines.extendedAnswerBy }
      : { deadline: 'answer', due: deadlines.answerBy },
  );
  const rated = pending.map((p) => {
    const remainingMs = p.due.getTime() - now.getTime();
    const status: DueState = remainingMs < 0 ? 'overdue' : remainingMs <= withinMs ? 'due_soon' : 'on_time';
    return { ...p, remainingMs, status };
  });
  rated.sort((a, b) => SEVERITY[b.status] - SEVERITY[a.status] || a.due.getTime() - b.due.getTime());
  const worst = rated[0];
  if (worst === undefined) throw new Error('unreachable: the answer deadline is always pending');
  return worst;
}

const HOUR_MS = 3_600_000;
const SHORT_WINDOW = /^(\d{1,5})([wdh])$/;
const TIME_DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/;

/**
 * A due window (`7d`, `48h`, `2w`, or an ISO 8601 duration such as `P7D` or `PT48H`) in
 * milliseconds; throws a ValidationError `requests.due_window_invalid` that says what is accepted.
 * Months and years are refused: they have no fixed length, and a window is a length of time.
 */
export function parseDueWindow(text: string): number {
  const value = text.trim();
  const short = SHORT_WINDOW.exec(value);
  if (short) {
    const n = Number(short[1]);
    const unit = short[2] === 'w' ? 7 * 24 : short[2] === 'd' ? 24 : 1;
    return n * unit * HOUR_MS;
  }
  const iso = TIME_DURATION.exec(value);
  if (iso && value !== 'P' && value !== 'PT' && !value.endsWith('T')) {
    const [, w, d, h, min] = iso;
    return (
      (Number(w ?? 0) * 7 * 24 + Number(d ?? 0) * 24 + Number(h ?? 0)) * HOUR_MS + Number(min ?? 0) * 60_000
    );
  }
  const monthsOrYears = DURATION_PATTERN.test(value);
  throw new ValidationError(
    'requests.due_window_invalid',
    monthsOrYears
      ? `due window "${text}" is in months or years, which have no fixed length: write it in days, such as "30d" or "P30D"`
      : `due window "${text}" is not a length of time: write a number and a unit, such as "7d", "48h" or "2w", or an ISO 8601 duration such as "P7D" or "PT48H"`,
    { value: text },
  );
}

function assertInstant(d: Date, name: string): void {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new RangeError(`${name} is not a valid date`);
}
