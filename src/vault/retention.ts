/**
 * Retention: every record gets a deadline when it comes in, and the sweeper deletes what has passed
 * it. The deadline is the shortest of the source's retention and every retention rule that covers
 * one of the record's categories or purposes: a rule limits, it never extends.
 */
import { addDuration, durationDays } from '../manifest/duration.js';
import type { Manifest, Source } from '../manifest/manifest.schema.js';
import { coversCategory } from '../manifest/taxonomy.js';

/** The retention deadline of a record collected at `collectedAt`. */
export function retentionDeadline(
  manifest: Manifest,
  source: Source,
  categories: readonly string[],
  purposes: readonly string[],
  collectedAt: Date,
): Date {
  let shortest = source.retention;
  const consider = (d: string) => {
    if (durationDays(d) < durationDays(shortest)) shortest = d;
  };
  for (const rule of manifest.retention) {
    if (rule.category !== undefined && categories.some((c) => coversCategory(rule.category ?? '', c)))
      consider(rule.max);
    if (rule.purpose !== undefined && purposes.includes(rule.purpose)) consider(rule.max);
  }
  return addDuration(collectedAt, shortest);
}
