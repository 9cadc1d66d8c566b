/**
 * `pledge render --format ropa` and `--format ropa-csv`: the record of processing activities
 * (GDPR Art. 30) of the example manifest, one activity per purpose with its systems, categories,
 * data subjects, recipients, transfers, time limits and security measures; the CSV read back by an
 * RFC 4180 parser; text from the manifest escaped in HTML and defused in CSV.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import { buildRopa } from '../../src/manifest/ropa.document.js';
import { csvField, renderRopaCsv, renderRopaHtml } from '../../src/manifest/ropa.renderer.js';
import { ROOT, runPledge } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const loaded = parseManifest(await readFile(EXAMPLE, 'utf8'), EXAMPLE);
assert.deepEqual(loaded.problems, [], 'the example manifest is valid');
const example = loaded.manifest as Manifest;

/** An RFC 4180 reader, written for the test: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += ch;
  }
  assert.equal(field + row.join(''), '', 'the last record ends with CRLF');
  return rows;
}

describe('the record of processing activities of the example', () => {
  const ropa = buildRopa(example);
  const activity = (key: string) => {
    const a = ropa.activities.find((x) => x.purpose.key === key);
    assert.ok(a, `an activity for ${key}`);
    return a;
  };

  test('one activity per purpose, under the controller with its address and contact', () => {
    assert.deepEqual(
      ropa.activities.map((a) => a.purpose.key),
      example.purposes.map((p) => p.key),
    );
    assert.equal(ropa.controller.legalName, example.organization.legal_name);
    assert.match(ropa.controller.address, /Goleta/);
    assert.equal(ropa.controller.contact, 'privacy@example-online.test');
  });

  test('each activity lists the systems that serve its purpose, with what they use for it', () => {
    for (const p of example.purposes) {
      const expected = example.systems.filter((s) => s.purposes.includes(p.key)).map((s) => s.key);
      assert.deepEqual(
        activity(p.key).systems.map((s) => s.key),
        expected,
        `systems of ${p.key}`,
      );
    }
    const billing = activity('provide-service').systems.find((s) => s.key === 'billing');
    assert.ok(billing?.categories.some((c) => c.key === 'user.financial.payment_card'));
    assert.ok(activity('marketing-email').systems.some((s) => s.key === 'marketing-automation'));
  });

  test('categories, data use, data subjects and legal basis come from the purpose', () => {
    const marketing = activity('marketing-email');
    assert.deepEqual(marketing.dataUse, {
      key: 'marketing.communications.email',
      name: 'Marketing Email Communications',
    });
    assert.deepEqual(
      marketing.dataSubjects.map((s) => s.name),
      ['Customer', 'Prospect'],
    );
    assert.deepEqual(
      marketing.categories.map((c) => c.name),
      ['Name', 'E-mail address', 'Organization'],
    );
    assert.equal(marketing.legalBasis, 'Consent (Art. 6(1)(a))');
  });

  test('recipients are listed with what they receive for this purpose, pair by pair', () => {
    const group = (key: string) => activity(key).recipients.find((r) => r.key === 'group-companies');
    // The group companies declare pairs: for marketing they receive name and e-mail only.
    assert.deepEqual(
      group('marketing-email')?.categories.map((c) => c.key),
      ['user.name', 'user.contact.email'],
    );
    assert.deepEqual(
      activity('legal-compliance').recipients.map((r) => r.key),
      // The delivery providers carry the verification codes of people's data requests.
      ['email-delivery', 'authorities', 'sms-delivery'],
    );
    assert.equal(group('site-analytics'), undefined);
  });

  test('transfers name the country and the mechanism; time limits and safeguards are stated', () => {
    const transfers = activity('provide-service').transfers;
    assert.deepEqual(transfers, [
      {
        recipient: { key: 'group-companies-uk', name: 'Example Systems UK Ltd.' },
        country: 'GB',
        countryName: 'the United Kingdom',
        mechanism: { key: 'scc', name: 'Standard Contractual Clauses' },
      },
    ]);
    assert.deepEqual(activity('site-analytics').retention, [
      'At most 13 months',
      'Behavioral data: at most 2 years (Usage data older than two years no longer helps us run or improve the service.)',
      'Cookie identifier: at most 13 months (Cookies live at most 13 months, as European regulators recommend.)',
    ]);
    assert.deepEqual(activity('legal-compliance').safeguards, example.organization.safeguards);
  });

  test('the CSV has a header and one record per purpose, and reads back to the same cells', () => {
    const rows = parseCsv(renderRopaCsv(example));
    assert.deepEqual(rows[0], [
      'Controller',
      'Purpose',
      'Description',
      'Data use (fideslang)',
      'Legal basis',
      'Data subjects',
      'Categories of personal data',
      'Systems',
      'Recipients',
      'Transfers to other countries',
      'Time limits for erasure',
      'Security measures',
    ]);
    assert.equal(rows.length, example.purposes.length + 1);
    const marketing = rows.find(
      (r) => r[1] === 'Tell you about products, partners, opportunities and events (marketing-email)',
    );
    assert.ok(marketing, 'a record for marketing-email, its comma-holding name quoted and read back');
    assert.equal(marketing[3], 'Marketing Email Communications (marketing.communications.email)');
    assert.equal(marketing[5], 'Customer (customer)\nProspect (prospect)');
    assert.match(
      marketing[8] ?? '',
      /^E-mail delivery provider \(processor, US\): user\.contact\.email, user\.name$/m,
    );
    assert.ok(
      rows.every((r) => r.length === 12),
      'every record has every column',
    );
  });

  test('the HTML page has a row per purpose with every column', () => {
    const page = renderRopaHtml(example);
    assert.match(page, /^<!DOCTYPE html>/);
    assert.match(page, /<h1>Record of processing activities<\/h1>/);
    for (const p of example.purposes) assert.match(page, new RegExp(`<tr id="purpose-${p.key}">`));
    assert.match(
      page,
      /<li>Example Systems UK Ltd\. to the United Kingdom: Standard Contractual Clauses<\/li>|<td>Example Systems UK Ltd\. to the United Kingdom: Standard Contractual Clauses<\/td>/,
    );
    assert.equal(page.match(/<th scope="col">/g)?.length, 11);
  });
});

describe('manifest text cannot become markup or a formula', () => {
  const hostile = structuredClone(example);
  const first = hostile.purposes[0];
  assert.ok(first);
  first.name = '<script>alert(1)</script> "quoted", here';
  first.description = '=HYPERLINK("http://evil.test","click")';

  test('HTML escapes every manifest string', () => {
    const page = renderRopaHtml(hostile);
    assert.ok(!page.includes('<script>alert'));
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot;, here'));
  });

  test('CSV quotes by RFC 4180 and defuses a leading formula character', () => {
    const row = parseCsv(renderRopaCsv(hostile))[1];
    assert.equal(row?.[1], '<script>alert(1)</script> "quoted", here (provide-service)');
    assert.equal(row?.[2], `'=HYPERLINK("http://evil.test","click")`);
    assert.equal(csvField('a"b'), '"a""b"');
    assert.equal(csvField('line\r\nbreak'), '"line\r\nbreak"');
    assert.equal(csvField('-1'), "'-1");
    assert.equal(csvField('plain'), 'plain');
  });
});

describe('pledge render --format ropa', () => {
  test('writes the HTML record; ropa-csv the CSV', async () => {
    const htmlRun = await runPledge(['render', 'examples/example-online/pledge.yaml', '--format', 'ropa']);
    assert.equal(htmlRun.code, 0, htmlRun.stderr);
    assert.equal(htmlRun.stdout, renderRopaHtml(example));
    const csvRun = await runPledge(['render', 'examples/example-online/pledge.yaml', '--format', 'ropa-csv']);
    assert.equal(csvRun.code, 0, csvRun.stderr);
    assert.equal(csvRun.stdout, renderRopaCsv(example));
  });
});
