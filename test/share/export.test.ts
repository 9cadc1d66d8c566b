/**
 * Bulk exports for a processor, on both engines: streamed as NDJSON a page at a time through the
 * same gate, with a record (share_exports) of exactly which categories went and how many subjects,
 * and one log entry per subject naming the export.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { openShareApp, type ShareTestApp } from './share-app.js';

interface ExportRecord {
  id: string;
  recipient: string;
  purpose: string;
  categories: string[];
  fields: string[];
  status: string;
  subjectCount: number;
  refusedCount: number;
}

for (const dialect of DIALECTS) {
  describe(`share exports (${dialect})`, () => {
    let t: ShareTestApp;
    const people: Array<{ id: string; email: string }> = [];
    let optedOut: { id: string; email: string };
    before(async () => {
      t = await openShareApp(dialect);
      for (let i = 0; i < 5; i++) people.push(await t.register());
      optedOut = await t.register();
      await t.app.consent.record(t.ctx, [
        { holder: { subjectId: optedOut.id }, purpose: '*', state: 'withdrawn', method: 'preference_center' },
      ]);
    });
    after(async () => {
      await t.cleanup();
    });

    test('streams every allowed subject as NDJSON, pages at a time, and records exactly what was sent', async () => {
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/api/v1/disclosures/exports',
        headers: { authorization: `Bearer ${t.shareKey}` },
        payload: {
          recipient: 'group-companies-uk',
          purpose: 'provide-service',
          fields: ['email', 'first_name'],
          pageSize: 2,
        },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(String(res.headers['content-type']), /application\/x-ndjson/);
      const lines = res.body
        .trim()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as { subject?: string; fields?: Record<string, unknown>; export?: ExportRecord },
        );
      const subjects = lines.filter((l) => l.subject !== undefined);
      assert.deepEqual(subjects.map((l) => l.subject).sort(), people.map((p) => p.id).sort());
      for (const l of subjects) assert.deepEqual(Object.keys(l.fields ?? {}).sort(), ['email', 'first_name']);
      // The person who opted out of distribution is not in it.
      assert.ok(!res.body.includes(optedOut.email));
      const record = lines[lines.length - 1]?.export;
      assert.ok(record);
      assert.equal(record.status, 'complete');
      assert.equal(record.subjectCount, people.length);
      assert.equal(record.refusedCount, 1);
      assert.equal(record.recipient, 'group-companies-uk');
      assert.deepEqual([...record.categories].sort(), ['user.contact.email', 'user.name.first']);

      // The per-subject entries name the export; the opted-out person's says why nothing went.
      for (const p of people) {
        const [entry] = await t.entries(p.id, 'share.disclose');
        assert.equal(entry?.details?.export, record.id);
        assert.equal(entry?.details?.recipient, 'group-companies-uk');
      }
      const [refused] = await t.entries(optedOut.id, 'share.refuse');
      assert.equal(refused?.details?.code, 'share.opted_out');
      assert.equal(refused?.details?.export, record.id);

      const row = await tablesOf(t.database)
        .selectFrom('share_exports')
        .selectAll()
        .where('id', '=', record.id)
        .executeTakeFirstOrThrow();
      assert.equal(Number(row.subject_count), people.length);
      assert.ok(!JSON.stringify(row).includes('@'));

      const got = await t.app.http.inject({
        method: 'GET',
        url: `/api/v1/disclosures/exports/${record.id}`,
        headers: { authorization: `Bearer ${t.shareKey}` },
      });
      assert.equal(got.statusCode, 200);
      assert.equal(got.json<{ export: ExportRecord }>().export.subjectCount, people.length);
    });

    test('without fields, every field the recipient may receive for the purpose; through the TS API', async () => {
      const lines = [];
      for await (const line of t.app.share.exportFor(t.ctx, {
        recipient: 'email-delivery',
        purpose: 'provide-service',
      }))
        lines.push(line);
      const last = lines[lines.length - 1];
      assert.equal(last?.kind, 'summary');
      if (last?.kind !== 'summary') return;
      assert.ok(last.export.fields.includes('email'));
      assert.ok(!last.export.fields.includes('phone'), 'email-delivery does not receive phone numbers');
      assert.ok(
        !last.export.fields.includes('card_number'),
        'the never_store pledge keeps card numbers away',
      );
      // A processor for the service it provides: the opt-out of distribution does not stop it.
      assert.equal(last.export.subjectCount, people.length + 1);
    });

    test('a reader that stops mid-export leaves it recorded as failed, with what the gate let out', async () => {
      const lines = t.app.share.exportFor(t.ctx, {
        recipient: 'group-companies-uk',
        purpose: 'provide-service',
        fields: ['email'],
        pageSize: 2,
      });
      const first = await lines.next();
      assert.equal(first.done, false);
      await lines.return(undefined);
      const [latest] = await t.app.share.listExports(t.ctx, 1);
      assert.equal(latest?.status, 'failed');
      assert.ok(latest.finishedAt);
      // The first page was read and recorded (its two subjects), though only one line was taken.
      assert.equal(latest.subjectCount + latest.refusedCount, 2);
    });

    test('a refused flow is an error answer, not a stream, and records no export', async () => {
      const before = await tablesOf(t.database).selectFrom('share_exports').select('id').execute();
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/api/v1/disclosures/exports',
        headers: { authorization: `Bearer ${t.shareKey}` },
        payload: { recipient: 'card-processor', purpose: 'marketing-email' },
      });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(
        res.json<{ error: { code: string } }>().error.code,
        'share.purpose_not_declared_for_recipient',
      );
      const afterRows = await tablesOf(t.database).selectFrom('share_exports').select('id').execute();
      assert.equal(afterRows.length, before.length);
    });
  });
}
