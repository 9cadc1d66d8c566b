/**
 * ISO 8601 durations as the manifest writes them (`P30D`, `P13M`, `P2Y6M`).
 *
 * Retention periods are compared, never added to dates here, so a duration is reduced to an
 * approximate number of days with the Gregorian averages; two periods that differ only by the
 * calendar (P1M against P30D) compare by those averages, which is what a reader expects.
 */

// The lookahead requires at least one component: a bare "P" is not a duration.
const DURATION = /^P(?=\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$/;

/** The pattern a duration must match, for the schema and its error message. */
export const DURATION_PATTERN = DURATION;

/** Days in a duration, or `undefined` when the text is not a duration the manifest accepts. */
export function parseDurationDays(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!m) return undefined;
  const [, y, mo, w, d] = m;
  return Number(y ?? 0) * 365.2425 + Number(mo ?? 0) * 30.436875 + Number(w ?? 0) * 7 + Number(d ?? 0);
}

/** Days in a duration already validated by the schema. */
export function durationDays(text: string): number {
  const days = parseDurationDays(text);
  if (days === undefined) throw new Error(`not an ISO 8601 duration: ${text}`);
  return days;
}

/** A duration in words: `P13M` → "13 months", `P2Y6M` → "2 years and 6 months". */
export function describeDuration(text: string): string {
  const m = DURATION.exec(text);
  if (!m) return text;
  const units: Array<[string | undefined, string]> = [
    [m[1], 'year'],
    [m[2], 'month'],
    [m[3], 'week'],
    [m[4], 'day'],
  ];
  const parts = units
    .filter((u): u is [string, string] => u[0] !== undefined && Number(u[0]) > 0)
    .map(([n, unit]) => `${Number(n)} ${unit}${Number(n) === 1 ? '' : 's'}`);
  if (parts.length === 0) return 'no time';
  if (parts.length === 1) return parts[0] ?? text;
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

/**
 * `date` plus a duration, on the calendar (UTC): P1M from January 31 is the last day of February,
 * as a person counting months would say. Used for retention deadlines.
 */
export function addDuration(date: Date, text: string): Date {
  return shiftByDuration(date, text, 1);
}

/**
 * `date` less a duration, on the calendar (UTC), as addDuration adds one: an event recorded at T
 * expires when T plus the duration has passed, that is when T is before now less it.
 */
export function subtractDuration(date: Date, text: string): Date {
  return shiftByDuration(date, text, -1);
}

/** `date` moved by a duration forward (1) or back (-1); a month lands on the month's last day at most. */
function shiftByDuration(date: Date, text: string, sign: 1 | -1): Date {
  const m = DURATION.exec(text);
  if (!m) throw new Error(`not an ISO 8601 duration: ${text}`);
  const [, y, mo, w, d] = m;
  const out = new Date(date.getTime());
  const months = Number(y ?? 0) * 12 + Number(mo ?? 0);
  if (months > 0) {
    const day = out.getUTCDate();
    out.setUTCDate(1);
    out.setUTCMonth(out.getUTCMonth() + sign * months);
    const lastDay = new Date(Date.UTC(out.getUTCFullYear(), out.getUTCMonth() + 1, 0)).getUTCDate();
    out.setUTCDate(Math.min(day, lastDay));
  }
  out.setUTCDate(out.getUTCDate() + sign * (Number(w ?? 0) * 7 + Number(d ?? 0)));
  return out;
}
