/**
 * Finds payment card numbers (primary account numbers) in text, so that none is ever stored by
 * mistake: a number typed into a feedback box is refused like one sent in a field named
 * `card_number`. A candidate is a run of 12 to 19 digits, optionally grouped by spaces or dashes,
 * that passes the Luhn check and starts with an issuer prefix.
 *
 * Nothing here returns or logs the digits it found: callers get positions, so that an error can say
 * where a number is without repeating it.
 */

/** The card brands the detector recognizes by issuer prefix. */
export const CARD_BRANDS = [
  'visa',
  'mastercard',
  'amex',
  'discover',
  'jcb',
  'diners',
  'unionpay',
  'maestro',
] as const;

/** One of {@link CARD_BRANDS}. */
export type CardBrand = (typeof CARD_BRANDS)[number];

/** Where a card number sits in a text: `text.slice(start, end)` holds it (with its separators). */
export interface CardNumberMatch {
  start: number;
  end: number;
  brand: CardBrand;
}

/** The fewest and most digits a primary account number has (ISO/IEC 7812). */
export const PAN_MIN_DIGITS = 12;
/** See {@link PAN_MIN_DIGITS}. */
export const PAN_MAX_DIGITS = 19;

/** True when a string of digits passes the Luhn (mod 10) check. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const inRange = (digits: string, width: number, low: number, high: number): boolean => {
  const n = Number(digits.slice(0, width));
  return digits.length >= width && n >= low && n <= high;
};

/**
 * The brand a number's issuer prefix belongs to, or `undefined` when no brand uses it. The more
 * specific prefixes are tried first: Maestro's 56–69 would otherwise swallow Discover and UnionPay.
 */
export function cardBrand(digits: string): CardBrand | undefined {
  if (digits.startsWith('4')) return 'visa';
  if (digits.startsWith('34') || digits.startsWith('37')) return 'amex';
  if (inRange(digits, 3, 300, 305) || digits.startsWith('36') || inRange(digits, 2, 38, 39)) return 'diners';
  if (inRange(digits, 4, 3528, 3589)) return 'jcb';
  if (inRange(digits, 2, 51, 55) || inRange(digits, 4, 2221, 2720)) return 'mastercard';
  if (digits.startsWith('6011') || inRange(digits, 3, 644, 649) || digits.startsWith('65')) return 'discover';
  if (digits.startsWith('62')) return 'unionpay';
  if (digits.startsWith('50') || inRange(digits, 2, 56, 69)) return 'maestro';
  return undefined;
}

/** True when a string of digits (no separators) is a plausible card number. */
export function isCardNumber(digits: string): boolean {
  return (
    digits.length >= PAN_MIN_DIGITS &&
    digits.length <= PAN_MAX_DIGITS &&
    /^\d+$/.test(digits) &&
    cardBrand(digits) !== undefined &&
    luhnValid(digits)
  );
}

/**
 * The digits of a card number as people type it ("4111 1111-1111 1111"), or `undefined` when the
 * text holds anything but digits, spaces and dashes.
 */
export function cardDigits(text: string): string | undefined {
  const trimmed = text.trim();
  if (!/^\d(?:[ -]*\d)*$/.test(trimmed)) return undefined;
  return trimmed.replace(/[ -]/g, '');
}

// Runs of digit groups joined by spaces (incl. no-break spaces) or dashes.
const RUN = /\d+(?:[ \u00a0-]+\d+)*/g;
const GROUP = /\d+/g;
// Hyphenated words made of letters and digits, e.g. "550e8400-e29b-41d4-a716-446655440000".
const TOKEN = /[0-9A-Za-z]+(?:-[0-9A-Za-z]+)*/g;
const HEX_ID = /^(?=.*[A-Fa-f])[0-9A-Fa-f-]+$/;

/**
 * Replaces the digits of hexadecimal identifiers (UUIDs, hashes, "deadbeef-1234...") with "x",
 * keeping every offset. Their all-digit segments look like card numbers to a Luhn check about once
 * in 7,000 UUIDs, and refusing an event batch because of a meeting id would be a bug, not privacy.
 */
function maskHexIdentifiers(text: string): string {
  if (!/[A-Fa-f]/.test(text)) return text;
  return text.replace(TOKEN, (token) => (HEX_ID.test(token) ? token.replace(/\d/g, 'x') : token));
}

const isDigitAt = (text: string, i: number): boolean => {
  const c = text.charCodeAt(i);
  return c >= 48 && c <= 57;
};

/** True when `text[dot]` is "." and `text[digit]` a digit: the run touches a decimal point. */
const isDecimalPoint = (text: string, dot: number, digit: number): boolean =>
  text[dot] === '.' && isDigitAt(text, digit);

/**
 * Every card number in a text, as positions. A run of grouped digits is a card number when all of
 * it is one; when it is longer (a reference number typed before the card, say) every contiguous
 * span of its groups is tried, so "ref 12 4111 1111 1111 1111" is still caught. A run without
 * separators is only ever taken whole: any long digit string hides some Luhn-valid substring, and
 * refusing every long number would make the check useless. Never throws.
 */
export function findCardNumbers(text: string): CardNumberMatch[] {
  let digitCount = 0;
  for (let i = 0; i < text.length && digitCount < PAN_MIN_DIGITS; i++) if (isDigitAt(text, i)) digitCount++;
  if (digitCount < PAN_MIN_DIGITS) return [];
  const scanned = maskHexIdentifiers(text);
  const found: CardNumberMatch[] = [];
  for (const run of scanned.matchAll(RUN)) {
    const runText = run[0];
    const runStart = run.index;
    const runEnd = runStart + runText.length;
    const groups = [...runText.matchAll(GROUP)].map((g) => ({
      start: runStart + g.index,
      end: runStart + g.index + g[0].length,
      digits: g[0],
    }));
    // Digits after a decimal point are a fraction (0.4111...), and before one an integer part.
    if (isDecimalPoint(scanned, runStart - 1, runStart - 2)) groups.shift();
    if (isDecimalPoint(scanned, runEnd, runEnd + 1)) groups.pop();
    const total = groups.reduce((n, g) => n + g.digits.length, 0);
    if (total < PAN_MIN_DIGITS) continue;
    const whole = groups.map((g) => g.digits).join('');
    const wholeBrand = total <= PAN_MAX_DIGITS && isCardNumber(whole) ? cardBrand(whole) : undefined;
    const head = groups[0];
    const tail = groups[groups.length - 1];
    if (wholeBrand !== undefined && head && tail) {
      found.push({ start: head.start, end: tail.end, brand: wholeBrand });
      continue;
    }
    if (groups.length < 2) continue;
    // Try every span of groups; overlapping hits are merged so each number is reported once.
    const spans: CardNumberMatch[] = [];
    for (let i = 0; i < groups.length; i++) {
      let digits = '';
      for (let j = i; j < groups.length; j++) {
        digits += groups[j]?.digits ?? '';
        if (digits.length > PAN_MAX_DIGITS) break;
        if (digits.length < PAN_MIN_DIGITS || (i === 0 && j === groups.length - 1)) continue;
        const brand = isCardNumber(digits) ? cardBrand(digits) : undefined;
        const first = groups[i];
        const last = groups[j];
        if (brand !== undefined && first && last) spans.push({ start: first.start, end: last.end, brand });
      }
    }
    spans.sort((a, b) => a.start - b.start);
    const merged: CardNumberMatch[] = [];
    for (const span of spans) {
      const previous = merged[merged.length - 1];
      if (previous && previous.end >= span.start) previous.end = Math.max(previous.end, span.end);
      else merged.push({ ...span });
    }
    found.push(...merged);
  }
  return found;
}

/** True when a text holds a card number anywhere. */
export function containsCardNumber(text: string): boolean {
  return findCardNumbers(text).length > 0;
}

/** The text with every card number replaced by `mask`, for names and paths that must be shown. */
export function maskCardNumbers(text: string, mask = '[card number]'): string {
  const matches = findCardNumbers(text);
  if (matches.length === 0) return text;
  let out = '';
  let at = 0;
  for (const m of matches) {
    out += text.slice(at, m.start) + mask;
    at = m.end;
  }
  return out + text.slice(at);
}
