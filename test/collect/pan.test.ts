/**
 * The card number detector: it finds every valid card number however it is written and wherever
 * it hides, and it leaves alone numbers that are not card numbers (failed Luhn check, ids, times).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  cardBrand,
  cardDigits,
  findCardNumbers,
  isCardNumber,
  luhnValid,
  maskCardNumbers,
} from '../../src/collect/pan.js';

/** Issuer prefixes as inclusive ranges of equal width. */
const PREFIXES: Array<[number, number]> = [
  [4, 4], // Visa
  [51, 55], // Mastercard
  [2221, 2720],
  [34, 34], // Amex
  [37, 37],
  [6011, 6011], // Discover
  [644, 649],
  [65, 65],
  [3528, 3589], // JCB
  [300, 305], // Diners
  [36, 36],
  [38, 39],
  [62, 62], // UnionPay
  [50, 50], // Maestro
  [56, 69],
];

/** The check digit that makes `body` + digit pass Luhn. */
function luhnComplete(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + String(d))) return body + String(d);
  throw new Error('unreachable');
}

/** A valid card number: an issuer prefix, random digits, a Luhn check digit; 12 to 19 digits. */
const cardNumber = fc
  .tuple(
    fc.constantFrom(...PREFIXES).chain(([low, high]) => fc.integer({ min: low, max: high })),
    fc.integer({ min: 12, max: 19 }),
    fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 19, maxLength: 19 }),
  )
  .map(([prefix, length, filler]) => {
    const head = String(prefix);
    return luhnComplete(head + filler.slice(0, length - head.length - 1).join(''));
  });

/** The number as a person might type it: any digit may be followed by a space or a dash. */
const written = cardNumber.chain((digits) =>
  fc
    .array(fc.constantFrom('', '', '', ' ', '-'), { minLength: digits.length, maxLength: digits.length })
    .map((seps) => ({
      digits,
      text: [...digits].map((d, i) => (i < digits.length - 1 ? d + (seps[i] ?? '') : d)).join(''),
    })),
);

describe('card number detector', () => {
  test('finds every valid card number, with any separators, embedded in any text', () => {
    fc.assert(
      fc.property(
        written,
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        fc.constantFrom(' ', ': ', '\n', '(', ' #', '"', ' card '),
        fc.constantFrom(' ', '. ', ')', ', ', '\t', '"'),
        ({ digits, text }, before, afterText, open, close) => {
          const whole = `${before}${open}${text}${close}${afterText}`;
          const start = before.length + open.length;
          const end = start + text.length;
          const found = findCardNumbers(whole);
          assert.ok(
            found.some((m) => m.start <= start && m.end >= end),
            `the number (${digits.length} digits) is found in ${JSON.stringify(whole)}`,
          );
          assert.ok(!maskCardNumbers(whole).includes(text), 'masking removes it');
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('every generated number is a card number of the brand its prefix names', () => {
    fc.assert(
      fc.property(cardNumber, (digits) => {
        assert.ok(isCardNumber(digits));
        assert.ok(cardBrand(digits) !== undefined);
        assert.equal(findCardNumbers(digits).length, 1);
      }),
    );
  });

  test('never flags a digit string that fails the Luhn check', () => {
    fc.assert(
      fc.property(
        fc
          .string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 40 })
          .filter((s) => !luhnValid(s)),
        (digits) => {
          assert.deepEqual(findCardNumbers(digits), []);
          assert.deepEqual(findCardNumbers(`order ${digits} shipped`), []);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('a Luhn-valid number glued to other digits is not a card number on its own', () => {
    // Any long number hides a Luhn-valid part; refusing those would refuse every long number.
    assert.deepEqual(findCardNumbers(`9${'4111111111111111'}9`), []);
    assert.deepEqual(findCardNumbers('12345678901234567890123'), []);
  });

  test('known test cards of each brand are found and named', () => {
    const cards: Array<[string, string]> = [
      ['4111 1111 1111 1111', 'visa'],
      ['5555-5555-5555-4444', 'mastercard'],
      ['2223 0031 2200 3222', 'mastercard'],
      ['3782 822463 10005', 'amex'],
      ['6011 1111 1111 1117', 'discover'],
      ['3530 1113 3330 0000', 'jcb'],
      ['3056 9309 0259 04', 'diners'],
      ['6200 0000 0000 0005', 'unionpay'],
      ['6759 6498 2643 8453', 'maestro'],
    ];
    for (const [text, brand] of cards) {
      const found = findCardNumbers(`paid with ${text}.`);
      assert.equal(found.length, 1, text);
      assert.equal(found[0]?.brand, brand, text);
      assert.equal(found[0]?.start, 'paid with '.length);
      assert.equal(found[0]?.end, 'paid with '.length + text.length);
    }
  });

  test('a card number after a reference number is still found', () => {
    const text = 'ref 12 4111 1111 1111 1111';
    const [m] = findCardNumbers(text);
    assert.ok(m && m.end === text.length && m.start <= 7);
  });

  test('identifiers, timestamps and phone numbers are not card numbers', () => {
    for (const text of [
      '550e8400-e29b-41d4-a716-446655440000',
      'a716-446655440000',
      'sha256:4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a',
      '1700000000000',
      '2024-01-15 10:22:33',
      '+1 415-555-0100',
      '0.4111111111111111',
    ]) {
      assert.deepEqual(findCardNumbers(text), [], text);
    }
  });

  test('cardDigits reads what people type and refuses anything else', () => {
    assert.equal(cardDigits(' 4111-1111 1111-1111 '), '4111111111111111');
    assert.equal(cardDigits('4111x1111'), undefined);
    assert.equal(cardDigits(''), undefined);
  });
});
