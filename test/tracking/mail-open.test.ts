/**
 * E-mail opens on every engine, through a real campaign into a real SMTP server: the person who
 * allowed site-analytics on e-mail gets the open pixel, and opening it counts (a beacon event on the
 * e-mail channel, rolled up into the campaign's opens); the people who did not (nothing chosen, or
 * chosen for the web only) get no pixel; an open after the person withdrew counts nothing; a
 * forged, cut or malformed token gets the image and stores nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { createContext } from '../../src/platform/context.js';
import type { AnalyticsView } from '../../src/tracking/analytics.presenter.js';
import { MailOpenTokens } from '../../src/tracking/mail-open.tokens.js';
import { DIALECTS } from '../helpers/databases.js';
import { LIST, openCampaignApp, PUBLIC_URL, type CampaignTestApp } from '../comms/campaign-app.js';

const MAIL_CLIENT =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)';
const PIXEL = new RegExp(
  `<img src="${PUBLIC_URL.replaceAll('.', '\\.')}/b\\.gif\\?m=([a-z2-7]{80})" width="1" height="1" alt="">`,
);

const TEMPLATE = {
  subject: 'News for {{first_name}}',
  text: 'Hello {{first_name}},\n\nWe have new webinars.',
  html: '<html><body><p>Hello {{first_name}},</p><p>We have new webinars.</p></body></html>',
};

for (const dialect of DIALECTS) {
  describe(`e-mail opens on ${dialect}`, () => {
    let t: CampaignTestApp;

    before(async () => {
      t = await openCampaignApp(dialect);
    });
    after(async () => t.cleanup());

    async function openPixel(token: string): Promise<void> {
      const res = await t.app.http.inject({
        method: 'GET',
        url: `/b.gif?m=${token}`,
        headers: { 'user-agent': MAIL_CLIENT },
      });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'image/gif');
      assert.equal(res.rawPayload.length, 42, 'the 1x1 image, whatever became of the open');
    }

    async function opens(): Promise<Array<{ campaign_id: string | null; visitor: string }>> {
      return t.database.tables
        .selectFrom('beacon_events')
        .select(['campaign_id', 'visitor'])
        .where('channel', '=', 'email')
        .execute();
    }

    test('the pixel only for who allowed site-analytics on e-mail; an open counts only while they still do', async () => {
      const allowed = await t.register('EU', 'Ada');
      const nothing = await t.register('EU', 'Bea');
      const webOnly = await t.register('EU', 'Cy');
      const everyone = [allowed, nothing, webOnly];
      const choice = (
        subjectId: string,
        purpose: string,
        channel: string,
        state: 'granted' | 'withdrawn',
      ) => ({
        holder: { subjectId },
        purpose,
        channel,
        state,
        method: 'preference_center' as const,
      });
      await t.app.consent.record(t.ctx, [
        ...everyone.map((p) => choice(p.subjectId, LIST, 'email', 'granted')),
        choice(allowed.subjectId, 'site-analytics', 'email', 'granted'),
        choice(webOnly.subjectId, 'site-analytics', 'web', 'granted'),
      ]);

      const created = await t.app.http.inject({
        method: 'POST',
        url: '/api/v1/campaigns',
        headers: { authorization: `Bearer ${t.key}` },
        payload: {
          name: 'Webinars',
          list: LIST,
          template: TEMPLATE,
          audience: { subjects: everyone.map((p) => p.subjectId) },
        },
      });
      assert.equal(created.statusCode, 201, created.body);
      const campaignId = created.json<{ campaign: { id: string } }>().campaign.id;
      const started = await t.app.http.inject({
        method: 'POST',
        url: `/api/v1/campaigns/${campaignId}/send`,
        headers: { authorization: `Bearer ${t.key}` },
      });
      assert.equal(started.statusCode, 202, started.body);
      await t.drain(t.app.campaigns.createRunner());

      const htmlOf = async (address: string) => {
        const messages = t.sink.messages.filter((m) => m.to === address.toLowerCase());
        assert.equal(messages.length, 1, `one message to ${address}`);
        const mail = await simpleParser(messages[0]!.raw);
        return { html: typeof mail.html === 'string' ? mail.html : '', text: mail.text ?? '' };
      };
      const mine = await htmlOf(allowed.address);
      const token = PIXEL.exec(mine.html)?.[1];
      assert.ok(token !== undefined, `the pixel is in the HTML part: ${mine.html}`);
      assert.ok(!mine.text.includes('b.gif'), 'and not in the text part');
      assert.ok(!token.includes(allowed.address), 'the token holds no address');
      for (const p of [nothing, webOnly]) {
        const theirs = await htmlOf(p.address);
        assert.ok(!theirs.html.includes('/b.gif'), `no pixel for ${p.address}`);
        assert.match(theirs.html, /We have new webinars/);
      }

      // Opened: one e-mail open of the campaign, the visitor a keyed hash (no subject id, no address).
      await openPixel(token);
      let rows = await opens();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.campaign_id, campaignId);
      assert.match(rows[0].visitor, /^[0-9a-f]{64}$/);
      assert.ok(!rows[0].visitor.includes(allowed.subjectId.replaceAll('-', '')));

      // Rolled up, the campaign's opens are in the analytics.
      const ctx = createContext({ kind: 'job', id: 'test' });
      const today = new Date().toISOString().slice(0, 10);
      await t.app.analytics.service.rollUpDay(ctx, today);
      const { key } = await t.app.apiKeys.createKey(t.ctx, {
        name: 'analytics',
        system: 'product-analytics',
        scopes: ['analytics:read'],
      });
      const res = await t.app.http.inject({
        method: 'GET',
        url: `/api/v1/analytics?from=${today}&to=${today}&purpose=site-analytics`,
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json<AnalyticsView>().days[0]?.campaigns, [
        { value: campaignId, views: 1, visitors: 1 },
      ]);

      // Withdrawn since the message was sent: the pixel still loads, the open counts nothing.
      await t.app.consent.record(t.ctx, [choice(allowed.subjectId, 'site-analytics', 'email', 'withdrawn')]);
      await openPixel(token);
      rows = await opens();
      assert.equal(rows.length, 1, 'no open counted after the withdrawal');
    });

    test('a forged, cut or malformed token: the image, and nothing stored', async () => {
      const person = await t.register('US', 'Dee');
      const before = (await opens()).length;
      // A token of the right shape for a real person, signed with another key.
      const forger = new MailOpenTokens(
        new (await import('../../src/vault/use-keys.js')).UseKeys('beacons', [
          { version: 1, secret: Buffer.alloc(32, 7), createdAt: undefined },
        ]),
      );
      const forged = forger.create(
        {
          campaignId: '01930000-0000-7000-8000-00000000c0ff',
          subjectId: person.subjectId,
          purpose: 'site-analytics',
        },
        new Date(),
      );
      // A genuine token (US: site-analytics is opt-out, so the person allows it on e-mail).
      const genuine = new MailOpenTokens(t.app.keyring.use('beacons')).create(
        {
          campaignId: '01930000-0000-7000-8000-00000000c0ff',
          subjectId: person.subjectId,
          purpose: 'site-analytics',
        },
        new Date(),
      );
      const flipped = `${genuine.slice(0, 40)}${genuine[40] === 'a' ? 'b' : 'a'}${genuine.slice(41)}`;
      for (const bad of [forged, flipped, genuine.slice(0, 79), `${genuine}a`, 'not-a-token', '']) {
        await openPixel(encodeURIComponent(bad));
      }
      assert.equal((await opens()).length, before);
      // The genuine one counts: the refusals above were the tokens', not the person's.
      await openPixel(genuine);
      assert.equal((await opens()).length, before + 1);
    });
  });
}
