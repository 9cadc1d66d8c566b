/**
 * Mail-open tokens: a token says which campaign's message to whom, for which purpose, for 90 days;
 * any changed character, another key, a key version the keyring lost, another purpose, a token from
 * the future or past its window says nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MAIL_OPEN_WINDOW_DAYS, MailOpenTokens } from '../../src/tracking/mail-open.tokens.js';
import { UseKeys } from '../../src/vault/use-keys.js';

const NOW = new Date('2026-12-01T12:34:00Z');
const HOUR_MS = 3_600_000;
const PURPOSES = ['site-analytics', 'improve-products'];
const v1 = { version: 1, secret: randomBytes(32), createdAt: undefined };
const v2 = { version: 2, secret: randomBytes(32), createdAt: '2026-12-01T00:00:00.000Z' };
const tokens = new MailOpenTokens(new UseKeys('beacons', [v1]));
const uuidArb = fc.uuid();
const purposeArb = fc.constantFrom(...PURPOSES);

describe('mail-open tokens', () => {
  test('round trip: campaign, subject and purpose come back, and the token is URL-safe and 80 characters', () => {
    fc.assert(
      fc.property(uuidArb, uuidArb, purposeArb, (campaignId, subjectId, purpose) => {
        const token = tokens.create({ campaignId, subjectId, purpose }, NOW);
        assert.match(token, /^[a-z2-7]{80}$/);
        const got = tokens.verify(token, { now: new Date(NOW.getTime() + 1000), purposes: PURPOSES });
        assert.deepEqual(got, {
          campaignId: campaignId.toLowerCase(),
          subjectId: subjectId.toLowerCase(),
          purpose,
          sentAt: new Date(Math.floor(NOW.getTime() / HOUR_MS) * HOUR_MS),
        });
      }),
    );
  });

  test('any changed character makes it say nothing', () => {
    fc.assert(
      fc.property(
        uuidArb,
        uuidArb,
        fc.nat(79),
        fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz234567'),
        (campaignId, subjectId, at, ch) => {
          const token = tokens.create({ campaignId, subjectId, purpose: 'site-analytics' }, NOW);
          fc.pre(token[at] !== ch);
          const changed = token.slice(0, at) + ch + token.slice(at + 1);
          assert.equal(tokens.verify(changed, { now: NOW, purposes: PURPOSES }), undefined);
        },
      ),
    );
  });

  test('refused: cut, lengthened, not a string, another purpose, another key, a lost version, the future, past 90 days', () => {
    const claims = {
      campaignId: '01930000-0000-7000-8000-00000000c001',
      subjectId: '01930000-0000-7000-8000-0000000000a1',
      purpose: 'site-analytics',
    };
    const token = tokens.create(claims, NOW);
    const ok = (t: unknown, now = NOW, purposes = PURPOSES) =>
      tokens.verify(t, { now, purposes }) !== undefined;
    assert.ok(ok(token));
    assert.ok(ok(token.toUpperCase()), 'a client that changes the case changes nothing');
    assert.ok(!ok(token.slice(0, -1)));
    assert.ok(!ok(`${token}a`));
    assert.ok(!ok(42));
    assert.ok(!ok(undefined));
    assert.ok(!ok(token, NOW, ['improve-products']), 'signed for site-analytics only');
    assert.ok(
      !ok(
        new MailOpenTokens(new UseKeys('beacons', [{ ...v1, secret: randomBytes(32) }])).create(claims, NOW),
      ),
    );
    // Rotated: version 2 signs, version 1 still verifies while the keyring holds it.
    const rotated = new MailOpenTokens(new UseKeys('beacons', [v1, v2]));
    const newer = rotated.create(claims, NOW);
    assert.ok(rotated.verify(token, { now: NOW, purposes: PURPOSES }));
    assert.ok(rotated.verify(newer, { now: NOW, purposes: PURPOSES }));
    assert.ok(!ok(newer), 'a keyring without version 2 refuses its tokens');
    assert.ok(!ok(token, new Date(NOW.getTime() - 2 * HOUR_MS)), 'sent in the future');
    assert.ok(ok(token, new Date(NOW.getTime() + (MAIL_OPEN_WINDOW_DAYS * 24 - 1) * HOUR_MS)));
    assert.ok(!ok(token, new Date(NOW.getTime() + MAIL_OPEN_WINDOW_DAYS * 24 * HOUR_MS)), 'past the window');
    assert.throws(() => tokens.create({ ...claims, subjectId: 'someone@example.test' }, NOW), RangeError);
  });
});
