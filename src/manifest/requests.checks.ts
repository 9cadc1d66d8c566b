/**
 * The checks of `pledge check` for the `requests:` block (requests.schema.ts): every rule names a
 * declared jurisdiction and calendar, every declared jurisdiction has a rule (or a default), no
 * jurisdiction has two, and an extension's notice is due no later than the answer it extends.
 * Duplicate keys are the loader's (`manifest.duplicate_entry`). manifest.checker.ts calls it.
 */
import { durationDays, describeDuration } from './duration.js';
import type { Locator } from './manifest.loader.js';
import type { Manifest } from './manifest.schema.js';
import { suggest, type ManifestPath, type ManifestProblem } from './problems.js';
import { jurisdictionCandidates, type RequestPeriod } from './requests.schema.js';

/** The codes this check reports. */
export const REQUESTS_CHECK_CODES = {
  requestsUnknownJurisdiction: 'check.requests_unknown_jurisdiction',
  requestsUnknownCalendar: 'check.requests_unknown_calendar',
  requestsUnknownDefault: 'check.requests_unknown_default',
  requestsJurisdictionUncovered: 'check.requests_jurisdiction_uncovered',
  requestsJurisdictionTwice: 'check.requests_jurisdiction_twice',
  requestsNoticeAfterAnswer: 'check.requests_notice_after_answer',
} as const;

/** A period's length in days, to compare two periods; a business week counts 7 days for 5. */
function approximateDays(period: RequestPeriod): number {
  return typeof period === 'string' ? durationDays(period) : (period.business_days * 7) / 5;
}

function describePeriod(period: RequestPeriod): string {
  return typeof period === 'string'
    ? describeDuration(period)
    : `${period.business_days} business day${period.business_days === 1 ? '' : 's'}`;
}

/** Checks the `requests:` block of a schema-valid manifest; never throws. */
export function checkRequests(manifest: Manifest, locator: Locator): ManifestProblem[] {
  const requests = manifest.requests;
  if (requests === undefined) return [];
  const problems: ManifestProblem[] = [];
  const report = (
    code: string,
    path: ManifestPath,
    message: string,
    hint: string,
    related?: { path: ManifestPath; message: string },
  ) =>
    problems.push({
      code,
      message,
      hint,
      path,
      location: locator.locate(path),
      ...(related ? { related: [{ ...related, location: locator.locate(related.path) }] } : {}),
    });

  const declared = new Set(manifest.jurisdictions);
  const calendars = requests.calendars.map((c) => c.key);
  const ruleOf = new Map<string, number>();

  requests.deadlines.forEach((rule, i) => {
    rule.jurisdictions.forEach((j, k) => {
      const path: ManifestPath = ['requests', 'deadlines', i, 'jurisdictions', k];
      // As for consent maps (manifest.checker.ts): an empty jurisdictions: list declares none to check against.
      if (declared.size > 0 && !declared.has(j) && !(j === 'EEA' && declared.has('EU'))) {
        const guess = suggest(j, [...declared]);
        report(
          REQUESTS_CHECK_CODES.requestsUnknownJurisdiction,
          path,
          `deadline rule "${rule.key}" applies in "${j}", which is not in jurisdictions:${guess ? ` (did you mean "${guess}"?)` : ''}`,
          `add "${j}" to jurisdictions:, or remove it here`,
          { path: ['jurisdictions'], message: 'the jurisdictions this manifest declares' },
        );
      }
      const first = ruleOf.get(j);
      if (first !== undefined && first !== i) {
        report(
          REQUESTS_CHECK_CODES.requestsJurisdictionTwice,
          path,
          `"${j}" has two deadline rules, "${requests.deadlines[first]?.key}" and "${rule.key}"`,
          `keep "${j}" in one rule only`,
          {
            path: ['requests', 'deadlines', first, 'jurisdictions'],
            message: `rule "${requests.deadlines[first]?.key}" lists it first`,
          },
        );
      } else ruleOf.set(j, i);
    });
    if (!calendars.includes(rule.calendar)) {
      const guess = suggest(rule.calendar, calendars);
      report(
        REQUESTS_CHECK_CODES.requestsUnknownCalendar,
        ['requests', 'deadlines', i, 'calendar'],
        `deadline rule "${rule.key}" counts on calendar "${rule.calendar}", which requests.calendars does not declare${guess ? ` (did you mean "${guess}"?)` : ''}`,
        guess
          ? `write "${guess}"`
          : `declare a calendar with key "${rule.calendar}" under requests.calendars:`,
      );
    }
    const notice = rule.extension_notice_within;
    if (notice !== undefined && approximateDays(notice) > approximateDays(rule.answer) + 1e-9) {
      report(
        REQUESTS_CHECK_CODES.requestsNoticeAfterAnswer,
        ['requests', 'deadlines', i, 'extension_notice_within'],
        `deadline rule "${rule.key}" allows ${describePeriod(notice)} to give notice of an extension, longer than the ${describePeriod(rule.answer)} to answer: the requester would learn of the extension only after the answer was due`,
        `give the notice within the answer period (${typeof rule.answer === 'string' ? rule.answer : `{ business_days: ${rule.answer.business_days} }`} or less), or remove extension_notice_within to use it`,
        { path: ['requests', 'deadlines', i, 'answer'], message: 'the answer period' },
      );
    }
  });

  const hasDefault = requests.default !== undefined;
  if (requests.default !== undefined && !requests.deadlines.some((r) => r.key === requests.default)) {
    const guess = suggest(
      requests.default,
      requests.deadlines.map((r) => r.key),
    );
    report(
      REQUESTS_CHECK_CODES.requestsUnknownDefault,
      ['requests', 'default'],
      `requests.default names "${requests.default}", which no deadline rule declares${guess ? ` (did you mean "${guess}"?)` : ''}`,
      guess ? `write "${guess}"` : 'name the key of a rule under requests.deadlines (the strictest one)',
    );
  }
  if (!hasDefault) {
    manifest.jurisdictions.forEach((j, i) => {
      // Covered as ruleFor (src/rights/deadlines.ts) finds a rule: FR by a rule for EU, US-CA by US.
      if (jurisdictionCandidates(j).some((c) => ruleOf.has(c))) return;
      report(
        REQUESTS_CHECK_CODES.requestsJurisdictionUncovered,
        ['jurisdictions', i],
        `jurisdiction "${j}" has no deadline rule under requests.deadlines, and requests.default is not set`,
        `add "${j}" to a rule's jurisdictions, or set requests.default to the key of the strictest rule`,
      );
    });
  }
  return problems;
}
