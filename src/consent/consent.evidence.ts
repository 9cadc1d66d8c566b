/**
 * Evidence of how a choice was made (GDPR Art. 7(1): proof of consent), sealed before it rests: the
 * user agent, cut to 512 characters, the IP address truncated (IPv4 /24, IPv6 /48) and, for a
 * choice made in the cookie banner, the language of the texts shown, the control used and whether
 * the browser sent a Global Privacy Control signal, encrypted
 * with AES-256-GCM under a key derived from the keyring's `evidence` key and bound to its event.
 *
 * The evidence key rotates (`pledge keys rotate --use evidence`): a seal is written as
 * `k<version>:<base64>`, and one without that prefix (written before keys had versions) is of
 * version 1, derived from the index key as it was. Seals are opened under the version they name, so
 * old evidence stays readable for as long as the ledger keeps it.
 */
import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { truncateIp } from '../platform/ip.js';
import { open, seal } from '../vault/vault.crypto.js';
import { UseKeys, type VersionedKeys } from '../vault/use-keys.js';
import { PledgeError } from '../platform/errors.js';

/** Evidence of how a choice was made (kept sealed; the IP address is truncated before sealing). */
export interface ConsentEvidence {
  userAgent?: string | undefined;
  ip?: string | undefined;
  /** The language of the notice's texts the person read (the banner's `en`, `de` ...). */
  language?: string | undefined;
  /** The control the choice was made with (the banner's `accept_all`, `reject_all`, `choose` ...). */
  control?: string | undefined;
  /** Whether the browser sent a Global Privacy Control signal with the choice. */
  gpc?: boolean | undefined;
}

const EVIDENCE_INFO = 'pledge consent evidence v1';
const VERSIONED = /^k([1-9]\d{0,5}):/;

/** Seals and opens the evidence of ledger events. */
export class EvidenceSeal {
  readonly #keys: VersionedKeys<KeyObject>;

  /** `secret`: the keyring's `evidence` key of every version, or one secret (then version 1). */
  constructor(secret: Buffer | UseKeys) {
    const keys =
      secret instanceof UseKeys
        ? secret
        : new UseKeys('evidence', [{ version: 1, secret, createdAt: undefined }]);
    this.#keys = keys.derive((s) =>
      createSecretKey(Buffer.from(hkdfSync('sha256', s, Buffer.alloc(0), EVIDENCE_INFO, 32))),
    );
  }

  /** The sealed evidence of an event (base64), or `undefined` when there is none worth keeping. */
  seal(eventId: string, evidence: ConsentEvidence | undefined): string | undefined {
    if (evidence === undefined) return undefined;
    const kept: ConsentEvidence = {};
    if (evidence.userAgent !== undefined) kept.userAgent = evidence.userAgent.slice(0, 512);
    // Only the truncated address is kept: enough to show where a choice came from, not who.
    if (evidence.ip !== undefined) kept.ip = truncateIp(evidence.ip);
    if (evidence.language !== undefined) kept.language = evidence.language.slice(0, 16);
    if (evidence.control !== undefined) kept.control = evidence.control.slice(0, 32);
    if (evidence.gpc !== undefined) kept.gpc = evidence.gpc;
    if (Object.keys(kept).length === 0) return undefined;
    const { version, key } = this.#keys.current;
    return `k${version}:${seal(key, Buffer.from(JSON.stringify(kept)), aadOf(eventId)).toString('base64')}`;
  }

  /** Opens an event's evidence; throws when it was altered or moved to another event. */
  open(eventId: string, sealed: string): ConsentEvidence {
    const match = VERSIONED.exec(sealed);
    const version = match ? Number(match[1]) : 1;
    const key = this.#keys.get(version);
    if (key === undefined) {
      throw new PledgeError(
        'consent.evidence_key_missing',
        `the evidence of event ${eventId} is sealed with evidence key version ${version}, which the keyring does not hold; restore the key file`,
      );
    }
    const body = match ? sealed.slice(match[0].length) : sealed;
    return JSON.parse(
      open(key, Buffer.from(body, 'base64'), aadOf(eventId)).toString('utf8'),
    ) as ConsentEvidence;
  }

  /** The evidence key version a seal names (1 for seals written before keys had versions). */
  static versionOf(sealed: string): number {
    const match = VERSIONED.exec(sealed);
    return match ? Number(match[1]) : 1;
  }
}

function aadOf(eventId: string): Buffer {
  return Buffer.from(`pledge.consent.v1:${eventId}`);
}
