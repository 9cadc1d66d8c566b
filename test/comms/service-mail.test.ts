/**
 * Service mail is DKIM-signed like campaigns: a person asks the preference center's e-mail form for
 * a link, a real SMTP server captures the message, and mailauth verifies both signatures against the
 * published keys, with From and Subject over-signed (and the absence of List-Unsubscribe signed), so
 * a header added on the way breaks them. On every engine (the form looks the person up).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { DIALECTS } from '../helpers/databases.js';
import { openCampaignApp, testResolver, type CampaignTestApp } from './campaign-app.js';

for (const dialect of DIALECTS) {
  describe(`service mail on ${dialect}`, () => {
    let t: CampaignTestApp;

    before(async () => {
      t = await openCampaignApp(dialect);
    });
    after(async () => t.cleanup());

    test('the preference-center link a person asks for leaves DKIM-signed, From and Subject over-signed', async () => {
      const { address } = await t.register('US');
      const form = await t.app.http.inject({ method: 'GET', url: '/unsubscribe' });
      assert.equal(form.statusCode, 200);
      const cookie = form.cookies.find((c) => c.name === '__Host-pledge_csrf');
      assert.ok(cookie, 'the form sets its anti-forgery cookie');
      const csrf = /<input type="hidden" name="_csrf" value="([^"]*)">/.exec(form.body)?.[1];
      assert.ok(csrf);
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
      await t.sink.waitForAccepted(1);
      const message = t.sink.messages.find((m) => m.to === address.toLowerCase());
      assert.ok(message, 'the link was mailed to the person');
      assert.equal(message.from, 'privacy@example-online.test', 'the envelope sender is the From address');

      const verified = await dkimVerify(message.raw, { resolver: testResolver() });
      assert.deepEqual(
        verified.results
          .map((r) => [r.status.result, (r.status as { header?: { a?: string } }).header?.a])
          .sort(),
        [
          ['pass', 'ed25519-sha256'],
          ['pass', 'rsa-sha256'],
        ],
      );
      const head = message.raw
        .toString('latin1')
        .split('\r\n\r\n')[0]!
        .replace(/\r\n[ \t]+/g, ' ');
      for (const signature of head.split('\r\n').filter((l) => /^DKIM-Signature:/i.test(l))) {
        const h = (/\bh=([^;]+)/.exec(signature)?.[1] ?? '').toLowerCase().split(/\s*:\s*/);
        assert.equal(h.filter((n) => n === 'from').length, 2, `From over-signed: ${signature}`);
        assert.equal(h.filter((n) => n === 'subject').length, 2, `Subject over-signed: ${signature}`);
        assert.ok(h.includes('list-unsubscribe'), 'the absence of List-Unsubscribe is signed');
      }
      assert.match(head, /^Subject: Your link to your privacy choices at Example Online/m);

      // A List-Unsubscribe added on the way (a relay, a forwarder) breaks both signatures.
      const tampered = message.raw
        .toString('latin1')
        .replace('\r\n\r\n', '\r\nList-Unsubscribe: <https://attacker.test/u>\r\n\r\n');
      const broken = await dkimVerify(Buffer.from(tampered, 'latin1'), { resolver: testResolver() });
      assert.deepEqual(
        broken.results.map((r) => r.status.result),
        ['fail', 'fail'],
      );
      assert.ok(!t.logs().includes(address), 'no address in the logs');
    });
  });
}
