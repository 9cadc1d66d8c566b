/**
 * Evidence of how a choice was made (GDPR Art. 7(1): proof of consent), sealed before it rests: the
 * user agent, cut to 512 characters, and the IP address truncated (IPv4 /24, IPv6 /48), encrypted
 * with AES-256-GCM under a key derived from the deployment's index key and bound to its event.
 */
import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { truncateIp } from '../platform/ip.js';
import { open, seal } from '../vault/vault.crypto.js';

/** Evidence of how a choice was made (kept sealed; the IP address is truncated before sealing). */
export interface ConsentEvidence {
  userAgent?: string | undefined;
  ip?: string | undefined;
}

const EVIDENCE_INFO = 'pledge consent evidence v1';

/** Seals and opens the evidence of ledger events. */
export class EvidenceSeal {
  readonly #key: KeyObject;

  constructor(secret: Buffer) {
    this.#key = createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), EVIDENCE_INFO, 32)));
  }

  /** The sealed evidence of an event (base64), or `undefined` when there is none worth keeping. */
  seal(eventId: string, evidence: ConsentEvidence | undefined): string | undefined {
    if (evidence === undefined) return undefined;
    const kept: ConsentEvidence = {};
    if (evidence.userAgent !== undefined) kept.userAgent = evidence.userAgent.slice(0, 512);
    // Only the truncated address is kept: enough to show where a choice came from, not who.
    if (evidence.ip !== undefined) kept.ip = truncateIp(evidence.ip);
    if (kept.userAgent === undefined && kept.ip === undefined) return undefined;
    return seal(this.#key, Buffer.from(JSON.stringify(kept)), aadOf(eventId)).toString('base64');
  }

  /** Opens an event's evidence; throws when it was altered or moved to another event. */
  open(eventId: string, sealed: string): ConsentEvidence {
    return JSON.parse(
      open(this.#key, Buffer.from(sealed, 'base64'), aadOf(eventId)).toString('utf8'),
    ) as ConsentEvidence;
  }
}

function aadOf(eventId: string): Buffer {
  return Buffer.from(`pledge.consent.v1:${eventId}`);
}
