/**
 * The `beacons` key's two jobs, each under its own HKDF label: sealing a raw event's fields
 * (AES-256-GCM, bound to the event's id, so a seal cannot be moved to another row) and hashing the
 * visitor cookie's id (HMAC-SHA256), so no cookie id is ever stored.
 *
 * The key rotates (`pledge keys rotate --use beacons`): a seal is written as `k<version>:<base64>`
 * and opened under the version it names. A visitor hash is always made under the newest version:
 * after a rotation the same cookie counts as a new visitor, which the roll-up, counting per day,
 * barely notices.
 *
 * Cookieless counts hash with the day's salt instead (see beacons.service.ts): that hash is
 * HMAC-SHA256(salt, truncated IP, user agent, site), and once the salt is deleted nobody, not even
 * this server, can recompute it.
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { PledgeError } from '../platform/errors.js';
import { open, seal } from '../vault/vault.crypto.js';
import type { UseKeys, VersionedKeys } from '../vault/use-keys.js';

/** The fields of an event kept sealed at rest: only those the manifest declares for its source. */
export interface BeaconFields {
  path?: string;
  referrer?: string;
  event?: string;
}

const SEAL_INFO = 'pledge beacon fields v1';
const VISITOR_INFO = 'pledge beacon visitor v1';
const VERSIONED = /^k([1-9]\d{0,5}):/;

function derive(secret: Buffer, info: string): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), info, 32)));
}

/** Seals and opens beacon fields; hashes visitor ids. */
export class BeaconSeal {
  readonly #seal: VersionedKeys<KeyObject>;
  readonly #visitor: KeyObject;

  /** `keys`: the keyring's `beacons` use (`keyring.use('beacons')`). */
  constructor(keys: UseKeys) {
    this.#seal = keys.derive((s) => derive(s, SEAL_INFO));
    this.#visitor = derive(keys.current().secret, VISITOR_INFO);
  }

  /** The sealed fields of event `eventId`: `k<version>:<base64>`. */
  seal(eventId: string, fields: BeaconFields): string {
    const { version, key } = this.#seal.current;
    return `k${version}:${seal(key, Buffer.from(JSON.stringify(fields)), aadOf(eventId)).toString('base64')}`;
  }

  /** Opens an event's fields; throws when they were altered, moved to another event, or the key is gone. */
  open(eventId: string, sealed: string): BeaconFields {
    const match = VERSIONED.exec(sealed);
    const version = match ? Number(match[1]) : undefined;
    const key = version === undefined ? undefined : this.#seal.get(version);
    if (match === null || key === undefined) {
      throw new PledgeError(
        'tracking.beacon_key_missing',
        `the fields of beacon event ${eventId} are sealed with beacons key version ${String(version)}, which the keyring does not hold; restore the key file`,
      );
    }
    const body = Buffer.from(sealed.slice(match[0].length), 'base64');
    return JSON.parse(open(key, body, aadOf(eventId)).toString('utf8')) as BeaconFields;
  }

  /** The current version's keys as bytes, for the worker that seals batches (beacons.crypto.ts). */
  workerKeys(): { version: number; sealKey: Buffer; visitorKey: Buffer } {
    const { version, key } = this.#seal.current;
    return { version, sealKey: key.export(), visitorKey: this.#visitor.export() };
  }

  /** The keyed hash (hex) of a visitor cookie's id: the same cookie, the same hash. */
  visitorHash(cookieId: string): string {
    return createHmac('sha256', this.#visitor).update(cookieId, 'utf8').digest('hex');
  }
}

function aadOf(eventId: string): Buffer {
  return Buffer.from(`pledge.beacon.v1:${eventId}`);
}
