/**
 * A decision without a channel never says "allowed" for a channel the person withdrew, and the
 * consent view lists each channel's state: after a one-click unsubscribe (which withdraws
 * marketing-email on e-mail), a CRM reading `GET /api/v1/subjects/:id/consent` or asking
 * `POST /api/v1/decisions` without a channel reads "not allowed, withdrawn on email", so it does
 * not mail the person again. On SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DIALECTS } from '../helpers/databases.js';
import { MARKETING, openMailApp, type MailTestApp } from '../comms/mail-app.js';

const IMPROVE = 'improve-products'; // used on web and in_product, opt-out everywhere

interface ChannelView {
  channel: string;
  choice: { state: string; method: string } | null;
  allowed: boolean;
  reason: string;
}
interface PurposeView {
  purpose: string;
  allowed: boolean;
  reason: string;
  withdrawnChannels: string[];
  channels: ChannelView[];
}

for (const dialect of DIALECTS) {
  describe(`decisions without a channel on ${dialect}`, () => {
    let t: MailTestApp;
    /** A key of the system that sends marketing mail (it reads marketing-email). */
    let key: string;
    /** A key of the system that serves improve-products (used on web and in_product). */
    let analyticsKey: string;

    before(async () => {
      t = await openMailApp(dialect);
      const scopes = ['consent:read' as const];
      ({ key } = await t.app.apiKeys.createKey(t.ctx, {
        name: 'crm',
        scopes,
        system: 'marketing-automation',
      }));
      ({ key: analyticsKey } = await t.app.apiKeys.createKey(t.ctx, {
        name: 'analytics',
        scopes,
        system: 'product-analytics',
      }));
    });
    after(async () => t.cleanup());

    const view = async (subjectId: string, as = key) => {
      const res = await t.app.http.inject({
        method: 'GET',
        url: `/api/v1/subjects/${subjectId}/consent`,
        headers: { authorization: `Bearer ${as}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      const purposes = res.json<{ purposes: PurposeView[] }>().purposes;
      return (purpose: string) => {
        const found = purposes.find((p) => p.purpose === purpose);
        assert.ok(found, `the view lists ${purpose}`);
        return found;
      };
    };
    const decideOverHttp = (payload: object) =>
      t.app.http.inject({
        method: 'POST',
        url: '/api/v1/decisions',
        headers: { authorization: `Bearer ${analyticsKey}` },
        payload,
      });

    test('after a one-click unsubscribe the consent view says not allowed, withdrawn on email', async () => {
      const { subjectId } = await t.newSubject();
      const fresh = (await view(subjectId))(MARKETING);
      assert.equal(fresh.allowed, true, 'opt-out in the US: allowed before');
      assert.equal(fresh.reason, 'opt_out_default');
      assert.deepEqual(fresh.withdrawnChannels, []);
      assert.deepEqual(fresh.channels, [
        { channel: 'email', choice: null, allowed: true, reason: 'opt_out_default' },
      ]);

      const res = await t.app.http.inject({
        method: 'POST',
        url: `/unsubscribe/one-click/${t.unsubscribeToken(subjectId)}`,
        payload: 'List-Unsubscribe=One-Click',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(res.statusCode, 200);

      const after = (await view(subjectId))(MARKETING);
      assert.equal(after.allowed, false);
      assert.equal(after.reason, 'withdrawn');
      assert.deepEqual(after.withdrawnChannels, ['email']);
      assert.equal(after.channels.length, 1);
      assert.equal(after.channels[0]?.allowed, false);
      assert.equal(after.channels[0]?.reason, 'withdrawn');
      assert.deepEqual(
        after.channels[0]?.choice && [after.channels[0].choice.state, after.channels[0].choice.method],
        ['withdrawn', 'one_click'],
      );
    });

    test('a decision without a channel is allowed only when every channel of the purpose allows it', async () => {
      const { subjectId } = await t.newSubject();
      await t.app.consent.record(t.ctx, [
        { holder: { subjectId }, purpose: IMPROVE, channel: 'web', state: 'withdrawn', method: 'api' },
      ]);
      assert.deepEqual(await t.app.consent.decide(t.ctx, subjectId, IMPROVE, 'in_product'), {
        allowed: true,
        reason: 'opt_out_default',
      });
      assert.deepEqual(await t.app.consent.decide(t.ctx, subjectId, IMPROVE), {
        allowed: false,
        reason: 'withdrawn',
        withdrawnChannels: ['web'],
      });

      const one = await decideOverHttp({ subject: subjectId, purpose: IMPROVE });
      assert.equal(one.statusCode, 200, one.body);
      assert.deepEqual(one.json(), {
        decision: {
          subject: subjectId,
          purpose: IMPROVE,
          channel: null,
          allowed: false,
          reason: 'withdrawn',
          withdrawnChannels: ['web'],
        },
      });
      const other = (await t.newSubject()).subjectId;
      const batch = await decideOverHttp({ subjects: [subjectId, other], purpose: IMPROVE });
      assert.equal(batch.statusCode, 200, batch.body);
      assert.deepEqual(batch.json<{ decisions: unknown[] }>().decisions, [
        { subject: subjectId, allowed: false, reason: 'withdrawn', withdrawnChannels: ['web'] },
        { subject: other, allowed: true, reason: 'opt_out_default' },
      ]);
      const onWeb = await decideOverHttp({ subject: subjectId, purpose: IMPROVE, channel: 'in_product' });
      assert.equal(onWeb.json<{ decision: { allowed: boolean } }>().decision.allowed, true, 'per channel');

      const improve = (await view(subjectId, analyticsKey))(IMPROVE);
      assert.equal(improve.allowed, false);
      assert.deepEqual(improve.withdrawnChannels, ['web']);
      assert.deepEqual(
        improve.channels.map((c) => [c.channel, c.allowed, c.reason]),
        [
          ['web', false, 'withdrawn'],
          ['in_product', true, 'opt_out_default'],
        ],
      );

      // Allowed again on every channel: the decision without a channel is allowed again.
      await t.app.consent.record(t.ctx, [
        { holder: { subjectId }, purpose: IMPROVE, channel: 'web', state: 'granted', method: 'api' },
      ]);
      assert.deepEqual(await t.app.consent.decide(t.ctx, subjectId, IMPROVE), {
        allowed: true,
        reason: 'opt_out_default',
      });
    });
  });
}
