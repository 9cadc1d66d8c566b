/**
 * Link tokens: the opaque `t=` in unsubscribe and preference-center links. A token names a subject,
 * what the link may do (its scope), the purpose and channel an unsubscribe link is for, and when it
 * stops working, and is signed with HMAC-SHA256 under the links key (the keyring's `links` use,
 * use-keys.ts). Nothing is stored: a link works because the server can check its signature, so
 * mailing a million links costs no rows. The links key rotates (`pledge keys rotate --use links`): a
 * token names the key version it was signed with, and a token of an older version works until it
 * expires. A preferences token also carries the person's link generation: "sign out every link" and
 * erasure raise it, and a token of an older generation is refused (the pages check it).
 *
 * Layout (then base64url without padding), format 2, written since keys had versions:
 *
 *   format = 2 (1 byte) | key version (2, big-endian) | scope (1) | expires, Unix seconds (4)
 *   | link generation (4; 0 for an unsubscribe token)
 *   | subject id | purpose | channel   (each: length (1) + UTF-8 bytes; empty for a preferences token)
 *   | HMAC-SHA256 of everything before it (32)
 *
 * Format 1, written before, is the same without the key version and the generation: it means key
 * version 1 and generation 0, and still verifies.
 *
 * Verification accepts exactly the bytes and the spelling {@link createLinkToken} writes: another
 * base64 alphabet, padding, a trailing byte or one changed bit is a bad token.
 */
import { createHmac, createSecretKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { UseKeys, VersionedKeys } from '../vault/use-keys.js';

/** What a link may do. */
export type LinkTokenScope = 'unsubscribe' | 'preferences';

/** What a token says: whose link it is and what it is for. */
export type LinkTokenClaims =
  /** Stop one purpose (a mailing list) on one channel, e.g. marketing by e-mail. */
  | { scope: 'unsubscribe'; subjectId: string; purpose: string; channel?: string | undefined }
  /** Open the subject's preference center. */
  | { scope: 'preferences'; subjectId: string };

/** A verified token: its claims and when it stops working. */
export type LinkToken = LinkTokenClaims & { expiresAt: Date };

/** Why a token was refused. */
export type LinkTokenProblem = 'malformed' | 'bad_signature' | 'expired' | 'wrong_scope';

/**
 * The outcome of {@link verifyLinkToken}; it never throws. `keyVersion` is the links key version it
 * was signed with, `generation` the link generation it was made in (0 for unsubscribe tokens).
 */
export type VerifyLinkTokenResult =
  | { ok: true; token: LinkToken; keyVersion: number; generation: number }
  | { ok: false; problem: LinkTokenProblem };

/** Options of {@link createLinkToken}. */
export interface CreateLinkTokenOptions {
  /** The time the token is made at (a context's clock). */
  now: Date;
  /** How long the link works, in seconds; the scope's default when absent. */
  ttlSeconds?: number;
  /** A preferences token: the person's current link generation (default 0). */
  generation?: number;
}

/**
 * What tokens are signed and verified with: the links key of every version the keyring holds
 * ({@link deriveLinkTokenKeys}), or one key, which is then version 1.
 */
export type LinkTokenKeys = VersionedKeys<KeyObject> | KeyObject;

const DAY = 86_400;
/** Unsubscribe links work at least this long (mail is read late; CAN-SPAM asks 30 days). */
export const MIN_UNSUBSCRIBE_TTL_SECONDS = 60 * DAY;
/** The default lifetime of an unsubscribe link. */
export const DEFAULT_UNSUBSCRIBE_TTL_SECONDS = 90 * DAY;
/** The default lifetime of a preference-center link (the one e-mailed on request). */
export const DEFAULT_PREFERENCES_TTL_SECONDS = DAY;
/** No preference-center link works longer than this (it opens a person's choices without a password). */
export const MAX_PREFERENCES_TTL_SECONDS = 30 * DAY;
/** No link works longer than this. */
export const MAX_LINK_TTL_SECONDS = 400 * DAY;

const FORMAT_1 = 1;
const FORMAT_2 = 2;
const SCOPE_BYTES: Record<LinkTokenScope, number> = { unsubscribe: 1, preferences: 2 };
const MAC_BYTES = 32;
const HEADER_1_BYTES = 6;
const HEADER_2_BYTES = 12;
const MAX_FIELD_BYTES = 255;
const KEY_INFO = 'pledge link tokens v1';
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The key link tokens are signed with, derived with HKDF-SHA256 from `secret` (the keyring's index
 * key) under its own info string, so a token's MAC can never be confused with a blind index or a
 * webhook signature made from the same secret.
 */
export function deriveLinkTokenKey(secret: Buffer): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), KEY_INFO, 32)));
}

/** The links key of every version the keyring holds (`keyring.use('links')`). */
export function deriveLinkTokenKeys(links: UseKeys): VersionedKeys<KeyObject> {
  return links.derive(deriveLinkTokenKey);
}

/** Keys as versions: a lone key is version 1. */
export function linkKeysOf(keys: LinkTokenKeys): VersionedKeys<KeyObject> {
  if (!('current' in keys)) {
    return { current: { version: 1, key: keys }, get: (v) => (v === 1 ? keys : undefined) };
  }
  return keys;
}

/**
 * Makes a signed token. Throws a RangeError for a lifetime outside what the scope allows (an
 * unsubscribe link must work at least {@link MIN_UNSUBSCRIBE_TTL_SECONDS}) or for a subject id,
 * purpose or channel longer than 255 bytes.
 */
export function createLinkToken(
  keys: LinkTokenKeys,
  claims: LinkTokenClaims,
  options: CreateLinkTokenOptions,
): string {
  const { version: keyVersion, key } = linkKeysOf(keys).current;
  const ttl =
    options.ttlSeconds ??
    (claims.scope === 'unsubscribe' ? DEFAULT_UNSUBSCRIBE_TTL_SECONDS : DEFAULT_PREFERENCES_TTL_SECONDS);
  const min = claims.scope === 'unsubscribe' ? MIN_UNSUBSCRIBE_TTL_SECONDS : 60;
  const max = claims.scope === 'unsubscribe' ? MAX_LINK_TTL_SECONDS : MAX_PREFERENCES_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < min || ttl > max) {
    throw new RangeError(`a ${claims.scope} link must work from ${min} to ${max} seconds; got ${ttl}`);
  }
  const generation = claims.scope === 'preferences' ? (options.generation ?? 0) : 0;
  if (!Number.isInteger(generation) || generation < 0 || generation > 0xffff_ffff) {
    throw new RangeError(`a link generation is a whole number from 0 to ${0xffff_ffff}; got ${generation}`);
  }
  if (!Number.isInteger(keyVersion) || keyVersion < 1 || keyVersion > 0xffff) {
    throw new RangeError(`a links key version is a whole number from 1 to ${0xffff}; got ${keyVersion}`);
  }
  const expires = Math.floor(options.now.getTime() / 1000) + ttl;
  if (expires > 0xffff_ffff) throw new RangeError('the expiry does not fit the token (after 2106)');
  if (claims.subjectId.length === 0) throw new RangeError('a link token needs a subject id');
  const fields =
    claims.scope === 'unsubscribe'
      ? [claims.subjectId, claims.purpose, claims.channel ?? '']
      : [claims.subjectId, '', ''];
  if (claims.scope === 'unsubscribe' && claims.purpose.length === 0) {
    throw new RangeError('an unsubscribe link needs a purpose');
  }
  const encoded = fields.map((f) => Buffer.from(f, 'utf8'));
  for (const f of encoded) {
    if (f.length > MAX_FIELD_BYTES)
      throw new RangeError(`a link token field holds at most ${MAX_FIELD_BYTES} bytes`);
  }
  const header = Buffer.alloc(HEADER_2_BYTES);
  header.writeUInt8(FORMAT_2, 0);
  header.writeUInt16BE(keyVersion, 1);
  header.writeUInt8(SCOPE_BYTES[claims.scope], 3);
  header.writeUInt32BE(expires, 4);
  header.writeUInt32BE(generation, 8);
  const payload = Buffer.concat([header, ...encoded.flatMap((f) => [Buffer.from([f.length]), f])]);
  return Buffer.concat([payload, mac(key, payload)]).toString('base64url');
}

/**
 * Checks a token: its spelling, its signature (compared in constant time) under the links key of the
 * version it names (a version the keyring does not hold is a bad signature), its expiry against
 * `now` (a token works while `now` is before its expiry) and, when `scope` is given, that it is a
 * token of that scope. The link generation is the caller's to check. Never throws; the reason a
 * token was refused is for logs and tests, not for people.
 */
export function verifyLinkToken(
  keys: LinkTokenKeys,
  token: string,
  options: { now: Date; scope?: LinkTokenScope },
): VerifyLinkTokenResult {
  // Buffer's base64url decoder skips characters it does not know, so the spelling is checked first
  // and the decoded bytes must encode back to exactly the token.
  if (token.length > 1024 || !BASE64URL.test(token)) return { ok: false, problem: 'malformed' };
  const bytes = Buffer.from(token, 'base64url');
  const format = bytes[0];
  const headerBytes = format === FORMAT_2 ? HEADER_2_BYTES : HEADER_1_BYTES;
  if (
    bytes.toString('base64url') !== token ||
    (format !== FORMAT_1 && format !== FORMAT_2) ||
    bytes.length < headerBytes + 3 + MAC_BYTES
  ) {
    return { ok: false, problem: 'malformed' };
  }
  // The version is read before the signature is checked (it says which key checks it); a changed
  // version byte makes the signature fail like any other changed byte.
  const keyVersion = format === FORMAT_2 ? bytes.readUInt16BE(1) : 1;
  const key = linkKeysOf(keys).get(keyVersion);
  if (key === undefined) return { ok: false, problem: 'bad_signature' };
  const payload = bytes.subarray(0, bytes.length - MAC_BYTES);
  const given = bytes.subarray(bytes.length - MAC_BYTES);
  if (!timingSafeEqual(given, mac(key, payload))) return { ok: false, problem: 'bad_signature' };

  // Signed by us, so well formed unless a future version wrote it; parsed strictly all the same.
  const scopeByte = payload.readUInt8(format === FORMAT_2 ? 3 : 1);
  const scope = (Object.keys(SCOPE_BYTES) as LinkTokenScope[]).find((s) => SCOPE_BYTES[s] === scopeByte);
  if (scope === undefined) return { ok: false, problem: 'malformed' };
  const expiresAt = new Date(payload.readUInt32BE(format === FORMAT_2 ? 4 : 2) * 1000);
  const generation = format === FORMAT_2 ? payload.readUInt32BE(8) : 0;
  const fields: string[] = [];
  let at = headerBytes;
  for (let i = 0; i < 3; i++) {
    const length = payload[at];
    if (length === undefined || at + 1 + length > payload.length) return { ok: false, problem: 'malformed' };
    fields.push(payload.subarray(at + 1, at + 1 + length).toString('utf8'));
    at += 1 + length;
  }
  if (at !== payload.length) return { ok: false, problem: 'malformed' };
  const [subjectId = '', purpose = '', channel = ''] = fields;

  if (options.now.getTime() >= expiresAt.getTime()) return { ok: false, problem: 'expired' };
  if (options.scope !== undefined && options.scope !== scope) return { ok: false, problem: 'wrong_scope' };
  return {
    ok: true,
    keyVersion,
    generation,
    token:
      scope === 'unsubscribe'
        ? { scope, subjectId, purpose, ...(channel !== '' ? { channel } : {}), expiresAt }
        : { scope, subjectId, expiresAt },
  };
}

function mac(key: KeyObject, payload: Buffer): Buffer {
  return createHmac('sha256', key).update(payload).digest();
}
