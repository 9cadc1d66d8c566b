/**
 * Link tokens: a link works for whom and what it was made for, until it expires, and any change to
 * it (a flipped bit, a cut, another spelling, a payload from another link, another key) makes it
 * a bad link.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_PREFERENCES_TTL_SECONDS,
  MIN_UNSUBSCRIBE_TTL_SECONDS,
  createLinkToken,
  deriveLinkTokenKey,
  verifyLinkToken,
  type LinkTokenClaims,
} from '../../src/consent/link-tokens.js';

const key = deriveLinkTokenKey(randomBytes(32));
const NOW = new Date('2026-03-01T12:00:00Z');
const DAY_MS = 86_400_000;

/** A field as the pages and the mail pipeline use them: ids, purpose keys, channel names, any text. */
const field = fc.string({ minLength: 1, maxLength: 60, unit: 'binary' });

const claimsArb: fc.Arbitrary<LinkTokenClaims> = fc.oneof(
  fc.record({
    scope: fc.constant('unsubscribe' as const),
    subjectId: field,
    purpose: field,
    channel: fc.option(field, { nil: undefined }),
  }),
  fc.record({ scope: fc.constant('preferences' as const), subjectId: field }),
);

const tokenArb = fc.record({
  claims: claimsArb,
  // Made any time in the last ten years.
  madeAgoMs: fc.integer({ min: 0, max: 10 * 365 * DAY_MS }),
});

function make(claims: LinkTokenClaims, now = NOW): string {
  return createLinkToken(key, claims, { now });
}

function expected(claims: LinkTokenClaims): LinkTokenClaims {
  return claims.scope === 'unsubscribe'
    ? {
        scope: claims.scope,
        subjectId: claims.subjectId,
        purpose: claims.purpose,
        ...(claims.channel !== undefined ? { channel: claims.channel } : {}),
      }
    : { scope: claims.scope, subjectId: claims.subjectId };
}

describe('link tokens', () => {
  test('round trip: a fresh link says who it is for and what it may do', () => {
    fc.assert(
      fc.property(claimsArb, (claims) => {
        const result = verifyLinkToken(key, make(claims), { now: NOW, scope: claims.scope });
        assert.equal(result.ok, true);
        if (!result.ok) return;
        const { expiresAt, ...rest } = result.token;
        assert.deepEqual(rest, expected(claims));
        assert.ok(expiresAt.getTime() > NOW.getTime());
      }),
    );
  });

  test('the link is opaque, URL-safe text without padding', () => {
    fc.assert(
      fc.property(claimsArb, (claims) => {
        assert.match(make(claims), /^[A-Za-z0-9_-]+$/);
      }),
    );
  });

  test('unsubscribe links work for at least 60 days, e-mailed preference links for 24 hours', () => {
    const unsubscribe = make({
      scope: 'unsubscribe',
      subjectId: 's1',
      purpose: 'marketing-email',
      channel: 'email',
    });
    const preferences = make({ scope: 'preferences', subjectId: 's1' });
    const at = (ms: number) => new Date(NOW.getTime() + ms);
    assert.equal(verifyLinkToken(key, unsubscribe, { now: at(60 * DAY_MS - 1000) }).ok, true);
    assert.equal(verifyLinkToken(key, preferences, { now: at(DAY_MS - 1000) }).ok, true);
    assert.deepEqual(verifyLinkToken(key, preferences, { now: at(DAY_MS) }), {
      ok: false,
      problem: 'expired',
    });
    assert.equal(DEFAULT_PREFERENCES_TTL_SECONDS, 86_400);
    assert.throws(
      () =>
        createLinkToken(
          key,
          { scope: 'unsubscribe', subjectId: 's1', purpose: 'marketing-email' },
          { now: NOW, ttlSeconds: MIN_UNSUBSCRIBE_TTL_SECONDS - 1 },
        ),
      RangeError,
    );
  });

  test('an expired link fails, however it was made', () => {
    fc.assert(
      fc.property(tokenArb, fc.integer({ min: 0, max: 1000 * DAY_MS }), ({ claims }, lateMs) => {
        const token = make(claims);
        const expires = verifyLinkToken(key, token, { now: NOW });
        assert.ok(expires.ok);
        if (!expires.ok) return;
        const later = new Date(expires.token.expiresAt.getTime() + lateMs);
        assert.deepEqual(verifyLinkToken(key, token, { now: later }), { ok: false, problem: 'expired' });
      }),
    );
  });

  test('any flipped bit fails', () => {
    fc.assert(
      fc.property(tokenArb, fc.nat(), fc.integer({ min: 0, max: 7 }), ({ claims }, position, bit) => {
        const bytes = Buffer.from(make(claims), 'base64url');
        const i = position % bytes.length;
        bytes[i] = (bytes[i] ?? 0) ^ (1 << bit);
        assert.equal(verifyLinkToken(key, bytes.toString('base64url'), { now: NOW }).ok, false);
      }),
    );
  });

  test('any truncation or extension fails', () => {
    fc.assert(
      fc.property(claimsArb, fc.nat(), fc.string({ minLength: 1, maxLength: 8 }), (claims, cut, extra) => {
        const token = make(claims);
        const shorter = token.slice(0, cut % token.length);
        assert.equal(verifyLinkToken(key, shorter, { now: NOW }).ok, false);
        assert.equal(verifyLinkToken(key, token + extra, { now: NOW }).ok, false);
        const bytes = Buffer.from(token, 'base64url');
        const cutBytes = bytes.subarray(0, cut % bytes.length).toString('base64url');
        assert.equal(verifyLinkToken(key, cutBytes, { now: NOW }).ok, false);
      }),
    );
  });

  test('the same bytes spelled another way fail', () => {
    const respellings = [
      (t: string) => Buffer.from(t, 'base64url').toString('base64'),
      (t: string) => `${t}=`,
      (t: string) => `${t}==`,
      (t: string) => ` ${t}`,
      (t: string) => `${t.slice(0, 4)}\n${t.slice(4)}`,
      (t: string) => `${t.slice(0, 3)}.${t.slice(3)}`,
      (t: string) => encodeURIComponent(Buffer.from(t, 'base64url').toString('base64')),
      // Another final character that decodes to the same bytes (its unused low bits set).
      (t: string) => {
        if (t.length % 4 === 0) return t;
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        const last = alphabet.indexOf(t.at(-1) ?? 'A');
        return t.slice(0, -1) + (alphabet[last ^ 1] ?? 'A');
      },
    ];
    fc.assert(
      fc.property(claimsArb, fc.constantFrom(...respellings), (claims, respell) => {
        const token = make(claims);
        const other = respell(token);
        fc.pre(other !== token);
        assert.equal(verifyLinkToken(key, other, { now: NOW }).ok, false);
      }),
    );
  });

  test("one link's payload with another link's signature fails", () => {
    fc.assert(
      fc.property(claimsArb, claimsArb, (a, b) => {
        const ta = Buffer.from(make(a), 'base64url');
        const tb = Buffer.from(make(b), 'base64url');
        const swapped = Buffer.concat([ta.subarray(0, ta.length - 32), tb.subarray(tb.length - 32)]);
        fc.pre(!swapped.equals(ta));
        assert.equal(verifyLinkToken(key, swapped.toString('base64url'), { now: NOW }).ok, false);
      }),
    );
  });

  test('a link made with another key fails', () => {
    fc.assert(
      fc.property(claimsArb, fc.uint8Array({ minLength: 32, maxLength: 32 }), (claims, secret) => {
        const other = deriveLinkTokenKey(Buffer.from(secret));
        const token = createLinkToken(other, claims, { now: NOW });
        assert.deepEqual(verifyLinkToken(key, token, { now: NOW }), { ok: false, problem: 'bad_signature' });
      }),
    );
  });

  test('a link of one scope does not open a page of another', () => {
    const preferences = make({ scope: 'preferences', subjectId: 's1' });
    const unsubscribe = make({ scope: 'unsubscribe', subjectId: 's1', purpose: 'marketing-email' });
    assert.deepEqual(verifyLinkToken(key, preferences, { now: NOW, scope: 'unsubscribe' }), {
      ok: false,
      problem: 'wrong_scope',
    });
    assert.deepEqual(verifyLinkToken(key, unsubscribe, { now: NOW, scope: 'preferences' }), {
      ok: false,
      problem: 'wrong_scope',
    });
  });

  test('garbage is refused without throwing', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        assert.equal(verifyLinkToken(key, s, { now: NOW }).ok, false);
      }),
    );
  });
});
