/**
 * The daily salts of cookieless visitor hashes: a new random salt per UTC day, made on demand by
 * the first beacon of the day (beacons.service.ts) and, so that the first visitor after midnight
 * does not wait for it, by the `beacons.salts` job in its last run before midnight; each salt is
 * deleted 48 hours after it was made, by the same job. Once a day's salt is gone, nobody (this
 * server included) can recompute that day's hashes from an IP address and a user agent: the counts
 * stay, the link to a visitor does not.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from '../platform/context.js';
import type { BeaconsRepository } from './beacons.repository.js';
import { addDays, dayOf } from './analytics.service.js';

/** How long a salt is kept after it was made. */
export const SALT_LIFETIME_MS = 48 * 3_600_000;

/** What one run did. */
export interface SaltRunResult {
  /** The day a salt was made for ahead of midnight, if this run made one. */
  madeFor: string | undefined;
  deleted: number;
}

/** Makes tomorrow's salt ahead of midnight and deletes salts older than 48 hours. */
export class SaltRotation {
  readonly #repo: Pick<BeaconsRepository, 'saltOf' | 'deleteSaltsCreatedBefore'>;
  readonly #aheadMs: number;

  /**
   * `aheadMs`: how long before midnight tomorrow's salt is made (the job's interval, so that its
   * last run of the day makes it).
   */
  constructor(
    repo: Pick<BeaconsRepository, 'saltOf' | 'deleteSaltsCreatedBefore'>,
    options: { aheadMs: number },
  ) {
    this.#repo = repo;
    this.#aheadMs = options.aheadMs;
  }

  /** One run at the context's time. Running it twice makes nothing twice (the day's salt is kept). */
  async run(ctx: Context): Promise<SaltRunResult> {
    const now = ctx.clock.now();
    const tomorrow = addDays(dayOf(now), 1);
    let madeFor: string | undefined;
    if (Date.parse(`${tomorrow}T00:00:00Z`) - now.getTime() <= this.#aheadMs) {
      // The first instance to store a salt for the day wins; ingest reads the same one.
      await this.#repo.saltOf(ctx, tomorrow, randomBytes(32).toString('base64'), now);
      madeFor = tomorrow;
    }
    const deleted = await this.#repo.deleteSaltsCreatedBefore(
      ctx,
      new Date(now.getTime() - SALT_LIFETIME_MS),
    );
    return { madeFor, deleted };
  }
}
