/**
 * Rate limits: requests per client address in fixed windows, counted in memory. Every route has
 * the server's limit (`PLEDGE_RATE_LIMIT` a minute) unless it sets its own in its config:
 * `rateLimit: { max, timeWindow }` (its own budget, counted apart; routes that name the same
 * `budget` share one) or `rateLimit: false` (none, for health checks). Answers as @fastify/rate-limit did, which this replaces: x-ratelimit-limit,
 * -remaining and -reset on every answer, and over the limit a 429 with retry-after; IPv6 clients
 * are counted by /64, the block one subscriber usually holds. The check is one synchronous hook
 * and a map lookup: the plugin awaited three promises per request.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { parseIPv6 } from '../ip.js';

/** A route's own limit: at most `max` requests per `timeWindow` milliseconds per client. */
export interface RouteRateLimit {
  max: number;
  timeWindow: number;
  /** Routes naming the same budget are counted together (the first registered sets the limit). */
  budget?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's own limit, or false for none; absent, the server's limit applies. */
    rateLimit?: false | RouteRateLimit;
  }
}

/** The server-wide limit of {@link installRateLimit}. */
export interface RateLimitOptions extends RouteRateLimit {
  /** Client addresses counted at most; past that the oldest window goes (default 5,000). */
  capacity?: number;
}

/** Adds the limit to every route registered after this call (see the module comment). */
export function installRateLimit(app: FastifyInstance, options: RateLimitOptions): void {
  const capacity = options.capacity ?? 5_000;
  const server = limitHook(new WindowCounter(options.max, options.timeWindow, capacity));
  const budgets = new Map<string, onRequestHookHandler>();
  const ownHook = (own: RouteRateLimit): onRequestHookHandler => {
    const shared = own.budget === undefined ? undefined : budgets.get(own.budget);
    if (shared !== undefined) return shared;
    const hook = limitHook(new WindowCounter(own.max, own.timeWindow, capacity));
    if (own.budget !== undefined) budgets.set(own.budget, hook);
    return hook;
  };
  app.addHook('onRoute', (route) => {
    const own = route.config?.rateLimit;
    if (own === false) return;
    const hook = own === undefined ? server : ownHook(own);
    // A new array, never the route's own: Fastify copies a GET route's options for its HEAD route
    // before these hooks run, and the HEAD route gets its own pass.
    const existing = route.onRequest;
    route.onRequest =
      existing === undefined ? [hook] : Array.isArray(existing) ? [...existing, hook] : [existing, hook];
  });
}

/** The key a client is counted under: its IPv4 address, or the /64 block of its IPv6 address. */
export function clientKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  const groups = parseIPv6(ip);
  if (groups === undefined) return ip.toLowerCase();
  // An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 client.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const hi = groups[6] ?? 0;
    const lo = groups[7] ?? 0;
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** One client's window: requests counted since `startedAt`. */
export interface Window {
  count: number;
  startedAt: number;
}

/**
 * Counts requests per client key in fixed windows of `windowMs`, for at most `capacity` keys; past
 * that the client seen least recently is forgotten (as @fastify/rate-limit's LRU did), so a flood
 * of new addresses cannot reset the count of one that keeps asking.
 */
export class WindowCounter {
  readonly max: number;
  readonly maxText: string;
  readonly windowMs: number;
  readonly #capacity: number;
  readonly #windows = new Map<string, Window>();
  /** The key set last, already at the end of the map's order. */
  #newest: string | undefined;

  constructor(max: number, windowMs: number, capacity: number) {
    this.max = Math.max(0, Math.trunc(max));
    this.maxText = String(this.max);
    this.windowMs = Math.max(0, Math.trunc(windowMs));
    this.#capacity = Math.max(1, capacity);
  }

  /** Counts one request of `key` at `now`; returns its window. */
  hit(key: string, now: number): Window {
    const held = this.#windows.get(key);
    if (held !== undefined && held.startedAt + this.windowMs > now) {
      held.count++;
      // The map's order is the order clients were last seen: a client asking again moves last.
      if (key !== this.#newest) this.#moveLast(key, held);
      return held;
    }
    const fresh: Window = { count: 1, startedAt: now };
    this.#moveLast(key, fresh);
    if (this.#windows.size > this.#capacity) {
      const oldest = this.#windows.keys().next();
      if (oldest.done !== true) this.#windows.delete(oldest.value);
    }
    return fresh;
  }

  #moveLast(key: string, window: Window): void {
    this.#windows.delete(key);
    this.#windows.set(key, window);
    this.#newest = key;
  }
}

function limitHook(counter: WindowCounter): onRequestHookHandler {
  return function rateLimit(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
    const now = Date.now();
    const window = counter.hit(clientKey(request.ip), now);
    const resetSeconds = Math.ceil((window.startedAt + counter.windowMs - now) / 1000);
    void reply.header('x-ratelimit-limit', counter.maxText);
    if (window.count <= counter.max) {
      void reply.header('x-ratelimit-remaining', String(counter.max - window.count));
      void reply.header('x-ratelimit-reset', String(resetSeconds));
      done();
      return;
    }
    void reply.header('x-ratelimit-remaining', '0');
    void reply.header('x-ratelimit-reset', String(resetSeconds));
    void reply.header('retry-after', String(resetSeconds));
    // The one error handler answers it with the request.rate_limited code.
    done(Object.assign(new Error(`too many requests; try again in ${resetSeconds} s`), { statusCode: 429 }));
  };
}
