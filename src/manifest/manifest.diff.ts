/**
 * What changed between two versions of a manifest, and whether the people whose data is held must
 * be told before the change takes effect.
 *
 * A change is *material* when it reduces someone's privacy or choice: more data collected, more
 * recipients, new uses, weaker consent, longer retention, a promise or a choice withdrawn. Changes
 * that only protect people more, or only reword, are listed but not material. When in doubt a change
 * is material: a needless notice costs an e-mail, a missed one breaks a promise.
 *
 * Entries are matched by `key`; renaming a key reads as a removal and an addition.
 */
import { DiffContext, compareStrings } from './diff.context.js';
import { diffOrganization, diffPolicy, diffPurposes, diffSources } from './diff.rules.js';
import { diffChoices, diffPledges, diffRecipients, diffRetention } from './diff.sharing.js';
import type { Manifest } from './manifest.schema.js';
import { formatPath, type ManifestPath } from './problems.js';

/** One difference between two manifests. */
export interface ManifestChange {
  /** Stable code, e.g. `purpose.consent_weakened`; tools match on it. */
  kind: string;
  /** True when people must be told: the change reduces their privacy or their choices. */
  material: boolean;
  /** The change in plain words, for the people whose data is held. */
  summary: string;
  /** Where the change is: a path in the new manifest, or in the old one for a removal. */
  path: string;
}

/** Every change between two manifests, in a stable order (by kind, then path). */
export interface ManifestDiffResult {
  /** True when at least one change is material. */
  material: boolean;
  changes: ManifestChange[];
}

function comparePaths(a: ManifestPath, b: ManifestPath): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return a.length - b.length;
}

/** Compares two manifests; pure and deterministic (changes sorted by kind, then path). */
export function diffManifests(before: Manifest, after: Manifest): ManifestDiffResult {
  const ctx = new DiffContext(before, after);
  diffOrganization(ctx);
  diffPolicy(ctx);
  diffPurposes(ctx);
  diffSources(ctx);
  diffRecipients(ctx);
  diffRetention(ctx);
  diffChoices(ctx);
  diffPledges(ctx);
  const changes = ctx.changes
    .sort(
      (x, y) =>
        compareStrings(x.kind, y.kind) ||
        comparePaths(x.path, y.path) ||
        compareStrings(x.summary, y.summary),
    )
    .map((c) => ({ kind: c.kind, material: c.material, summary: c.summary, path: formatPath(c.path) }));
  return { material: changes.some((c) => c.material), changes };
}

/** A report for people: material changes first, each with its code and path, then `material: yes|no`. */
export function renderDiffText(result: ManifestDiffResult): string {
  const lines: string[] = [];
  const section = (title: string, changes: ManifestChange[]) => {
    if (changes.length === 0) return;
    lines.push(`${title} (${changes.length}):`);
    for (const change of changes) lines.push(`  ${change.kind} at ${change.path}`, `    ${change.summary}`);
    lines.push('');
  };
  if (result.changes.length === 0) {
    lines.push('No changes.', '');
  } else {
    section(
      'Material changes: tell the people whose data you hold before they take effect',
      result.changes.filter((c) => c.material),
    );
    section(
      'Other changes',
      result.changes.filter((c) => !c.material),
    );
  }
  lines.push(`material: ${result.material ? 'yes' : 'no'}`);
  return `${lines.join('\n')}\n`;
}
