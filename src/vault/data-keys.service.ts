/**
 * Each subject's data keys: made on first write, wrapped with the current KEK, cached unwrapped in
 * memory, rotated long before AES-GCM's random-nonce limit (2^32 encryptions under one key) by a
 * persisted counter, rewrapped when the KEK rotates, and destroyed on erasure.
 *
 * The counter is reserved in blocks: one UPDATE buys `reserveBlock` encryptions, so the hot path
 * does not write to the key store per record. A crash loses the unused part of a block, which only
 * makes the count too high, never too low.
 */
import type { Clock } from '../platform/clock.js';
import type { Context } from '../platform/context.js';
import { systemClock } from '../platform/clock.js';
import { PledgeError } from '../platform/errors.js';
import type { DataKeysRepository, WrappedDataKey } from './data-keys.repository.js';
import type { Keyring } from './keyring.js';
import { dataKeyAad, generateKey, open, seal } from './vault.crypto.js';

/**
 * A data key ready to encrypt with: its raw 32 bytes, which travel with a crypto batch (to a worker
 * thread or not) and are dropped with it.
 */
export interface DataKey {
  version: number;
  key: Buffer;
}

/** Tuning, mostly for tests. */
export interface DataKeysOptions {
  /** A new key version is made once a key has this many encryptions reserved (default 2^30). */
  rotateAfter?: number;
  /** Encryptions reserved per key-store write (default 65,536). */
  reserveBlock?: number;
  /** Unwrapped keys kept in memory (default 50,000 subjects). */
  cacheSize?: number;
  /**
   * Loads the keyring afresh. Called once when a data key names a KEK this process does not have:
   * another process (`pledge keys rotate`, another instance) rotated the keys since this one started.
   */
  reloadKeyring?: () => Promise<Keyring>;
  clock?: Clock;
}

interface WriteSlot {
  version: number;
  key: Buffer;
  /** Encryptions still reserved for this process. */
  remaining: number;
}

/** Gives out data keys for writing and reading. */
export class DataKeys {
  readonly #repo: DataKeysRepository;
  #keyring: Keyring;
  readonly #rotateAfter: number;
  readonly #reserveBlock: number;
  readonly #cacheSize: number;
  readonly #clock: Clock;
  readonly #reloadKeyring: (() => Promise<Keyring>) | undefined;
  /** subject -> the slot this process writes with. */
  readonly #writing = new Map<string, WriteSlot>();
  /** `${subject}:${version}` -> unwrapped key (insertion order = LRU order). */
  readonly #reading = new Map<string, Buffer>();

  constructor(repo: DataKeysRepository, keyring: Keyring, options: DataKeysOptions = {}) {
    this.#repo = repo;
    this.#keyring = keyring;
    this.#rotateAfter = options.rotateAfter ?? 2 ** 30;
    this.#reserveBlock = options.reserveBlock ?? 65_536;
    this.#cacheSize = options.cacheSize ?? 50_000;
    this.#clock = options.clock ?? systemClock;
    this.#reloadKeyring = options.reloadKeyring;
  }

  /** Replaces the keyring (after `pledge keys rotate` in this process). */
  useKeyring(keyring: Keyring): void {
    this.#keyring = keyring;
  }

  /** A key to encrypt `count` values of `subjectId` with, making or rotating it as needed. */
  async forWrite(ctx: Context, subjectId: string, count: number): Promise<DataKey> {
    const slot = this.#writing.get(subjectId);
    if (slot && slot.remaining >= count) {
      slot.remaining -= count;
      return { version: slot.version, key: slot.key };
    }
    const block = Math.max(count, this.#reserveBlock);
    let latest = await this.#repo.getLatest(ctx, subjectId);
    for (let attempt = 0; attempt < 5; attempt++) {
      if (latest && latest.kekVersion !== 0) {
        const total = await this.#repo.reserve(ctx, subjectId, latest.version, block);
        if (total <= this.#rotateAfter) {
          const key = await this.#unwrapFresh(latest);
          this.#writing.set(subjectId, { version: latest.version, key, remaining: block - count });
          return { version: latest.version, key };
        }
      }
      const key = generateKey();
      const version = (latest?.version ?? 0) + 1;
      const kek = this.#keyring.currentKek();
      const made = await this.#repo.insert(
        ctx,
        {
          subjectId,
          version,
          wrapped: seal(kek.key, key, dataKeyAad(subjectId, version, kek.version)),
          kekVersion: kek.version,
          encryptions: block,
        },
        this.#clock.now(),
      );
      if (made) {
        this.#writing.set(subjectId, { version, key, remaining: block - count });
        this.#remember(subjectId, version, key);
        return { version, key };
      }
      // Another writer (instance) made this version first: use theirs.
      latest = await this.#repo.getLatest(ctx, subjectId);
    }
    throw new PledgeError('vault.data_key_contention', 'could not obtain a data key; try again');
  }

  /** The key `version` of a subject, or `undefined` when it was destroyed (the subject was erased). */
  async forRead(ctx: Context, subjectId: string, version: number): Promise<Buffer | undefined> {
    const id = `${subjectId}:${version}`;
    const cached = this.#reading.get(id);
    if (cached) {
      this.#reading.delete(id);
      this.#reading.set(id, cached);
      return cached;
    }
    const wrapped = await this.#repo.get(ctx, subjectId, version);
    if (!wrapped) return undefined;
    const key = await this.#unwrapFresh(wrapped);
    this.#remember(subjectId, version, key);
    return key;
  }

  /** Destroys every key of a subject, here and in this process's memory. */
  async destroy(ctx: Context, subjectId: string): Promise<number> {
    this.forget(subjectId);
    return this.#repo.destroyAll(ctx, subjectId);
  }

  /** Drops a subject's keys from this process's memory (another instance erased it). */
  forget(subjectId: string): void {
    this.#writing.delete(subjectId);
    for (const id of this.#reading.keys()) if (id.startsWith(`${subjectId}:`)) this.#reading.delete(id);
  }

  /**
   * Rewraps every data key that is not under the current KEK, in batches; the records are not
   * touched (their data keys do not change). Returns how many keys were rewrapped.
   */
  async rewrapAll(ctx: Context, batchSize = 500): Promise<number> {
    const kek = this.#keyring.currentKek();
    let done = 0;
    for (;;) {
      const batch = await this.#repo.listNotUnder(ctx, kek.version, batchSize);
      if (batch.length === 0) return done;
      for (const k of batch) {
        const key = this.#unwrap(k);
        const rewrapped = seal(kek.key, key, dataKeyAad(k.subjectId, k.version, kek.version));
        if (await this.#repo.rewrap(ctx, k.subjectId, k.version, k.kekVersion, rewrapped, kek.version))
          done++;
      }
    }
  }

  /** How many data keys each KEK version wraps. */
  countByKek(ctx: Context): Promise<Map<number, number>> {
    return this.#repo.countByKek(ctx);
  }

  /** Unwraps, reloading the keyring once if the key names a KEK version this process lacks. */
  async #unwrapFresh(k: WrappedDataKey): Promise<Buffer> {
    try {
      return this.#unwrap(k);
    } catch (err) {
      if (!(err instanceof PledgeError) || err.code !== 'vault.kek_missing' || !this.#reloadKeyring)
        throw err;
      this.#keyring = await this.#reloadKeyring();
      return this.#unwrap(k);
    }
  }

  #unwrap(k: WrappedDataKey): Buffer {
    const kek = this.#keyring.kek(k.kekVersion);
    return open(kek.key, k.wrapped, dataKeyAad(k.subjectId, k.version, k.kekVersion));
  }

  #remember(subjectId: string, version: number, key: Buffer): void {
    this.#reading.set(`${subjectId}:${version}`, key);
    if (this.#reading.size > this.#cacheSize) {
      const oldest = this.#reading.keys().next().value;
      if (oldest !== undefined) this.#reading.delete(oldest);
    }
  }
}
