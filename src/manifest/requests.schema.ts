/**
 * The manifest's `requests:` block: the legal deadlines of data-subject requests per jurisdiction,
 * and the business-day calendars they are counted on (docs/manifest.md#requests,
 * docs/requests.md#deadlines). src/rights/deadlines.ts computes the dates from it.
 *
 * A period is either an ISO 8601 duration counted on the calendar (`P1M`, `P45D`) or a number of
 * business days (`{ business_days: 10 }`): the two laws the example follows count both ways, and a
 * single string notation for business days ("10BD") would be one more syntax to learn.
 */
import { z } from 'zod';
import { DURATION_PATTERN } from './duration.js';

const KEY = /^[a-z][a-z0-9_-]*$/;
const JURISDICTION = /^(EU|EEA|[A-Z]{2}(-[A-Z0-9]{1,3})?)$/;

const key = () =>
  z
    .string()
    .regex(KEY, 'must be lower-case letters, digits, "-" or "_", starting with a letter (e.g. "gdpr")');

/** A day written YYYY-MM-DD that exists (2027-02-29 does not). */
const isoDate = () =>
  z
    .string('must be a date written "YYYY-MM-DD" (quote it)')
    // `abort` keeps a malformed date to one problem: the round trip below would only repeat it.
    .regex(/^\d{4}-\d{2}-\d{2}$/, {
      message: 'must be a date written YYYY-MM-DD, such as "2026-12-25"',
      abort: true,
    })
    // A round trip rejects dates that Date.parse would roll over, such as 2027-02-29.
    .refine((s) => {
      const t = Date.parse(`${s}T00:00:00Z`);
      return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === s;
    }, 'is not a real calendar date');

/** The days of the week, as `weekend:` names them. */
export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A period: an ISO 8601 duration on the calendar, or a count of business days. */
const PERIOD_FORMS =
  'must be an ISO 8601 duration such as "P1M" or "P45D", or a number of business days written { business_days: 10 }';
export const requestPeriodSchema = z.union(
  [
    z.string().regex(DURATION_PATTERN, PERIOD_FORMS),
    z.strictObject({
      business_days: z
        .number(PERIOD_FORMS)
        .int('must be a whole number of business days')
        .min(1, 'must be at least 1 business day')
        .max(365, 'must be at most 365 business days (write longer periods as a duration)'),
    }),
  ],
  { error: PERIOD_FORMS },
);
/** A validated period. */
export type RequestPeriod = z.infer<typeof requestPeriodSchema>;

/** An IANA time zone this Node.js knows (Intl is the only zone database Pledge uses). */
const timeZone = () =>
  z.string().refine((tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'must be an IANA time zone such as "Europe/Brussels" or "America/Los_Angeles"');

/** The working week and public holidays that business days and end-of-period rolling skip. */
export const requestCalendarSchema = z.strictObject({
  key: key(),
  name: z.string().trim().min(1).optional(),
  /** Where the days are counted; a deadline is the end of its day there. Default: UTC. */
  time_zone: timeZone().default('UTC'),
  /** The days of the week that are not working days. */
  weekend: z.array(z.enum(WEEKDAYS)).max(6, 'a week keeps at least one working day').default(['sat', 'sun']),
  /** Public holidays, each a YYYY-MM-DD date; list every year requests may fall in. */
  holidays: z.array(isoDate()).default([]),
});
/** A validated calendar. */
export type RequestCalendar = z.infer<typeof requestCalendarSchema>;

/** The deadlines of one law, and the jurisdictions where it applies. */
export const deadlineRuleSchema = z.strictObject({
  key: key(),
  name: z.string().trim().min(1).optional(),
  /** The jurisdictions (of `jurisdictions:`) whose requesters this rule serves. */
  jurisdictions: z
    .array(z.string().regex(JURISDICTION, 'must be "EU", "EEA" or a country code such as "US"'))
    .min(1, 'a rule applies in at least one jurisdiction'),
  /** The calendar (of `requests.calendars`) its days are counted on. */
  calendar: key(),
  /** Within how long of receipt the request must be acknowledged (CCPA: 10 business days). */
  confirm: requestPeriodSchema.optional(),
  /** Within how long of receipt the request must be answered. */
  answer: requestPeriodSchema,
  /** How much longer an extension allows, counted from the end of the answer period. */
  extension: requestPeriodSchema.optional(),
  /** Within how long of receipt the requester must be told of an extension; default: the answer period. */
  extension_notice_within: requestPeriodSchema.optional(),
});
/** A validated deadline rule. */
export type DeadlineRule = z.infer<typeof deadlineRuleSchema>;

/** The `requests:` block. */
export const requestsSchema = z.strictObject({
  deadlines: z.array(deadlineRuleSchema).default([]),
  calendars: z.array(requestCalendarSchema).default([]),
  /** The rule for a jurisdiction no rule names (or an unknown one): choose the strictest. */
  default: key().optional(),
});
/** A validated `requests:` block. */
export type ManifestRequests = z.infer<typeof requestsSchema>;

// Mirrors manifest.schema.ts (consentModeFor), which does not export its lists and imports this file.
const EU_MEMBERS = new Set(
  'AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE'.split(' '),
);
const EEA_ONLY = new Set(['IS', 'LI', 'NO']);

/**
 * The codes a deadline rule may list for a requester's jurisdiction, most specific first: the code
 * itself, its country (`US-CA` → `US`), and `EU`/`EEA` for a member state (`FR`) or for each other.
 */
export function jurisdictionCandidates(jurisdiction: string): string[] {
  const country = /^[A-Z]{2}-/.test(jurisdiction) ? jurisdiction.slice(0, 2) : jurisdiction;
  const out = [jurisdiction];
  if (country !== jurisdiction) out.push(country);
  if (EU_MEMBERS.has(country) || country === 'EU') out.push('EU', 'EEA');
  if (EEA_ONLY.has(country) || country === 'EEA') out.push('EEA', 'EU');
  return [...new Set(out)];
}
