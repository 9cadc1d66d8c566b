/**
 * Webhook signatures: how Pledge signs a delivery and how a receiver verifies it.
 *
 * `Pledge-Signature: t=<unix seconds>,k=<key version>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
 * The timestamp is signed with the body, so a captured delivery cannot be replayed later than the
 * receiver's tolerance (5 minutes by default); within it, receivers de-duplicate on `Pledge-Event-Id`.
 * `v1` is the signature scheme; `k` is the version of the webhooks key the secret comes from (absent
 * before keys had versions: 1), so a receiver holding the secrets of two versions during a rotation
 * knows which one checks a delivery. Receivers that do not know `k` ignore it.
 *
 * Each webhook has its own secret, derived with HKDF-SHA256 from the keyring's `webhooks` key of a
 * version (version 1 is the index key, as before keys had versions), so one receiver's secret
 * neither reveals that key nor lets it forge deliveries to another receiver.
 * The secret is a string (`whsec_` and 64 hex digits); the HMAC key is that string's UTF-8 bytes,
 * so a receiver in any language uses it as it is.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** The header that carries the signature. */
export const SIGNATURE_HEADER = 'Pledge-Signature';

/** How far a signature's timestamp may be from the receiver's clock, by default (seconds). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = 'whsec_';
const HKDF_INFO = 'pledge webhook v1 ';
const HEX_SIGNATURE = /^[0-9a-f]{64}$/;
const UNIX_SECONDS = /^\d{1,12}$/;
const KEY_VERSION = /^[1-9]\d{0,5}$/;

/**
 * The signing secret of the webhook `key`, derived from `signingSecret` (the keyring's index key).
 * Deterministic: every instance of a deployment derives the same secret, and `pledge webhooks
 * secret KEY` prints it for the receiver.
 */
export function deriveWebhookSecret(signingSecret: Buffer, key: string): string {
  const bytes = Buffer.from(hkdfSync('sha256', signingSecret, Buffer.alloc(0), HKDF_INFO + key, 32));
  return SECRET_PREFIX + bytes.toString('hex');
}

/** Options of {@link signWebhookPayload}. */
export interface SignWebhookOptions {
  secret: string;
  /** The exact bytes sent as the request body. */
  body: string | Buffer;
  /** When it is signed. */
  at: Date;
  /** The webhooks key version `secret` comes from (default 1). */
  keyVersion?: number;
}

/** The value of the `Pledge-Signature` header for `body` sent at `at`. */
export function signWebhookPayload({ secret, body, at, keyVersion = 1 }: SignWebhookOptions): string {
  const t = Math.floor(at.getTime() / 1000);
  return `t=${t},k=${keyVersion},v1=${hmac(secret, t, body).toString('hex')}`;
}

/** Options of {@link verifyWebhookSignature}. */
export interface VerifyWebhookOptions {
  /**
   * The webhook's secret (`pledge webhooks secret KEY`), or its secrets by key version while a
   * rotation is under way (`pledge webhooks secret KEY --key-version N`); one secret checks every
   * delivery whatever its `k`.
   */
  secret: string | Readonly<Record<number, string>>;
  /** The `Pledge-Signature` header as received (`undefined` when absent). */
  header: string | string[] | undefined;
  /** The raw request body, exactly as received (not re-serialized JSON). */
  body: string | Buffer;
  /** The receiver's current time (default: now). */
  now?: Date;
  /** How far the timestamp may be from `now`, either way, in seconds (default 300). */
  toleranceSeconds?: number;
}

/** Why a signature was refused. */
export type WebhookSignatureFailure = 'malformed' | 'stale' | 'future' | 'mismatch';

/** The outcome of {@link verifyWebhookSignature}. */
export type VerifyWebhookResult =
  { valid: true; timestamp: Date } | { valid: false; reason: WebhookSignatureFailure };

/**
 * Verifies a delivery's `Pledge-Signature` header, for receivers. Valid only when the header is
 * well formed, its timestamp is within `toleranceSeconds` of `now`, and one of its `v1` signatures
 * is the HMAC of that timestamp and `body` (compared in constant time). Never throws.
 */
export function verifyWebhookSignature(options: VerifyWebhookOptions): VerifyWebhookResult {
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const header = Array.isArray(options.header) ? options.header.join(',') : options.header;
  if (header === undefined || header.length > 1024) return { valid: false, reason: 'malformed' };
  let t: number | undefined;
  let keyVersion: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return { valid: false, reason: 'malformed' };
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === 't') {
      if (t !== undefined || !UNIX_SECONDS.test(value)) return { valid: false, reason: 'malformed' };
      t = Number(value);
    } else if (name === 'k') {
      if (keyVersion !== undefined || !KEY_VERSION.test(value)) return { valid: false, reason: 'malformed' };
      keyVersion = Number(value);
    } else if (name === 'v1') {
      if (!HEX_SIGNATURE.test(value)) return { valid: false, reason: 'malformed' };
      signatures.push(Buffer.from(value, 'hex'));
    }
    // Other schemes (a future v2) are ignored, so receivers keep working while both are sent.
  }
  if (t === undefined || signatures.length === 0) return { valid: false, reason: 'malformed' };
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (t < nowSeconds - tolerance) return { valid: false, reason: 'stale' };
  if (t > nowSeconds + tolerance) return { valid: false, reason: 'future' };
  const secret = typeof options.secret === 'string' ? options.secret : options.secret[keyVersion ?? 1];
  if (secret === undefined) return { valid: false, reason: 'mismatch' };
  const expected = hmac(secret, t, options.body);
  // Every candidate is compared, so the time taken does not tell which one matched.
  let match = false;
  for (const s of signatures) match = timingSafeEqual(s, expected) || match;
  return match ? { valid: true, timestamp: new Date(t * 1000) } : { valid: false, reason: 'mismatch' };
}

function hmac(secret: string, t: number, body: string | Buffer): Buffer {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest();
}
