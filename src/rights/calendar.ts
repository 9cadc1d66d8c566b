/**
 * Days as a calendar counts them: civil dates in a time zone, working days, public holidays.
 *
 * A day is a whole number (days since 1970-01-01, the proleptic Gregorian calendar), so adding days
 * and months is arithmetic on dates and never on instants: a daylight-saving change cannot move a
 * deadline by an hour or a day. Instants enter and leave only through the calendar's time zone, with
 * Intl (the zone database Node.js carries), so Pledge needs no date library.
 */
import type { RequestCalendar, Weekday } from '../manifest/requests.schema.js';
import { WEEKDAYS } from '../manifest/requests.schema.js';

const DAY_MS = 86_400_000;

/** What the counting needs of a calendar; the manifest's calendars are these, tests may write less. */
export type CalendarRules = Partial<Pick<RequestCalendar, 'time_zone' | 'weekend' | 'holidays'>>;

/** A civil date, as the number of days since 1970-01-01. */
export type Day = number;

/** The day written YYYY-MM-DD; the text must be a valid date (the schema checked it). */
export function dayOf(text: string): Day {
  const [y, m, d] = text.split('-').map(Number);
  return Math.round(Date.UTC(y ?? 1970, (m ?? 1) - 1, d ?? 1) / DAY_MS);
}

/** A day written YYYY-MM-DD. */
export function formatDay(day: Day): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** The day of the week (`sun` … `sat`). */
export function weekdayOf(day: Day): Weekday {
  // 1970-01-01 was a Thursday.
  return WEEKDAYS[(((day + 4) % 7) + 7) % 7] ?? 'sun';
}

/**
 * The day `months` calendar months after `day`, with the same date; when that month is shorter, its
 * last day (31 January plus one month is 28 or 29 February), as Regulation 1182/71 Art. 3(2)(c) says.
 */
export function addMonths(day: Day, months: number): Day {
  const d = new Date(day * DAY_MS);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + months;
  const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return Math.round(Date.UTC(y, m, Math.min(d.getUTCDate(), last)) / DAY_MS);
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock time in `timeZone` at `instantMs`, written as if it were UTC (ms). */
function wallClockMs(timeZone: string, instantMs: number): number {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(instantMs))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const wall = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  // Intl drops the milliseconds; they are the same in every zone.
  return wall + (((instantMs % 1000) + 1000) % 1000);
}

/** The calendar's zone (UTC when it names none). */
export function zoneOf(calendar: CalendarRules): string {
  return calendar.time_zone ?? 'UTC';
}

/** The civil date of an instant in the calendar's time zone. */
export function localDay(calendar: CalendarRules, at: Date): Day {
  return Math.floor(wallClockMs(zoneOf(calendar), at.getTime()) / DAY_MS);
}

/** The first instant of `day` in the calendar's time zone (local midnight, or the first hour after a gap). */
export function startOfDay(calendar: CalendarRules, day: Day): Date {
  const zone = zoneOf(calendar);
  const midnight = day * DAY_MS;
  // Two rounds find the offset in force at local midnight, also across a daylight-saving change.
  const first = midnight - (wallClockMs(zone, midnight) - midnight);
  const second = midnight - (wallClockMs(zone, first) - first);
  if (localDay(calendar, new Date(second)) === day && wallClockMs(zone, second) === midnight) {
    return new Date(second);
  }
  // Midnight does not exist that day (a zone that springs forward at 00:00): the day starts at the
  // end of the gap, the later of the two candidates.
  return new Date(Math.max(first, second));
}

/** The last millisecond of `day` in the calendar's time zone: a deadline on that day ends then. */
export function endOfDay(calendar: CalendarRules, day: Day): Date {
  return new Date(startOfDay(calendar, day + 1).getTime() - 1);
}

// Keyed by the calendar object: a manifest's calendars are not changed once parsed.
const holidaySets = new WeakMap<object, Set<Day>>();
function holidaysOf(calendar: CalendarRules): Set<Day> {
  let set = holidaySets.get(calendar);
  if (set === undefined) {
    set = new Set((calendar.holidays ?? []).map(dayOf));
    holidaySets.set(calendar, set);
  }
  return set;
}

/** Whether `day` is a working day: not a weekend day of the calendar and not one of its holidays. */
export function isWorkingDay(calendar: CalendarRules, day: Day): boolean {
  const weekend = calendar.weekend ?? ['sat', 'sun'];
  return !weekend.includes(weekdayOf(day)) && !holidaysOf(calendar).has(day);
}

/** `day` itself when it is a working day, else the next working day. */
export function nextWorkingDay(calendar: CalendarRules, day: Day): Day {
  let d = day;
  // A week without a working day is refused by the schema, and no list of holidays covers a
  // decade, so the loop ends; the bound turns a bad hand-made calendar into an error, not a hang.
  for (let i = 0; i < 3660; i++, d++) if (isWorkingDay(calendar, d)) return d;
  throw new RangeError('the calendar has no working day in ten years: check its weekend and holidays');
}

/** The `n`th working day after `day` (`day` itself is not counted; n = 0 gives nextWorkingDay). */
export function addWorkingDays(calendar: CalendarRules, day: Day, n: number): Day {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`a number of business days is a whole number ≥ 0, got ${n}`);
  let d = n === 0 ? nextWorkingDay(calendar, day) : day;
  for (let left = n; left > 0; left--) d = nextWorkingDay(calendar, d + 1);
  return d;
}
