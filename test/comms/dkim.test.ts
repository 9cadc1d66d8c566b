/**
 * The DKIM signer: the same bytes as mailauth's own `dkimSign` (which parses the PEM key again for
 * every signature; Pledge parses it once), signatures that mailauth verifies, and the refusals of
 * unusable keys at boot.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { loadDkimKeys, SIGNED_HEADERS, signMessage } from '../../src/comms/dkim.js';
import { composeMessage, listHeaders } from '../../src/comms/message.compose.js';
import { ConfigError } from '../../src/platform/errors.js';
import { DKIM_DOMAIN, MAIL_DOMAIN, TEST_DKIM, testDkimConfig, testResolver } from './campaign-app.js';

const keys = loadDkimKeys(testDkimConfig(), MAIL_DOMAIN)!;

async function message(text = 'Hello Ada,\n\nWe have new webinars.  \t\n\n\n'): Promise<Buffer> {
  return composeMessage({
    from: '"Example Online" <privacy@example-online.test>',
    to: 'ada@example-customer.test',
    subject: 'News   for Ada',
    text,
    html: '<p>Hello Ada,</p>',
    messageId: `<m1@${MAIL_DOMAIN}>`,
    date: new Date('2026-03-01T10:00:00Z'),
    headers: listHeaders({
      oneClickUrl: 'https://privacy.example-online.test/unsubscribe/one-click/TOKEN',
      mailtoAddress: `unsubscribe+TOKEN@${MAIL_DOMAIN}`,
      purpose: {
        key: 'marketing-email',
        name: 'Tell you about products',
      } as Parameters<typeof listHeaders>[0]['purpose'],
      mailDomain: MAIL_DOMAIN,
    }),
  });
}

/** What mailauth's own signer makes of the same message with the same keys (as PEM) and time. */
async function mailauthSigned(raw: Buffer, signTime: Date): Promise<Buffer> {
  const pem = [TEST_DKIM.rsaKey, TEST_DKIM.ed25519Key];
  const result = await dkimSign(raw, {
    signingDomain: DKIM_DOMAIN,
    selector: 'pledge-rsa',
    privateKey: TEST_DKIM.rsaKey,
    headerList: SIGNED_HEADERS.join(':') as unknown as string[],
    canonicalization: 'relaxed/relaxed',
    signTime,
    signatureData: keys.keys.map((k, i) => ({
      signingDomain: DKIM_DOMAIN,
      selector: k.selector,
      privateKey: pem[i]!,
      algorithm: k.algorithm,
      canonicalization: 'relaxed/relaxed',
    })),
  });
  assert.deepEqual(result.errors, []);
  return Buffer.concat([Buffer.from(result.signatures, 'utf8'), raw]);
}

describe('DKIM signing', () => {
  test('signs exactly as mailauth does, RSA and Ed25519, and mailauth verifies both', async () => {
    const signTime = new Date('2026-03-01T10:00:05Z');
    // The second, written by hand, has bare LFs (which count as CRLF, as in mailauth's parser).
    const bare = Buffer.from(
      'From: privacy@example-online.test\nTo: ada@example-customer.test\r\nSubject: Hi\n  there\r\n' +
        `Date: Sun, 01 Mar 2026 10:00:00 +0000\r\nMessage-ID: <m2@${MAIL_DOMAIN}>\n\nOne line\nand a bare LF  \r\n\n`,
      'latin1',
    );
    for (const raw of [await message(), bare]) {
      const ours = await signMessage(raw, keys, { signTime });
      assert.equal(ours.toString('latin1'), (await mailauthSigned(raw, signTime)).toString('latin1'));
      assert.ok(ours.subarray(ours.length - raw.length).equals(raw), 'the message itself is unchanged');
      const verified = await dkimVerify(await signMessage(raw, keys), { resolver: testResolver() });
      assert.deepEqual(
        verified.results.map((r) => `${r.signingDomain}:${r.status.result}`),
        [`${DKIM_DOMAIN}:pass`, `${DKIM_DOMAIN}:pass`],
      );
    }
  });

  test('a message changed after signing fails verification', async () => {
    const signed = (await signMessage(await message(), keys)).toString('latin1');
    const tampered = Buffer.from(signed.replace('We have new webinars', 'We have new offers'), 'latin1');
    const verified = await dkimVerify(tampered, { resolver: testResolver() });
    assert.deepEqual(
      verified.results.map((r) => r.status.result),
      ['neutral', 'neutral'],
    );
  });

  test('keys that are too small or of the wrong type stop the boot with every problem listed', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    assert.throws(
      () => loadDkimKeys({ ...testDkimConfig(), rsaKey: small, ed25519Key: TEST_DKIM.rsaKey }, MAIL_DOMAIN),
      (err: unknown) =>
        err instanceof ConfigError &&
        /1024-bit RSA key/.test(err.message) &&
        /must be an Ed25519 private key/.test(err.message),
    );
  });
});
