/**
 * The token of the mailto unsubscribe address (`unsubscribe+TOKEN@mail-domain` in List-Unsubscribe,
 * RFC 2369). It says the same as an unsubscribe link token (this subject, this list, by e-mail, until
 * then) but must fit an address: RFC 5321 allows 64 octets in a local part, and some mail systems
 * change the case of a local part. A link token (about 130 characters of case-sensitive base64url)
 * does neither, so this one is compact and spelled in lowercase base32:
 *
 *   links key version (1 byte) | expires, days since 1970-01-01 (2, big-endian)
 *   | subject id, the UUID's 16 bytes | HMAC-SHA256 truncated to 13 bytes
 *
 * The first byte was the format version (1) before keys had versions; the token has no room for a
 * second one, so it now says the version of the links key it is signed with, and every token made
 * before means key version 1, as it was. A change of layout would need another local-part prefix.
 * Keys of versions above 255 cannot make mailto tokens (a rotation a day would take most of a year).
 *
 * 32 bytes, 52 base32 characters: with `unsubscribe+`, exactly 64. The list (purpose) and channel
 * are not carried but signed: the MAC covers them, and the verifier tries each list a person can
 * be mailed for (a handful) until one matches. A 104-bit MAC leaves a forger one chance in 2^104 per
 * guess.
 */
import { createHmac, type KeyObject } from 'node:crypto';
import {
  DEFAULT_UNSUBSCRIBE_TTL_SECONDS,
  linkKeysOf,
  MAX_LINK_TTL_SECONDS,
  MIN_UNSUBSCRIBE_TTL_SECONDS,
  type LinkTokenKeys,
  type VerifyLinkTokenResult,
} from '../consent/link-tokens.js';
import { UUID_PATTERN } from '../platform/ids.js';
import { CompactLayout, signedList, uuidBytes, uuidOf } from './compact-tokens.js';

/** What comes before the token in the local part of the address. */
export const MAILTO_LOCAL_PREFIX = 'unsubscribe+';
/** The channel every mailto token is for. */
const CHANNEL = 'email';
const DAY_MS = 86_400_000;
const MAC_BYTES = 13;
const PAYLOAD_BYTES = 1 + 2 + 16;
const LAYOUT = new CompactLayout(PAYLOAD_BYTES, MAC_BYTES);
/** The domain separation of the MAC from link tokens made with the same key. */
const LABEL = Buffer.from('pledge mailto unsubscribe v1', 'utf8');

/** Who and which list a mailto token unsubscribes. */
export interface MailtoTokenClaims {
  subjectId: string;
  purpose: string;
}

/**
 * Makes the token of `claims` (an unsubscribe from `purpose` by e-mail). The lifetime is that of an
 * unsubscribe link (at least 60 days), rounded up to whole days. Throws a RangeError for a subject
 * id that is not a UUID (every subject id Pledge makes is one) or a lifetime out of range.
 */
export function createMailtoToken(
  keys: LinkTokenKeys,
  claims: MailtoTokenClaims,
  options: { now: Date; ttlSeconds?: number },
): string {
  const { version, key } = linkKeysOf(keys).current;
  if (version > 0xff)
    throw new RangeError(`a mailto token holds links key versions up to 255; got ${version}`);
  const ttl = options.ttlSeconds ?? DEFAULT_UNSUBSCRIBE_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < MIN_UNSUBSCRIBE_TTL_SECONDS || ttl > MAX_LINK_TTL_SECONDS) {
    throw new RangeError(
      `a mailto unsubscribe token must work from ${MIN_UNSUBSCRIBE_TTL_SECONDS} to ${MAX_LINK_TTL_SECONDS} seconds; got ${ttl}`,
    );
  }
  if (!UUID_PATTERN.test(claims.subjectId))
    throw new RangeError('a mailto unsubscribe token needs a UUID subject id');
  if (claims.purpose.length === 0) throw new RangeError('a mailto unsubscribe token needs a purpose');
  const expiresDay = Math.ceil((options.now.getTime() + ttl * 1000) / DAY_MS);
  if (expiresDay > 0xffff) throw new RangeError('the expiry does not fit the token (after 2149)');
  const payload = Buffer.alloc(PAYLOAD_BYTES);
  payload.writeUInt8(version, 0);
  payload.writeUInt16BE(expiresDay, 1);
  uuidBytes(claims.subjectId).copy(payload, 3);
  return LAYOUT.spell(payload, mac(key, payload, claims.purpose));
}

/**
 * Checks a token, in any letter case, against each of `purposes` (the lists a person can be mailed
 * for); the first whose signature matches (compared in constant time) is the token's list. Never
 * throws.
 */
export function verifyMailtoToken(
  keys: LinkTokenKeys,
  token: string,
  options: { now: Date; purposes: readonly string[] },
): VerifyLinkTokenResult {
  const split = LAYOUT.split(token);
  if (split === undefined) return { ok: false, problem: 'malformed' };
  const { payload, given } = split;
  // The first byte names the key; a version the keyring does not hold (or a changed byte) fails.
  const keyVersion = payload.readUInt8(0);
  const key = linkKeysOf(keys).get(keyVersion);
  if (key === undefined) return { ok: false, problem: 'bad_signature' };
  const purpose = signedList(given, options.purposes, (p) => mac(key, payload, p));
  if (purpose === undefined) return { ok: false, problem: 'bad_signature' };
  const expiresAt = new Date(payload.readUInt16BE(1) * DAY_MS);
  if (options.now.getTime() >= expiresAt.getTime()) return { ok: false, problem: 'expired' };
  const subjectId = uuidOf(payload.subarray(3));
  return {
    ok: true,
    keyVersion,
    generation: 0,
    token: { scope: 'unsubscribe', subjectId, purpose, channel: CHANNEL, expiresAt },
  };
}

function mac(key: KeyObject, payload: Buffer, purpose: string): Buffer {
  const p = Buffer.from(purpose, 'utf8');
  return createHmac('sha256', key)
    .update(LABEL)
    .update(payload)
    .update(Buffer.from([p.length & 0xff, p.length >> 8]))
    .update(p)
    .update(CHANNEL)
    .digest()
    .subarray(0, MAC_BYTES);
}
