/**
 * The access and export package on every engine: for a person with records, consent changes and a
 * disclosure, the package holds every section and nothing of anyone else; the zip opens with an
 * independent reader (yauzl) and its README, HTML summary, JSON and CSV agree; markup in a value is
 * shown as text in the summary; the connectors' rows come in through the hook.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { ConnectorRow, ExportRecord } from '../../src/rights/export.service.js';
import { EXPORT_FILES, writeExportZip } from '../../src/rights/export.zip.js';
import { DIALECTS } from '../helpers/databases.js';
import { NOTIFIED_RECIPIENT, openRightsApp, type RightsTestApp } from './pledge-rights-app.js';
import { parseCsv, unzip } from './unzip.js';

async function zipOf(t: RightsTestApp, subjectId: string, connectorRows?: AsyncIterable<ConnectorRow>) {
  const pkg = await t.app.pledgeRights.exports.collectPledgeData(t.ctx, subjectId, { connectorRows });
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const result = await writeExportZip(pkg, out);
  return { pkg, result, files: await unzip(Buffer.concat(chunks)) };
}

function text(files: Map<string, Buffer>, name: string): string {
  const f = files.get(name);
  assert.ok(f, `${name} is in the zip`);
  return f.toString('utf8');
}

for (const dialect of DIALECTS) {
  describe(`export package on ${dialect}`, () => {
    let t: RightsTestApp;
    before(async () => {
      t = await openRightsApp(dialect);
    });
    after(async () => t.cleanup());

    test('every section of a person, nothing of another, in a zip whose files agree', async () => {
      const ada = await t.register('<script>alert("ada")</script>');
      const bob = await t.register('Bob');
      await t.app.collect.collect(t.ctx, 'feedback', {
        subject: { id: ada.id },
        data: { message: 'Great = fast, "really"', rating: 5 },
      });
      await t.app.consent.record(t.ctx, [
        { holder: { subjectId: ada.id }, purpose: 'marketing-email', state: 'withdrawn', method: 'api' },
      ]);
      await t.app.consent.record(t.ctx, [
        { holder: { subjectId: bob.id }, purpose: 'marketing-email', state: 'withdrawn', method: 'api' },
      ]);
      const shared = await t.app.share.disclose(t.ctx, {
        recipient: NOTIFIED_RECIPIENT,
        purpose: 'provide-service',
        subjects: [ada.id],
        fields: ['email'],
      });
      assert.equal(shared.subjects[0]?.disclosed, true);

      const found: ConnectorRow[] = [
        {
          dataset: 'support_desk',
          collection: 'tickets',
          row: { id: 17, requester: ada.email, subject: '=HYPERLINK("x")' },
          categories: { requester: 'user.contact.email' },
        },
        {
          dataset: 'support_desk',
          collection: 'notes',
          row: { ticket_id: 17, body: 'called back' },
          categories: {},
        },
      ];
      // As a connector gives them: one at a time, asynchronously.
      async function* rows(): AsyncIterable<ConnectorRow> {
        for (const row of found) yield await Promise.resolve(row);
      }
      const { result, files } = await zipOf(t, ada.id, rows());

      assert.deepEqual(
        [...files.keys()].sort(),
        EXPORT_FILES.map((f) => f.name).sort(),
        'every file the README lists is in the zip, and no other',
      );
      const readme = text(files, 'README.txt');
      for (const f of EXPORT_FILES) assert.ok(readme.includes(f.name), `README explains ${f.name}`);

      // Records: both of Ada's, with her values; none of Bob's.
      const records = JSON.parse(text(files, 'records.json')) as Array<
        Omit<ExportRecord, 'collectedAt'> & { collectedAt: string }
      >;
      assert.deepEqual(records.map((r) => r.source).sort(), ['feedback', 'registration']);
      const registration = records.find((r) => r.source === 'registration');
      assert.equal(registration?.fields.email?.value, ada.email);
      assert.equal(registration?.fields.first_name?.value, '<script>alert("ada")</script>');
      const all = JSON.stringify([...files.values()].map((b) => b.toString('utf8')));
      assert.ok(!all.includes(bob.email), "nothing of Bob's is in Ada's package");
      assert.ok(!all.includes(bob.id), "not even Bob's id");

      // records.csv holds the same fields and values as records.json.
      const csv = parseCsv(text(files, 'records.csv'));
      assert.deepEqual(csv[0], [
        'record_id',
        'source',
        'collected_at',
        'policy_version',
        'field',
        'category',
        'value',
      ]);
      const fromJson = records.flatMap((r) =>
        Object.entries(r.fields).map(([field, f]) => [
          r.id,
          field,
          f.category,
          typeof f.value === 'string' ? f.value : JSON.stringify(f.value),
        ]),
      );
      const fromCsv = csv.slice(1).map((c) => [c[0], c[4], c[5], (c[6] ?? '').replace(/^'(?=[=+\-@])/, '')]);
      assert.deepEqual(fromCsv.map((r) => r.join('|')).sort(), fromJson.map((r) => r.join('|')).sort());
      assert.equal(result.counts.records, 2);
      assert.equal(result.counts.fields, fromJson.length);

      // Consent: Ada's change, not Bob's.
      const consent = JSON.parse(text(files, 'consent.json')) as Array<{ purpose: string; state: string }>;
      assert.ok(consent.some((c) => c.purpose === 'marketing-email' && c.state === 'withdrawn'));
      assert.equal(parseCsv(text(files, 'consent.csv')).length - 1, consent.length);

      // Disclosures: the affiliate, with the date and the kinds of data.
      const disclosures = JSON.parse(text(files, 'disclosures.json')) as Array<{
        recipient: string;
        at: string;
        categories: string[];
      }>;
      assert.equal(disclosures.length, 1);
      assert.match(disclosures[0]?.recipient ?? '', /\S/);
      assert.ok(!Number.isNaN(Date.parse(disclosures[0]?.at ?? '')));
      assert.equal(parseCsv(text(files, 'disclosures.csv')).length - 1, 1);

      // Connector rows, in JSON exactly and in CSV with a formula defused.
      const connectors = JSON.parse(text(files, 'connectors.json')) as ConnectorRow[];
      assert.equal(connectors.length, 2);
      assert.equal(connectors[0]?.row.requester, ada.email);
      const connectorCsv = parseCsv(text(files, 'connectors.csv'));
      assert.ok(connectorCsv.some((r) => r[3] === 'subject' && r[5] === `'=HYPERLINK("x")`));
      assert.ok(connectorCsv.some((r) => r[3] === 'requester' && r[4] === 'user.contact.email'));

      // The summary: a page of its own, the person's values as text, never as markup.
      const page = text(files, 'summary.html');
      assert.match(page, /^<!doctype html>/);
      assert.ok(!page.includes('<script>'), 'a value never becomes a tag');
      assert.ok(page.includes('&lt;script&gt;alert(&quot;ada&quot;)&lt;/script&gt;'));
      assert.ok(!/\b(src|href)=["']?https?:/.test(page), 'it loads nothing from the network');
      assert.match(page, /Records<\/dt><dd>2 /);
      assert.ok(page.includes('support_desk'));
    });

    test('an unknown or erased person has no package: vault.subject_not_found', async () => {
      await assert.rejects(
        t.app.pledgeRights.exports.collectPledgeData(t.ctx, '00000000-0000-4000-8000-000000000000'),
        (err: Error & { code?: string }) => err.code === 'vault.subject_not_found',
      );
    });

    test('a person with more records than a page of the use gate gets all of them, in order', async () => {
      const ada = await t.register();
      const n = 2_345;
      for (let i = 0; i < n; i += 500)
        await t.app.vault.write(
          t.ctx,
          Array.from({ length: Math.min(500, n - i) }, (_v, j) => ({
            subjectId: ada.id,
            source: 'feedback',
            fields: { message: { category: 'user.feedback', value: `message ${i + j}` } },
          })),
        );
      const { result, files } = await zipOf(t, ada.id);
      assert.equal(result.counts.records, n + 1);
      const records = JSON.parse(text(files, 'records.json')) as Array<{
        id: string;
        fields: Record<string, { value: unknown }>;
      }>;
      assert.equal(records.length, n + 1);
      assert.equal(new Set(records.map((r) => r.id)).size, n + 1, 'no record twice');
      assert.equal(parseCsv(text(files, 'records.csv')).length - 1, result.counts.fields);
      assert.match(
        text(files, 'summary.html'),
        new RegExp(`The first 200 of ${result.counts.fields} are shown`),
      );
    });
  });
}
