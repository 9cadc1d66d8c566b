/**
 * A segment's audience is queued in pages, not in the transaction that starts the campaign: the start
 * queues no send itself, each expand job queues up to 1,000 subjects and the job of the next page,
 * and the campaign is done only once its whole audience is queued and sent. Subjects created after
 * the start are not in it. On SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EXPAND_PAGE } from '../../src/comms/campaign.runner.js';
import { DIALECTS, tablesOf } from '../helpers/databases.js';
import { LIST, openCampaignApp, type CampaignTestApp } from './campaign-app.js';

const TEMPLATE = {
  subject: 'News',
  text: 'Hello,\n\nWe have news.',
  html: '<html><body><p>News</p></body></html>',
};
/** A jurisdiction no other subject of the test has; marketing-email is opt-in there. */
const SEGMENT = { jurisdiction: 'NZ' };

for (const dialect of DIALECTS) {
  describe(`campaign segments in pages on ${dialect}`, () => {
    let t: CampaignTestApp;
    before(async () => {
      t = await openCampaignApp(dialect);
    });
    after(async () => t.cleanup());

    const api = async (method: 'GET' | 'POST', url: string, body?: object) => {
      const res = await t.app.http.inject({
        method,
        url,
        headers: { authorization: `Bearer ${t.key}` },
        ...(body ? { payload: body } : {}),
      });
      return { status: res.statusCode, json: res.json<Record<string, unknown>>() };
    };
    const sendsOf = async (campaignId: string) =>
      (
        await tablesOf(t.database)
          .selectFrom('campaign_sends')
          .select(['subject_id', 'status'])
          .where('campaign_id', '=', campaignId)
          .execute()
      ).map((r) => r.subject_id);
    const statusOf = async (campaignId: string) =>
      ((await api('GET', `/api/v1/campaigns/${campaignId}`)).json.campaign as { status: string }).status;

    test('more subjects than a page: queued page by page, each once, done only at the end', async () => {
      const count = EXPAND_PAGE + 3;
      const ids: string[] = [];
      for (let i = 0; i < count; i += 100) {
        const batch = Array.from({ length: Math.min(100, count - i) }, () =>
          t.app.vault.createSubject(t.ctx, { kind: 'prospect', jurisdiction: SEGMENT.jurisdiction }),
        );
        ids.push(...(await Promise.all(batch)).map((s) => s.id));
      }
      const created = await api('POST', '/api/v1/campaigns', {
        name: 'Segment',
        list: LIST,
        template: TEMPLATE,
        audience: { segment: SEGMENT },
      });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const id = (created.json.campaign as { id: string }).id;
      assert.equal((await api('POST', `/api/v1/campaigns/${id}/send`)).status, 202);
      assert.deepEqual(await sendsOf(id), [], 'the start queued no send itself');
      // Created after the start: not in the audience.
      const late = await t.app.vault.createSubject(t.ctx, { kind: 'prospect', jurisdiction: 'NZ' });

      const runner = t.app.campaigns.createRunner();
      await runner.runOnce();
      assert.equal((await sendsOf(id)).length, EXPAND_PAGE, 'the first page');
      assert.equal(await statusOf(id), 'sending');

      await t.drain(runner);
      const sends = await sendsOf(id);
      assert.equal(sends.length, count, 'every subject of the segment');
      assert.deepEqual(new Set(sends), new Set(ids), 'each once, and no one else');
      assert.ok(!sends.includes(late.id), 'not one created after the start');
      assert.equal(await statusOf(id), 'done');
      const status = (await api('GET', `/api/v1/campaigns/${id}`)).json.campaign as {
        counts: { total: number; byReason: Record<string, number> };
      };
      assert.equal(status.counts.total, count);
      assert.equal(status.counts.byReason.opt_in_missing, count, 'opt-in in NZ: none mailed');
      assert.equal(t.sink.accepted(), 0);
    });
  });
}
