/**
 * The webhook signature as a receiver checks it: what Pledge signs verifies; any change to the body,
 * the timestamp or the signature fails; a delivery replayed outside the tolerance fails; nothing a
 * receiver is sent makes the verifier throw.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  deriveWebhookSecret,
  signWebhookPayload,
  verifyWebhookSignature,
} from '../../src/consent/webhooks.signature.js';

const secretArb = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => `whsec_${Buffer.from(b).toString('hex')}`);
const bodyArb = fc.string({ maxLength: 500 });
// Unix seconds from 2001 to 2286, at whole seconds (what the header carries).
const timeArb = fc.integer({ min: 1_000_000_000, max: 9_999_999_999 }).map((s) => new Date(s * 1000));

/** Splits a header into its timestamp and signature (the key version, `k=1` here, is left out). */
function parts(header: string): { t: number; v1: string } {
  const m = /^t=(\d+),k=1,v1=([0-9a-f]{64})$/.exec(header);
  assert.ok(m, header);
  return { t: Number(m[1]), v1: m[2] ?? '' };
}

/**
 * Checks that a header Pledge signed, changed by `tamper` (given its timestamp, its signature and a
 * value drawn from `change`), never verifies for the same secret and body, at the moment it was signed.
 */
function assertTamperedHeaderFails<T>(
  change: fc.Arbitrary<T>,
  tamper: (signed: { t: number; v1: string }, value: T) => string,
): void {
  fc.assert(
    fc.property(secretArb, bodyArb, timeArb, change, (secret, body, at, value) => {
      const header = tamper(parts(signWebhookPayload({ secret, body, at })), value);
      const result = verifyWebhookSignature({ secret, header, body, now: at });
      assert.deepEqual(result, { valid: false, reason: 'mismatch' });
    }),
  );
}

describe('webhook signatures', () => {
  test('what Pledge signs verifies, at any moment within the tolerance', () => {
    fc.assert(
      fc.property(
        secretArb,
        bodyArb,
        timeArb,
        fc.integer({ min: -300, max: 300 }),
        (secret, body, at, skew) => {
          const header = signWebhookPayload({ secret, body, at });
          const now = new Date(at.getTime() + skew * 1000);
          const result = verifyWebhookSignature({ secret, header, body, now });
          assert.deepEqual(result, { valid: true, timestamp: at });
        },
      ),
    );
  });

  test('any change to the body fails', () => {
    fc.assert(
      fc.property(secretArb, bodyArb, bodyArb, timeArb, (secret, body, other, at) => {
        fc.pre(body !== other);
        const header = signWebhookPayload({ secret, body, at });
        const result = verifyWebhookSignature({ secret, header, body: other, now: at });
        assert.deepEqual(result, { valid: false, reason: 'mismatch' });
      }),
    );
  });

  test('any change to the timestamp fails, even within the tolerance', () => {
    assertTamperedHeaderFails(
      fc.integer({ min: -300, max: 300 }).filter((shift) => shift !== 0),
      ({ t, v1 }, shift) => `t=${t + shift},v1=${v1}`,
    );
  });

  test('any change to the signature fails', () => {
    assertTamperedHeaderFails(
      fc.tuple(fc.nat(63), fc.integer({ min: 1, max: 15 })),
      ({ t, v1 }, [position, flip]) => {
        const digit = (parseInt(v1[position] ?? '0', 16) ^ flip).toString(16);
        return `t=${t},v1=${v1.slice(0, position) + digit + v1.slice(position + 1)}`;
      },
    );
  });

  test('another webhook’s secret fails', () => {
    fc.assert(
      fc.property(secretArb, secretArb, bodyArb, timeArb, (secret, other, body, at) => {
        fc.pre(secret !== other);
        const header = signWebhookPayload({ secret, body, at });
        assert.equal(verifyWebhookSignature({ secret: other, header, body, now: at }).valid, false);
      }),
    );
  });

  test('a delivery replayed outside the tolerance fails, however genuine', () => {
    fc.assert(
      fc.property(
        secretArb,
        bodyArb,
        timeArb,
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 3600 }),
        (secret, body, at, late, tolerance) => {
          const header = signWebhookPayload({ secret, body, at });
          const replayed = new Date(at.getTime() + (tolerance + late) * 1000);
          assert.deepEqual(
            verifyWebhookSignature({ secret, header, body, now: replayed, toleranceSeconds: tolerance }),
            { valid: false, reason: 'stale' },
          );
          const early = new Date(at.getTime() - (tolerance + late) * 1000);
          assert.deepEqual(
            verifyWebhookSignature({ secret, header, body, now: early, toleranceSeconds: tolerance }),
            { valid: false, reason: 'future' },
          );
        },
      ),
    );
  });

  test('malformed headers are refused and never throw', () => {
    const secret = deriveWebhookSecret(randomBytes(32), 'crm');
    const body = '{"id":"1"}';
    const now = new Date('2026-12-01T00:00:00Z');
    const t = Math.floor(now.getTime() / 1000);
    const good = parts(signWebhookPayload({ secret, body, at: now })).v1;
    for (const header of [
      undefined,
      '',
      `v1=${good}`,
      `t=${t}`,
      `t=${t},v1=${good.slice(1)}`,
      `t=${t},v1=${good.toUpperCase()}`,
      `t=-${t},v1=${good}`,
      `t=${t}.5,v1=${good}`,
      `t=${t},t=${t},v1=${good}`,
      `t=${t};v1=${good}`,
      `t=${t},v1=${good},${'x'.repeat(2000)}`,
    ]) {
      assert.deepEqual(
        verifyWebhookSignature({ secret, header, body, now }),
        { valid: false, reason: 'malformed' },
        String(header),
      );
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (header) => {
        assert.equal(verifyWebhookSignature({ secret, header, body, now }).valid, false);
      }),
    );
  });

  test('a header with a further signature (secret rotation) verifies when one of them matches', () => {
    const secret = deriveWebhookSecret(randomBytes(32), 'crm');
    const body = '{"id":"1"}';
    const at = new Date('2026-12-01T00:00:00Z');
    const header = signWebhookPayload({ secret, body, at });
    const { t, v1 } = parts(header);
    const other = 'ab'.repeat(32);
    assert.equal(
      verifyWebhookSignature({ secret, header: `t=${t},v1=${other},v1=${v1}`, body, now: at }).valid,
      true,
    );
    assert.equal(
      verifyWebhookSignature({ secret, header: `${header},v2=whatever`, body, now: at }).valid,
      true,
    );
  });

  test('each webhook has its own secret, the same on every instance', () => {
    const indexKey = randomBytes(32);
    const crm = deriveWebhookSecret(indexKey, 'crm');
    assert.match(crm, /^whsec_[0-9a-f]{64}$/);
    assert.equal(deriveWebhookSecret(Buffer.from(indexKey), 'crm'), crm);
    assert.notEqual(deriveWebhookSecret(indexKey, 'crm2'), crm);
    assert.notEqual(deriveWebhookSecret(randomBytes(32), 'crm'), crm);
  });
});
