/**
 * What the rules of the diff share: the words they use, matching lists of keyed entries, and the
 * {@link DiffContext} each rule reads the two manifests from and adds its changes to.
 */
import { durationDays, describeDuration } from './duration.js';
import type { ConsentMode, LegalBasis, Manifest, Purpose, RecipientKind } from './manifest.schema.js';
import { joinAnd, lowerFirst, quote } from './policy.wording.js';
import type { ManifestPath } from './problems.js';
import { Taxonomy } from './taxonomy.js';

// ---------------------------------------------------------------------------------------------
// Words

export const MODE_WORDS: Record<ConsentMode, string> = {
  required: 'required',
  opt_out: 'opt-out',
  opt_in: 'opt-in',
};

export const LEGAL_BASIS_WORDS: Record<LegalBasis, string> = {
  contract: 'our contract with you',
  consent: 'your consent',
  legitimate_interest: 'our legitimate interest',
  legal_obligation: 'a legal obligation',
};

export const RECIPIENT_KIND_WORDS: Record<RecipientKind, string> = {
  processor: 'a service provider acting on our behalf',
  affiliate: 'a company of our group',
  authority: 'a public authority',
  third_party: 'a third party',
};

export const CHANNEL_WORDS: Record<string, string> = {
  email: 'by e-mail',
  web: 'on our websites',
  phone: 'by phone',
  sms: 'by text message',
  postal: 'by post',
  in_product: 'in our products',
};

/** What doing a purpose means to a person, for "we may now ... until you object". */
function purposeAct(purpose: Purpose): string {
  return purpose.use === 'marketing' && purpose.channels.includes('email')
    ? 'e-mail you'
    : 'use your information for this';
}

export function consentConsequence(from: ConsentMode, to: ConsentMode, purpose: Purpose): string {
  const act = purposeAct(purpose);
  if (to === 'opt_out' && from === 'opt_in') return `we may now ${act} until you object`;
  if (to === 'required' && from === 'opt_in')
    return `we may now ${act} without asking, and you cannot refuse`;
  if (to === 'required') return 'you will no longer be able to opt out';
  if (to === 'opt_in') return `we will now ${act} only with your consent`;
  return 'you will now be able to opt out';
}

// ---------------------------------------------------------------------------------------------
// Comparing lists of keyed entries

interface Indexed<T> {
  item: T;
  index: number;
}

function byKey<T extends { key: string }>(list: readonly T[]): Map<string, Indexed<T>> {
  const map = new Map<string, Indexed<T>>();
  list.forEach((item, index) => {
    // The loader rejects duplicate keys; keep the first should a caller pass an unchecked manifest.
    if (!map.has(item.key)) map.set(item.key, { item, index });
  });
  return map;
}

/** Entries of `after` not in `before`, entries of `before` not in `after`, and pairs in both. */
export function matchByKey<T extends { key: string }>(before: readonly T[], after: readonly T[]) {
  const b = byKey(before);
  const a = byKey(after);
  return {
    added: [...a.values()].filter((e) => !b.has(e.item.key)),
    removed: [...b.values()].filter((e) => !a.has(e.item.key)),
    both: [...a.values()].flatMap((e) => {
      const old = b.get(e.item.key);
      return old ? [{ before: old, after: e }] : [];
    }),
  };
}

/** Retention in days, with "no limit" as infinity so that lifting a limit reads as longer. */
export function retentionDays(duration: string | undefined): number {
  return duration === undefined ? Number.POSITIVE_INFINITY : durationDays(duration);
}

export function describeRetention(duration: string | undefined): string {
  return duration === undefined ? 'no set limit' : describeDuration(duration);
}

export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------------------------------------
// The context of the rules

/** A change as a rule finds it; the path is formatted once the changes are sorted. */
export interface PendingChange {
  kind: string;
  material: boolean;
  summary: string;
  path: ManifestPath;
}

/** The two manifests being compared and the changes found so far. */
export class DiffContext {
  readonly changes: PendingChange[] = [];
  readonly beforeTaxonomy: Taxonomy;
  readonly afterTaxonomy: Taxonomy;

  constructor(
    readonly before: Manifest,
    readonly after: Manifest,
  ) {
    this.beforeTaxonomy = new Taxonomy(before.categories);
    this.afterTaxonomy = new Taxonomy(after.categories);
  }

  add(kind: string, material: boolean, path: ManifestPath, summary: string): void {
    this.changes.push({ kind, material, path, summary });
  }

  // -- words that need a manifest --------------------------------------------------------------

  /** A category's name as it reads in a sentence, from the manifest it belongs to. */
  category(key: string, side: 'before' | 'after' = 'after'): string {
    const taxonomy = side === 'before' ? this.beforeTaxonomy : this.afterTaxonomy;
    return lowerFirst(taxonomy.get(key)?.name ?? key);
  }

  categories(keys: readonly string[], side: 'before' | 'after' = 'after'): string {
    return joinAnd(keys.map((k) => this.category(k, side)));
  }

  purposeName(key: string, side: 'before' | 'after' = 'after'): string {
    const m = side === 'before' ? this.before : this.after;
    return quote(m.purposes.find((p) => p.key === key)?.name ?? key);
  }

  purposeNames(keys: readonly string[], side: 'before' | 'after' = 'after'): string {
    return joinAnd(keys.map((k) => this.purposeName(k, side)));
  }

  recipientName(key: string, side: 'before' | 'after' = 'after'): string {
    const m = side === 'before' ? this.before : this.after;
    return m.recipients.find((r) => r.key === key)?.name ?? key;
  }
}
