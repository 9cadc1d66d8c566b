/**
 * What the two tokens that live in an e-mail address's local part share (the mailto unsubscribe
 * token, mailto-tokens.ts, and the return token of Message-IDs and return paths, return-tokens.ts):
 * RFC 4648 base32 in lowercase without padding (a relay may change the case of a local part, and
 * 64 octets is all RFC 5321 allows), a fixed layout of payload then truncated MAC, a subject id as
 * the UUID's 16 bytes, and a list that is signed rather than carried.
 */
import { timingSafeEqual } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32 in lowercase, without padding. */
export function toBase32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** The bytes of lowercase unpadded base32, or `undefined` when the unused trailing bits are not zero. */
export function fromBase32(text: string): Buffer | undefined {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    value = ((value << 5) | ALPHABET.indexOf(ch)) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  // One spelling per token: the bits past the last byte must be zero.
  if ((value & ((1 << bits) - 1)) !== 0) return undefined;
  return Buffer.from(out);
}

/** A layout: so many payload bytes, then so many MAC bytes. */
export class CompactLayout {
  readonly payloadBytes: number;
  readonly macBytes: number;
  /** The token's length in base32 characters. */
  readonly chars: number;
  readonly #pattern: RegExp;

  constructor(payloadBytes: number, macBytes: number) {
    this.payloadBytes = payloadBytes;
    this.macBytes = macBytes;
    this.chars = Math.ceil(((payloadBytes + macBytes) * 8) / 5);
    this.#pattern = new RegExp(`^[a-z2-7]{${this.chars}}$`);
  }

  /** The token of `payload` and its MAC. */
  spell(payload: Buffer, mac: Buffer): string {
    return toBase32(Buffer.concat([payload, mac]));
  }

  /** The payload and the MAC given of a token in any letter case, or `undefined` when malformed. */
  split(token: string): { payload: Buffer; given: Buffer } | undefined {
    const spelled = token.toLowerCase();
    if (!this.#pattern.test(spelled)) return undefined;
    const bytes = fromBase32(spelled);
    if (bytes === undefined || bytes.length !== this.payloadBytes + this.macBytes) return undefined;
    return { payload: bytes.subarray(0, this.payloadBytes), given: bytes.subarray(this.payloadBytes) };
  }
}

/**
 * The first of `lists` whose MAC (`sign`) is the one `given`, compared in constant time; the list
 * is signed, not carried, so the verifier tries each a person can be mailed for (a handful).
 */
export function signedList(
  given: Buffer,
  lists: readonly string[],
  sign: (list: string) => Buffer,
): string | undefined {
  return lists.find((l) => timingSafeEqual(given, sign(l)));
}

/** The 16 bytes of a UUID. */
export function uuidBytes(id: string): Buffer {
  return Buffer.from(id.replaceAll('-', ''), 'hex');
}

/** The UUID of 16 bytes, in its usual spelling. */
export function uuidOf(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
