/**
 * Keeps an in-memory cache coherent across instances: it hears the channel other instances notify
 * when they change what the cache holds (PostgreSQL LISTEN), evicts what they name, and tells the
 * cache when it may be trusted. Until listening starts, whenever the connection is lost, and once
 * the connection has not proven alive recently, the cache must answer nothing (its owner reads the
 * database instead). On SQLite there is one instance and nothing to hear: the cache is trusted.
 */
import type { Database } from './database.js';
import type { Listener } from './dialects/postgres-listen.js';

/** What a cache offers to be kept coherent (consent decisions, recipients' standing). */
export interface EvictableCache {
  /** Drops the entries of these keys (a notification's payload, space-separated). */
  evict(keys: string[]): void;
  /** Trusts the cache (true) or not at all (false). */
  setEnabled(enabled: boolean): void;
  /** Entries may be served until this `performance.now()` time, when no later proof arrives. */
  confirmUntil(until: number): void;
}

/** Listens for one channel's evictions on behalf of one cache. */
export class CacheInvalidation {
  readonly #database: Pick<Database, 'dialect' | 'listen'>;
  readonly #channel: string;
  readonly #cache: EvictableCache;
  #listener: Listener | undefined;

  constructor(database: Pick<Database, 'dialect' | 'listen'>, channel: string, cache: EvictableCache) {
    this.#database = database;
    this.#channel = channel;
    this.#cache = cache;
  }

  /** Starts hearing other instances (PostgreSQL); resolves once the first LISTEN is in place. */
  async start(): Promise<void> {
    const listen = this.#database.listen;
    if (listen === undefined || this.#listener !== undefined) return;
    this.#listener = listen(this.#channel, {
      onMessage: (payload) => this.#cache.evict(payload.split(' ')),
      onListening: () => this.#cache.setEnabled(true),
      onLost: () => this.#cache.setEnabled(false),
      onConfirmed: (until) => this.#cache.confirmUntil(until),
    });
    await this.#listener.ready;
  }

  /** Stops listening: on PostgreSQL nothing is served from the cache from then on. */
  async stop(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    this.#cache.setEnabled(this.#database.dialect === 'sqlite');
    await listener?.close();
  }
}
