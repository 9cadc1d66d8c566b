/**
 * The in-process cache of recipients' standing that keeps the share gate off the database on every
 * disclosure. It follows the rules of the consent cache (src/consent/consent.cache.ts,
 * docs/consent.md "Speed and coherence"): this instance evicts what its own acknowledgements and
 * activations change once they commit; other instances' changes arrive as PostgreSQL notifications
 * and evict the recipients named; while the notification connection is down (and until it first
 * listens) nothing is answered from the cache; and on PostgreSQL an entry is served only until the
 * time the listener last confirmed that it hears everything.
 *
 * Only standings that let data leave are kept. A refusal is read again each time, so an
 * acknowledgement that nobody announces (`pledge recipients acknowledge` beside a SQLite server)
 * lifts it at once; a standing that lets data leave can only be ended by a pause, which is made
 * where a manifest comes into force and announced.
 */
import type { RecipientStandingResult } from './share.types.js';

/** A standing that lets data leave. */
type Standing = Extract<RecipientStandingResult, { ok: true }>;

/** Recipients' standings, by recipient key. */
export class StandingCache {
  readonly #entries = new Map<string, Standing>();
  /** Bumped by every eviction: a load that started before one must not store what it read. */
  #epoch = 0;
  #enabled: boolean;
  /** Set by the first {@link StandingCache.confirmUntil}: entries then expire with the confirmation. */
  #expiring = false;
  /** The `performance.now()` time after which nothing is served, once expiring. */
  #trustedUntil = -Infinity;

  constructor(options: { enabled: boolean }) {
    this.#enabled = options.enabled;
  }

  /** The cached standing of `recipient`, or `undefined` (also while disabled or once trust has lapsed). */
  get(recipient: string): Standing | undefined {
    if (this.#expiring && !this.#trusted()) return undefined;
    return this.#entries.get(recipient);
  }

  /** The current epoch; pass it back to {@link StandingCache.store} after loading. */
  epoch(): number {
    return this.#epoch;
  }

  /** Keeps a standing read from the database, unless it refuses or something was evicted since `epoch`. */
  store(recipient: string, standing: RecipientStandingResult, epoch: number): void {
    if (!standing.ok || !this.#enabled || epoch !== this.#epoch) return;
    if (this.#expiring && !this.#trusted()) return;
    this.#entries.set(recipient, Object.freeze({ ...standing }));
  }

  /** Forgets some recipients: their standing changed here or on another instance. */
  evict(recipients: Iterable<string>): void {
    this.#epoch++;
    for (const r of recipients) this.#entries.delete(r);
  }

  /** Forgets everything. */
  clear(): void {
    this.#epoch++;
    this.#entries.clear();
  }

  /**
   * Trusts the entries until `until` (a `performance.now()` time): the notification listener has
   * proven that every change committed before it asked has reached this instance.
   */
  confirmUntil(until: number): void {
    this.#expiring = true;
    this.#trustedUntil = until;
  }

  /** Turns caching on or off (off while notifications may be missed); turning it off empties it. */
  setEnabled(enabled: boolean): void {
    if (!enabled) {
      this.clear();
      this.#trustedUntil = -Infinity;
    }
    this.#enabled = enabled;
  }

  /** Checked on every read, so staleness is bounded even between heartbeats; a lapse empties the cache. */
  #trusted(): boolean {
    if (performance.now() < this.#trustedUntil) return true;
    if (this.#entries.size > 0) this.clear();
    return false;
  }
}
