/**
 * Tombstones of erased people. An erasure removes the blind-index entries that find a person; before
 * it does, it keeps an HMAC (the keyring's `tombstones` use, its own key so the table joins nothing
 * else) of each of those entries. A later collection computes the blind-index hash of what it is
 * given, then the same HMAC under every version of the key, and asks whether one is kept: that is
 * how an import or a sign-up of someone erased is recognized, with no identifier kept in any form
 * that could be looked up without the key or reversed with it.
 */
import { createHmac, hkdfSync } from 'node:crypto';
import type { Context } from '../platform/context.js';
import type { UseKeys, VersionedKeys } from '../vault/use-keys.js';
import type { TombstonesRepository } from './tombstones.repository.js';

const HKDF_INFO = 'pledge erasure tombstone v1';

/** A blind-index entry of a person: its kind and hash, as the vault keeps them. */
export interface IdentifierHash {
  kind: string;
  hash: string;
}

/** Keeps and recognizes tombstones. */
export class Tombstones {
  readonly #repo: TombstonesRepository;
  readonly #keys: VersionedKeys<Buffer>;
  readonly #versions: readonly number[];

  constructor(repo: TombstonesRepository, keys: UseKeys) {
    this.#repo = repo;
    this.#versions = keys.versions().map((v) => v.version);
    this.#keys = keys.derive((secret) =>
      Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), HKDF_INFO, 32)),
    );
  }

  #hash(key: Buffer, h: IdentifierHash): string {
    return createHmac('sha256', key).update(`${h.kind}\n${h.hash}`).digest('hex');
  }

  /** Keeps a tombstone of each blind-index entry (idempotent); returns how many are new. */
  keep(ctx: Context, hashes: readonly IdentifierHash[]): Promise<number> {
    const { version, key } = this.#keys.current;
    const at = ctx.clock.now().toISOString();
    return this.#repo.insert(
      ctx,
      hashes.map((h) => ({ hash: this.#hash(key, h), key_version: version, kind: h.kind, erased_at: at })),
    );
  }

  /** The kinds among `hashes` that belong to someone erased (empty when none). */
  async recognize(ctx: Context, hashes: readonly IdentifierHash[]): Promise<string[]> {
    // Under every version of the key: a tombstone kept before a rotation still counts.
    const candidates = this.#versions.flatMap((version) => {
      const key = this.#keys.get(version);
      return key === undefined ? [] : hashes.map((h) => ({ hash: this.#hash(key, h), keyVersion: version }));
    });
    return this.#repo.find(ctx, candidates);
  }
}
