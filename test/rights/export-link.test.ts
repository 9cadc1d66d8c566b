/**
 * The export's signed link on every engine, over HTTP: a GET (what a mail scanner does) shows a page
 * with a POST button and spends nothing; the POST downloads a zip that opens; the download budget
 * holds under concurrent POSTs; a forged or expired link is refused in the one error shape; the zip
 * at rest is sealed (no zip, README or value readable in the table), and the expiry job deletes it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext } from '../../src/platform/context.js';
import { fixedClock } from '../../src/platform/clock.js';
import { EXPORT_EXPIRE_JOB } from '../../src/rights/export.delivery.js';
import { DIALECTS } from '../helpers/databases.js';
import { openRightsApp, type RightsTestApp } from './pledge-rights-app.js';
import { unzip } from './unzip.js';

type ErrorBody = { error: { code: string; message: string } };

for (const dialect of DIALECTS) {
  describe(`export link on ${dialect}`, () => {
    let t: RightsTestApp;
    before(async () => {
      t = await openRightsApp(dialect);
    });
    after(async () => t.cleanup());

    const get = (url: string) => t.app.http.inject({ method: 'GET', url });
    const post = (url: string) =>
      t.app.http.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: '',
      });
    const downloadsOf = async (id: string) =>
      (
        await t.database.tables
          .selectFrom('export_deliveries')
          .select('downloads')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).downloads;

    test('GET spends nothing, POST downloads, and the budget holds under concurrent POSTs', async () => {
      const ada = await t.register();
      const stored = await t.app.pledgeRights.deliverExport(t.ctx, ada.id, { maxDownloads: 2 });
      assert.match(stored.path, /^\/requests\/export\//);

      for (let i = 0; i < 3; i++) {
        const page = await get(stored.path);
        assert.equal(page.statusCode, 200, page.body);
        assert.match(String(page.headers['content-type']), /^text\/html/);
        assert.equal(page.headers['referrer-policy'], 'no-referrer');
        assert.ok(page.body.includes(`<form method="post" action="${stored.path}">`), 'a button that POSTs');
        assert.match(page.body, /for 2 more downloads/);
        assert.ok(!/<script/i.test(page.body), 'no script needed');
      }
      assert.equal(await downloadsOf(stored.deliveryId), 0, 'three GETs spent nothing');

      const answers = await Promise.all(Array.from({ length: 6 }, () => post(stored.path)));
      const ok = answers.filter((a) => a.statusCode === 200);
      assert.equal(ok.length, 2, 'exactly the budget');
      for (const a of answers.filter((x) => x.statusCode !== 200)) {
        assert.equal(a.statusCode, 410);
        assert.equal(a.json<ErrorBody>().error.code, 'rights.export_downloads_exhausted');
      }
      assert.equal(await downloadsOf(stored.deliveryId), 2);
      const first = ok[0];
      assert.ok(first);
      assert.equal(first.headers['content-type'], 'application/zip');
      assert.match(String(first.headers['content-disposition']), /attachment; filename="personal-data\.zip"/);
      const files = await unzip(first.rawPayload);
      assert.ok(files.has('README.txt') && files.has('summary.html') && files.has('records.csv'));
      assert.ok(files.get('records.json')?.toString('utf8').includes(ada.email));
      // The page now says so, and still offers nothing.
      const spent = await get(stored.path);
      assert.equal(spent.statusCode, 200);
      assert.match(spent.body, /downloaded as many times as it allows/);
      assert.ok(!spent.body.includes('<form'));
    });

    test('the zip at rest is sealed', async () => {
      const ada = await t.register();
      const stored = await t.app.pledgeRights.deliverExport(t.ctx, ada.id);
      const rows = await t.database.tables
        .selectFrom('export_chunks')
        .select('data')
        .where('delivery_id', '=', stored.deliveryId)
        .execute();
      assert.ok(rows.length >= 1);
      const atRest = Buffer.concat(rows.map((r) => Buffer.from(r.data)));
      assert.equal(atRest.indexOf(Buffer.from('PK\u0003\u0004', 'latin1')), -1, 'no zip header');
      for (const plain of ['README', 'records.json', ada.email, ada.id])
        assert.equal(atRest.indexOf(Buffer.from(plain)), -1, `no "${plain}" at rest`);
    });

    test('forged and expired links are refused in the error shape; the expiry job deletes the zip', async () => {
      const ada = await t.register();
      const stored = await t.app.pledgeRights.deliverExport(t.ctx, ada.id, { ttlMs: 3_600_000 });
      const last = stored.path.slice(-1);
      const forged = `${stored.path.slice(0, -1)}${last === 'A' ? 'B' : 'A'}`;
      const otherId = stored.path.replace(
        /export\/[0-9a-f]/,
        (m) => `${m.slice(0, -1)}${m.endsWith('0') ? '1' : '0'}`,
      );
      for (const url of [forged, otherId, '/requests/export/nonsense', '/requests/export/']) {
        for (const res of [await get(url), await post(url)]) {
          const body = res.json<ErrorBody>();
          assert.equal(typeof body.error.message, 'string');
          if (url === '/requests/export/') {
            // No token at all: no such page.
            assert.equal(res.statusCode, 404, res.body);
            continue;
          }
          assert.equal(res.statusCode, 403, `${url}: ${res.body}`);
          assert.equal(body.error.code, 'rights.export_link_invalid');
        }
      }
      assert.equal(await downloadsOf(stored.deliveryId), 0, 'no forged POST spent a download');

      // Past its expiry (a clock an hour ahead), the link is refused even before the job has run.
      const later = createContext(
        { kind: 'anonymous' },
        { clock: fixedClock(new Date(stored.expiresAt.getTime() + 1)) },
      );
      const token = stored.path.slice('/requests/export/'.length);
      await assert.rejects(
        t.app.pledgeRights.deliveries.download(later, token),
        (err: Error & { code?: string; status?: number }) =>
          err.code === 'rights.export_link_expired' && err.status === 410,
      );
      // The expiry job was queued with the delivery, due when it expires.
      const jobs = await t.app.jobs.list(t.ctx, { type: EXPORT_EXPIRE_JOB });
      const job = jobs.find((j) => j.key === `export-expire:${stored.deliveryId}`);
      assert.ok(job, 'an expiry job');
      assert.equal(job.runAt.getTime(), stored.expiresAt.getTime());
      // What the job does: the sealed chunks go, and the link answers 410 in the error shape.
      assert.ok((await t.app.pledgeRights.deliveries.expire(t.ctx, stored.deliveryId)) >= 1);
      const chunks = await t.database.tables
        .selectFrom('export_chunks')
        .select('seq')
        .where('delivery_id', '=', stored.deliveryId)
        .execute();
      assert.deepEqual(chunks, []);
      for (const res of [await get(stored.path), await post(stored.path)]) {
        assert.equal(res.statusCode, 410);
        assert.equal(res.json<ErrorBody>().error.code, 'rights.export_link_expired');
      }
    });
  });
}
