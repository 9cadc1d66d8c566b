/**
 * One key per job: each use of a secret (the blind index, link tokens, webhook signatures, consent
 * evidence, Message-IDs, banner receipts, beacons, the transparency log's commitments and checkpoints, the sealed columns of acknowledgements and legal requests) has its own versioned key material in the keyring, so each rotates on its
 * own. Version 1 of every use is the index key itself, from which each use derives its key with its
 * own label, exactly as before uses had versions: every token, signature and seal made before them
 * still verifies and nothing stored changes. A rotation adds version N+1 from fresh random bytes.
 */
import { PledgeError } from '../platform/errors.js';

/** The uses of a secret that have their own keys (`pledge keys rotate --use USE`). */
export const KEY_USES = [
  'index',
  'links',
  'webhooks',
  'evidence',
  'message_id',
  /** Signs the receipts of banner choices that beacons carry (src/tracking/consent-receipt.ts). */
  'banner_receipts',
  /** Keyed hashes of visitors and the seal of raw beacon events (src/tracking/). */
  'beacons',
  /** Signs the policy-change notices POSTed to recipients' webhooks (src/share/acknowledgements.notices.ts). */
  'recipient_notices',
  /** The keyed commitments of subjects in the transparency log's entries (src/audit/log.entry.ts). */
  'log_subjects',
  /** The Ed25519 seed that signs the transparency log's checkpoints (src/audit/log.integrator.ts). */
  'log_checkpoints',
  /** Seals the signatory of each acknowledgement of the policy (src/share/sealed-columns.ts). */
  'share_signatories',
  /** Seals legal requests' authority name, reference, citation and rejection reason (src/share/sealed-columns.ts). */
  'legal_requests',
  /** The keyed hashes an erasure keeps of a person's identifiers (src/rights/tombstones.ts). */
  'tombstones',
  /** Signs the links that download an access request's export (src/rights/export.delivery.ts). */
  'export_links',
  /** Seals the stored export zips until they expire (src/rights/export.delivery.ts). */
  'export_files',
  /** Keyed hashes and seals of the identifiers a data-subject request names (src/rights/requests.seal.ts). */
  'requests',
  /** The HMACs of requests' verification codes (src/rights/verification.service.ts). */
  'request_codes',
  /** Signs the requester's status and verification links (src/rights/requests.seal.ts). */
  'request_links',
] as const;

/** A use of a secret. */
export type KeyUse = (typeof KEY_USES)[number];

/** One version of a use's key material (before the use's own derivation). */
export interface UseKeyVersion {
  version: number;
  secret: Buffer;
  /** When it was made; absent for version 1 (the index key, as old as the key file). */
  createdAt: string | undefined;
}

/** Key material of one use, derived per version into what that use signs with. */
export interface VersionedKeys<K> {
  /** The newest version: what new tokens, signatures and seals are made with. */
  readonly current: { version: number; key: K };
  /** The key of a version, or `undefined` when the keyring does not hold it (refuse the token). */
  get(version: number): K | undefined;
}

/** The versions of one use's key material, oldest first. */
export class UseKeys {
  readonly use: KeyUse;
  readonly #versions: ReadonlyMap<number, UseKeyVersion>;
  readonly #current: UseKeyVersion;

  constructor(use: KeyUse, versions: readonly UseKeyVersion[]) {
    const sorted = [...versions].sort((a, b) => a.version - b.version);
    const newest = sorted[sorted.length - 1];
    if (newest === undefined) {
      throw new PledgeError('vault.keys_invalid', `the keyring holds no key for the use "${use}"`);
    }
    this.use = use;
    this.#versions = new Map(sorted.map((v) => [v.version, v]));
    this.#current = newest;
  }

  /** The newest version. */
  current(): UseKeyVersion {
    return this.#current;
  }

  /** Every version, oldest first. */
  versions(): UseKeyVersion[] {
    return [...this.#versions.values()];
  }

  /** The material of a version, or `undefined`. */
  secret(version: number): Buffer | undefined {
    return this.#versions.get(version)?.secret;
  }

  /**
   * Each version derived once by `derive` (the use's own HKDF label): what a verifier looks a
   * token's version up in.
   */
  derive<K>(derive: (secret: Buffer) => K): VersionedKeys<K> {
    const derived = new Map([...this.#versions.values()].map((v) => [v.version, derive(v.secret)]));
    const current = { version: this.#current.version, key: derived.get(this.#current.version) as K };
    return { current, get: (version) => derived.get(version) };
  }
}
