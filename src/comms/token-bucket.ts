/** Throttling of campaign sends: a token bucket that a runner awaits before each message. */

/** A token bucket: `rate` tokens a second, bursts of at most `rate` (one second's worth). */
export class TokenBucket {
  readonly #rate: number;
  readonly #capacity: number;
  #tokens: number;
  #last: number;

  constructor(ratePerSecond: number, now: () => number = () => performance.now()) {
    this.#rate = ratePerSecond;
    this.#capacity = Math.max(1, ratePerSecond);
    this.#tokens = 1;
    this.#now = now;
    this.#last = now();
  }

  readonly #now: () => number;

  /** Takes a token; resolves at once when one is there, else when the next one comes. */
  async take(signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal?.aborted === true) return false;
      const now = this.#now();
      this.#tokens = Math.min(this.#capacity, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
      this.#last = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return true;
      }
      const waitMs = Math.ceil(((1 - this.#tokens) / this.#rate) * 1000);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
