/**
 * RFC 8058 one-click unsubscribe and the mailto unsubscribe address, on every engine, as a mailbox
 * provider would use them: a POST with no cookie in either encoding withdraws the list and
 * suppresses the person's address at once, answers 200 without a redirect, and changes nothing
 * more the second time; a GET (a link scanner) changes nothing; an altered, forged or expired token
 * changes nothing; a mail to unsubscribe+TOKEN@MAILDOMAIN does what the POST does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { createTransport } from 'nodemailer';
import { DIALECTS } from '../helpers/databases.js';
import { forgeSignature } from '../helpers/tokens.js';
import { MAIL_DOMAIN, MARKETING, openMailApp, type MailTestApp } from './mail-app.js';

const ONE_CLICK = 'List-Unsubscribe=One-Click';
const DAY_MS = 86_400_000;

/** The multipart/form-data body a provider may send instead of the urlencoded one. */
function multipartBody(boundary: string): string {
  return [
    `--${boundary}`,
    'Content-Disposition: form-data; name="List-Unsubscribe"',
    '',
    'One-Click',
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

for (const dialect of DIALECTS) {
  describe(`one-click and mailto unsubscribe on ${dialect}`, () => {
    let t: MailTestApp;

    before(async () => {
      t = await openMailApp(dialect);
    });
    after(async () => t.cleanup());

    const postUrlencoded = (token: string, body = ONE_CLICK) =>
      t.app.http.inject({
        method: 'POST',
        url: `/unsubscribe/one-click/${token}`,
        payload: body,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'MailboxProvider/1.0' },
      });

    /** Who acted in each consent change audited for a subject, oldest first. */
    const consentActors = async (subjectId: string) =>
      (await t.app.audit.listBySubject(t.ctx, subjectId))
        .filter((e) => e.action === 'consent.change')
        .map((e) => e.actor as unknown);
    const decision = (subjectId: string) => t.app.consent.decide(t.ctx, subjectId, MARKETING, 'email');
    const suppressed = (address: string, list = MARKETING) =>
      t.app.suppression.isSuppressed(t.ctx, address, list);

    test('a urlencoded POST with no cookie withdraws the list and suppresses the address at once', async () => {
      const { subjectId, address } = await t.newSubject();
      assert.deepEqual(await decision(subjectId), { allowed: true, reason: 'opt_out_default' });
      const res = await postUrlencoded(t.unsubscribeToken(subjectId));
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers.location, undefined, 'no redirect');
      assert.equal(res.headers['set-cookie'], undefined, 'no cookie');
      assert.match(res.body, /You are unsubscribed/);
      assert.doesNotMatch(res.body, /preferences\?t=/, 'the answer opens no preference center');
      assert.deepEqual(await decision(subjectId), { allowed: false, reason: 'withdrawn' });
      assert.equal(await suppressed(address), true);
      assert.equal(await suppressed(address, 'another-list'), false, 'only that list');
      const history = await t.app.consent.history(t.ctx, { subjectId });
      assert.deepEqual(
        history.map((e) => [e.purpose, e.channel, e.state, e.method]),
        [[MARKETING, 'email', 'withdrawn', 'one_click']],
      );
      assert.equal(history[0]?.evidence?.userAgent, 'MailboxProvider/1.0');
      assert.deepEqual(
        (await t.app.suppression.suppressionsOf(t.ctx, address)).map((s) => [s.list, s.reason]),
        [[MARKETING, 'unsubscribe']],
      );
      assert.deepEqual(
        await consentActors(subjectId),
        [{ kind: 'subject_link', id: subjectId, scope: 'unsubscribe' }],
        'the audit names whose link unsubscribed',
      );
    });

    test('consent given again lifts the person’s own opt-out, never a bounce', async () => {
      const { subjectId, address } = await t.newSubject();
      await postUrlencoded(t.unsubscribeToken(subjectId));
      assert.equal(await suppressed(address), true);
      await t.app.consent.record(t.ctx, [
        {
          holder: { subjectId },
          purpose: MARKETING,
          channel: 'email',
          state: 'granted',
          method: 'preference_center',
        },
      ]);
      assert.equal(await suppressed(address), false, 'their own opt-out is lifted with their consent');
      assert.deepEqual(await decision(subjectId), { allowed: true, reason: 'opt_in_granted' });

      await t.app.suppression.suppress(t.ctx, { address, reason: 'hard_bounce' });
      await t.app.consent.record(t.ctx, [
        {
          holder: { subjectId },
          purpose: MARKETING,
          channel: 'email',
          state: 'granted',
          method: 'preference_center',
        },
      ]);
      assert.equal(await suppressed(address), true, 'a bounced address stays suppressed');
    });

    test('a multipart/form-data POST does the same', async () => {
      const { subjectId, address } = await t.newSubject();
      const boundary = '----provider-boundary-7MA4YWxkTrZu0gW';
      const res = await t.app.http.inject({
        method: 'POST',
        url: `/unsubscribe/one-click/${t.unsubscribeToken(subjectId)}`,
        payload: multipartBody(boundary),
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(await decision(subjectId), { allowed: false, reason: 'withdrawn' });
      assert.equal(await suppressed(address), true);
    });

    test('a malformed multipart body is a 400 that changes nothing, never a 500', async () => {
      const { subjectId, address } = await t.newSubject();
      const token = t.unsubscribeToken(subjectId);
      const before = await t.counts();
      for (const [contentType, payload] of [
        ['multipart/form-data; boundary=xyz', 'not a multipart body at all'],
        ['multipart/form-data', multipartBody('xyz')],
        ['multipart/form-data; boundary=xyz', multipartBody('xyz').slice(0, 40)],
      ] as const) {
        const res = await t.app.http.inject({
          method: 'POST',
          url: `/unsubscribe/one-click/${token}`,
          payload,
          headers: { 'content-type': contentType },
        });
        assert.equal(res.statusCode, 400, `${contentType}: ${res.body}`);
        assert.match(res.body, /nothing was changed/);
        assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
      }
      assert.deepEqual(await t.counts(), before);
      assert.equal(await suppressed(address), false);
    });

    test('a second POST answers 200 and changes nothing more', async () => {
      const { subjectId } = await t.newSubject();
      const token = t.unsubscribeToken(subjectId);
      assert.equal((await postUrlencoded(token)).statusCode, 200);
      const before = await t.counts();
      const again = await postUrlencoded(token);
      assert.equal(again.statusCode, 200);
      assert.equal(again.headers.location, undefined);
      assert.deepEqual(await t.counts(), before);
    });

    test('a GET shows a confirmation whose button posts the same body, and changes nothing', async () => {
      const { subjectId, address } = await t.newSubject();
      const token = t.unsubscribeToken(subjectId);
      const before = await t.counts();
      for (const method of ['GET', 'HEAD'] as const) {
        const res = await t.app.http.inject({ method, url: `/unsubscribe/one-click/${token}` });
        assert.equal(res.statusCode, 200);
      }
      const page = await t.app.http.inject({ method: 'GET', url: `/unsubscribe/one-click/${token}` });
      assert.equal(page.headers['cache-control'], 'no-store');
      assert.deepEqual(await t.counts(), before, 'GET and HEAD change nothing');
      assert.deepEqual(await decision(subjectId), { allowed: true, reason: 'opt_out_default' });
      assert.equal(await suppressed(address), false);

      const action = /<form method="post" action="([^"]+)">/.exec(page.body)?.[1];
      assert.equal(action, `/unsubscribe/one-click/${token}`);
      const field = /<input type="hidden" name="([^"]+)" value="([^"]+)">/.exec(page.body);
      assert.equal(`${field?.[1]}=${field?.[2]}`, ONE_CLICK);
      assert.equal((await postUrlencoded(token, `${field?.[1]}=${field?.[2]}`)).statusCode, 200);
      assert.deepEqual(await decision(subjectId), { allowed: false, reason: 'withdrawn' });
    });

    test('a POST without List-Unsubscribe=One-Click is 400 and changes nothing', async () => {
      const { subjectId } = await t.newSubject();
      const token = t.unsubscribeToken(subjectId);
      const before = await t.counts();
      assert.equal((await postUrlencoded(token, 'List-Unsubscribe=Two-Clicks')).statusCode, 400);
      const json = await t.app.http.inject({
        method: 'POST',
        url: `/unsubscribe/one-click/${token}`,
        payload: { 'List-Unsubscribe': 'One-Click' },
      });
      assert.equal(json.statusCode, 415, 'JSON is not an encoding RFC 8058 allows');
      assert.deepEqual(await t.counts(), before);
    });

    test('altered, forged and expired tokens are 400 or 403 and change nothing', async () => {
      const { subjectId, address } = await t.newSubject();
      const token = t.unsubscribeToken(subjectId);
      const before = await t.counts();
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const tampered = fc.oneof(
        // One character changed.
        fc
          .tuple(fc.nat({ max: token.length - 1 }), fc.constantFrom(...alphabet))
          .map(([i, c]) => token.slice(0, i) + c + token.slice(i + 1)),
        // Cut short or lengthened.
        fc.nat({ max: token.length - 1 }).map((n) => token.slice(0, n + 1)),
        fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/).map((s) => token + s),
        // Anything at all.
        fc.stringMatching(/^[A-Za-z0-9_-]{1,300}$/),
      );
      await fc.assert(
        fc.asyncProperty(tampered, async (bad) => {
          fc.pre(bad !== token);
          const res = await postUrlencoded(bad);
          assert.ok(res.statusCode === 400 || res.statusCode === 403, `${res.statusCode} for a bad token`);
          const page = await t.app.http.inject({ method: 'GET', url: `/unsubscribe/one-click/${bad}` });
          assert.ok(page.statusCode === 400 || page.statusCode === 403);
        }),
        { numRuns: 60 },
      );
      // A token of another deployment (another key) and an expired one.
      const expired = t.unsubscribeToken(subjectId, { now: new Date(Date.now() - 91 * DAY_MS) });
      assert.equal((await postUrlencoded(expired)).statusCode, 403);
      assert.deepEqual(await t.counts(), before);
      assert.deepEqual(await decision(subjectId), { allowed: true, reason: 'opt_out_default' });
      assert.equal(await suppressed(address), false);
    });

    test('a token still works 60 days after the mail was sent', async () => {
      const { subjectId } = await t.newSubject();
      const sent = new Date(Date.now() - 60 * DAY_MS);
      assert.equal((await postUrlencoded(t.unsubscribeToken(subjectId, { now: sent }))).statusCode, 200);
      assert.deepEqual(await decision(subjectId), { allowed: false, reason: 'withdrawn' });
    });

    test('a mail to unsubscribe+TOKEN@MAILDOMAIN unsubscribes as the POST does; a bad token is refused', async () => {
      const { subjectId, address } = await t.newSubject();
      const compact = await t.newSubject();
      const transport = createTransport({
        host: '127.0.0.1',
        port: t.smtpPort,
        secure: false,
        ignoreTLS: true,
      });
      try {
        const info = await transport.sendMail({
          from: address,
          to: `unsubscribe+${t.unsubscribeToken(subjectId)}@${MAIL_DOMAIN}`,
          subject: 'unsubscribe',
          text: 'Please unsubscribe me.',
        });
        // 250 comes after the commit: no wait needed.
        assert.match(info.response ?? '', /^250/);
        assert.deepEqual(await decision(subjectId), { allowed: false, reason: 'withdrawn' });
        assert.equal(await suppressed(address), true);
        const history = await t.app.consent.history(t.ctx, { subjectId });
        assert.deepEqual(
          history.map((e) => e.method),
          ['one_click'],
        );

        // The compact token the pipeline puts in the address, even after a relay upper-cased it.
        const local = `unsubscribe+${t.mailtoToken(compact.subjectId)}`;
        assert.ok(local.length <= 64, 'RFC 5321: a local part is at most 64 octets');
        const upper = await transport.sendMail({
          from: compact.address,
          to: `${local.toUpperCase()}@${MAIL_DOMAIN}`,
          subject: 'unsubscribe',
          text: 'Please unsubscribe me.',
        });
        assert.match(upper.response ?? '', /^250/);
        assert.deepEqual(await decision(compact.subjectId), { allowed: false, reason: 'withdrawn' });
        assert.deepEqual(await consentActors(compact.subjectId), [
          { kind: 'subject_link', id: compact.subjectId, scope: 'unsubscribe' },
        ]);
        assert.equal(await suppressed(compact.address), true);

        const other = await t.newSubject();
        const before = await t.counts();
        // A link token and a compact token, each with its signature changed.
        for (const forged of [
          forgeSignature(t.unsubscribeToken(other.subjectId)),
          forgeSignature(t.mailtoToken(other.subjectId)),
        ]) {
          await assert.rejects(
            transport.sendMail({
              from: other.address,
              to: `unsubscribe+${forged}@${MAIL_DOMAIN}`,
              subject: 'unsubscribe',
              text: 'x',
            }),
            (err: { responseCode?: number }) => err.responseCode === 550,
          );
        }
        assert.deepEqual(await t.counts(), before);
      } finally {
        transport.close();
      }
      assert.ok(!t.logs().includes(address), 'no address in the logs');
    });
  });
}
