/**
 * The deadlines of data-subject requests (src/rights/deadlines.ts) with a fake clock: GDPR months
 * per Regulation 1182/71 (month ends, leap years, weekends and holidays), CCPA business days across
 * Thanksgiving and 45 days across a month end, extensions and their notice, the time zone of the
 * calendar at 23:30 local, the due status that `pledge requests list --due` shows, the due window
 * parser, the rule for a jurisdiction, and properties over random receipts and calendars.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { ManifestRequests, Weekday } from '../../src/manifest/requests.schema.js';
import { fixedClock } from '../../src/platform/clock.js';
import { PledgeError } from '../../src/platform/errors.js';
import { dayOf, endOfDay, localDay, type CalendarRules } from '../../src/rights/calendar.js';
import {
  addBusinessDays,
  deadlinesFor,
  deadlinesForJurisdiction,
  dueStatus,
  isBusinessDay,
  parseDueWindow,
  ruleFor,
  type DeadlineRuleInput,
} from '../../src/rights/deadlines.js';
import { ROOT } from '../helpers/cli.js';

const loaded = parseManifest(
  await readFile(path.join(ROOT, 'examples/example-online/pledge.yaml'), 'utf8'),
  'pledge.yaml',
);
assert.ok(loaded.manifest?.requests, 'the example manifest declares requests:');
const REQUESTS: ManifestRequests = loaded.manifest.requests;
const calendar = (key: string) => {
  const c = REQUESTS.calendars.find((x) => x.key === key);
  assert.ok(c, `test setup: calendar ${key}`);
  return c;
};
const rule = (key: string) => {
  const r = REQUESTS.deadlines.find((x) => x.key === key);
  assert.ok(r, `test setup: rule ${key}`);
  return r;
};
const EU = calendar('eu');
const US = calendar('us');
const GDPR = rule('gdpr');
const CCPA = rule('ccpa');

/** A calendar of plain weeks in UTC, for the counting rules alone. */
const PLAIN: CalendarRules = { time_zone: 'UTC', weekend: ['sat', 'sun'], holidays: [] };
/** A Californian calendar without holidays, for dates outside the example's years. */
const LA: CalendarRules = { time_zone: 'America/Los_Angeles', weekend: ['sat', 'sun'], holidays: [] };

/** The last millisecond of a local day, as an ISO instant, for readable expectations. */
const endOf = (cal: CalendarRules, ymd: string) => endOfDay(cal, dayOf(ymd)).toISOString();
const iso = (d: Date | undefined) => d?.toISOString();

describe('GDPR: one month per Regulation 1182/71', () => {
  test('a request received on 31 January is due on 28 February (no 31st), at the end of that day', () => {
    const d = deadlinesFor(GDPR, PLAIN, new Date('2025-01-31T10:00:00Z'));
    assert.equal(iso(d.answerBy), '2025-02-28T23:59:59.999Z');
  });

  test('in a leap year the same request is due on 29 February', () => {
    const d = deadlinesFor(GDPR, PLAIN, new Date('2024-01-31T10:00:00Z'));
    assert.equal(iso(d.answerBy), '2024-02-29T23:59:59.999Z');
  });

  test('a month ends on the same date: 15 March is due on 15 April', () => {
    const d = deadlinesFor(GDPR, PLAIN, new Date('2025-03-15T08:00:00Z'));
    assert.equal(iso(d.answerBy), '2025-04-15T23:59:59.999Z');
  });

  test('a deadline on a Saturday moves to Monday (31 Jan 2026 → Sat 28 Feb → Mon 2 Mar, Brussels time)', () => {
    const d = deadlinesFor(GDPR, EU, new Date('2026-01-31T09:00:00Z'));
    assert.equal(iso(d.answerBy), endOf(EU, '2026-03-02'));
    assert.equal(iso(d.answerBy), '2026-03-02T22:59:59.999Z');
  });

  test('a deadline on a public holiday moves to the next working day (Ascension, Whit Monday)', () => {
    // 14 May 2026 is Ascension Day in Belgium, a Thursday: the answer is due on Friday.
    assert.equal(
      iso(deadlinesFor(GDPR, EU, new Date('2026-04-14T12:00:00Z')).answerBy),
      endOf(EU, '2026-05-15'),
    );
    // 25 May 2026 is Whit Monday: due Tuesday 26 May.
    assert.equal(
      iso(deadlinesFor(GDPR, EU, new Date('2026-04-25T12:00:00Z')).answerBy),
      endOf(EU, '2026-05-26'),
    );
  });

  test('a closure from 24 December to 2 January carries a deadline over New Year', () => {
    const days = [];
    for (let d = dayOf('2026-12-24'); d <= dayOf('2027-01-02'); d++) {
      days.push(new Date(d * 86_400_000).toISOString().slice(0, 10));
    }
    const closed: CalendarRules = { time_zone: 'Europe/Brussels', weekend: ['sat', 'sun'], holidays: days };
    // 24 November + one month = 24 December, closed until Saturday 2 January: Monday 4 January.
    const d = deadlinesFor(GDPR, closed, new Date('2026-11-24T10:00:00Z'));
    assert.equal(iso(d.answerBy), endOf(closed, '2027-01-04'));
    // Three business days from Tuesday 22 December: 23 December, 4 and 5 January.
    assert.equal(
      iso(addBusinessDays(closed, new Date('2026-12-22T10:00:00Z'), 3)),
      endOf(closed, '2027-01-05'),
    );
  });

  test('the extension adds two months to the first period; its notice is due within the first month', () => {
    const d = deadlinesFor(GDPR, PLAIN, new Date('2025-01-31T10:00:00Z'));
    // 28 February (the first month's end) + two months = 28 April, a Monday.
    assert.equal(iso(d.extendedAnswerBy), '2025-04-28T23:59:59.999Z');
    assert.equal(iso(d.extensionNoticeBy), '2025-02-28T23:59:59.999Z');
    assert.equal(d.confirmBy, undefined, 'the GDPR has no confirmation deadline');
  });

  test('the extension is counted from the first period before it moved off the weekend', () => {
    // 31 Jan 2026 → 28 Feb (Saturday) → answer Monday 2 March; the extension runs from 28 February:
    // 28 April 2026, a Tuesday, not 2 May.
    const d = deadlinesFor(GDPR, EU, new Date('2026-01-31T09:00:00Z'));
    assert.equal(iso(d.extendedAnswerBy), endOf(EU, '2026-04-28'));
    assert.equal(iso(d.extensionNoticeBy), endOf(EU, '2026-03-02'));
  });
});

describe('CCPA: 10 business days to confirm, 45 days to answer', () => {
  test('10 business days from Monday 16 November 2026 skip Thanksgiving: Tuesday 1 December', () => {
    const d = deadlinesFor(CCPA, US, new Date('2026-11-16T18:00:00Z'));
    assert.equal(iso(d.confirmBy), endOf(US, '2026-12-01'));
    assert.equal(iso(d.confirmBy), '2026-12-02T07:59:59.999Z');
    // Without the holiday the tenth business day would be Monday 30 November.
    assert.equal(
      iso(deadlinesFor(CCPA, LA, new Date('2026-11-16T18:00:00Z')).confirmBy),
      endOf(LA, '2026-11-30'),
    );
  });

  test('45 calendar days across a month end: 20 January 2026 → Friday 6 March', () => {
    const d = deadlinesFor(CCPA, US, new Date('2026-01-20T17:00:00Z'));
    assert.equal(iso(d.answerBy), endOf(US, '2026-03-06'));
    // Extended once by 45 days from the end of the first 45: 20 April; notice within the first 45.
    assert.equal(iso(d.extendedAnswerBy), endOf(US, '2026-04-20'));
    assert.equal(iso(d.extensionNoticeBy), endOf(US, '2026-03-06'));
  });

  test('the 45 days run from receipt whatever verification takes, and end on a working day', () => {
    // 12 October 2026 + 45 = 26 November, Thanksgiving: due Friday 27 November.
    const d = deadlinesFor(CCPA, US, new Date('2026-10-12T16:00:00Z'));
    assert.equal(iso(d.answerBy), endOf(US, '2026-11-27'));
  });

  test('a notice window shorter than the answer period gives an earlier notice deadline', () => {
    const r: DeadlineRuleInput = { answer: 'P45D', extension: 'P45D', extension_notice_within: 'P14D' };
    const d = deadlinesFor(r, PLAIN, new Date('2025-06-02T09:00:00Z'));
    assert.equal(iso(d.extensionNoticeBy), '2025-06-16T23:59:59.999Z');
    assert.equal(iso(d.answerBy), '2025-07-17T23:59:59.999Z');
  });
});

describe('time zones: a deadline is the end of its day where the calendar is', () => {
  test('a request received at 23:30 in Los Angeles counts from that day, not from the UTC date', () => {
    // 23:30 PST on 31 January 2025 is 07:30 UTC on 1 February.
    const receivedAt = new Date('2025-02-01T07:30:00Z');
    assert.equal(localDay(LA, receivedAt), dayOf('2025-01-31'));
    const d = deadlinesFor(CCPA, LA, receivedAt);
    // 31 January + 45 days = Monday 17 March, after the change to daylight time (UTC-7).
    assert.equal(iso(d.answerBy), '2025-03-18T06:59:59.999Z');
    // Counted in UTC, the same request would have had a day more.
    assert.equal(iso(deadlinesFor(CCPA, PLAIN, receivedAt).answerBy), '2025-03-18T23:59:59.999Z');
  });

  test('a request received at 23:30 UTC on 31 January is already 1 February in Brussels', () => {
    const receivedAt = new Date('2025-01-31T23:30:00Z');
    const brussels: CalendarRules = { time_zone: 'Europe/Brussels' };
    // 1 February + one month = Saturday 1 March 2025: due Monday 3 March, 23:59:59.999 CET.
    assert.equal(iso(deadlinesFor(GDPR, brussels, receivedAt).answerBy), '2025-03-03T22:59:59.999Z');
    assert.equal(iso(deadlinesFor(GDPR, PLAIN, receivedAt).answerBy), '2025-02-28T23:59:59.999Z');
  });

  test('a calendar without time_zone counts in UTC', () => {
    assert.equal(iso(addBusinessDays({}, new Date('2025-01-03T23:59:00Z'), 1)), '2025-01-06T23:59:59.999Z');
  });
});

describe('business days', () => {
  test('weekend days and holidays are not business days, in the calendar zone', () => {
    assert.equal(isBusinessDay(US, new Date('2026-11-26T18:00:00Z')), false, 'Thanksgiving');
    assert.equal(isBusinessDay(US, new Date('2026-11-27T18:00:00Z')), true, 'the Friday after');
    // 03:00 UTC on Saturday 28 November is still Friday evening in California.
    assert.equal(isBusinessDay(US, new Date('2026-11-28T03:00:00Z')), true);
    assert.equal(isBusinessDay(EU, new Date('2026-11-28T03:00:00Z')), false);
  });

  test('a calendar may declare another weekend (Friday and Saturday)', () => {
    const cal: CalendarRules = { weekend: ['fri', 'sat'] };
    assert.equal(isBusinessDay(cal, new Date('2025-01-05T12:00:00Z')), true, 'a Sunday');
    assert.equal(iso(addBusinessDays(cal, new Date('2025-01-02T12:00:00Z'), 1)), '2025-01-05T23:59:59.999Z');
  });

  test('zero business days from a holiday is the next business day; a negative count is refused', () => {
    assert.equal(iso(addBusinessDays(US, new Date('2026-12-25T18:00:00Z'), 0)), endOf(US, '2026-12-28'));
    assert.throws(() => addBusinessDays(US, new Date('2026-12-25T18:00:00Z'), -1), RangeError);
  });
});

describe('due status (pledge requests list --due, the API)', () => {
  const received = new Date('2026-11-16T18:00:00Z');
  const d = deadlinesFor(CCPA, US, received);
  const week = parseDueWindow('7d');

  test('an unconfirmed request is due soon for its confirmation a week before it', () => {
    const clock = fixedClock(received);
    assert.deepEqual(
      { ...dueStatus(d, false, clock.now(), week), due: undefined, remainingMs: undefined },
      { status: 'on_time', deadline: 'confirm', due: undefined, remainingMs: undefined },
    );
    clock.advance(9 * 86_400_000);
    const s = dueStatus(d, false, clock.now(), week);
    assert.equal(s.status, 'due_soon');
    assert.equal(s.deadline, 'confirm');
    assert.equal(iso(s.due), iso(d.confirmBy));
  });

  test('once confirmed only the answer counts; at the very deadline it is due, a millisecond later overdue', () => {
    assert.equal(dueStatus(d, false, d.answerBy, week, { confirmed: true }).status, 'due_soon');
    const late = new Date(d.answerBy.getTime() + 1);
    const s = dueStatus(d, false, late, week, { confirmed: true });
    assert.deepEqual([s.status, s.deadline, s.remainingMs], ['overdue', 'answer', -1]);
  });

  test('an extended request is measured against the extended deadline', () => {
    const late = new Date(d.answerBy.getTime() + 86_400_000);
    const s = dueStatus(d, true, late, week, { confirmed: true });
    assert.deepEqual(
      [s.status, s.deadline, iso(s.due)],
      ['on_time', 'extended_answer', iso(d.extendedAnswerBy)],
    );
  });

  test('an overdue confirmation outranks an answer that is merely on time', () => {
    const after = dueStatus(d, false, new Date((d.confirmBy?.getTime() ?? 0) + 1000), 0);
    assert.deepEqual([after.status, after.deadline], ['overdue', 'confirm']);
  });
});

describe('parseDueWindow', () => {
  test('reads days, hours, weeks and ISO 8601 durations', () => {
    assert.equal(parseDueWindow('7d'), 7 * 86_400_000);
    assert.equal(parseDueWindow('48h'), 48 * 3_600_000);
    assert.equal(parseDueWindow('2w'), 14 * 86_400_000);
    assert.equal(parseDueWindow('P7D'), 7 * 86_400_000);
    assert.equal(parseDueWindow('PT48H'), 48 * 3_600_000);
    assert.equal(parseDueWindow('P1DT12H'), 36 * 3_600_000);
    assert.equal(parseDueWindow('PT90M'), 90 * 60_000);
  });

  test('a short window and its ISO 8601 form are the same length (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99_999 }), fc.constantFrom('d', 'h', 'w'), (n, unit) => {
        const iso = unit === 'h' ? `PT${n}H` : `P${n}${unit.toUpperCase()}`;
        const hours = unit === 'w' ? n * 168 : unit === 'd' ? n * 24 : n;
        assert.equal(parseDueWindow(`${n}${unit}`), hours * 3_600_000);
        assert.equal(parseDueWindow(iso), hours * 3_600_000);
      }),
    );
  });

  test('dueStatus refuses a negative or infinite window', () => {
    const d = deadlinesFor(CCPA, US, new Date('2026-11-16T18:00:00Z'));
    assert.throws(() => dueStatus(d, false, new Date('2026-11-17T00:00:00Z'), -1), RangeError);
    assert.throws(() => dueStatus(d, false, new Date('2026-11-17T00:00:00Z'), Infinity), RangeError);
  });

  for (const [input, says] of [
    ['P1M', 'months or years'],
    ['P1Y', 'months or years'],
    ['soon', '"7d"'],
    ['7 days', '"7d"'],
    ['', '"7d"'],
    ['P', '"7d"'],
    ['PT', '"7d"'],
    ['-7d', '"7d"'],
  ] as const) {
    test(`refuses ${JSON.stringify(input)} with a code and what to write`, () => {
      assert.throws(
        () => parseDueWindow(input),
        (err: unknown) =>
          err instanceof PledgeError &&
          err.code === 'requests.due_window_invalid' &&
          err.status === 400 &&
          err.message.includes(says),
      );
    });
  }
});

describe('ruleFor: the rule for a jurisdiction', () => {
  test('an EU member state gets the GDPR, a US state the CCPA, Switzerland its own rule', () => {
    assert.equal(ruleFor(REQUESTS, 'FR')?.key, 'gdpr');
    assert.equal(ruleFor(REQUESTS, 'EU')?.key, 'gdpr');
    assert.equal(ruleFor(REQUESTS, 'GB')?.key, 'gdpr');
    assert.equal(ruleFor(REQUESTS, 'US-CA')?.key, 'ccpa');
    assert.equal(ruleFor(REQUESTS, 'CH')?.key, 'fadp');
    assert.equal(ruleFor(REQUESTS, 'NO')?.key, 'gdpr', 'an EEA country');
    assert.equal(ruleFor(REQUESTS, 'EEA')?.key, 'gdpr', 'the EEA as a whole, not Estonia (EE)');
    const estonia = {
      ...REQUESTS,
      default: undefined,
      deadlines: [{ ...CCPA, key: 'ee', jurisdictions: ['EE'] }],
    };
    assert.equal(ruleFor(estonia, 'EEA'), undefined, '"EEA" is not read as the country code EE');
    assert.equal(ruleFor(estonia, 'EE')?.key, 'ee');
  });

  test('an unlisted or unknown jurisdiction falls back to the default; without one, no rule', () => {
    assert.equal(ruleFor(REQUESTS, 'JP')?.key, 'gdpr');
    assert.equal(ruleFor(REQUESTS, undefined)?.key, 'gdpr');
    assert.equal(ruleFor({ ...REQUESTS, default: undefined }, 'JP'), undefined);
    assert.equal(ruleFor(undefined, 'US'), undefined);
  });

  test('deadlinesForJurisdiction finds the rule and its calendar', () => {
    const r = deadlinesForJurisdiction(REQUESTS, 'US', new Date('2026-11-16T18:00:00Z'));
    assert.equal(r?.rule.key, 'ccpa');
    assert.equal(iso(r?.deadlines.confirmBy), endOf(US, '2026-12-01'));
    const ch = deadlinesForJurisdiction(REQUESTS, 'CH', new Date('2026-03-02T10:00:00Z'));
    assert.equal(iso(ch?.deadlines.answerBy), endOf(EU, '2026-04-01'));
    assert.equal(ch?.deadlines.extendedAnswerBy, undefined, 'no extension is declared for Switzerland');
  });
});

describe('properties', () => {
  const ZONES = ['UTC', 'Europe/Brussels', 'America/Los_Angeles', 'Pacific/Auckland', 'Asia/Kolkata'];
  const WEEK: Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  const instant = fc.date({
    min: new Date('2024-01-01T00:00:00Z'),
    max: new Date('2028-12-31T00:00:00Z'),
    noInvalidDate: true,
  });
  const calendarArb = fc.record({
    time_zone: fc.constantFrom(...ZONES),
    weekend: fc.subarray(WEEK, { maxLength: 5 }),
    holidays: fc.array(
      fc
        .integer({ min: dayOf('2024-01-01'), max: dayOf('2029-06-30') })
        .map((d) => new Date(d * 86_400_000).toISOString().slice(0, 10)),
      { maxLength: 40 },
    ),
  });
  const ruleArb = fc.constantFrom<DeadlineRuleInput>(
    GDPR,
    CCPA,
    rule('fadp'),
    { answer: { business_days: 15 }, extension: 'P1M' },
    { answer: 'P1Y2M3W4D', confirm: 'P2D' },
  );

  test('every deadline is after the receipt, and the extended answer after the answer', () => {
    fc.assert(
      fc.property(ruleArb, calendarArb, instant, (r, cal, at) => {
        const d = deadlinesFor(r, cal, at);
        assert.ok(d.answerBy >= at);
        if (d.confirmBy) assert.ok(d.confirmBy >= at);
        if (d.extendedAnswerBy) assert.ok(d.extendedAnswerBy >= d.answerBy);
        if (d.extensionNoticeBy) assert.ok(d.extensionNoticeBy >= at);
        assert.equal(isBusinessDay(cal, d.answerBy), true, 'a deadline ends on a working day');
      }),
      { numRuns: 300 },
    );
  });

  test('deadlines never move earlier when the request arrives later', () => {
    fc.assert(
      fc.property(ruleArb, calendarArb, instant, instant, (r, cal, a, b) => {
        const [early, late] = a <= b ? [a, b] : [b, a];
        const x = deadlinesFor(r, cal, early);
        const y = deadlinesFor(r, cal, late);
        assert.ok(x.answerBy <= y.answerBy);
        if (x.confirmBy && y.confirmBy) assert.ok(x.confirmBy <= y.confirmBy);
        if (x.extendedAnswerBy && y.extendedAnswerBy) assert.ok(x.extendedAnswerBy <= y.extendedAnswerBy);
        if (x.extensionNoticeBy && y.extensionNoticeBy) assert.ok(x.extensionNoticeBy <= y.extensionNoticeBy);
      }),
      { numRuns: 300 },
    );
  });

  test('adding business days lands on a business day, n of them later', () => {
    fc.assert(
      fc.property(calendarArb, instant, fc.integer({ min: 0, max: 40 }), (cal, at, n) => {
        const due = addBusinessDays(cal, at, n);
        assert.equal(isBusinessDay(cal, due), true);
        const from = localDay(cal, at);
        const to = localDay(cal, due);
        let counted = 0;
        for (let day = from + 1; day <= to; day++) {
          if (isBusinessDay(cal, endOfDay(cal, day))) counted++;
        }
        assert.equal(counted, n === 0 && to !== from ? 1 : n);
      }),
      { numRuns: 300 },
    );
  });

  test('the end of a day is its last millisecond in the zone, across daylight-saving changes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.integer({ min: dayOf('2024-01-01'), max: dayOf('2028-12-31') }),
        (tz, day) => {
          const cal: CalendarRules = { time_zone: tz };
          const end = endOfDay(cal, day);
          assert.equal(localDay(cal, end), day);
          assert.equal(localDay(cal, new Date(end.getTime() + 1)), day + 1);
        },
      ),
      { numRuns: 500 },
    );
  });
});
