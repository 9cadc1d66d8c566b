/**
 * The in-process cache of holders' choices that makes warm decisions a few map lookups. It is kept
 * coherent with the ledger three ways: this instance applies its own changes after they commit;
 * other instances' changes arrive as PostgreSQL notifications and evict the holder; and while the
 * notification connection is down nothing is cached at all (a missed notification cannot leave a
 * stale entry behind). A connection can also go silent without dropping, so on PostgreSQL the cache
 * serves entries only until the time the listener last confirmed (a heartbeat answered): past it,
 * every read misses and goes to the database, until the next confirmation.
 */
import { choiceKey, type ChoiceState, type Decision, type HolderChoices } from './consent.decide.js';
import type { ConsentEventRow } from './consent.repository.js';

/** A holder's cached choices (mutable: this instance's own commits are applied in place). */
export interface CachedHolder extends HolderChoices {
  choices: Map<string, ChoiceState>;
  /**
   * Decisions already made for this holder, by the slot of their purpose and channel
   * (`DecisionRules.slotOf`): the warm path of `decide` is a map lookup and an array index, and a
   * batch of 10,000 touches one array per person. Emptied whenever a choice of the holder changes.
   */
  decisions: Array<Decision | undefined>;
}

/**
 * The cache key of a ledger holder: a subject's bare id (so the hot path needs no string building),
 * a browser's "b:" key as is.
 */
export function cacheKey(holder: string): string {
  return holder.startsWith('s:') ? holder.slice(2) : holder;
}

/** A bounded map of holders to their choices. */
export class ConsentCache {
  readonly #entries = new Map<string, CachedHolder>();
  readonly #capacity: number;
  /** Bumped by every eviction: a load that started before one must not store what it read. */
  #epoch = 0;
  #enabled: boolean;
  /**
   * Set by the first {@link ConsentCache.confirmUntil}: from then on entries are served only until
   * the time last confirmed. A cache nobody confirms (SQLite: no other writer) keeps entries until
   * they are evicted.
   */
  #expiring = false;
  /** The `performance.now()` time after which nothing is served, once expiring. */
  #trustedUntil = -Infinity;

  constructor(options: { capacity: number; enabled: boolean }) {
    this.#capacity = options.capacity;
    this.#enabled = options.enabled;
  }

  /** The cached choices of a holder (by {@link cacheKey}), or `undefined` (also once trust has lapsed). */
  get(key: string): CachedHolder | undefined {
    if (this.#expiring && !this.#trusted()) return undefined;
    return this.#entries.get(key);
  }

  /**
   * Trusts the entries until `until` (a `performance.now()` time): the notification listener has
   * proven that every change committed before it asked has reached this instance.
   */
  confirmUntil(until: number): void {
    this.#expiring = true;
    this.#trustedUntil = until;
  }

  /** Checked on every read, so staleness is bounded even between heartbeats; a lapse empties the cache. */
  #trusted(): boolean {
    if (performance.now() < this.#trustedUntil) return true;
    if (this.#entries.size > 0) this.clear();
    return false;
  }

  /** The current epoch; pass it back to {@link ConsentCache.store} after loading. */
  epoch(): number {
    return this.#epoch;
  }

  /** Stores a holder (by {@link cacheKey}) loaded from the database, unless something was evicted since `epoch`. */
  store(key: string, value: HolderChoices, epoch: number): void {
    if (!this.#enabled || epoch !== this.#epoch || (this.#expiring && !this.#trusted())) return;
    if (this.#entries.size >= this.#capacity) {
      // Oldest inserted first: a cheap approximation of LRU that keeps `get` free of bookkeeping.
      const first = this.#entries.keys().next();
      if (first.done !== true) this.#entries.delete(first.value);
    }
    this.#entries.set(key, {
      jurisdiction: value.jurisdiction,
      choices: new Map(value.choices),
      decisions: [],
    });
  }

  /** Applies committed events to the holders this cache holds (newest wins, as in the projection). */
  apply(events: readonly ConsentEventRow[]): void {
    this.#epoch++;
    for (const e of events) {
      const entry = this.#entries.get(cacheKey(e.holder));
      if (entry === undefined) continue;
      entry.decisions.length = 0;
      const key = choiceKey(e.purpose, e.channel);
      const held = entry.choices.get(key);
      const t = e.at.getTime();
      if (held === undefined || t > held.at.getTime() || (t === held.at.getTime() && e.id > held.eventId)) {
        entry.choices.set(key, { state: e.state, method: e.method, at: e.at, eventId: e.id });
      }
    }
  }

  /** Forgets some ledger holders ("s:..." or "b:..."): another instance changed them, a subject moved or was erased. */
  evict(holders: Iterable<string>): void {
    this.#epoch++;
    for (const h of holders) this.#entries.delete(cacheKey(h));
  }

  /** Forgets everything. */
  clear(): void {
    this.#epoch++;
    this.#entries.clear();
  }

  /** Turns caching on or off (off while notifications may be missed); turning it off empties it. */
  setEnabled(enabled: boolean): void {
    if (!enabled) {
      this.clear();
      this.#trustedUntil = -Infinity;
    }
    this.#enabled = enabled;
  }
}
