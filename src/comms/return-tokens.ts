/**
 * Return tokens: what lets a bounce or a complaint prove that it answers a message Pledge sent.
 * Every campaign message carries one, signed for its recipient (the subject) and its list (a
 * purpose), twice: in its Message-ID (`<CAMPAIGN.TOKEN@MAILDOMAIN>`, which complaint reports quote
 * with the original message) and in its envelope sender, the VERP return path
 * (`bounces+TOKEN@MAILDOMAIN`, where delivery status notifications are sent). The inbound listener
 * applies a report only when one of them verifies, within {@link RETURN_TOKEN_WINDOW_DAYS} of
 * sending; anyone else who can reach the port can no longer suppress an address or withdraw a
 * person's consent.
 *
 * Layout (then lowercase base32, as mailto tokens: a relay may change the case of a local part):
 *
 *   format (1 byte) | key version (1) | sent, Unix hours (3, big-endian) | subject id, the UUID's 16
 *   bytes | HMAC-SHA256 truncated to 13 bytes
 *
 * 34 bytes, 55 characters, so `bounces+TOKEN` fits the 64 octets RFC 5321 allows in a local part.
 * The list is not carried but signed: the MAC covers it, and the verifier tries each purpose of the
 * manifest (a handful). The key version says which key signed, so the key can rotate: a token of an
 * earlier version verifies while that version's key is still given.
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { UUID_PATTERN } from '../platform/ids.js';
import { UseKeys } from '../vault/use-keys.js';
import { CompactLayout, signedList, uuidBytes, uuidOf } from './compact-tokens.js';

/**
 * How long after sending a report about a message is accepted: bounces come within days (an MTA
 * gives up after about five), complaints within days to weeks of a feedback loop's delay.
 */
export const RETURN_TOKEN_WINDOW_DAYS = 30;
/** How far in the future a token's send time may be (clocks of several instances differ a little). */
const CLOCK_SKEW_HOURS = 1;
/** The local part of the bounce address before `+TOKEN`. */
export const BOUNCE_LOCAL_PREFIX = 'bounces+';

const FORMAT = 1;
const HOUR_MS = 3_600_000;
const MAC_BYTES = 13;
const PAYLOAD_BYTES = 1 + 1 + 3 + 16;
const LAYOUT = new CompactLayout(PAYLOAD_BYTES, MAC_BYTES);
const TOKEN_CHARS = LAYOUT.chars;
/** The HKDF label of the key of version 1; a later version gets a label of its own. */
const KEY_INFO = (version: number) => `pledge return tokens v${version}`;

/** The keys return tokens are signed and checked with. */
export interface ReturnTokenKeys {
  /** The version new tokens are signed with. */
  current: number;
  /** Every version a token may still be checked against. */
  byVersion: ReadonlyMap<number, KeyObject>;
}

/** What a verified token says: whose message it was, of which list, and when it was sent. */
export interface ReturnToken {
  subjectId: string;
  list: string;
  sentAt: Date;
}

/** Why a token was refused. */
export type ReturnTokenProblem = 'malformed' | 'unknown_key' | 'bad_signature' | 'expired';

/** The outcome of {@link verifyReturnToken}; it never throws. */
export type VerifyReturnTokenResult =
  { ok: true; token: ReturnToken } | { ok: false; problem: ReturnTokenProblem };

/**
 * Derives the return-token key from `secret` (today the keyring's index key) with HKDF-SHA256 under
 * a label of its own, so its MACs can never be confused with link tokens, blind indexes or webhook
 * signatures made from the same secret.
 */
export function deriveReturnTokenKeys(secret: Buffer, version = 1): ReturnTokenKeys {
  const key = createSecretKey(
    Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), KEY_INFO(version), 32)),
  );
  return { current: version, byVersion: new Map([[version, key]]) };
}

/**
 * The return-token keys of every version of the keyring's `message_id` use (use-keys.ts), each
 * derived under its version's label; new tokens are signed with the newest. A lone secret is
 * version 1. Versions above 255 do not fit the token's key-version byte and are left out.
 */
export function returnTokenKeysOf(secret: Buffer | UseKeys): ReturnTokenKeys {
  if (!(secret instanceof UseKeys)) return deriveReturnTokenKeys(secret);
  const byVersion = new Map<number, KeyObject>();
  for (const v of secret.versions()) {
    if (v.version > 0xff) continue;
    const key = deriveReturnTokenKeys(v.secret, v.version).byVersion.get(v.version);
    if (key !== undefined) byVersion.set(v.version, key);
  }
  return { current: secret.current().version, byVersion };
}

/** Makes the token of a message to `subjectId` of `list`, sent at `now`. Throws a RangeError on a non-UUID subject. */
export function createReturnToken(
  keys: ReturnTokenKeys,
  claims: { subjectId: string; list: string },
  options: { now: Date },
): string {
  if (!UUID_PATTERN.test(claims.subjectId)) throw new RangeError('a return token needs a UUID subject id');
  if (claims.list.length === 0) throw new RangeError('a return token needs a list');
  const key = keys.byVersion.get(keys.current);
  if (key === undefined) throw new RangeError(`no return-token key of version ${keys.current}`);
  const payload = Buffer.alloc(PAYLOAD_BYTES);
  payload.writeUInt8(FORMAT, 0);
  payload.writeUInt8(keys.current, 1);
  payload.writeUIntBE(Math.floor(options.now.getTime() / HOUR_MS), 2, 3);
  uuidBytes(claims.subjectId).copy(payload, 5);
  return LAYOUT.spell(payload, mac(key, payload, claims.list));
}

/**
 * Checks a token, in any letter case, against each of `lists`; the first whose MAC matches
 * (compared in constant time) is the token's list. A token is accepted from its send time (less a
 * little clock skew) until {@link RETURN_TOKEN_WINDOW_DAYS} after it. Never throws.
 */
export function verifyReturnToken(
  keys: ReturnTokenKeys,
  token: string,
  options: { now: Date; lists: readonly string[] },
): VerifyReturnTokenResult {
  const split = LAYOUT.split(token);
  if (split === undefined) return { ok: false, problem: 'malformed' };
  const { payload, given } = split;
  if (payload.readUInt8(0) !== FORMAT) return { ok: false, problem: 'malformed' };
  const key = keys.byVersion.get(payload.readUInt8(1));
  if (key === undefined) return { ok: false, problem: 'unknown_key' };
  const list = signedList(given, options.lists, (l) => mac(key, payload, l));
  if (list === undefined) return { ok: false, problem: 'bad_signature' };
  const sentHours = payload.readUIntBE(2, 3);
  const nowHours = options.now.getTime() / HOUR_MS;
  if (nowHours < sentHours - CLOCK_SKEW_HOURS || nowHours >= sentHours + RETURN_TOKEN_WINDOW_DAYS * 24) {
    return { ok: false, problem: 'expired' };
  }
  const subjectId = uuidOf(payload.subarray(5));
  return { ok: true, token: { subjectId, list, sentAt: new Date(sentHours * HOUR_MS) } };
}

/** The Message-ID of a campaign's message carrying `token`: `<CAMPAIGN.TOKEN@MAILDOMAIN>`. */
export function returnMessageId(campaignId: string, token: string, mailDomain: string): string {
  return `<${campaignId}.${token}@${mailDomain}>`;
}

/** The VERP return path carrying `token`: `bounces+TOKEN@MAILDOMAIN`. */
export function returnPath(token: string, mailDomain: string): string {
  return `${BOUNCE_LOCAL_PREFIX}${token}@${mailDomain}`;
}

/**
 * The (unverified) token of a Message-ID Pledge wrote, or `undefined` when it is not one of ours:
 * its domain must be the mail domain and its last dot-separated part the right length.
 */
export function returnTokenInMessageId(
  messageId: string | undefined,
  mailDomain: string,
): string | undefined {
  if (messageId === undefined) return undefined;
  const m = /^\s*<?([^<>@\s]{1,300})@([^<>@\s]{1,255})>?\s*$/.exec(messageId);
  if (!m || m[2]!.toLowerCase() !== mailDomain.toLowerCase()) return undefined;
  const last = m[1]!.slice(m[1]!.lastIndexOf('.') + 1);
  return last.length === TOKEN_CHARS ? last : undefined;
}

/** The (unverified) token of a `bounces+TOKEN@MAILDOMAIN` address, or `undefined`. */
export function returnTokenInAddress(address: string, mailDomain: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || address.slice(at + 1).toLowerCase() !== mailDomain.toLowerCase()) return undefined;
  const local = address.slice(0, at);
  if (!local.toLowerCase().startsWith(BOUNCE_LOCAL_PREFIX)) return undefined;
  const token = local.slice(BOUNCE_LOCAL_PREFIX.length);
  return token.length === TOKEN_CHARS ? token : undefined;
}

function mac(key: KeyObject, payload: Buffer, list: string): Buffer {
  const l = Buffer.from(list, 'utf8');
  return createHmac('sha256', key)
    .update(payload)
    .update(Buffer.from([l.length & 0xff, l.length >> 8]))
    .update(l)
    .digest()
    .subarray(0, MAC_BYTES);
}
