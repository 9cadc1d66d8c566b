/**
 * Consent receipts: a receipt says what the browser allowed, for as long as the banner's choice
 * lasts; a changed character, another key, a key version the keyring lost, or age past ask_again
 * makes it say nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConsentReceipts } from '../../src/tracking/consent-receipt.js';
import { UseKeys } from '../../src/vault/use-keys.js';
import { forgeSignature } from '../helpers/tokens.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const DAY_MS = 86_400_000;
const v1 = { version: 1, secret: randomBytes(32), createdAt: undefined };
const keys = new UseKeys('banner_receipts', [v1]);
const receipts = new ConsentReceipts(keys, { maxAgeDays: 395 });

const browserArb = fc.stringMatching(/^[A-Za-z0-9_-]{16,128}$/);
const purposesArb = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9_-]{0,30}$/), { maxLength: 8 });
const jurisdictionArb = fc.option(fc.stringMatching(/^[A-Z]{2}$/), { nil: undefined });

describe('consent receipts', () => {
  test('round trip: a fresh receipt says whose choice, what was allowed, where and when', () => {
    fc.assert(
      fc.property(browserArb, purposesArb, jurisdictionArb, (browser, allowed, jurisdiction) => {
        const token = receipts.issue({ browser, allowed, jurisdiction, issuedAt: NOW });
        // It lives in a cookie: nothing a cookie value may not hold.
        assert.match(token, /^[A-Za-z0-9._~-]+$/);
        const got = receipts.verify(token, new Date(NOW.getTime() + 1000));
        assert.ok(got);
        assert.equal(got.browser, browser);
        assert.deepEqual([...got.allowed].sort(), [...allowed].sort());
        assert.equal(got.jurisdiction, jurisdiction);
        assert.equal(got.issuedAt.getTime(), Math.floor(NOW.getTime() / 1000) * 1000);
      }),
    );
  });

  test('a receipt verified once stops being in force when ask_again passes (beacons cache verified receipts)', () => {
    const token = receipts.issue({
      browser: 'e'.repeat(24),
      allowed: ['site-analytics'],
      jurisdiction: 'DE',
      issuedAt: NOW,
    });
    const got = receipts.verify(token, NOW);
    assert.ok(got);
    assert.equal(receipts.inForce(got, new Date(NOW.getTime() + 394 * DAY_MS)), true);
    assert.equal(receipts.inForce(got, new Date(NOW.getTime() + 395 * DAY_MS)), false);
    assert.equal(receipts.inForce(got, new Date(NOW.getTime() - DAY_MS)), false);
  });

  test('a forged signature, a changed field or a cut receipt verifies as nothing', () => {
    const token = receipts.issue({
      browser: 'b'.repeat(24),
      allowed: ['site-analytics'],
      jurisdiction: 'DE',
      issuedAt: NOW,
    });
    assert.equal(receipts.verify(forgeSignature(token), NOW), undefined);
    // Granting oneself another purpose, or moving the choice to another browser, breaks the MAC.
    assert.equal(receipts.verify(token.replace('.site-analytics.', '.site-analytics~ads.'), NOW), undefined);
    assert.equal(receipts.verify(token.replace('b'.repeat(24), 'c'.repeat(24)), NOW), undefined);
    assert.equal(receipts.verify(token.replace('.DE.', '.US.'), NOW), undefined);
    assert.equal(receipts.verify(token.slice(0, -1), NOW), undefined);
    assert.equal(receipts.verify(`${token}.x`, NOW), undefined);
    assert.equal(receipts.verify('', NOW), undefined);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: token.length - 1 }),
        fc.string({ minLength: 1, maxLength: 1 }),
        (at, ch) => {
          fc.pre(token[at] !== ch);
          const changed = token.slice(0, at) + ch + token.slice(at + 1);
          assert.equal(receipts.verify(changed, NOW), undefined);
        },
      ),
    );
  });

  test('another server key, or a key version the keyring does not hold, verifies as nothing', () => {
    const token = receipts.issue({
      browser: 'a'.repeat(20),
      allowed: ['x'],
      jurisdiction: undefined,
      issuedAt: NOW,
    });
    const other = new ConsentReceipts(
      new UseKeys('banner_receipts', [{ version: 1, secret: randomBytes(32), createdAt: undefined }]),
      { maxAgeDays: 395 },
    );
    assert.equal(other.verify(token, NOW), undefined);
    assert.equal(receipts.verify(token.replace(/^r1\.1\./, 'r1.2.'), NOW), undefined);
  });

  test('after a rotation new receipts use the new version and old ones still verify', () => {
    const rotated = new ConsentReceipts(
      new UseKeys('banner_receipts', [
        v1,
        { version: 2, secret: randomBytes(32), createdAt: NOW.toISOString() },
      ]),
      { maxAgeDays: 395 },
    );
    const old = receipts.issue({
      browser: 'a'.repeat(20),
      allowed: ['x'],
      jurisdiction: 'FR',
      issuedAt: NOW,
    });
    const fresh = rotated.issue({
      browser: 'a'.repeat(20),
      allowed: ['x'],
      jurisdiction: 'FR',
      issuedAt: NOW,
    });
    assert.match(fresh, /^r1\.2\./);
    assert.ok(rotated.verify(old, NOW));
    assert.ok(rotated.verify(fresh, NOW));
    // The old key alone does not know version 2.
    assert.equal(receipts.verify(fresh, NOW), undefined);
  });

  test('a receipt expires when the banner asks again, and one from the future is refused', () => {
    const short = new ConsentReceipts(keys, { maxAgeDays: 30 });
    const token = short.issue({
      browser: 'a'.repeat(20),
      allowed: ['x'],
      jurisdiction: undefined,
      issuedAt: NOW,
    });
    assert.ok(short.verify(token, new Date(NOW.getTime() + 30 * DAY_MS - 1000)));
    assert.equal(short.verify(token, new Date(NOW.getTime() + 30 * DAY_MS)), undefined);
    assert.equal(short.verify(token, new Date(NOW.getTime() - DAY_MS)), undefined);
  });

  test('a refusal of everything is a receipt too: it allows nothing', () => {
    const token = receipts.issue({ browser: 'a'.repeat(20), allowed: [], jurisdiction: 'DE', issuedAt: NOW });
    assert.equal(receipts.verify(token, NOW)?.allowed.size, 0);
  });
});
