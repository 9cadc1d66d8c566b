/**
 * Card processing behind one small interface. A collection point with a pass-through card number
 * hands the card to the processor adapter of the recipient it names (the manifest's
 * `pass_through: [{ category: user.financial.payment_card.number, recipient: card-processor }]`)
 * and keeps only what comes back: a token, the brand, the last four digits and the expiry.
 *
 * A real processor plugs in through `createApp(config, { processors: { 'card-processor': adapter } })`;
 * the built-in {@link TestCardProcessor} stands in for development and tests.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from '../platform/context.js';
import { ValidationError } from '../platform/errors.js';
import { cardBrand, cardDigits, isCardNumber, type CardBrand } from './pan.js';

/** A card as a processor receives it. The number and security code never reach storage. */
export interface CardDetails {
  /** Digits, possibly grouped by spaces or dashes. */
  number: string;
  /** "MM/YYYY". */
  expiry: string;
  securityCode?: string;
  holderName?: string;
}

/** What a processor returns for a card: all that Pledge keeps of it. */
export interface CardTokenResult {
  token: string;
  brand: string;
  lastFour: string;
  /** "MM/YYYY". */
  expiry: string;
}

/**
 * A card processor adapter. `tokenize` throws a PledgeError (4xx) when the processor refuses the
 * card; its messages must never repeat the number. Any other error is answered as the processor
 * being unavailable, and its message is not shown or logged, since it may carry card data.
 */
export interface CardProcessor {
  tokenize(ctx: Context, card: CardDetails): Promise<CardTokenResult>;
}

/** A card expiry as month and four-digit year. */
export interface CardExpiry {
  month: number;
  year: number;
}

/**
 * Parses an expiry as people write it: "MM/YY", "MM/YYYY", "MM-YY", "MM-YYYY" or "YYYY-MM".
 * `undefined` when it is none of those or the month is not 1–12.
 */
export function parseCardExpiry(text: string): CardExpiry | undefined {
  const value = text.trim();
  let month: number;
  let year: number;
  const my = /^(\d{1,2})\s*[/-]\s*(\d{2}|\d{4})$/.exec(value);
  const ym = /^(\d{4})-(\d{2})$/.exec(value);
  if (my?.[1] !== undefined && my[2] !== undefined) {
    month = Number(my[1]);
    year = my[2].length === 2 ? 2000 + Number(my[2]) : Number(my[2]);
  } else if (ym?.[1] !== undefined && ym[2] !== undefined) {
    year = Number(ym[1]);
    month = Number(ym[2]);
  } else {
    return undefined;
  }
  if (month < 1 || month > 12 || year < 2000 || year > 2099) return undefined;
  return { month, year };
}

/** An expiry written "MM/YYYY". */
export function formatCardExpiry(expiry: CardExpiry): string {
  return `${String(expiry.month).padStart(2, '0')}/${expiry.year}`;
}

/** True when a card expiring at the end of `expiry`'s month has expired by `now` (UTC). */
export function isCardExpired(expiry: CardExpiry, now: Date): boolean {
  return expiry.year * 12 + expiry.month < now.getUTCFullYear() * 12 + now.getUTCMonth() + 1;
}

/** The test number the {@link TestCardProcessor} declines, like a processor's own test cards. */
export const TEST_DECLINED_CARD = '4000000000000002';

/**
 * A processor for development and tests: it checks the number like a real one would (Luhn, length,
 * issuer prefix), declines {@link TEST_DECLINED_CARD}, and returns a random `tok_test_...` token.
 * It keeps nothing.
 */
export class TestCardProcessor implements CardProcessor {
  /** Tokenizes a card; throws `collect.card_invalid` or `collect.card_declined` (422). */
  tokenize(_ctx: Context, card: CardDetails): Promise<CardTokenResult> {
    const digits = cardDigits(card.number);
    if (digits === undefined || !isCardNumber(digits)) {
      return Promise.reject(
        new ValidationError(
          'collect.card_invalid',
          'the card number is not valid: check the digits (it must pass the Luhn check and start with a known issuer prefix)',
          undefined,
          422,
        ),
      );
    }
    const expiry = parseCardExpiry(card.expiry);
    if (!expiry) {
      return Promise.reject(
        new ValidationError(
          'collect.card_expiry_invalid',
          'the card expiry is not valid: write it as MM/YY',
          undefined,
          422,
        ),
      );
    }
    if (card.securityCode !== undefined && !/^\d{3,4}$/.test(card.securityCode.trim())) {
      return Promise.reject(
        new ValidationError(
          'collect.card_security_code_invalid',
          'the card security code must be 3 or 4 digits',
          undefined,
          422,
        ),
      );
    }
    if (digits === TEST_DECLINED_CARD) {
      return Promise.reject(
        new ValidationError('collect.card_declined', 'the card processor declined the card', undefined, 422),
      );
    }
    const brand: CardBrand = cardBrand(digits) ?? 'visa';
    return Promise.resolve({
      token: `tok_test_${randomBytes(12).toString('hex')}`,
      brand,
      lastFour: digits.slice(-4),
      expiry: formatCardExpiry(expiry),
    });
  }
}
