/**
 * The one e-mail address check: what RFC 5321 writes unquoted is taken (with RFC 6531's UTF-8), and
 * an address that holds a control character, a line break, an angle bracket, a quote, a space or
 * any other character SMTP does not allow unquoted is refused, wherever it would be placed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isMailboxAddress } from '../../src/platform/email-address.js';
import { normalizeIdentifier } from '../../src/vault/identifiers.js';

const RUNS = { numRuns: 1000 };

/** Characters RFC 5321 allows in neither an unquoted local part nor a domain. */
const FORBIDDEN = [
  ...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)),
  '\x7f',
  '\u0085',
  '\u2028',
  '\u200e',
  ' ',
  '\u00a0',
  '<',
  '>',
  '"',
  '(',
  ')',
  ',',
  ':',
  ';',
  '[',
  ']',
  '\\',
];

const atom = fc.stringMatching(/^[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}$/);
const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
/** A valid address: dot-separated atoms, "@", two to four labels. */
const address = fc
  .tuple(fc.array(atom, { minLength: 1, maxLength: 3 }), fc.array(label, { minLength: 2, maxLength: 4 }))
  .map(([atoms, labels]) => `${atoms.join('.')}@${labels.join('.')}`);

describe('isMailboxAddress', () => {
  test('takes the unquoted addresses RFC 5321 and RFC 6531 write', () => {
    fc.assert(
      fc.property(address, (a) => assert.equal(isMailboxAddress(a), true, a)),
      RUNS,
    );
    for (const a of [
      'ada@example.com',
      'first.last+tag@mail.example.co.uk',
      "o'brien@example.ie",
      'josé@exämple.de',
      '用户@例子.广告',
      `${'a'.repeat(64)}@example.com`,
    ])
      assert.equal(isMailboxAddress(a), true, a);
  });

  test('refuses a forbidden character anywhere in an otherwise valid address', () => {
    fc.assert(
      fc.property(address, fc.constantFrom(...FORBIDDEN), fc.nat(), (a, bad, at) => {
        const i = at % (a.length + 1);
        const spoiled = a.slice(0, i) + bad + a.slice(i);
        assert.equal(isMailboxAddress(spoiled), false, JSON.stringify(spoiled));
        // The identifier check trims the ends, so inside the text the character is refused there too.
        if (i > 0 && i < a.length) assert.equal(normalizeIdentifier('email', spoiled), undefined);
      }),
      RUNS,
    );
  });

  test('refuses quoted local parts, address literals, display names and malformed dots', () => {
    for (const a of [
      '"ada lovelace"@example.com',
      '"ada"@example.com',
      'ada@[192.0.2.1]',
      'Ada <ada@example.com>',
      '<ada@example.com>',
      'ada@example.com>',
      'ada\r\nBcc: eve@example.com',
      'ada@example.com\r\nBcc: eve@example.com',
      '.ada@example.com',
      'ada.@example.com',
      'a..da@example.com',
      'ada@example..com',
      'ada@-example.com',
      'ada@example-.com',
      'ada@example',
      'ada@.example.com',
      `${'a'.repeat(65)}@example.com`,
      `ada@${'a'.repeat(64)}.com`,
      `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(60)}.com`,
    ])
      assert.equal(isMailboxAddress(a), false, JSON.stringify(a));
  });
});
