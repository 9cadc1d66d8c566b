/**
 * Consent receipts: what `POST /api/v1/banner/choices` hands the script after recording a choice,
 * kept in the consent cookie and carried by every beacon. A beacon is counted for a purpose only
 * when its receipt, signed by this server, says the browser allowed it; nothing is looked up, so a
 * beacon costs no read of the ledger, and a browser cannot give itself a "yes" it never recorded.
 *
 * A receipt is signed with HMAC-SHA256 under the keyring's `banner_receipts` use (use-keys.ts), its
 * own key, derived with HKDF under its own label: `pledge keys rotate --use banner_receipts` adds a
 * version, and receipts of older versions verify until they expire. It expires when the banner asks
 * again (`ask_again`): a choice older than that is no longer a choice the visitor is held to.
 *
 * Layout, printable and cookie-safe (no comma, semicolon, space or quote), fields joined by ".":
 *
 *   "r1" | key version (base 10) | issued at, Unix seconds (base 36) | jurisdiction ("" unknown)
 *   | browser id | allowed purposes joined by "~" | HMAC-SHA256 of everything before, cut to 16
 *   bytes (base64url)
 *
 * Purpose keys (a-z 0-9 _ -), browser ids (A-Z a-z 0-9 _ -) and countries (A-Z) never hold "." or
 * "~", so the fields need no escaping. Verification accepts only the spelling {@link
 * ConsentReceipts.issue} writes.
 */
import { createHmac, createSecretKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { UseKeys, VersionedKeys } from '../vault/use-keys.js';

/** What a receipt says. */
export interface ConsentReceipt {
  /** The random browser id of the consent cookie. */
  browser: string;
  /** The purposes the browser allowed when it chose. */
  allowed: Set<string>;
  /** The visitor's country when they chose (from the CDN header), or `undefined` when unknown. */
  jurisdiction: string | undefined;
  issuedAt: Date;
}

/** What {@link ConsentReceipts.issue} signs. */
export interface IssueReceiptInput {
  browser: string;
  allowed: Iterable<string>;
  jurisdiction: string | undefined;
  issuedAt: Date;
}

/** Options of {@link ConsentReceipts}. */
export interface ConsentReceiptsOptions {
  /** How long a receipt is good for: the banner's ask_again, in days. */
  maxAgeDays: number;
}

const PREFIX = 'r1';
const MAC_BYTES = 16;
const KEY_INFO = 'pledge banner receipts v1';
/** A clock a little ahead of ours (another instance) is not a forgery; more than this is. */
const FUTURE_SKEW_MS = 5 * 60_000;
const MAX_TOKEN_CHARS = 4096;
const BROWSER = /^[A-Za-z0-9_-]{16,128}$/;
const PURPOSE = /^[a-z][a-z0-9_-]*$/;
const COUNTRY = /^[A-Z]{2}$/;
const VERSION = /^[1-9]\d{0,5}$/;
const SECONDS = /^[0-9a-z]{1,10}$/;
const MAC = /^[A-Za-z0-9_-]{22}$/;

/** Derives the receipts key of one version of the `banner_receipts` material. */
export function deriveReceiptKey(secret: Buffer): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), KEY_INFO, 32)));
}

/** Issues and verifies consent receipts. */
export class ConsentReceipts {
  readonly #keys: VersionedKeys<KeyObject>;
  readonly #maxAgeMs: number;

  /** `keys`: the keyring's `banner_receipts` use (`keyring.use('banner_receipts')`). */
  constructor(keys: UseKeys, options: ConsentReceiptsOptions) {
    if (!(options.maxAgeDays > 0)) throw new RangeError('a receipt lives a positive number of days');
    this.#keys = keys.derive(deriveReceiptKey);
    this.#maxAgeMs = options.maxAgeDays * 86_400_000;
  }

  /**
   * A signed receipt. Throws a RangeError for a browser id, purpose key or jurisdiction that the
   * layout cannot hold (the routes validate them first).
   */
  issue(input: IssueReceiptInput): string {
    if (!BROWSER.test(input.browser)) throw new RangeError('a receipt needs the banner browser id');
    const purposes = [...new Set(input.allowed)].sort();
    for (const p of purposes) if (!PURPOSE.test(p)) throw new RangeError(`not a purpose key: ${p}`);
    const j = input.jurisdiction ?? '';
    if (j !== '' && !COUNTRY.test(j)) throw new RangeError(`not a country code: ${j}`);
    const { version, key } = this.#keys.current;
    const seconds = Math.floor(input.issuedAt.getTime() / 1000);
    if (!(seconds >= 0)) throw new RangeError('a receipt is issued after 1970');
    const body = [PREFIX, String(version), seconds.toString(36), j, input.browser, purposes.join('~')].join(
      '.',
    );
    return `${body}.${mac(key, body).toString('base64url')}`;
  }

  /**
   * What a receipt says, or `undefined` when it is malformed, not signed by a key version the
   * keyring holds (compared in constant time), issued in the future, or older than ask_again at
   * `now`. Never throws.
   */
  verify(token: string, now: Date): ConsentReceipt | undefined {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) return undefined;
    const parts = token.split('.');
    if (parts.length !== 7) return undefined;
    const [prefix, v, issued, j, browser, list, given] = parts as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (prefix !== PREFIX || !VERSION.test(v) || !SECONDS.test(issued) || !MAC.test(given)) return undefined;
    const key = this.#keys.get(Number(v));
    if (key === undefined) return undefined;
    const body = token.slice(0, token.length - given.length - 1);
    const givenBytes = Buffer.from(given, 'base64url');
    // One spelling: the last base64url character's unused bits must be as issue() writes them.
    if (givenBytes.length !== MAC_BYTES || givenBytes.toString('base64url') !== given) return undefined;
    if (!timingSafeEqual(givenBytes, mac(key, body))) return undefined;

    // Signed by us; parsed strictly all the same.
    if ((j !== '' && !COUNTRY.test(j)) || !BROWSER.test(browser)) return undefined;
    const purposes = list === '' ? [] : list.split('~');
    if (!purposes.every((p) => PURPOSE.test(p))) return undefined;
    const issuedAt = new Date(parseInt(issued, 36) * 1000);
    const receipt = { browser, allowed: new Set(purposes), jurisdiction: j === '' ? undefined : j, issuedAt };
    return this.inForce(receipt, now) ? receipt : undefined;
  }

  /** Whether a verified receipt is still in force at `now`: not older than ask_again, not from the future. */
  inForce(receipt: ConsentReceipt, now: Date): boolean {
    const age = now.getTime() - receipt.issuedAt.getTime();
    return age < this.#maxAgeMs && age >= -FUTURE_SKEW_MS;
  }
}

function mac(key: KeyObject, body: string): Buffer {
  return createHmac('sha256', key).update(body, 'utf8').digest().subarray(0, MAC_BYTES);
}
