/**
 * Writes the record of processing activities (ropa.document.ts) as an HTML page and as CSV. Like
 * the policy, the output depends on the manifest alone (no clock, no locale), so it can be
 * committed and compared.
 */
import { html, type SafeHtml } from '../platform/html.js';
import type { Manifest } from './manifest.schema.js';
import { buildRopa, type Named, type RopaActivity } from './ropa.document.js';

const named = (n: Named) => `${n.name} (${n.key})`;

/** The cells of one activity, shared by both formats, in column order. */
const COLUMNS: ReadonlyArray<[string, (a: RopaActivity) => string[]]> = [
  ['Purpose', (a) => [named(a.purpose)]],
  ['Description', (a) => [a.purpose.description]],
  ['Data use (fideslang)', (a) => (a.dataUse ? [named(a.dataUse)] : [])],
  ['Legal basis', (a) => [a.legalBasis]],
  ['Data subjects', (a) => a.dataSubjects.map(named)],
  [
    'Categories of personal data',
    (a) => a.categories.map((c) => `${named(c)}${c.sensitive ? ' [sensitive]' : ''}`),
  ],
  [
    'Systems',
    (a) => a.systems.map((s) => `${s.name} (${s.key}): ${s.categories.map((c) => c.key).join(', ')}`),
  ],
  [
    'Recipients',
    (a) =>
      a.recipients.map(
        (r) => `${r.name} (${r.kind}, ${r.country}): ${r.categories.map((c) => c.key).join(', ')}`,
      ),
  ],
  [
    'Transfers to other countries',
    (a) =>
      a.transfers.map(
        (t) =>
          `${t.recipient.name} to ${t.countryName}: ${t.mechanism ? t.mechanism.name : 'no transfer mechanism declared'}`,
      ),
  ],
  ['Time limits for erasure', (a) => a.retention],
  ['Security measures', (a) => a.safeguards],
];

// ---------------------------------------------------------------------------------------------
// CSV

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes doubled.
 * A field a spreadsheet would run as a formula (starting with =, +, -, @, tab or CR) is prefixed
 * with an apostrophe, as OWASP advises against CSV injection: a ROPA is opened in spreadsheets.
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/**
 * The record as CSV: a header row, then one row per purpose; a cell with several entries holds one
 * per line. Lines end in CRLF, as RFC 4180 says.
 */
export function renderRopaCsv(manifest: Manifest): string {
  const ropa = buildRopa(manifest);
  const rows = [
    ['Controller', ...COLUMNS.map(([title]) => title)],
    ...ropa.activities.map((a) => [
      `${ropa.controller.legalName}, ${ropa.controller.address}, ${ropa.controller.contact}`,
      ...COLUMNS.map(([, cells]) => cells(a).join('\n')),
    ]),
  ];
  return rows.map((r) => `${r.map(csvField).join(',')}\r\n`).join('');
}

// ---------------------------------------------------------------------------------------------
// HTML

const CSS = `body{font:15px/1.45 system-ui,sans-serif;margin:2rem;color:#1a1a1a}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.4rem .5rem;vertical-align:top;text-align:left}
th{background:#f0f0f0}ul{margin:0;padding-left:1.1rem}code{font-size:.85em}.empty{color:#666}`;

function cellHtml(values: string[]): SafeHtml {
  if (values.length === 0) return html`<span class="empty">none declared</span>`;
  if (values.length === 1) return html`${values[0]}`;
  return html`<ul>${values.map((v) => html`<li>${v}</li>`)}</ul>`;
}

/** The record as one self-contained HTML page (its stylesheet inline): a table, one row per purpose. */
export function renderRopaHtml(manifest: Manifest): string {
  const ropa = buildRopa(manifest);
  const c = ropa.controller;
  const page = html`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="generator" content="Pledge">
  <title>Record of processing activities — ${c.name}</title>
  <style>${CSS}</style>
</head>
<body>
  <h1>Record of processing activities</h1>
  <p>Kept under Article 30(1) of the GDPR, from the manifest of policy version ${ropa.policyVersion}.</p>
  <h2>Controller</h2>
  <p>${c.legalName}<br>${c.address}<br>Privacy contact: <a href="mailto:${c.contact}">${c.contact}</a></p>
  <h2>Processing activities</h2>
  <table>
    <thead><tr>${COLUMNS.map(([title]) => html`<th scope="col">${title}</th>`)}</tr></thead>
    <tbody>
${ropa.activities.map(
  (a) =>
    html`      <tr id="purpose-${a.purpose.key}">${COLUMNS.map(([, cells], i) =>
      i === 0 ? html`<th scope="row">${cells(a)[0] ?? ''}</th>` : html`<td>${cellHtml(cells(a))}</td>`,
    )}</tr>
`,
)}    </tbody>
  </table>
</body>
</html>
`;
  return page.toString();
}
