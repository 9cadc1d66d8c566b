/**
 * The DKIM signer: the same body hash and header list as mailauth's own `dkimSign` (which parses the
 * PEM key again for every signature; Pledge parses it once) plus the over-signed names, signatures
 * that mailauth verifies, a header added after signing (a second From, Subject or List-Unsubscribe)
 * that breaks them, and the refusals of unusable keys at boot.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { loadDkimKeys, OVERSIGNED_HEADERS, SIGNED_HEADERS, signMessage } from '../../src/comms/dkim.js';
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
  test('signs as mailauth does, RSA and Ed25519, over-signing From, Subject and List-Unsubscribe; mailauth verifies both', async () => {
    const signTime = new Date('2026-03-01T10:00:05Z');
    // The second, written by hand, has bare LFs (which count as CRLF, as in mailauth's parser).
    const bare = Buffer.from(
      'From: privacy@example-online.test\nTo: ada@example-customer.test\r\nSubject: Hi\n  there\r\n' +
        `Date: Sun, 01 Mar 2026 10:00:00 +0000\r\nMessage-ID: <m2@${MAIL_DOMAIN}>\n\nOne line\nand a bare LF  \r\n\n`,
      'latin1',
    );
    for (const raw of [await message(), bare]) {
      const ours = await signMessage(raw, keys, { signTime });
      const theirs = await mailauthSigned(raw, signTime);
      const tagsOf = (signed: Buffer) =>
        signatureTags(signed).map((t) => ({
          ...t,
          b: undefined,
          h: undefined,
          hNames: t.h?.split(/\s*:\s*/),
        }));
      // Everything but h= (which names the over-signed headers once more) and so b= is mailauth's.
      assert.deepEqual(
        tagsOf(ours).map((t) => ({ ...t, hNames: undefined })),
        tagsOf(theirs).map((t) => ({ ...t, hNames: undefined })),
      );
      for (const [i, t] of tagsOf(ours).entries()) {
        assert.deepEqual(t.hNames, [...(tagsOf(theirs)[i]!.hNames ?? []), ...OVERSIGNED_HEADERS]);
      }
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

  test('a header added after signing breaks the signature: From, Subject, List-Unsubscribe are over-signed', async () => {
    const signed = (await signMessage(await message(), keys)).toString('latin1');
    const split = signed.indexOf('\r\nFrom:') + 2;
    for (const added of [
      'From: "Example Online" <privacy@attacker.test>',
      'Subject: Your account is locked',
      'List-Unsubscribe: <https://attacker.test/u>',
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
    ]) {
      // A copy added above the signed one (where a reader shows the first) or below it.
      for (const tampered of [
        `${signed.slice(0, split)}${added}\r\n${signed.slice(split)}`,
        signed.replace('\r\n\r\n', `\r\n${added}\r\n\r\n`),
      ]) {
        const verified = await dkimVerify(Buffer.from(tampered, 'latin1'), { resolver: testResolver() });
        assert.deepEqual(
          verified.results.map((r) => r.status.result),
          ['fail', 'fail'],
          `${added}: ${verified.results.map((r) => r.status.comment).join(', ')}`,
        );
      }
    }
    // Untouched, both pass.
    const verified = await dkimVerify(Buffer.from(signed, 'latin1'), { resolver: testResolver() });
    assert.deepEqual(
      verified.results.map((r) => r.status.result),
      ['pass', 'pass'],
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

/** The tags of each DKIM-Signature of a message, unfolded. */
function signatureTags(signed: Buffer): Array<Record<string, string | undefined>> {
  const head = signed
    .toString('latin1')
    .split('\r\n\r\n')[0]!
    .replace(/\r\n[ \t]+/g, ' ');
  return head
    .split('\r\n')
    .filter((line) => /^DKIM-Signature:/i.test(line))
    .map((line) =>
      Object.fromEntries(
        line
          .replace(/^DKIM-Signature:\s*/i, '')
          .split(';')
          .map((tag) => tag.trim())
          .filter((tag) => tag !== '')
          .map((tag) => [
            tag.slice(0, tag.indexOf('=')),
            tag.slice(tag.indexOf('=') + 1).replace(/\s+/g, ''),
          ]),
      ),
    );
}
