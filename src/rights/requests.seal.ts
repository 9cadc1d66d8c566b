/**
 * The secrets of data-subject requests, each under its own key use: the `requests` key hashes the
 * identifiers a request names (keyed, so a copy of the database without the key file says nothing)
 * and seals their values to the request (AES-256-GCM, the request id as AAD, so a seal cannot be
 * moved to another row); the `request_links` key signs the requester's links (HMAC-SHA256 over the
 * request id, the link's purpose and its expiry). Codes have a key of their own (verification.service.ts).
 */
import { createHmac, createSecretKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { PledgeError } from '../platform/errors.js';
import { open, seal } from '../vault/vault.crypto.js';
import type { UseKeys, VersionedKeys } from '../vault/use-keys.js';

/** What a request's seal holds: the identifiers given, and the requester's own words. */
export interface SealedRequest {
  email?: string | undefined;
  phone?: string | undefined;
  /** What the person wrote (an inquiry's question, a rectification's correction). */
  details?: string | undefined;
}

/** What a signed link is for. */
export type LinkPurpose = 'status' | 'verify';

const SEAL_INFO = 'pledge request identifiers seal v1';
const HASH_INFO = 'pledge request identifiers hash v1';
const LINK_INFO = 'pledge request links v1';
const VERSIONED = /^k([1-9]\d{0,5}):/;

/** HKDF-SHA256 of a use's secret under a label of its own. */
export function deriveKey(secret: Buffer, info: string): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), info, 32)));
}

/** Hashes, seals and opens request identifiers; signs and checks the requester's links. */
export class RequestSeal {
  readonly #seal: VersionedKeys<KeyObject>;
  readonly #hash: KeyObject;
  readonly #links: VersionedKeys<KeyObject>;

  /** `keys`: the keyring's `requests` use; `linkKeys`: its `request_links` use. */
  constructor(keys: UseKeys, linkKeys: UseKeys) {
    this.#seal = keys.derive((s) => deriveKey(s, SEAL_INFO));
    // Hashes are lookups: always the first version's, so a rotation does not split an address's count.
    this.#hash = deriveKey(keys.versions()[0]?.secret ?? keys.current().secret, HASH_INFO);
    this.#links = linkKeys.derive((s) => deriveKey(s, LINK_INFO));
  }

  /** The keyed hash (hex) of a normalized identifier of a kind. */
  hash(kind: string, normalized: string): string {
    return createHmac('sha256', this.#hash).update(`${kind}\u0000${normalized}`, 'utf8').digest('hex');
  }

  /** The sealed values of request `requestId`: `k<version>:<base64>`. */
  seal(requestId: string, value: SealedRequest): string {
    const { version, key } = this.#seal.current;
    return `k${version}:${seal(key, Buffer.from(JSON.stringify(value)), aadOf(requestId)).toString('base64')}`;
  }

  /** Opens a request's sealed values; throws when altered, moved, or the key is gone. */
  open(requestId: string, sealed: string): SealedRequest {
    const match = VERSIONED.exec(sealed);
    const key = match ? this.#seal.get(Number(match[1])) : undefined;
    if (match === null || key === undefined) {
      throw new PledgeError(
        'requests.key_missing',
        `the identifiers of request ${requestId} are sealed under a requests key version the keyring does not hold; restore the key file`,
      );
    }
    const body = Buffer.from(sealed.slice(match[0].length), 'base64');
    return JSON.parse(open(key, body, aadOf(requestId)).toString('utf8')) as SealedRequest;
  }

  /** A link token for `requestId` and `purpose`, valid until `expiresAt`. */
  signLink(requestId: string, purpose: LinkPurpose, expiresAt: Date): string {
    const { version, key } = this.#links.current;
    const exp = Math.floor(expiresAt.getTime() / 1000);
    const mac = this.#mac(key, requestId, purpose, exp);
    return `${requestId}.${exp.toString(36)}.${version}.${mac}`;
  }

  /**
   * The request a link token names, or `undefined` when it is malformed, signed under a key this
   * keyring does not hold, for another purpose, altered, or expired at `now`.
   */
  checkLink(token: string, purpose: LinkPurpose, now: Date): string | undefined {
    const parts = token.split('.');
    if (parts.length !== 4) return undefined;
    const [requestId, expText, versionText, mac] = parts as [string, string, string, string];
    if (
      !/^[0-9a-f-]{36}$/.test(requestId) ||
      !/^[0-9a-z]{1,10}$/.test(expText) ||
      !/^\d{1,6}$/.test(versionText)
    )
      return undefined;
    const key = this.#links.get(Number(versionText));
    if (key === undefined) return undefined;
    const exp = parseInt(expText, 36);
    const expected = Buffer.from(this.#mac(key, requestId, purpose, exp));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return exp * 1000 > now.getTime() ? requestId : undefined;
  }

  #mac(key: KeyObject, requestId: string, purpose: string, exp: number): string {
    return createHmac('sha256', key).update(`${purpose}\u0000${requestId}\u0000${exp}`).digest('base64url');
  }
}

function aadOf(requestId: string): Buffer {
  return Buffer.from(`pledge.request.v1:${requestId}`);
}
