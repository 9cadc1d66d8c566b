/**
 * The consent pages' e-mail form mails at most 3 preference links an hour to one address, however
 * many clients ask (each from its own address behind a trusted proxy): past the limit the answer is
 * byte for byte the same and nothing is sent, so the limit tells nobody whether the address is
 * known. Real SMTP; on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAIL_DOMAIN, openMailApp, type MailTestApp } from '../comms/mail-app.js';
import { startSmtpSink, type SmtpSink } from '../comms/smtp-sink.js';
import { DIALECTS } from '../helpers/databases.js';
import { randomEmail } from '../helpers/vault.js';

for (const dialect of DIALECTS) {
  describe(`preference links per mailbox on ${dialect}`, () => {
    let sink: SmtpSink;
    let t: MailTestApp;

    before(async () => {
      sink = await startSmtpSink();
      t = await openMailApp(dialect, {
        smtpUrl: sink.url,
        mailFrom: `privacy@${MAIL_DOMAIN}`,
        trustProxy: ['127.0.0.1'],
      });
    });
    after(async () => {
      await t.cleanup();
      await sink.close();
    });

    test('at most 3 links an hour to one address, from any number of clients, silently', async () => {
      const form = await t.app.http.inject({ method: 'GET', url: '/unsubscribe' });
      const cookie = form.cookies.find((c) => c.name === 'pledge_csrf');
      assert.ok(cookie);
      const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)?.[1] ?? '';
      const ask = (email: string, client: string) =>
        t.app.http.inject({
          method: 'POST',
          url: '/unsubscribe/email',
          remoteAddress: '127.0.0.1',
          payload: new URLSearchParams({ _csrf: csrf, email }).toString(),
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            cookie: `${cookie.name}=${cookie.value}`,
            'x-forwarded-for': client,
          },
        });

      const { address } = await t.newSubject();
      const other = (await t.newSubject()).address;
      const answers = [];
      for (let i = 0; i < 6; i++)
        answers.push(await ask(i % 2 === 0 ? address : address.toUpperCase(), `203.0.113.${i + 1}`));
      const unknown = await ask(randomEmail(), '203.0.113.99');
      const second = await ask(other, '203.0.113.100');
      for (const res of [...answers, unknown, second]) {
        assert.equal(res.statusCode, 200);
        assert.equal(res.body, answers[0]?.body, 'the same page, limited or not, known or not');
      }
      // Closing waits for every lookup and mail the form started.
      await t.app.close();
      assert.equal(sink.countFor(address), 3, 'three links to the address, not six');
      assert.equal(sink.countFor(other), 1, 'another address has its own count');
      assert.equal(sink.accepted(), 4);
      assert.ok(!t.logs().includes(address), 'the address is not logged');
    });
  });
}
