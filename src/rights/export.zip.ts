/**
 * The export package as a zip (docs/requests.md, "What an access request returns"): each section as
 * JSON and as CSV, a README.txt that says what each file holds, and summary.html, a page that opens
 * in any browser without a network. Written as a stream: records and connector rows are read once,
 * page by page; the JSON of a section goes straight into the zip while its CSV is spooled to a
 * temporary file sealed under a key that lives only in this call (AES-256-GCM), so no plaintext of
 * the person's data touches the disk and memory stays bounded whatever the number of records.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import { html, type SafeHtml } from '../platform/html.js';
import type { ConnectorRow, ExportPackage, ExportRecord } from './export.service.js';

/** How many rows of a streamed section the HTML summary shows (the CSV and JSON hold all). */
export const SUMMARY_ROWS = 200;
/** Text gathered before it is written on (fewer, larger writes). */
const CHUNK = 64 * 1024;

/** The files of the zip, in order, and what each holds (the README's words). */
export const EXPORT_FILES: ReadonlyArray<{ name: string; about: string }> = [
  { name: 'README.txt', about: 'This file: what each file of the package holds.' },
  {
    name: 'summary.html',
    about: 'A readable summary of everything below; open it in a web browser (it needs no network).',
  },
  {
    name: 'subject.json',
    about:
      'Who the package is about: your id with us, the kind of account, jurisdiction, when you were first recorded, and when the package was made.',
  },
  {
    name: 'records.json',
    about:
      'Every record we hold on you, with where it came from (the collection point), when, under which policy version, and each field with its category and value.',
  },
  {
    name: 'records.csv',
    about:
      'The same records as a table, one line per field: record_id, source, collected_at, policy_version, field, category, value.',
  },
  {
    name: 'consent.json',
    about:
      'Every choice you made or we recorded for you (consent, opt-outs, withdrawals), oldest first, with how it was made and its evidence.',
  },
  {
    name: 'consent.csv',
    about:
      'The same choices as a table: at, purpose, channel, state, method, notice_version, policy_version, jurisdiction, evidence.',
  },
  {
    name: 'disclosures.json',
    about:
      'Every time your data was disclosed to another company or authority that we may tell you of: when, to whom, for what purpose, which kinds of data, and its entry in our public transparency log.',
  },
  {
    name: 'disclosures.csv',
    about: 'The same disclosures as a table: at, recipient, recipient_kind, purpose, categories, log_leaf.',
  },
  {
    name: 'connectors.json',
    about:
      "What the company's own databases hold on you (support desk, billing ...), row by row, with the category of each column.",
  },
  {
    name: 'connectors.csv',
    about:
      'The same rows as a table, one line per column: row, dataset, collection, column, category, value.',
  },
];

/** What {@link writeExportZip} wrote. */
export interface ExportZipResult {
  files: string[];
  counts: { records: number; fields: number; consent: number; disclosures: number; connectorRows: number };
  unreadable: number;
}

/** A CSV cell: quoted when it must be; a leading = + - @ is prefixed with ' so a spreadsheet does not run it. */
export function csvCell(value: unknown): string {
  let s =
    value === undefined || value === null ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvLine(cells: readonly unknown[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

/** A temporary file sealed under a key of its own, written as text and read back as a stream. */
class SealedSpool {
  readonly #key = randomBytes(32);
  readonly #iv = randomBytes(12);
  readonly #file: string;
  readonly #out: WriteStream;
  readonly #cipher;
  #pending = '';
  #tag: Buffer | undefined;

  constructor(file: string) {
    this.#file = file;
    this.#cipher = createCipheriv('aes-256-gcm', this.#key, this.#iv);
    this.#out = createWriteStream(file, { mode: 0o600 });
    this.#cipher.pipe(this.#out);
  }

  async write(text: string): Promise<void> {
    this.#pending += text;
    if (this.#pending.length < CHUNK) return;
    const chunk = this.#pending;
    this.#pending = '';
    if (!this.#cipher.write(chunk)) await new Promise((resolve) => this.#cipher.once('drain', resolve));
  }

  async close(): Promise<void> {
    if (this.#pending !== '') this.#cipher.write(this.#pending);
    this.#pending = '';
    this.#cipher.end();
    await finished(this.#out);
    this.#tag = this.#cipher.getAuthTag();
  }

  /** The text written, decrypted as it is read (the tag is checked at the end). */
  open(): Readable {
    const decipher = createDecipheriv('aes-256-gcm', this.#key, this.#iv);
    decipher.setAuthTag(this.#tag ?? Buffer.alloc(16));
    const out = new PassThrough();
    pipeline(createReadStream(this.#file), decipher, out).catch((err: unknown) => out.destroy(err as Error));
    return out;
  }
}

/** A section read once: its JSON into the zip as it comes, its CSV into a spool for the entry after. */
function streamedSection<T>(
  zip: yazl.ZipFile,
  name: string,
  items: AsyncIterable<T>,
  spool: SealedSpool,
  header: readonly string[],
  toJson: (item: T) => unknown,
  toCsv: (item: T, index: number) => string,
  onItem: (item: T, index: number) => void,
): Promise<number> {
  let count = 0;
  let settle: (n: number) => void = () => undefined;
  let fail: (err: unknown) => void = () => undefined;
  const done = new Promise<number>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  async function* json(): AsyncGenerator<string> {
    try {
      await spool.write(csvLine(header));
      let buffer = '[';
      for await (const item of items) {
        buffer += `${count === 0 ? '\n' : ',\n'}${JSON.stringify(toJson(item))}`;
        await spool.write(toCsv(item, count));
        onItem(item, count);
        count++;
        if (buffer.length >= CHUNK) {
          yield buffer;
          buffer = '';
        }
      }
      yield `${buffer}${count === 0 ? ']' : '\n]'}\n`;
      await spool.close();
      settle(count);
    } catch (err) {
      fail(err);
      throw err;
    }
  }
  zip.addReadStreamLazy(`${name}.json`, (cb) => cb(null, Readable.from(json())));
  // Only asked for once the JSON entry is written, so the spool is complete by then.
  zip.addReadStreamLazy(`${name}.csv`, (cb) => {
    done.then(
      () => cb(null, spool.open()),
      (err: unknown) => cb(err, Readable.from([])),
    );
  });
  // A failure is seen by whoever awaits the count; the zip stream fails with it too.
  done.catch(() => undefined);
  return done;
}

function readme(pkg: ExportPackage): string {
  return [
    'Your personal data',
    '==================',
    '',
    `Made ${pkg.generatedAt.toISOString()} for the person with id ${pkg.subjectId}.`,
    '',
    'Every section is given twice: as JSON (exact values, for another service to import) and as CSV',
    '(for a spreadsheet). In the CSV files, a value that is not text is written as JSON, and a value',
    "that begins with = + - or @ has a ' put before it so that a spreadsheet shows it instead of",
    'running it as a formula; the JSON files hold every value exactly.',
    '',
    'Files:',
    ...EXPORT_FILES.map((f) => `  ${f.name.padEnd(17)} ${f.about}`),
    '',
    'Times are in UTC (ISO 8601). Categories are the names of our data taxonomy (user.contact.email is',
    'your e-mail address, for example); summary.html gives each in words where we have them.',
    '',
  ].join('\n');
}

interface Sample {
  records: Array<{
    record: string;
    source: string;
    at: string;
    field: string;
    category: string;
    value: string;
  }>;
  connectors: Array<{ dataset: string; collection: string; column: string; category: string; value: string }>;
}

function shown(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
}

function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): SafeHtml {
  if (rows.length === 0) return html`<p class="none">None.</p>`;
  return html`<table><thead><tr>${headers.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows.map(
    (r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`,
  )}</tbody></table>`;
}

function more(total: number, rows: number, file: string): SafeHtml | undefined {
  return total > rows
    ? html`<p>The first ${rows} of ${total} are shown; ${file} holds them all.</p>`
    : undefined;
}

function summaryHtml(
  pkg: ExportPackage,
  counts: ExportZipResult['counts'],
  sample: Sample,
  unreadable: number,
): string {
  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your personal data</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#111}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top;word-break:break-word}
th{background:#f3f3f3}.none{color:#555}dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}</style>
</head><body>
<h1>Your personal data</h1>
<p>Made ${pkg.generatedAt.toISOString()}. This page summarizes the files beside it in this package (README.txt explains each).</p>
<dl><dt>Your id</dt><dd>${pkg.subject.id}</dd><dt>Account kind</dt><dd>${pkg.subject.kind}</dd>
<dt>Jurisdiction</dt><dd>${pkg.subject.jurisdiction ?? 'not recorded'}</dd><dt>First recorded</dt><dd>${pkg.subject.createdAt.toISOString()}</dd>
<dt>Records</dt><dd>${counts.records} (${counts.fields} fields)</dd><dt>Consent changes</dt><dd>${counts.consent}</dd>
<dt>Disclosures</dt><dd>${counts.disclosures}</dd><dt>Rows in our other systems</dt><dd>${counts.connectorRows}</dd></dl>
${unreadable > 0 ? html`<p>${unreadable} older records could not be opened: their keys were destroyed by an earlier erasure.</p>` : undefined}
<h2>Records</h2>
${table(
  ['Record', 'Source', 'Collected', 'Field', 'Category', 'Value'],
  sample.records.map((r) => [r.record, r.source, r.at, r.field, r.category, r.value]),
)}
${more(counts.fields, sample.records.length, 'records.csv')}
<h2>Consent history</h2>
${table(
  ['When', 'Purpose', 'Channel', 'Choice', 'How'],
  pkg.consent.map((c) => [c.at.toISOString(), c.purpose, c.channel ?? '', c.state, c.method]),
)}
<h2>Who received your data</h2>
${table(
  ['When', 'Recipient', 'Purpose', 'Data'],
  pkg.disclosures.map((d) => [d.at.toISOString(), d.recipient, d.purpose, d.categories.join(', ')]),
)}
<h2>In our other systems</h2>
${table(
  ['Dataset', 'Collection', 'Column', 'Category', 'Value'],
  sample.connectors.map((c) => [c.dataset, c.collection, c.column, c.category, c.value]),
)}
${more(counts.connectorRows, sample.connectors.length, 'connectors.csv')}
</body></html>
`;
  return page.toString();
}

function recordCsv(r: ExportRecord): string {
  let out = '';
  for (const [field, f] of Object.entries(r.fields))
    out += csvLine([
      r.id,
      r.source,
      r.collectedAt.toISOString(),
      r.policyVersionId,
      field,
      f.category,
      f.value,
    ]);
  return out;
}

function connectorCsv(c: ConnectorRow, index: number): string {
  let out = '';
  for (const [column, value] of Object.entries(c.row))
    out += csvLine([index + 1, c.dataset, c.collection, column, c.categories[column] ?? '', value]);
  return out;
}

/**
 * Writes `pkg` as a zip to `out`; resolves once the zip is complete and `out` has taken all of it.
 * Rejects (and ends `out` with the error) when a section cannot be read.
 */
export async function writeExportZip(pkg: ExportPackage, out: Writable): Promise<ExportZipResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-export-'));
  try {
    const zip = new yazl.ZipFile();
    const written = pipeline(zip.outputStream, out);
    const mtime = pkg.generatedAt;
    const counts = {
      records: 0,
      fields: 0,
      consent: pkg.consent.length,
      disclosures: pkg.disclosures.length,
      connectorRows: 0,
    };
    const sample: Sample = { records: [], connectors: [] };
    zip.addBuffer(Buffer.from(readme(pkg)), 'README.txt', { mtime });
    const sections: Array<Promise<number>> = [];
    // summary.html is written last (it needs the counts) but named second in the README.
    const jsonOf = (v: unknown) => Buffer.from(`${JSON.stringify(v, null, 2)}\n`);
    zip.addBuffer(jsonOf({ ...pkg.subject, generatedAt: pkg.generatedAt }), 'subject.json', { mtime });
    sections.push(
      streamedSection(
        zip,
        'records',
        pkg.records,
        new SealedSpool(path.join(dir, 'records.csv.sealed')),
        ['record_id', 'source', 'collected_at', 'policy_version', 'field', 'category', 'value'],
        (r) => r,
        (r) => recordCsv(r),
        (r) => {
          counts.records++;
          for (const [field, f] of Object.entries(r.fields)) {
            counts.fields++;
            if (sample.records.length < SUMMARY_ROWS)
              sample.records.push({
                record: r.id,
                source: r.source,
                at: r.collectedAt.toISOString(),
                field,
                category: f.category,
                value: shown(f.value),
              });
          }
        },
      ),
    );
    zip.addBuffer(jsonOf(pkg.consent), 'consent.json', { mtime });
    zip.addBuffer(
      Buffer.from(
        csvLine([
          'at',
          'purpose',
          'channel',
          'state',
          'method',
          'notice_version',
          'policy_version',
          'jurisdiction',
          'evidence',
        ]) +
          pkg.consent
            .map((c) =>
              csvLine([
                c.at.toISOString(),
                c.purpose,
                c.channel,
                c.state,
                c.method,
                c.noticeVersion,
                c.policyVersionId,
                c.jurisdiction,
                c.evidence,
              ]),
            )
            .join(''),
      ),
      'consent.csv',
      { mtime },
    );
    zip.addBuffer(jsonOf(pkg.disclosures), 'disclosures.json', { mtime });
    zip.addBuffer(
      Buffer.from(
        csvLine(['at', 'recipient', 'recipient_kind', 'purpose', 'categories', 'log_leaf']) +
          pkg.disclosures
            .map((d) =>
              csvLine([
                d.at.toISOString(),
                d.recipient,
                d.recipientKind,
                d.purpose,
                d.categories.join('; '),
                d.logLeaf,
              ]),
            )
            .join(''),
      ),
      'disclosures.csv',
      { mtime },
    );
    sections.push(
      streamedSection(
        zip,
        'connectors',
        pkg.connectorRows,
        new SealedSpool(path.join(dir, 'connectors.csv.sealed')),
        ['row', 'dataset', 'collection', 'column', 'category', 'value'],
        (c) => c,
        connectorCsv,
        (c) => {
          counts.connectorRows++;
          for (const [column, value] of Object.entries(c.row))
            if (sample.connectors.length < SUMMARY_ROWS)
              sample.connectors.push({
                dataset: c.dataset,
                collection: c.collection,
                column,
                category: c.categories[column] ?? '',
                value: shown(value),
              });
        },
      ),
    );
    zip.addReadStreamLazy('summary.html', { mtime }, (cb) => {
      Promise.all(sections).then(
        () => cb(null, Readable.from([Buffer.from(summaryHtml(pkg, counts, sample, pkg.unreadable.count))])),
        (err: unknown) => cb(err, Readable.from([])),
      );
    });
    zip.end();
    await Promise.all([written, ...sections]);
    return {
      files: [
        'README.txt',
        'subject.json',
        'records.json',
        'records.csv',
        'consent.json',
        'consent.csv',
        'disclosures.json',
        'disclosures.csv',
        'connectors.json',
        'connectors.csv',
        'summary.html',
      ],
      counts,
      unreadable: pkg.unreadable.count,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
