/**
 * The transparency report of legal requests for one period (a calendar half-year or year): requests
 * received by authority type, legal basis and outcome, with the people named and the accounts whose
 * data left. Only periods that are over are published (a figure that moves while a period runs
 * could tell someone under a gag order that a request about them arrived), and every figure from 1
 * to one below the threshold is published as a range, so no cell can single out a person.
 */
import { html, type SafeHtml } from '../platform/html.js';
import { ValidationError } from '../platform/errors.js';
import type { LegalReportRow } from './legal.repository.js';
import { AUTHORITY_TYPES, LEGAL_BASES } from './legal.validator.js';

/** Figures below this (and above 0) are published as the range "1-(threshold-1)". */
export const REPORT_THRESHOLD = 10;

/** The outcomes a request can have in the report. */
export const REPORT_OUTCOMES = ['pending', 'approved', 'narrowed', 'rejected', 'withdrawn'] as const;

/** A period of the report. */
export interface ReportPeriod {
  /** `2026`, `2026-H1` or `2026-H2`. */
  key: string;
  label: string;
  /** Inclusive start, exclusive end (UTC). */
  from: Date;
  to: Date;
}

/** A published figure: exact at or above the threshold (and 0), a range below it. */
export interface ReportFigure {
  /** As published: `"0"`, `"1-9"`, `"12"`. */
  count: string;
  min: number;
  max: number;
}

/** The figures of a group of requests. */
export interface ReportFigures {
  requests: ReportFigure;
  subjectsSpecified: ReportFigure;
  accountsAffected: ReportFigure;
}

/** The report of a period. */
export interface TransparencyReport {
  period: { key: string; label: string; from: string; to: string };
  threshold: number;
  totals: ReportFigures;
  byAuthorityType: Array<{ authorityType: string } & ReportFigures>;
  byLegalBasis: Array<{ legalBasis: string } & ReportFigures>;
  byOutcome: Array<{ outcome: string; requests: ReportFigure }>;
}

const PERIOD = /^(\d{4})(?:-H([12]))?$/;

/** The period a key names; throws `legal.period_invalid`, or `legal.period_open` for one not over at `now`. */
export function periodOrThrow(key: string | undefined, now: Date): ReportPeriod {
  const period = key === undefined || key === '' ? lastHalfYear(now) : parsePeriod(key);
  if (period === undefined) {
    throw new ValidationError(
      'legal.period_invalid',
      'period: must be a calendar year ("2026") or half-year ("2026-H1", "2026-H2")',
      { problems: [{ path: 'period', message: 'must be YYYY, YYYY-H1 or YYYY-H2' }] },
    );
  }
  if (period.to.getTime() > now.getTime()) {
    throw new ValidationError(
      'legal.period_open',
      `period: ${period.label} is not over yet; a report is published only for a period that has ended (the last one is ${lastHalfYear(now).key})`,
      { problems: [{ path: 'period', message: 'is not over yet' }] },
    );
  }
  return period;
}

function parsePeriod(key: string): ReportPeriod | undefined {
  const m = PERIOD.exec(key);
  if (!m) return undefined;
  const year = Number(m[1]);
  if (year < 1970) return undefined;
  const half = m[2];
  if (half === undefined) {
    return { key, label: String(year), from: utc(year, 0), to: utc(year + 1, 0) };
  }
  const first = half === '1';
  return {
    key,
    label: `${first ? 'January to June' : 'July to December'} ${year}`,
    from: utc(year, first ? 0 : 6),
    to: first ? utc(year, 6) : utc(year + 1, 0),
  };
}

function utc(year: number, month: number): Date {
  return new Date(Date.UTC(year, month, 1));
}

/** The last half-year that is over at `now`. */
export function lastHalfYear(now: Date): ReportPeriod {
  const year = now.getUTCFullYear();
  const key = now.getUTCMonth() < 6 ? `${year - 1}-H2` : `${year}-H1`;
  return parsePeriod(key) as ReportPeriod;
}

/** The periods a reader can pick: the last four half-years and the last two years that are over. */
export function recentPeriods(now: Date): ReportPeriod[] {
  const halves: ReportPeriod[] = [];
  let p = lastHalfYear(now);
  for (let i = 0; i < 4; i++) {
    halves.push(p);
    const [y, h] = p.key.split('-H');
    p = parsePeriod(h === '2' ? `${y}-H1` : `${Number(y) - 1}-H2`) as ReportPeriod;
  }
  const lastYear = now.getUTCFullYear() - 1;
  const years = [lastYear, lastYear - 1].map((y) => parsePeriod(String(y)) as ReportPeriod);
  return [...halves, ...years];
}

/** A count as published. */
export function figure(n: number, threshold = REPORT_THRESHOLD): ReportFigure {
  if (n === 0) return { count: '0', min: 0, max: 0 };
  if (n < threshold) return { count: `1-${threshold - 1}`, min: 1, max: threshold - 1 };
  return { count: String(n), min: n, max: n };
}

/** The outcome of a request, for the report. */
export function outcomeOf(
  row: Pick<LegalReportRow, 'decision' | 'closed'>,
): (typeof REPORT_OUTCOMES)[number] {
  if (row.decision === 'approved' || row.decision === 'narrowed' || row.decision === 'rejected')
    return row.decision;
  return row.closed ? 'withdrawn' : 'pending';
}

/**
 * Builds the report from the period's requests and the subjects whose data left for each. Every
 * authority type, legal basis and outcome has its row, zero or not, so a row's absence says nothing.
 */
export function buildReport(
  period: ReportPeriod,
  rows: readonly LegalReportRow[],
  disclosed: ReadonlyArray<{ requestId: string; subjectId: string }>,
  threshold = REPORT_THRESHOLD,
): TransparencyReport {
  const disclosedBy = new Map<string, string[]>();
  for (const d of disclosed) {
    let list = disclosedBy.get(d.requestId);
    if (list === undefined) disclosedBy.set(d.requestId, (list = []));
    list.push(d.subjectId);
  }
  const figuresOf = (group: readonly LegalReportRow[]): ReportFigures => ({
    requests: figure(group.length, threshold),
    subjectsSpecified: figure(new Set(group.flatMap((r) => r.subjects)).size, threshold),
    accountsAffected: figure(new Set(group.flatMap((r) => disclosedBy.get(r.id) ?? [])).size, threshold),
  });
  return {
    period: {
      key: period.key,
      label: period.label,
      from: period.from.toISOString(),
      to: period.to.toISOString(),
    },
    threshold,
    totals: figuresOf(rows),
    byAuthorityType: AUTHORITY_TYPES.map((t) => ({
      authorityType: t,
      ...figuresOf(rows.filter((r) => r.authorityType === t)),
    })),
    byLegalBasis: LEGAL_BASES.map((b) => ({
      legalBasis: b,
      ...figuresOf(rows.filter((r) => r.legalBasis === b)),
    })),
    byOutcome: REPORT_OUTCOMES.map((o) => ({
      outcome: o,
      requests: figure(rows.filter((r) => outcomeOf(r) === o).length, threshold),
    })),
  };
}

/** One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break; quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** The report as CSV (RFC 4180: a header line, CRLF line ends, quoting done by {@link csvField}). */
export function reportCsv(report: TransparencyReport): string {
  const lines: string[][] = [
    ['period', 'section', 'key', 'requests', 'subjects_specified', 'accounts_affected'],
  ];
  const p = report.period.key;
  const add = (section: string, key: string, f: Partial<ReportFigures>) =>
    lines.push([
      p,
      section,
      key,
      f.requests?.count ?? '',
      f.subjectsSpecified?.count ?? '',
      f.accountsAffected?.count ?? '',
    ]);
  add('total', 'all', report.totals);
  for (const r of report.byAuthorityType) add('authority_type', r.authorityType, r);
  for (const r of report.byLegalBasis) add('legal_basis', r.legalBasis, r);
  for (const r of report.byOutcome) add('outcome', r.outcome, { requests: r.requests });
  return lines.map((l) => `${l.map(csvField).join(',')}\r\n`).join('');
}

const WORDS: Record<string, string> = {
  court: 'Courts',
  law_enforcement: 'Law enforcement',
  regulator: 'Regulators',
  other: 'Other',
  subpoena: 'Subpoena',
  court_order: 'Court order',
  search_warrant: 'Search warrant',
  emergency: 'Emergency request',
  regulatory_order: 'Regulatory order',
  pending: 'Under review',
  approved: 'Answered in full',
  narrowed: 'Answered in part',
  rejected: 'Rejected',
  withdrawn: 'Withdrawn or closed unanswered',
};

/** The word for a report key. */
function word(key: string): string {
  return WORDS[key] ?? key;
}

/** A figure as a page shows it: a range with an en dash. */
function shown(f: ReportFigure): string {
  return f.count.replace('-', '\u2013');
}

// Prettier formats html`` templates as HTML, which would move the whitespace of the output.
// prettier-ignore
/** The report as a complete HTML page, readable without JavaScript (the /privacy stylesheet). */
export function reportHtml(report: TransparencyReport, options: { organization: string; periods: readonly ReportPeriod[] }): string {
  const table = (caption: string, head: string, rows: ReadonlyArray<{ key: string } & ReportFigures>): SafeHtml => html`
    <table>
      <caption>${caption}</caption>
      <thead><tr><th scope="col">${head}</th><th scope="col">Requests</th><th scope="col">People named</th><th scope="col">Accounts whose data was disclosed</th></tr></thead>
      <tbody>${rows.map((r) => html`
        <tr><th scope="row">${word(r.key)}</th><td>${shown(r.requests)}</td><td>${shown(r.subjectsSpecified)}</td><td>${shown(r.accountsAffected)}</td></tr>`)}
      </tbody>
    </table>`;
  const t = report.totals;
  const q = encodeURIComponent(report.period.key);
  const page = html`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="generator" content="Pledge">
  <title>Transparency report: ${report.period.label} · ${options.organization}</title>
  <link rel="stylesheet" href="/assets/policy.css">
  <link rel="alternate" type="application/json" href="/privacy/transparency.json?period=${q}">
  <link rel="alternate" type="text/csv" href="/privacy/transparency.csv?period=${q}">
</head>
<body>
  <header class="site-header">
    <p class="site-name"><a href="/privacy">${options.organization}</a></p>
  </header>
  <main id="report">
    <h1>Transparency report: ${report.period.label}</h1>
    <p>Requests from courts and public authorities for information about the people who use our services, received in ${report.period.label} (UTC). Every request is reviewed by someone other than the person who recorded it, and we disclose only what the request lawfully requires.</p>
    <p>Figures from 1 to ${report.threshold - 1} are shown as the range 1\u2013${report.threshold - 1}, so that no figure can point to a person.</p>
    <section aria-labelledby="totals">
      <h2 id="totals">In total</h2>
      <ul>
        <li>Requests received: <strong>${shown(t.requests)}</strong></li>
        <li>People named in them: <strong>${shown(t.subjectsSpecified)}</strong></li>
        <li>Accounts whose data was disclosed: <strong>${shown(t.accountsAffected)}</strong></li>
      </ul>
    </section>
    <section aria-labelledby="by-authority">
      <h2 id="by-authority">By authority</h2>${table('Requests by type of authority', 'Authority', report.byAuthorityType.map((r) => ({ key: r.authorityType, ...r })))}
    </section>
    <section aria-labelledby="by-basis">
      <h2 id="by-basis">By legal basis</h2>${table('Requests by legal basis', 'Legal basis', report.byLegalBasis.map((r) => ({ key: r.legalBasis, ...r })))}
    </section>
    <section aria-labelledby="by-outcome">
      <h2 id="by-outcome">By outcome</h2>
      <table>
        <caption>Requests by outcome</caption>
        <thead><tr><th scope="col">Outcome</th><th scope="col">Requests</th></tr></thead>
        <tbody>${report.byOutcome.map((r) => html`
          <tr><th scope="row">${word(r.outcome)}</th><td>${shown(r.requests)}</td></tr>`)}
        </tbody>
      </table>
    </section>
    <section aria-labelledby="downloads">
      <h2 id="downloads">Data and other periods</h2>
      <p>This report as <a href="/privacy/transparency.json?period=${q}">JSON</a> or <a href="/privacy/transparency.csv?period=${q}">CSV</a>.</p>
      <ul>${options.periods.map((p) => html`
        <li>${p.key === report.period.key ? html`<strong>${p.label}</strong>` : html`<a href="/privacy/transparency?period=${encodeURIComponent(p.key)}">${p.label}</a>`}</li>`)}
      </ul>
    </section>
  </main>
</body>
</html>
`;
  return page.value;
}
