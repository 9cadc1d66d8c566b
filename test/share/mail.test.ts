/**
 * Mail handed to the e-mail delivery provider is a disclosure, on both engines: each message sent
 * is recorded (recipient, purpose, campaign, the fields it carried, never the address) in the
 * commit that marks it sending, and a provider the share gate refuses stops the sends with the
 * gate's code on each send, not silently. Real SMTP (the sink), the app's own campaign routes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadDkimKeys } from '../../src/comms/dkim.js';
import { mailSettingsOf } from '../../src/comms/mail.settings.js';
import { MessagePipeline } from '../../src/comms/message.pipeline.js';
import { deriveLinkTokenKeys } from '../../src/consent/link-tokens.js';
import { SystemGate } from '../../src/manifest/systems.gate.js';
import { ShareRepository } from '../../src/share/share.repository.js';
import { ShareService } from '../../src/share/share.service.js';
import { NO_LEGAL_APPROVALS } from '../../src/share/share.standing.js';
import { DIALECTS } from '../helpers/databases.js';
import { LIST, openCampaignApp, type CampaignTestApp } from '../comms/campaign-app.js';

const TEMPLATE = {
  subject: 'News for {{first_name}}',
  text: 'Hello {{first_name}},\n\nWe have new webinars.',
  html: '<html><body><p>Hello {{first_name}},</p></body></html>',
};

async function campaignFor(t: CampaignTestApp, subjects: string[]): Promise<string> {
  const created = await t.app.http.inject({
    method: 'POST',
    url: '/api/v1/campaigns',
    headers: { authorization: `Bearer ${t.key}` },
    payload: { name: 'Webinars', list: LIST, template: TEMPLATE, audience: { subjects } },
  });
  assert.equal(created.statusCode, 201, created.body);
  const id = created.json<{ campaign: { id: string } }>().campaign.id;
  const sent = await t.app.http.inject({
    method: 'POST',
    url: `/api/v1/campaigns/${id}/send`,
    headers: { authorization: `Bearer ${t.key}` },
  });
  assert.equal(sent.statusCode, 202, sent.body);
  return id;
}

async function sendsOf(
  t: CampaignTestApp,
  id: string,
): Promise<Array<{ subjectId: string; status: string; reason: string | null }>> {
  const res = await t.app.http.inject({
    method: 'GET',
    url: `/api/v1/campaigns/${id}/sends?limit=1000`,
    headers: { authorization: `Bearer ${t.key}` },
  });
  return res.json<{ sends: Array<{ subjectId: string; status: string; reason: string | null }> }>().sends;
}

for (const dialect of DIALECTS) {
  describe(`mail through the share gate (${dialect})`, () => {
    let t: CampaignTestApp;
    before(async () => {
      t = await openCampaignApp(dialect);
    });
    after(async () => {
      await t.cleanup();
    });

    test('each message handed to the delivery provider is recorded with what it carried', async () => {
      const grace = await t.register('US', 'Grace');
      const alan = await t.register('US', 'Alan');
      const id = await campaignFor(t, [grace.subjectId, alan.subjectId]);
      const before = t.sink.accepted();
      await t.drain(t.app.campaigns.createRunner());
      assert.equal(t.sink.accepted(), before + 2);
      for (const person of [grace, alan]) {
        const entries = (await t.app.audit.listBySubject(t.ctx, person.subjectId)).filter(
          (e) => e.action === 'share.pass_through',
        );
        assert.equal(entries.length, 1);
        const e = entries[0]!;
        assert.equal(e.purpose, LIST);
        assert.equal(e.details?.recipient, 'email-delivery');
        assert.equal(e.details?.campaign, id);
        assert.deepEqual([...(e.details?.fields as string[])].sort(), ['first_name', 'to']);
        assert.deepEqual([...(e.details?.categories as string[])].sort(), [
          'user.contact.email',
          'user.name.first',
        ]);
        assert.ok(!JSON.stringify(e).includes(person.address));
      }
    });

    test('the preference-center link a person asks for is a disclosure of their address, recorded', async () => {
      const { subjectId, address } = await t.register('US');
      const form = await t.app.http.inject({ method: 'GET', url: '/unsubscribe' });
      const cookie = form.cookies.find((c) => c.name === '__Host-pledge_csrf');
      const csrf = /<input type="hidden" name="_csrf" value="([^"]*)">/.exec(form.body)?.[1];
      assert.ok(cookie && csrf);
      const before = t.sink.accepted();
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/unsubscribe/email',
        payload: new URLSearchParams({ _csrf: csrf, email: address }).toString(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          cookie: `${cookie.name}=${cookie.value}`,
        },
      });
      assert.equal(res.statusCode, 200, res.body);
      await t.sink.waitForAccepted(before + 1);
      // Recorded right after the hand-over; the page answered before it.
      const deadline = Date.now() + 5_000;
      let entries: Awaited<ReturnType<typeof t.app.audit.listBySubject>> = [];
      while (Date.now() < deadline) {
        entries = (await t.app.audit.listBySubject(t.ctx, subjectId)).filter(
          (e) => e.action === 'share.pass_through',
        );
        if (entries.length > 0) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      assert.equal(entries.length, 1);
      assert.equal(entries[0]?.details?.recipient, 'email-delivery');
      assert.equal(entries[0]?.details?.mail, 'preferences_link');
      assert.deepEqual(entries[0]?.details?.categories, ['user.contact.email']);
    });

    test('a provider the gate refuses stops the sends, each with the gate code, and nothing is sent', async () => {
      const ada = await t.register('US');
      const id = await campaignFor(t, [ada.subjectId]);
      const manifest = { manifest: t.app.active.manifest };
      const share = new ShareService({
        db: t.app.database.db,
        repo: new ShareRepository(t.app.database.db),
        audit: t.app.audit,
        manifest,
        systems: new SystemGate(manifest),
        vault: t.app.vault,
        consent: t.app.consent,
        subjects: t.app.subjects,
        standing: {
          standingOf: (_ctx, recipient) =>
            Promise.resolve({
              ok: false,
              code: 'share.recipient_paused',
              policyVersion: '2013-01-01',
              message: `a material change awaits the acknowledgement of ${recipient}`,
            }),
        },
        legal: NO_LEGAL_APPROVALS,
      });
      const settings = mailSettingsOf(t.config, t.app.active.manifest);
      const pipeline = new MessagePipeline({
        manifest: t.app.active.manifest,
        consent: t.app.consent,
        vault: t.app.vault,
        suppression: t.app.suppression,
        linkKey: deriveLinkTokenKeys(t.app.keyring.use('links')),
        returnTokenSecret: t.app.keyring.use('message_id'),
        settings,
        dkim: loadDkimKeys(t.config.dkim, settings.mailDomain),
        share,
      });
      const before = t.sink.accepted();
      await t.drain(t.app.campaigns.createRunner({ pipeline }));
      assert.equal(t.sink.accepted(), before);
      const [send] = await sendsOf(t, id);
      assert.equal(send?.status, 'pending');
      assert.equal(send?.reason, 'share.recipient_paused');
      assert.match(t.logs(), /refused by the share gate/);
      const entries = (await t.app.audit.listBySubject(t.ctx, ada.subjectId)).filter(
        (e) => e.action === 'share.pass_through',
      );
      assert.deepEqual(entries, []);
    });
  });
}
