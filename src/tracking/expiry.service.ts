/**
 * Raw beacon events expire by the manifest's retention: an event of a web_beacon source, counted
 * for a purpose, is kept for the shortest of the source's retention, the purpose's, and every
 * retention rule that covers one of the source's categories or the purpose (as the vault's records
 * are, retention.ts: a rule limits, it never extends). Events of a source and purpose the manifest
 * no longer declares together are kept for the shortest retention of those it does declare. The
 * daily aggregates hold no visitor and are kept.
 */
import { durationDays, subtractDuration } from '../manifest/duration.js';
import type { Manifest, Source } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';
import type { Context } from '../platform/context.js';
import type { BeaconsRepository } from './beacons.repository.js';

/** Events deleted per statement. */
const BATCH = 1000;

/** How long the events of one source and purpose are kept. */
export interface BeaconRetention {
  source: string;
  purpose: string;
  /** ISO 8601 duration, as the manifest writes it. */
  keep: string;
}

/** What one run deleted, per source and purpose (`*` for those the manifest no longer declares). */
export interface ExpiryRunResult {
  deleted: number;
  byPurpose: Record<string, number>;
}

/** The retention of each web_beacon source and purpose the manifest declares. */
export function beaconRetentions(manifest: Manifest): BeaconRetention[] {
  const out: BeaconRetention[] = [];
  for (const source of manifest.sources) {
    if (source.kind !== 'web_beacon') continue;
    for (const purposeKey of source.purposes) {
      out.push({ source: source.key, purpose: purposeKey, keep: shortestFor(manifest, source, purposeKey) });
    }
  }
  return out;
}

function shortestFor(manifest: Manifest, source: Source, purposeKey: string): string {
  let shortest = source.retention;
  const consider = (d: string) => {
    if (durationDays(d) < durationDays(shortest)) shortest = d;
  };
  const purpose = manifest.purposes.find((p) => p.key === purposeKey);
  if (purpose?.retention !== undefined) consider(purpose.retention);
  for (const rule of manifest.retention) {
    if (rule.category !== undefined && source.categories.some((c) => coversCategory(rule.category ?? '', c)))
      consider(rule.max);
    if (rule.purpose !== undefined && rule.purpose === purposeKey) consider(rule.max);
  }
  return shortest;
}

/** Deletes the raw events past their retention. */
export class BeaconExpiry {
  readonly #repo: Pick<BeaconsRepository, 'deleteEventsBefore'>;
  readonly #manifest: { readonly manifest: Manifest };

  constructor(
    repo: Pick<BeaconsRepository, 'deleteEventsBefore'>,
    manifest: { readonly manifest: Manifest },
  ) {
    this.#repo = repo;
    this.#manifest = manifest;
  }

  /**
   * Deletes, in batches of {@link BATCH}, every event older than its retention at the context's
   * time; stops between batches when `signal` aborts (the next run carries on). Running it again
   * deletes nothing more.
   */
  async run(ctx: Context, signal?: AbortSignal): Promise<ExpiryRunResult> {
    const now = ctx.clock.now();
    const retentions = beaconRetentions(this.#manifest.manifest);
    const result: ExpiryRunResult = { deleted: 0, byPurpose: {} };
    const sweep = async (
      label: string,
      before: Date,
      options: Omit<Parameters<BeaconsRepository['deleteEventsBefore']>[2], 'limit'>,
    ) => {
      for (;;) {
        signal?.throwIfAborted();
        const n = await this.#repo.deleteEventsBefore(ctx, before, { ...options, limit: BATCH });
        if (n > 0) {
          result.deleted += n;
          result.byPurpose[label] = (result.byPurpose[label] ?? 0) + n;
        }
        if (n < BATCH) return;
      }
    };
    for (const r of retentions) {
      await sweep(r.purpose, subtractDuration(now, r.keep), { source: r.source, purpose: r.purpose });
    }
    // What the manifest no longer declares is kept no longer than what it does.
    const shortest = retentions.reduce<string | undefined>(
      (s, r) => (s === undefined || durationDays(r.keep) < durationDays(s) ? r.keep : s),
      undefined,
    );
    await sweep('*', shortest === undefined ? now : subtractDuration(now, shortest), {
      except: retentions.map((r) => ({ source: r.source, purpose: r.purpose })),
    });
    return result;
  }
}
