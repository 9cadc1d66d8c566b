/**
 * The blind index, property by property: normalizing is idempotent, the spellings of one e-mail
 * address meet in one hash, different identifiers never do, the hash is worthless without the index
 * key, and invalid identifiers (e-mail addresses with characters RFC 5321 does not allow unquoted
 * among them) are refused with a message that does not repeat them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../src/platform/errors.js';
import {
  IDENTIFIER_KINDS,
  identifierHash,
  normalizeIdentifier,
  normalizeIdentifierOrThrow,
  type IdentifierKind,
} from '../../src/vault/identifiers.js';

const RUNS = { numRuns: 1000 };
const kind = fc.constantFrom(...IDENTIFIER_KINDS);
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));
const INDEX_KEY = Buffer.alloc(32, 7);
const LABELS: Record<IdentifierKind, string> = {
  email: 'e-mail address',
  phone: 'phone number',
  account_id: 'account id',
};

/** Any text, from plain ASCII to combining marks, emoji and lone surrogates. */
const anyText = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.stringMatching(/^\s*[+(]?[\d\s().-]{0,24}\s*$/),
);

const alnum = fc.stringMatching(/^[a-z0-9]{1,12}$/);
/** A valid, already normalized e-mail address. */
const email = fc
  .tuple(
    fc.stringMatching(/^[a-z0-9_+-]{1,10}(\.[a-z0-9_+-]{1,10}){0,2}$/),
    alnum,
    fc.stringMatching(/^[a-z]{2,6}$/),
  )
  .map(([local, domain, tld]) => `${local}@${domain}.${tld}`);
const whitespace = fc.stringMatching(/^[ \t\n\r\u00a0\u2003\ufeff]{0,4}$/);

/** `text` with each letter's case chosen by `upper`. */
function recase(text: string, upper: readonly boolean[]): string {
  return [...text].map((c, i) => (upper[i % Math.max(upper.length, 1)] ? c.toUpperCase() : c)).join('');
}

function refusesAsInvalid(k: IdentifierKind, raw: string): void {
  assert.equal(normalizeIdentifier(k, raw), undefined);
  assert.throws(
    () => normalizeIdentifierOrThrow(k, raw, `identifiers.${k}`),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
      assert.equal(err.code, 'vault.identifier_invalid');
      assert.equal(err.status, 422);
      assert.deepEqual(err.details, { path: `identifiers.${k}`, kind: k });
      // The message reaches clients and logs; an identifier that failed validation may still be
      // personal, so the message names the field and the kind, never the value.
      assert.equal(err.message, `identifiers.${k} is not a valid ${LABELS[k]}`);
      return true;
    },
  );
}

describe('identifiers', () => {
  test('normalizing is idempotent, for every kind and any text', () => {
    fc.assert(
      fc.property(kind, anyText, (k, raw) => {
        const once = normalizeIdentifier(k, raw);
        if (once === undefined) return;
        assert.equal(normalizeIdentifier(k, once), once);
        assert.equal(normalizeIdentifierOrThrow(k, once), once);
      }),
      RUNS,
    );
  });

  test('every spelling of an e-mail address (letter case, surrounding space, NFC/NFD) gives one hash', () => {
    fc.assert(
      fc.property(email, fc.array(fc.boolean()), whitespace, whitespace, (address, upper, pre, post) => {
        const variant = `${pre}${recase(address, upper)}${post}`;
        assert.equal(normalizeIdentifier('email', variant), address);
        assert.equal(
          identifierHash(INDEX_KEY, 'email', normalizeIdentifierOrThrow('email', variant)),
          identifierHash(INDEX_KEY, 'email', address),
        );
      }),
      RUNS,
    );
    // Composed and decomposed accents are one address.
    const composed = 'jos\u00e9@example.com';
    const decomposed = 'jose\u0301@example.com';
    assert.equal(normalizeIdentifier('email', decomposed), normalizeIdentifier('email', composed));
  });

  test('different normalized identifiers, or one value under different kinds, give different hashes', () => {
    fc.assert(
      fc.property(kind, kind, fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (k1, k2, a, b) => {
        fc.pre(k1 !== k2 || a !== b);
        assert.notEqual(identifierHash(INDEX_KEY, k1, a), identifierHash(INDEX_KEY, k2, b));
      }),
      RUNS,
    );
  });

  test('the hash depends on the index key: without it, a hash cannot be recomputed from a guess', () => {
    fc.assert(
      fc.property(
        fc.tuple(key32, key32).filter(([a, b]) => !a.equals(b)),
        kind,
        fc.string(),
        ([key, other], k, value) => {
          const hash = identifierHash(key, k, value);
          assert.match(hash, /^[0-9a-f]{64}$/);
          assert.equal(identifierHash(key, k, value), hash, 'the same key gives the same hash');
          assert.notEqual(identifierHash(other, k, value), hash);
        },
      ),
      RUNS,
    );
  });

  test('invalid e-mail addresses are refused with vault.identifier_invalid (422)', () => {
    for (const raw of [
      '',
      '   ',
      'no-at-sign.example.com',
      'two@@example.com',
      'a@b',
      'a@b.',
      '@example.com',
      'person@',
      'spaced person@example.com',
      'person@exa mple.com',
      `${'a'.repeat(310)}@example.com`,
      // What RFC 5321 does not allow unquoted: it could end a header or an SMTP command.
      'person\r\nBcc: eve@example.com',
      'person@example.com\r\nBcc: eve@example.com',
      'per\u0000son@example.com',
      'per\u007fson@example.com',
      'Person <person@example.com>',
      'person@example.com>',
      '<person@example.com',
      '"person"@example.com',
      'person@[192.0.2.1]',
      'per,son@example.com',
      'per..son@example.com',
    ])
      refusesAsInvalid('email', raw);
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes('@')),
        (raw) => refusesAsInvalid('email', raw),
      ),
      RUNS,
    );
  });

  test('invalid phone numbers are refused with vault.identifier_invalid (422)', () => {
    for (const raw of ['', '12345', '+1234567890123456', 'call me', '+1 555 CALL NOW', '++123456', '12-34'])
      refusesAsInvalid('phone', raw);
    fc.assert(
      fc.property(
        fc
          .tuple(fc.string(), fc.stringMatching(/^[a-z]$/), fc.string())
          .map(([a, letter, b]) => a + letter + b),
        (raw) => refusesAsInvalid('phone', raw),
      ),
      RUNS,
    );
    // Digits only, six to fifteen of them, with separators ignored and a leading "+" kept.
    assert.equal(normalizeIdentifier('phone', ' +1 (555) 010-4477 '), '+15550104477');
    assert.equal(normalizeIdentifier('phone', '555.010.4477'), '5550104477');
  });

  test('account ids keep their case but not surrounding space; empty and over-long ones are refused', () => {
    assert.equal(normalizeIdentifier('account_id', '  Acct-42 '), 'Acct-42');
    refusesAsInvalid('account_id', '');
    refusesAsInvalid('account_id', ' \t ');
    refusesAsInvalid('account_id', 'x'.repeat(201));
  });
});
