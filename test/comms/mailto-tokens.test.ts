/**
 * The mailto unsubscribe token: the address it makes fits RFC 5321's 64-octet local part and
 * survives a change of letter case; it unsubscribes whom and from which list it was made for, until
 * it expires; any other change to it, another list or another key makes it a bad token.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { deriveLinkTokenKey, MIN_UNSUBSCRIBE_TTL_SECONDS } from '../../src/consent/link-tokens.js';
import { createMailtoToken, MAILTO_LOCAL_PREFIX, verifyMailtoToken } from '../../src/comms/mailto-tokens.js';

const key = deriveLinkTokenKey(randomBytes(32));
const NOW = new Date('2026-03-01T12:00:00Z');
const DAY_MS = 86_400_000;
const LISTS = ['marketing-email', 'partner-offers', 'product-news'];

const claimsArb = fc.record({
  subjectId: fc.uuid(),
  purpose: fc.constantFrom(...LISTS),
});

describe('mailto unsubscribe tokens', () => {
  test('the address fits a local part (64 octets) and says whom and which list, by e-mail', () => {
    fc.assert(
      fc.property(claimsArb, (claims) => {
        const token = createMailtoToken(key, claims, { now: NOW });
        assert.ok(`${MAILTO_LOCAL_PREFIX}${token}`.length <= 64, token);
        assert.match(token, /^[a-z2-7]+$/);
        const verified = verifyMailtoToken(key, token, { now: NOW, purposes: LISTS });
        assert.ok(verified.ok);
        assert.equal(verified.token.scope, 'unsubscribe');
        if (verified.token.scope !== 'unsubscribe') return;
        assert.equal(verified.token.subjectId, claims.subjectId.toLowerCase());
        assert.equal(verified.token.purpose, claims.purpose);
        assert.equal(verified.token.channel, 'email');
      }),
    );
  });

  test('a mail system that changes the case of the address does not break it', () => {
    const claims = { subjectId: randomUUID(), purpose: 'product-news' };
    const token = createMailtoToken(key, claims, { now: NOW });
    const verified = verifyMailtoToken(key, token.toUpperCase(), { now: NOW, purposes: LISTS });
    assert.ok(verified.ok && verified.token.scope === 'unsubscribe');
    assert.equal(verified.token.purpose, 'product-news');
  });

  test('it works at least 60 days, and not after it expires', () => {
    const claims = { subjectId: randomUUID(), purpose: 'marketing-email' };
    const token = createMailtoToken(key, claims, { now: NOW, ttlSeconds: MIN_UNSUBSCRIBE_TTL_SECONDS });
    const at = (ms: number) => verifyMailtoToken(key, token, { now: new Date(ms), purposes: LISTS });
    assert.ok(at(NOW.getTime() + MIN_UNSUBSCRIBE_TTL_SECONDS * 1000 - 1).ok);
    const late = at(NOW.getTime() + MIN_UNSUBSCRIBE_TTL_SECONDS * 1000 + DAY_MS);
    assert.deepEqual(late, { ok: false, problem: 'expired' });
    assert.throws(
      () => createMailtoToken(key, claims, { now: NOW, ttlSeconds: MIN_UNSUBSCRIBE_TTL_SECONDS - 1 }),
      RangeError,
    );
  });

  test('any changed character, a cut or an extension fails', () => {
    fc.assert(
      fc.property(claimsArb, fc.nat(), fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz234567'), (c, i, ch) => {
        const token = createMailtoToken(key, c, { now: NOW });
        const at = i % token.length;
        fc.pre(token[at] !== ch);
        const changed = token.slice(0, at) + ch + token.slice(at + 1);
        assert.equal(verifyMailtoToken(key, changed, { now: NOW, purposes: LISTS }).ok, false);
        assert.equal(verifyMailtoToken(key, token.slice(0, -1), { now: NOW, purposes: LISTS }).ok, false);
        assert.equal(verifyMailtoToken(key, `${token}a`, { now: NOW, purposes: LISTS }).ok, false);
      }),
    );
  });

  test('it unsubscribes only from the list it was made for, and only under its key', () => {
    const claims = { subjectId: randomUUID(), purpose: 'partner-offers' };
    const token = createMailtoToken(key, claims, { now: NOW });
    assert.deepEqual(
      verifyMailtoToken(key, token, { now: NOW, purposes: ['marketing-email', 'product-news'] }),
      { ok: false, problem: 'bad_signature' },
    );
    const other = deriveLinkTokenKey(randomBytes(32));
    assert.deepEqual(verifyMailtoToken(other, token, { now: NOW, purposes: LISTS }), {
      ok: false,
      problem: 'bad_signature',
    });
  });

  test('garbage is refused without throwing', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (text) => {
        assert.equal(verifyMailtoToken(key, text, { now: NOW, purposes: LISTS }).ok, false);
      }),
    );
  });

  test('a subject id that is not a UUID cannot be put in an address', () => {
    assert.throws(
      () => createMailtoToken(key, { subjectId: 'someone', purpose: 'marketing-email' }, { now: NOW }),
      /UUID subject id/,
    );
  });
});
