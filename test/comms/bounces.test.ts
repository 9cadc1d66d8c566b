/**
 * Bounces and complaints. The parser: delivery status notifications (RFC 3464) and complaint
 * reports (RFC 5965) as mail systems write them, and random input, which it never throws on. Then,
 * on every engine, reports about messages Pledge sent (their signed return token in the return path
 * or the quoted Message-ID) sent with nodemailer to the real inbound SMTP listener on 127.0.0.1: a
 * hard bounce suppresses the address for every list, soft bounces only at the limit, a complaint
 * suppresses and withdraws the list its message was for; relaying, non-reports and oversized
 * messages are refused. Then the same by webhook, as JSON events and as raw reports, its body held
 * to PLEDGE_BODY_LIMIT and its events to their properties. Forged reports: inbound-forgery.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  bounceKind,
  parseDeliveryStatus,
  parseHeaderBlocks,
  parseMailReport,
  typedAddress,
  unsubscribeTokenIn,
} from '../../src/comms/bounces.js';
import { DIALECTS } from '../helpers/databases.js';
import { randomEmail } from '../helpers/vault.js';
import { MAIL_DOMAIN, MARKETING, openMailApp, type MailTestApp } from './mail-app.js';
import { arf, dsn } from './report-fixtures.js';

// ---- the parser ------------------------------------------------------------------------------

describe('report parser', () => {
  test('a DSN: each recipient with its address, action, status and what it means', async () => {
    const address = 'louisl@larry.slip.umd.test';
    const report = await parseMailReport(dsn({ address, action: 'failed', status: '5.1.1 (user unknown)' }));
    assert.equal(report.type, 'delivery_status');
    assert.ok(report.type === 'delivery_status');
    assert.deepEqual(report.recipients, [{ address, action: 'failed', status: '5.1.1', kind: 'hard' }]);
    assert.equal(report.original?.listId, `${MARKETING}.${MAIL_DOMAIN}`);
    assert.equal(unsubscribeTokenIn(report.original?.listUnsubscribe), 'AAAA');
  });

  test('RFC 3464 appendix: a DSN for several recipients, one delayed, one failed, one relayed', () => {
    const body = [
      'Reporting-MTA: dns; cs.utk.edu',
      '',
      'Original-Recipient: rfc822;louisl@larry.slip.umd.edu',
      'Final-Recipient: rfc822;louisl@larry.slip.umd.edu',
      'Action: failed',
      'Status: 4.0.0',
      'Diagnostic-Code: smtp; 426 connection timed out',
      '',
      'Final-Recipient: rfc822;arathib@vnet.ibm.com',
      'Action: failed',
      'Status: 5.0.0 (permanent failure)',
      "Diagnostic-Code: smtp; 550 'arathib@vnet.IBM.COM' is not a",
      '    registered gateway user',
      '',
      'Final-Recipient: rfc822;wsnell@sdcc13.ucsd.edu',
      'Action: delayed',
      'Status: 4.0.0',
      '',
      'Final-Recipient: rfc822;nobody@example.test',
      'Action: relayed',
      'Status: 2.0.0',
    ].join('\n');
    assert.deepEqual(
      parseDeliveryStatus(body).map((r) => [r.address, r.kind]),
      [
        ['louisl@larry.slip.umd.edu', 'soft'],
        ['arathib@vnet.ibm.com', 'hard'],
        ['wsnell@sdcc13.ucsd.edu', 'soft'],
        ['nobody@example.test', undefined],
      ],
    );
    assert.equal(bounceKind('failed', undefined), 'hard');
    assert.equal(bounceKind('delivered', '2.0.0'), undefined);
  });

  test('an ARF report: a complaint, its recipient and the original message it is about', async () => {
    const report = await parseMailReport(arf({ address: 'user@recipient.test', token: 'TOKEN_x-1' }));
    assert.ok(report.type === 'feedback');
    assert.equal(report.feedbackType, 'abuse');
    assert.equal(report.complaint, true);
    assert.deepEqual(report.addresses, ['user@recipient.test']);
    assert.equal(unsubscribeTokenIn(report.original?.listUnsubscribe), 'TOKEN_x-1');
    const redacted = await parseMailReport(arf({ token: 'T' }));
    assert.ok(redacted.type === 'feedback');
    assert.deepEqual(redacted.addresses, ['redacted@recipient.test'], 'the To of the original, else');
    const notSpam = await parseMailReport(arf({ token: 'T', feedbackType: 'not-spam' }));
    assert.ok(notSpam.type === 'feedback' && !notSpam.complaint);
  });

  test('anything else is not a report, and nothing makes the parser throw', async () => {
    assert.deepEqual(await parseMailReport('Subject: hello\r\n\r\nJust a mail.'), { type: 'not_a_report' });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 2000 }),
          fc
            .string({ maxLength: 500 })
            .map((s) => `Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n${s}`),
          fc
            .string({ maxLength: 500 })
            .map(
              (s) =>
                `Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n${s}\r\n--b--`,
            ),
        ),
        async (raw) => {
          const report = await parseMailReport(raw);
          assert.ok(['delivery_status', 'feedback', 'not_a_report'].includes(report.type));
        },
      ),
      { numRuns: 150 },
    );
  });

  test('header blocks: folded fields come back unfolded, names lower-cased, blocks in order', () => {
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/);
    const value = fc
      .array(fc.stringMatching(/^[!-~]{1,12}$/), { minLength: 1, maxLength: 6 })
      .map((w) => w.join(' '));
    const field = fc.tuple(name, value, fc.array(fc.boolean(), { maxLength: 6 }));
    fc.assert(
      fc.property(
        fc.array(fc.array(field, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 4 }),
        fc.constantFrom('\r\n', '\n'),
        (blocks, eol) => {
          const text = blocks
            .map((fields) =>
              fields
                .map(([n, v, folds]) => {
                  // Fold at some of the spaces, as RFC 5322 allows.
                  let i = 0;
                  const folded = v.replace(/ /g, () => (folds[i++] ? `${eol} ` : ' '));
                  return `${n}: ${folded}`;
                })
                .join(eol),
            )
            .join(`${eol}${eol}`);
          const parsed = parseHeaderBlocks(text);
          assert.equal(parsed.length, blocks.length);
          blocks.forEach((fields, b) => {
            const expected = new Map<string, string[]>();
            for (const [n, v] of fields)
              expected.set(n.toLowerCase(), [...(expected.get(n.toLowerCase()) ?? []), v]);
            assert.deepEqual(parsed[b], expected);
          });
        },
      ),
    );
  });

  test('typed addresses: rfc822 and utf-8 types, with or without angle brackets', () => {
    fc.assert(
      fc.property(
        fc.emailAddress(),
        fc.constantFrom('rfc822;', 'RFC822; ', 'utf-8;', 'rfc822 ; '),
        fc.boolean(),
        (address, type, brackets) => {
          assert.equal(typedAddress(`${type}${brackets ? `<${address}>` : address}`), address);
        },
      ),
    );
    assert.equal(typedAddress('x400; /G=a/S=b/'), undefined);
  });
});

// ---- the listener and the webhook, on every engine --------------------------------------------

for (const dialect of DIALECTS) {
  describe(`bounces and complaints on ${dialect}`, () => {
    let t: MailTestApp;

    before(async () => {
      t = await openMailApp(dialect);
    });
    after(async () => {
      await t.cleanup();
    });

    const deliver = (raw: string, to?: string) => t.deliver(raw, to);

    const suppressions = (address: string) => t.suppressions(address);

    const webhook = (payload: string | object, contentType = 'application/json', key = t.key) =>
      t.app.http.inject({
        method: 'POST',
        url: '/api/v1/mail/events',
        payload,
        headers: { 'content-type': contentType, ...(key ? { authorization: `Bearer ${key}` } : {}) },
      });

    /** The return path of a message Pledge sent: `bounces+TOKEN@MAILDOMAIN`. */
    const verp = (returnToken: string) => `bounces+${returnToken}@${MAIL_DOMAIN}`;

    test('a hard bounce to the return path of a message Pledge sent suppresses the address for every list', async () => {
      const { subjectId, address } = await t.newSubject();
      const returnToken = t.returnToken(subjectId);
      const info = await deliver(dsn({ address, action: 'failed', status: '5.1.1' }), verp(returnToken));
      assert.match(info.response ?? '', /^250/);
      assert.deepEqual(await suppressions(address), [['*', 'hard_bounce']]);
      assert.equal(await t.app.suppression.isSuppressed(t.ctx, address, 'any-list'), true);
      // The same report again changes nothing.
      const before = await t.counts();
      await deliver(dsn({ address, action: 'failed', status: '5.1.1' }), verp(returnToken));
      assert.deepEqual(await t.counts(), before);
    });

    test('soft bounces quoting a signed Message-ID suppress only at the limit', async () => {
      const { subjectId, address } = await t.newSubject();
      // To the plain bounce address: the token is the one in the quoted headers' Message-ID.
      const returnToken = t.returnToken(subjectId);
      await deliver(dsn({ address, action: 'delayed', status: '4.4.7', returnToken }));
      await deliver(dsn({ address, action: 'failed', status: '4.2.2', returnToken }));
      assert.deepEqual(await suppressions(address), [], 'two soft bounces: not yet');
      await deliver(dsn({ address, action: 'delayed', status: '4.4.1', returnToken }));
      assert.deepEqual(
        await suppressions(address),
        [['*', 'soft_bounces']],
        'the third (the limit) suppresses',
      );
    });

    test('a complaint about a message Pledge sent suppresses the address and withdraws its list', async () => {
      const { subjectId, address } = await t.newSubject();
      const token = t.unsubscribeToken(subjectId);
      assert.deepEqual(await t.app.consent.decide(t.ctx, subjectId, MARKETING, 'email'), {
        allowed: true,
        reason: 'opt_out_default',
      });
      await deliver(arf({ address, token, returnToken: t.returnToken(subjectId) }), `fbl@${MAIL_DOMAIN}`);
      assert.deepEqual(await suppressions(address), [['*', 'complaint']]);
      assert.deepEqual(await t.app.consent.decide(t.ctx, subjectId, MARKETING, 'email'), {
        allowed: false,
        reason: 'withdrawn',
      });
      const history = await t.app.consent.history(t.ctx, { subjectId });
      assert.deepEqual(
        history.map((e) => [e.purpose, e.channel, e.state, e.method]),
        [[MARKETING, 'email', 'withdrawn', 'complaint']],
      );
    });

    test('a complaint with the recipient redacted still finds the person through the signed Message-ID', async () => {
      const { subjectId, address } = await t.newSubject();
      const report = arf({ token: t.unsubscribeToken(subjectId), returnToken: t.returnToken(subjectId) });
      await deliver(report, `fbl@${MAIL_DOMAIN}`);
      assert.deepEqual(await suppressions(address), [['*', 'complaint']]);
      assert.deepEqual(await suppressions('redacted@recipient.test'), [], 'not the redacted address');
      assert.equal((await t.app.consent.decide(t.ctx, subjectId, MARKETING, 'email')).allowed, false);
    });

    test('relaying, non-reports and oversized messages are refused and change nothing', async () => {
      const before = await t.counts();
      await assert.rejects(
        deliver(dsn({ address: randomEmail(), action: 'failed', status: '5.1.1' }), 'someone@elsewhere.test'),
        (err: { responseCode?: number }) => err.responseCode === 550,
      );
      await assert.rejects(
        deliver(`From: a@b.test\r\nTo: bounces@${MAIL_DOMAIN}\r\nSubject: hi\r\n\r\nNot a report.\r\n`),
        (err: { responseCode?: number }) => err.responseCode === 550,
      );
      await assert.rejects(
        deliver(`Subject: big\r\n\r\n${'x'.repeat(76).concat('\r\n').repeat(140_000)}`),
        (err: { responseCode?: number }) => err.responseCode === 552,
      );
      assert.deepEqual(await t.counts(), before);
    });

    test('the webhook takes JSON events and answers what each did, without addresses', async () => {
      const hard = randomEmail();
      const soft = randomEmail();
      const { subjectId, address } = await t.newSubject();
      const events = [
        { type: 'bounce', address: hard, kind: 'hard', status: '5.1.1' },
        { type: 'bounce', address: soft, kind: 'soft' },
        { type: 'complaint', address, list: MARKETING },
        { type: 'bounce', address: hard, kind: 'hard' },
      ];
      const res = await webhook(events);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(JSON.parse(res.body), {
        report: 'json',
        results: [
          { type: 'bounce', outcome: 'suppressed' },
          { type: 'bounce', outcome: 'counted' },
          { type: 'complaint', outcome: 'suppressed', withdrawn: true },
          { type: 'bounce', outcome: 'already_suppressed' },
        ],
      });
      assert.ok(![hard, soft, address].some((a) => res.body.includes(a)));
      assert.deepEqual(await suppressions(hard), [['*', 'hard_bounce']]);
      assert.deepEqual(await suppressions(soft), []);
      assert.equal((await t.app.consent.decide(t.ctx, subjectId, MARKETING, 'email')).allowed, false);
    });

    test('the webhook checks its input and its key', async () => {
      const before = await t.counts();
      const bad = await webhook([
        { type: 'bounce', address: 'a@b.test', kind: 'permanent' },
        { type: 'open' },
      ]);
      assert.equal(bad.statusCode, 400);
      const body = JSON.parse(bad.body) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'mail.event_invalid');
      assert.match(body.error.message, /\/0\/kind/);
      assert.match(body.error.message, /\/1\/type/);
      assert.equal(
        (await webhook({ type: 'bounce', address: 'a@b.test', kind: 'hard' }, 'application/json', ''))
          .statusCode,
        401,
      );
      const { key: reader } = await t.app.apiKeys.createKey(t.ctx, {
        name: 'reader',
        system: 'marketing-automation',
        scopes: ['consent:read'],
      });
      assert.equal(
        (await webhook({ type: 'bounce', address: 'a@b.test', kind: 'hard' }, 'application/json', reader))
          .statusCode,
        403,
      );
      assert.deepEqual(await t.counts(), before);
    });

    test('the webhook refuses unknown properties and bodies over PLEDGE_BODY_LIMIT, changing nothing', async () => {
      const before = await t.counts();
      const misspelt = await webhook([
        { type: 'bounce', address: randomEmail(), kind: 'hard', adress: 'x' },
        { type: 'complaint', address: randomEmail(), lists: MARKETING },
      ]);
      assert.equal(misspelt.statusCode, 400, misspelt.body);
      const error = (JSON.parse(misspelt.body) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'mail.event_invalid');
      assert.match(error.message, /\/0\/adress: unknown property/);
      assert.match(error.message, /\/1\/lists: unknown property/);
      // The default limit is 1 MiB: a raw report of 1.5 MiB is refused before it is read.
      const large = `${dsn({ address: randomEmail(), action: 'failed', status: '5.1.1' })}${`${'x'.repeat(76)}\r\n`.repeat(20_000)}`;
      const tooLarge = await webhook(large, 'message/rfc822');
      assert.equal(tooLarge.statusCode, 413, tooLarge.body);
      assert.equal(
        (JSON.parse(tooLarge.body) as { error: { code: string } }).error.code,
        'request.too_large',
      );
      assert.deepEqual(await t.counts(), before);
    });

    test('the webhook takes raw reports: message/rfc822 and multipart/report', async () => {
      const a = randomEmail();
      const whole = await webhook(dsn({ address: a, action: 'failed', status: '5.2.1' }), 'message/rfc822');
      assert.equal(whole.statusCode, 200, whole.body);
      assert.deepEqual(JSON.parse(whole.body), {
        report: 'delivery_status',
        results: [{ type: 'bounce', outcome: 'suppressed' }],
      });
      assert.deepEqual(await suppressions(a), [['*', 'hard_bounce']]);

      const { subjectId, address } = await t.newSubject();
      const message = arf({ address, token: t.unsubscribeToken(subjectId) });
      const [head = '', ...rest] = message.split('\r\n\r\n');
      const contentType = /Content-Type: (multipart\/report;[^]*?)\r\n(?![ \t])/i.exec(`${head}\r\n`)?.[1];
      assert.ok(contentType);
      const body = await webhook(rest.join('\r\n\r\n'), contentType.replace(/\r\n\s+/g, ' '));
      assert.equal(body.statusCode, 200, body.body);
      assert.deepEqual(JSON.parse(body.body), {
        report: 'feedback',
        results: [{ type: 'complaint', outcome: 'suppressed', withdrawn: true }],
      });
      assert.deepEqual(await suppressions(address), [['*', 'complaint']]);
    });

    test('the suppression check answers per address, in order', async () => {
      const { address } = await t.newSubject();
      const clean = randomEmail();
      await t.app.mailEvents.bounce(t.ctx, { address, kind: 'hard' });
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/api/v1/mail/suppressions/check',
        payload: { list: MARKETING, addresses: [clean, address.toUpperCase(), 'not an address'] },
        headers: { authorization: `Bearer ${t.key}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(JSON.parse(res.body), { suppressed: [false, true, true] });
    });

    test('no address reaches the logs', () => {
      assert.ok(!/person-[0-9a-f]{12}@example\.test/.test(t.logs()), 'no address in the logs');
      assert.match(t.logs(), /inbound mail applied/);
    });
  });
}
