/**
 * Inbound mail must prove it answers Pledge's own mail: over real SMTP, on every engine, forged
 * bounce reports (DSN) and complaint reports (ARF), without a return token, with a changed one,
 * with someone else's or an expired one, change nothing (no suppression, no consent change, no
 * audit entry) and are dropped, counted and logged without the address; genuine ones still work.
 * A mailto unsubscribe acts on its token's person and list only. The listener holds a bounded
 * number of bytes across all its clients.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { createTransport } from 'nodemailer';
import { InboundSmtpListener } from '../../src/comms/inbound.smtp.js';
import { DIALECTS } from '../helpers/databases.js';
import { forgeSignature } from '../helpers/tokens.js';
import { MAIL_DOMAIN, MARKETING, openMailApp, type MailTestApp } from './mail-app.js';
import { arf, dsn, smtpSession } from './report-fixtures.js';

const DAY_MS = 86_400_000;

for (const dialect of DIALECTS) {
  describe(`inbound mail authenticity on ${dialect}`, () => {
    let t: MailTestApp;

    before(async () => {
      t = await openMailApp(dialect);
    });
    after(async () => {
      await t.cleanup();
    });

    const deliver = (raw: string, to?: string) => t.deliver(raw, to);
    const suppressions = (address: string) => t.suppressions(address);
    /** The return path of a message Pledge sent: `bounces+TOKEN@MAILDOMAIN`. */
    const verp = (returnToken: string) => `bounces+${returnToken}@${MAIL_DOMAIN}`;
    const dropped = () => t.app.inboundSmtp?.counts().dropped ?? Number.NaN;

    test('forged bounce and complaint reports change nothing, and are dropped, counted and logged without the address', async () => {
      const victim = await t.newSubject();
      const attacker = await t.newSubject();
      const genuine = t.returnToken(victim.subjectId);
      const before = await t.counts();
      const droppedBefore = dropped();
      const reports: Array<[string, string]> = [
        // No return token at all: what anyone who can reach the port could send until now.
        [dsn({ address: victim.address, action: 'failed', status: '5.1.1' }), `bounces@${MAIL_DOMAIN}`],
        [arf({ address: victim.address, token: t.unsubscribeToken(victim.subjectId) }), `fbl@${MAIL_DOMAIN}`],
        // A return token with its signature changed, in the return path and in the Message-ID.
        [
          dsn({
            address: victim.address,
            action: 'failed',
            status: '5.1.1',
            returnToken: forgeSignature(genuine),
          }),
          verp(forgeSignature(genuine)),
        ],
        [
          arf({ address: victim.address, token: 'x', returnToken: forgeSignature(genuine) }),
          `fbl@${MAIL_DOMAIN}`,
        ],
        // The attacker's own genuine token (from a message Pledge sent them) about the victim's address.
        [
          dsn({ address: victim.address, action: 'failed', status: '5.1.1' }),
          verp(t.returnToken(attacker.subjectId)),
        ],
        // A genuine token of the victim's, but past the window (30 days after sending).
        [
          dsn({ address: victim.address, action: 'failed', status: '5.1.1' }),
          verp(t.returnToken(victim.subjectId, { now: new Date(Date.now() - 31 * DAY_MS) })),
        ],
        [
          arf({
            address: victim.address,
            token: 'x',
            returnToken: t.returnToken(victim.subjectId, { now: new Date(Date.now() - 31 * DAY_MS) }),
          }),
          `fbl@${MAIL_DOMAIN}`,
        ],
      ];
      for (const [raw, to] of reports) {
        const info = await deliver(raw, to);
        assert.match(
          info.response ?? '',
          /^250/,
          'accepted like any report: the answer tells a forger nothing',
        );
      }
      assert.deepEqual(await t.counts(), before, 'no suppression, no consent change, no audit entry');
      assert.deepEqual(await suppressions(victim.address), []);
      assert.deepEqual(await t.app.consent.decide(t.ctx, victim.subjectId, MARKETING, 'email'), {
        allowed: true,
        reason: 'opt_out_default',
      });
      assert.equal(dropped() - droppedBefore, reports.length, 'each dropped report is counted');
      const logs = t.logs();
      for (const reason of ['no_token', 'bad_signature', 'not_recipient', 'expired']) {
        assert.match(logs, new RegExp(`"dropReason":"${reason}"`));
      }
      assert.ok(!logs.includes(victim.address), 'no address in the logs');

      // The victim's genuine, recent token still works.
      await deliver(dsn({ address: victim.address, action: 'failed', status: '5.1.1' }), verp(genuine));
      assert.deepEqual(await suppressions(victim.address), [['*', 'hard_bounce']]);
    });

    test('a mail to unsubscribe+TOKEN acts on the token’s person and list only, whatever the message says', async () => {
      const holder = await t.newSubject();
      const victim = await t.newSubject();
      const before = await t.counts();
      // From the victim's address, with a forged bounce of the victim's address in the body, also
      // sent to the bounce address.
      const info = await t.deliver(
        dsn({ address: victim.address, action: 'failed', status: '5.1.1' }),
        [`unsubscribe+${t.mailtoToken(holder.subjectId)}@${MAIL_DOMAIN}`, `bounces@${MAIL_DOMAIN}`],
        victim.address,
      );
      assert.match(info.response ?? '', /^250/);
      assert.equal((await t.app.consent.decide(t.ctx, holder.subjectId, MARKETING, 'email')).allowed, false);
      assert.equal(await t.app.suppression.isSuppressed(t.ctx, holder.address, MARKETING), true);
      assert.deepEqual(await t.app.consent.decide(t.ctx, victim.subjectId, MARKETING, 'email'), {
        allowed: true,
        reason: 'opt_out_default',
      });
      assert.deepEqual(await suppressions(victim.address), []);
      const after = await t.counts();
      assert.equal(after.events - before.events, 1, "one consent change: the token's person's");
    });

    test('the listener holds a bounded number of bytes across all clients: past it a message waits (452)', async () => {
      const bytes = new EventEmitter();
      let inFlight = 0;
      const listener = new InboundSmtpListener({
        port: 0,
        host: '127.0.0.1',
        mailDomain: MAIL_DOMAIN,
        mailEvents: t.app.mailEvents,
        log: t.app.http.log,
        maxMessageBytes: 150_000,
        maxBytesInFlight: 200_000,
        onBytesInFlight: (n) => {
          inFlight = n;
          bytes.emit('change', n);
        },
      });
      const { port } = await listener.listen();
      const other = createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
      const filler = (n: number) => `${'x'.repeat(76)}\r\n`.repeat(Math.ceil(n / 78));
      try {
        // A client in the middle of a 120 kB message holds its bytes ...
        const slow = await smtpSession(port);
        for (const line of ['EHLO slow.test', 'MAIL FROM:<>', `RCPT TO:<bounces@${MAIL_DOMAIN}>`]) {
          assert.match(await slow.command(line), /^250/);
        }
        assert.match(await slow.command('DATA'), /^354/);
        const held = new Promise<void>((resolve) => {
          const on = (n: number) => {
            if (n >= 120_000) {
              bytes.off('change', on);
              resolve();
            }
          };
          bytes.on('change', on);
        });
        slow.write(`Subject: slow\r\n\r\n${filler(120_000)}`);
        await held;
        // ... so another client's 100 kB message would pass the budget: refused for now.
        const big = `Subject: big\r\n\r\n${filler(100_000)}`;
        await assert.rejects(
          other.sendMail({ envelope: { from: '', to: [`bounces@${MAIL_DOMAIN}`] }, raw: big }),
          (err: { responseCode?: number }) => err.responseCode === 452,
        );
        // A message over the per-message limit is refused for good.
        await assert.rejects(
          other.sendMail({
            envelope: { from: '', to: [`bounces@${MAIL_DOMAIN}`] },
            raw: `Subject: huge\r\n\r\n${filler(160_000)}`,
          }),
          (err: { responseCode?: number }) => err.responseCode === 552,
        );
        // The first finishes (no report: 550) and lets its bytes go; the second then gets through.
        assert.match(await slow.command('.'), /^550 5\.6\.0/);
        assert.equal(inFlight, 0);
        await assert.rejects(
          other.sendMail({ envelope: { from: '', to: [`bounces@${MAIL_DOMAIN}`] }, raw: big }),
          (err: { responseCode?: number }) => err.responseCode === 550,
          'read and parsed this time (it is no report)',
        );
        assert.equal(inFlight, 0);
        assert.equal(listener.counts().tooBig, 2);
        slow.close();
      } finally {
        other.close();
        await listener.close();
      }
    });
  });
}
