/**
 * Return tokens (the signed Message-ID and VERP return path of a campaign message): they say whom
 * and which list, fit a local part after `bounces+`, survive a change of letter case, and refuse a
 * changed character, another list, another key or key version, and a time outside the window.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  createReturnToken,
  deriveReturnTokenKeys,
  RETURN_TOKEN_WINDOW_DAYS,
  returnMessageId,
  returnPath,
  returnTokenInAddress,
  returnTokenInMessageId,
  verifyReturnToken,
} from '../../src/comms/return-tokens.js';
import { forgeSignature } from '../helpers/tokens.js';

const DOMAIN = 'mail.example-online.test';
const LISTS = ['marketing-email', 'provide-service', 'improve-products'];
const HOUR_MS = 3_600_000;
const secret = randomBytes(32);
const keys = deriveReturnTokenKeys(secret);

describe('return tokens', () => {
  test('a token says whom and which list, in a Message-ID and a return path that fits RFC 5321', () => {
    fc.assert(
      fc.property(
        fc.uuid(),
        fc.constantFrom(...LISTS),
        fc.date({ min: new Date(0), max: new Date('2999-01-01'), noInvalidDate: true }),
        (subjectId, list, now) => {
          const token = createReturnToken(keys, { subjectId, list }, { now });
          const path = returnPath(token, DOMAIN);
          assert.ok(path.split('@')[0]!.length <= 64, path);
          assert.equal(returnTokenInAddress(path.toUpperCase(), DOMAIN), token.toUpperCase());
          const messageId = returnMessageId(randomUUID(), token, DOMAIN);
          assert.equal(returnTokenInMessageId(messageId, DOMAIN), token);
          for (const spelled of [token, token.toUpperCase()]) {
            const verified = verifyReturnToken(keys, spelled, { now, lists: LISTS });
            assert.ok(verified.ok);
            assert.equal(verified.token.subjectId, subjectId);
            assert.equal(verified.token.list, list);
          }
        },
      ),
    );
  });

  test('a changed character, another list, another key or an unknown key version fails', () => {
    const now = new Date();
    const subjectId = randomUUID();
    const token = createReturnToken(keys, { subjectId, list: 'marketing-email' }, { now });
    assert.deepEqual(verifyReturnToken(keys, forgeSignature(token), { now, lists: LISTS }), {
      ok: false,
      problem: 'bad_signature',
    });
    assert.deepEqual(verifyReturnToken(keys, token, { now, lists: ['provide-service'] }), {
      ok: false,
      problem: 'bad_signature',
    });
    assert.deepEqual(
      verifyReturnToken(deriveReturnTokenKeys(randomBytes(32)), token, { now, lists: LISTS }),
      {
        ok: false,
        problem: 'bad_signature',
      },
    );
    // A token of key version 2 when only version 1 is known (and the other way round).
    const v2 = createReturnToken(
      deriveReturnTokenKeys(secret, 2),
      { subjectId, list: 'marketing-email' },
      { now },
    );
    assert.deepEqual(verifyReturnToken(keys, v2, { now, lists: LISTS }), {
      ok: false,
      problem: 'unknown_key',
    });
    for (const garbage of ['', 'x', token.slice(1), `${token}a`, token.replace(/.$/, '1'), 'ä'.repeat(55)]) {
      assert.equal(verifyReturnToken(keys, garbage, { now, lists: LISTS }).ok, false, garbage);
    }
    assert.equal(returnTokenInMessageId(returnMessageId('c', token, 'elsewhere.test'), DOMAIN), undefined);
    assert.equal(returnTokenInAddress(`bounces@${DOMAIN}`, DOMAIN), undefined);
  });

  test(`it is accepted from sending until ${RETURN_TOKEN_WINDOW_DAYS} days after, and not after`, () => {
    const sent = new Date('2026-06-01T10:30:00Z');
    const token = createReturnToken(
      keys,
      { subjectId: randomUUID(), list: 'marketing-email' },
      { now: sent },
    );
    const at = (ms: number) =>
      verifyReturnToken(keys, token, { now: new Date(sent.getTime() + ms), lists: LISTS });
    assert.equal(at(0).ok, true);
    assert.equal(at((RETURN_TOKEN_WINDOW_DAYS * 24 - 1) * HOUR_MS).ok, true);
    assert.deepEqual(at(RETURN_TOKEN_WINDOW_DAYS * 24 * HOUR_MS), { ok: false, problem: 'expired' });
    assert.deepEqual(at(-2 * HOUR_MS), { ok: false, problem: 'expired' }, 'not dated in the future');
  });
});
