/**
 * Link tokens: the opaque `t=` in unsubscribe and preference-center links. A token names a subject,
 * what the link may do (its scope), the purpose and channel an unsubscribe link is for, and when it
 * stops working, and is signed with HMAC-SHA256 under a key derived from the index key. Nothing is
 * stored: a link works because the server can check its signature, so mailing a million links costs
 * no rows. The index key does not rotate (keyring.ts), so a link works until it expires.
 *
 * Layout (then base64url without padding):
 *
 *   version (1 byte) | scope (1) | expires, Unix seconds (4, big-endian)
 *   | subject id | purpose | channel   (each: length (1) + UTF-8 bytes; empty for a preferences token)
 *   | HMAC-SHA256 of everything before it (32)
 *
 * Verification accepts exactly the bytes and the spelling {@link createLinkToken} writes: another
 * base64 alphabet, padding, a trailing byte or one changed bit is a bad token.
 */
import { createHmac, createSecretKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';

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

/** The outcome of {@link verifyLinkToken}; it never throws. */
export type VerifyLinkTokenResult = { ok: true; token: LinkToken } | { ok: false; problem: LinkTokenProblem };

/** Options of {@link createLinkToken}. */
export interface CreateLinkTokenOptions {
  /** The time the token is made at (a context's clock). */
  now: Date;
  /** How long the link works, in seconds; the scope's default when absent. */
  ttlSeconds?: number;
}

const DAY = 86_400;
/** Unsubscribe links work at least this long (mail is read late; CAN-SPAM asks 30 days). */
export const MIN_UNSUBSCRIBE_TTL_SECONDS = 60 * DAY;
/** The default lifetime of an unsubscribe link. */
export const DEFAULT_UNSUBSCRIBE_TTL_SECONDS = 90 * DAY;
/** The default lifetime of a preference-center link (the one e-mailed on request). */
export const DEFAULT_PREFERENCES_TTL_SECONDS = DAY;
/** No link works longer than this. */
export const MAX_LINK_TTL_SECONDS = 400 * DAY;

const VERSION = 1;
const SCOPE_BYTES: Record<LinkTokenScope, number> = { unsubscribe: 1, preferences: 2 };
const MAC_BYTES = 32;
const HEADER_BYTES = 6;
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

/**
 * Makes a signed token. Throws a RangeError for a lifetime outside what the scope allows (an
 * unsubscribe link must work at least {@link MIN_UNSUBSCRIBE_TTL_SECONDS}) or for a subject id,
 * purpose or channel longer than 255 bytes.
 */
export function createLinkToken(
  key: KeyObject,
  claims: LinkTokenClaims,
  options: CreateLinkTokenOptions,
): string {
  const ttl =
    options.ttlSeconds ??
    (claims.scope === 'unsubscribe' ? DEFAULT_UNSUBSCRIBE_TTL_SECONDS : DEFAULT_PREFERENCES_TTL_SECONDS);
  const min = claims.scope === 'unsubscribe' ? MIN_UNSUBSCRIBE_TTL_SECONDS : 60;
  if (!Number.isInteger(ttl) || ttl < min || ttl > MAX_LINK_TTL_SECONDS) {
    throw new RangeError(
      `a ${claims.scope} link must work from ${min} to ${MAX_LINK_TTL_SECONDS} seconds; got ${ttl}`,
    );
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
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(VERSION, 0);
  header.writeUInt8(SCOPE_BYTES[claims.scope], 1);
  header.writeUInt32BE(expires, 2);
  const payload = Buffer.concat([header, ...encoded.flatMap((f) => [Buffer.from([f.length]), f])]);
  return Buffer.concat([payload, mac(key, payload)]).toString('base64url');
}

/**
 * Checks a token: its spelling, its signature (compared in constant time), its expiry against `now`
 * (a token works while `now` is before its expiry) and, when `scope` is given, that it is a token of
 * that scope. Never throws; the reason a token was refused is for logs and tests, not for people.
 */
export function verifyLinkToken(
  key: KeyObject,
  token: string,
  options: { now: Date; scope?: LinkTokenScope },
): VerifyLinkTokenResult {
  // Buffer's base64url decoder skips characters it does not know, so the spelling is checked first
  // and the decoded bytes must encode back to exactly the token.
  if (token.length > 1024 || !BASE64URL.test(token)) return { ok: false, problem: 'malformed' };
  const bytes = Buffer.from(token, 'base64url');
  if (bytes.toString('base64url') !== token || bytes.length < HEADER_BYTES + 3 + MAC_BYTES) {
    return { ok: false, problem: 'malformed' };
  }
  const payload = bytes.subarray(0, bytes.length - MAC_BYTES);
  const given = bytes.subarray(bytes.length - MAC_BYTES);
  if (!timingSafeEqual(given, mac(key, payload))) return { ok: false, problem: 'bad_signature' };

  // Signed by us, so well formed unless a future version wrote it; parsed strictly all the same.
  if (payload.readUInt8(0) !== VERSION) return { ok: false, problem: 'malformed' };
  const scopeByte = payload.readUInt8(1);
  const scope = (Object.keys(SCOPE_BYTES) as LinkTokenScope[]).find((s) => SCOPE_BYTES[s] === scopeByte);
  if (scope === undefined) return { ok: false, problem: 'malformed' };
  const expiresAt = new Date(payload.readUInt32BE(2) * 1000);
  const fields: string[] = [];
  let at = HEADER_BYTES;
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
    token:
      scope === 'unsubscribe'
        ? { scope, subjectId, purpose, ...(channel !== '' ? { channel } : {}), expiresAt }
        : { scope, subjectId, expiresAt },
  };
}

function mac(key: KeyObject, payload: Buffer): Buffer {
  return createHmac('sha256', key).update(payload).digest();
}
