/**
 * The transparency report of legal requests, on every engine: the same figures on the page
 * (/privacy/transparency, no script), in JSON and in CSV (RFC 4180), per authority type, legal basis
 * and outcome; figures from 1 to 9 published as the range 1-9; only periods that are over.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fixedClock } from '../../src/platform/clock.js';
import { csvField, figure, periodOrThrow, reportCsv } from '../../src/share/legal.report.js';
import { DIALECTS } from '../helpers/databases.js';
import { openLegalApp, requestBody, type LegalTestApp } from './legal-app.js';

for (const dialect of DIALECTS) {
  describe(`the transparency report on ${dialect}`, () => {
    let t: LegalTestApp;

    before(async () => {
      t = await openLegalApp(dialect);
      // In the second half of 2025: twelve court orders about twelve people (ten answered, two
      // rejected), two subpoenas (one narrowed and answered, one pending), one regulator's order
      // closed unanswered. And one request in 2026, which the 2025 reports leave out.
      const at = (iso: string) => fixedClock(new Date(iso));
      const legal = t.app.legal;
      const people = await Promise.all(Array.from({ length: 12 }, () => t.register()));
      const ids = people.map((p) => p.subjectId);
      for (const [i, subject] of ids.entries()) {
        const when = at(`2025-0${7 + (i % 3)}-1${i % 10}T10:00:00Z`);
        const r = await legal.receive(t.as(t.alice, when), requestBody([subject]));
        if (i < 10) {
          await legal.approve(t.as(t.bob), r.id);
          await legal.disclose(t.as(t.alice), r.id, { fields: ['email'] });
        } else await legal.reject(t.as(t.bob), r.id, 'overbroad');
      }
      const subpoena = {
        authority: { name: 'Federal Bureau of Investigation', type: 'law_enforcement' },
        legalBasis: 'subpoena',
      };
      const narrowed = await legal.receive(
        t.as(t.alice, at('2025-10-02T09:00:00Z')),
        requestBody(ids.slice(0, 2), subpoena),
      );
      await legal.narrow(t.as(t.bob), narrowed.id, {
        subjects: [ids[0]],
        categories: ['user.contact.email'],
      });
      await legal.disclose(t.as(t.alice), narrowed.id, { fields: ['email'] });
      await legal.receive(t.as(t.alice, at('2025-12-31T23:59:59Z')), requestBody([ids[2]!], subpoena));
      const regulator = await legal.receive(
        t.as(t.alice, at('2025-11-20T12:00:00Z')),
        requestBody([ids[3]!], {
          authority: { name: 'Federal Trade Commission', type: 'regulator' },
          legalBasis: 'regulatory_order',
        }),
      );
      await legal.close(t.as(t.bob), regulator.id);
      await legal.receive(t.as(t.alice, at('2026-01-01T00:00:00Z')), requestBody([ids[4]!]));
    });
    after(async () => t.cleanup());

    test('JSON: totals and rows by authority type, legal basis and outcome, small figures as ranges', async () => {
      const res = await t.app.http.inject({
        method: 'GET',
        url: '/privacy/transparency.json?period=2025-H2',
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const report = res.json<{
        period: { key: string; from: string; to: string };
        totals: Record<string, { count: string }>;
        byAuthorityType: Array<Record<string, { count: string } | string>>;
        byLegalBasis: Array<Record<string, { count: string } | string>>;
        byOutcome: Array<{ outcome: string; requests: { count: string } }>;
      }>();
      assert.deepEqual(report.period, {
        key: '2025-H2',
        label: 'July to December 2025',
        from: '2025-07-01T00:00:00.000Z',
        to: '2026-01-01T00:00:00.000Z',
      });
      const counts = (f: Record<string, { count: string } | string>) =>
        ['requests', 'subjectsSpecified', 'accountsAffected'].map((k) => (f[k] as { count: string }).count);
      assert.deepEqual(counts(report.totals), ['15', '12', '10']);
      assert.deepEqual(
        report.byAuthorityType.map((r) => [r.authorityType, ...counts(r)]),
        [
          ['court', '12', '12', '10'],
          ['law_enforcement', '1-9', '1-9', '1-9'],
          ['regulator', '1-9', '1-9', '0'],
          ['other', '0', '0', '0'],
        ],
      );
      assert.deepEqual(
        report.byLegalBasis.map((r) => [r.legalBasis, (r.requests as { count: string }).count]),
        [
          ['subpoena', '1-9'],
          ['court_order', '12'],
          ['search_warrant', '0'],
          ['emergency', '0'],
          ['regulatory_order', '1-9'],
          ['other', '0'],
        ],
      );
      assert.deepEqual(
        report.byOutcome.map((r) => [r.outcome, r.requests.count]),
        [
          ['pending', '1-9'],
          ['approved', '10'],
          ['narrowed', '1-9'],
          ['rejected', '1-9'],
          ['withdrawn', '1-9'],
        ],
      );
      // A year holds its halves; 2026's request is in 2026's first half, not here.
      const year = await t.app.http.inject({ method: 'GET', url: '/privacy/transparency.json?period=2025' });
      assert.equal(year.json<{ totals: { requests: { count: string } } }>().totals.requests.count, '15');
      const next = await t.app.http.inject({
        method: 'GET',
        url: '/privacy/transparency.json?period=2026-H1',
      });
      assert.equal(next.json<{ totals: { requests: { count: string } } }>().totals.requests.count, '1-9');
    });

    test('CSV: the same figures, RFC 4180 (a header, CRLF line ends)', async () => {
      const res = await t.app.http.inject({ method: 'GET', url: '/privacy/transparency.csv?period=2025-H2' });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/csv; charset=utf-8; header=present/);
      assert.match(String(res.headers['content-disposition']), /filename="transparency-2025-H2\.csv"/);
      const lines = res.body.split('\r\n');
      assert.equal(lines.pop(), '', 'every line ends with CRLF');
      assert.ok(!lines.some((l) => l.includes('\n')), 'no bare LF');
      assert.equal(lines[0], 'period,section,key,requests,subjects_specified,accounts_affected');
      assert.ok(lines.includes('2025-H2,total,all,15,12,10'));
      assert.ok(lines.includes('2025-H2,authority_type,court,12,12,10'));
      assert.ok(lines.includes('2025-H2,authority_type,regulator,1-9,1-9,0'));
      assert.ok(lines.includes('2025-H2,legal_basis,subpoena,1-9,1-9,1-9'));
      assert.ok(lines.includes('2025-H2,outcome,approved,10,,'));
      assert.ok(lines.includes('2025-H2,outcome,withdrawn,1-9,,'));
    });

    test('the page: the same figures, readable without JavaScript, linking the data and other periods', async () => {
      const res = await t.app.http.inject({ method: 'GET', url: '/privacy/transparency?period=2025-H2' });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      const page = res.body;
      assert.ok(!/<script/i.test(page), 'no script');
      assert.ok(!/style=/i.test(page), 'no inline style');
      assert.match(page, /<h1>Transparency report: July to December 2025<\/h1>/);
      assert.match(page, /Requests received: <strong>15<\/strong>/);
      assert.match(page, /People named in them: <strong>12<\/strong>/);
      assert.match(page, /Accounts whose data was disclosed: <strong>10<\/strong>/);
      assert.match(page, /<th scope="row">Courts<\/th><td>12<\/td><td>12<\/td><td>10<\/td>/);
      assert.match(page, /<th scope="row">Regulators<\/th><td>1–9<\/td><td>1–9<\/td><td>0<\/td>/);
      assert.match(page, /<th scope="row">Answered in part<\/th><td>1–9<\/td>/);
      assert.match(page, /href="\/privacy\/transparency\.csv\?period=2025-H2"/);
      assert.match(page, /href="\/privacy\/transparency\?period=2026-H1"/);
    });

    test('a period not over yet, or malformed, is refused in each form', async () => {
      const open = await t.app.http.inject({ method: 'GET', url: '/privacy/transparency.json?period=2999' });
      assert.equal(open.statusCode, 400);
      assert.equal(open.json<{ error: { code: string } }>().error.code, 'legal.period_open');
      const bad = await t.app.http.inject({ method: 'GET', url: '/privacy/transparency.csv?period=2025-Q3' });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json<{ error: { code: string } }>().error.code, 'legal.period_invalid');
      const page = await t.app.http.inject({ method: 'GET', url: '/privacy/transparency?period=2999-H1' });
      assert.equal(page.statusCode, 400);
      assert.match(String(page.headers['content-type']), /^text\/html/);
      assert.match(page.body, /is not over yet/);
    });
  });
}

describe('the report in parts', () => {
  test('CSV fields are quoted as RFC 4180 says', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "no"'), '"say ""no"""');
    assert.equal(csvField('two\r\nlines'), '"two\r\nlines"');
    const csv = reportCsv({
      period: { key: '2025', label: '2025', from: '', to: '' },
      threshold: 10,
      totals: { requests: figure(0), subjectsSpecified: figure(0), accountsAffected: figure(0) },
      byAuthorityType: [
        {
          authorityType: 'court, "district"',
          requests: figure(3),
          subjectsSpecified: figure(3),
          accountsAffected: figure(0),
        },
      ],
      byLegalBasis: [],
      byOutcome: [],
    });
    assert.ok(csv.includes('2025,authority_type,"court, ""district""",1-9,1-9,0\r\n'));
  });

  test('figures: 0 and 10 or more exact, 1 to 9 a range', () => {
    assert.deepEqual(
      [0, 1, 9, 10, 250].map((n) => figure(n).count),
      ['0', '1-9', '1-9', '10', '250'],
    );
  });

  test('the default period is the last half-year that is over', () => {
    assert.equal(periodOrThrow(undefined, new Date('2026-12-07T12:00:00Z')).key, '2026-H1');
    assert.equal(periodOrThrow(undefined, new Date('2026-03-01T12:00:00Z')).key, '2025-H2');
    assert.throws(() => periodOrThrow('2026', new Date('2026-12-31T23:59:59Z')), /not over yet/);
  });
});
