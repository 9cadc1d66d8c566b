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
import { durationDays, describeDuration } from './duration.js';
import {
  CONSENT_STRICTNESS,
  consentModeFor,
  consentModes,
  type Choice,
  type ConsentMode,
  type LegalBasis,
  type Manifest,
  type Pledge,
  type Purpose,
  type Recipient,
  type RecipientKind,
  type RetentionRule,
  type Source,
} from './manifest.schema.js';
import { choicePurposeKeys, describePlace, joinAnd, lowerFirst, quote } from './manifest.renderer.js';
import { formatPath, type ManifestPath } from './problems.js';
import { Taxonomy, coversCategory } from './taxonomy.js';

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

// ---------------------------------------------------------------------------------------------
// Words

const MODE_WORDS: Record<ConsentMode, string> = {
  required: 'required',
  opt_out: 'opt-out',
  opt_in: 'opt-in',
};

const LEGAL_BASIS_WORDS: Record<LegalBasis, string> = {
  contract: 'our contract with you',
  consent: 'your consent',
  legitimate_interest: 'our legitimate interest',
  legal_obligation: 'a legal obligation',
};

const RECIPIENT_KIND_WORDS: Record<RecipientKind, string> = {
  processor: 'a service provider acting on our behalf',
  affiliate: 'a company of our group',
  authority: 'a public authority',
  third_party: 'a third party',
};

const CHANNEL_WORDS: Record<string, string> = {
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

function consentConsequence(from: ConsentMode, to: ConsentMode, purpose: Purpose): string {
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
function matchByKey<T extends { key: string }>(before: readonly T[], after: readonly T[]) {
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
function retentionDays(duration: string | undefined): number {
  return duration === undefined ? Number.POSITIVE_INFINITY : durationDays(duration);
}

function describeRetention(duration: string | undefined): string {
  return duration === undefined ? 'no set limit' : describeDuration(duration);
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

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------------------------------------
// The diff

interface PendingChange {
  kind: string;
  material: boolean;
  summary: string;
  path: ManifestPath;
}

class ManifestDiffer {
  private readonly changes: PendingChange[] = [];
  private readonly beforeTaxonomy: Taxonomy;
  private readonly afterTaxonomy: Taxonomy;

  constructor(
    private readonly before: Manifest,
    private readonly after: Manifest,
  ) {
    this.beforeTaxonomy = new Taxonomy(before.categories);
    this.afterTaxonomy = new Taxonomy(after.categories);
  }

  run(): ManifestDiffResult {
    this.diffOrganization();
    this.diffPolicy();
    this.diffPurposes();
    this.diffSources();
    this.diffRecipients();
    this.diffRetention();
    this.diffChoices();
    this.diffPledges();
    const changes = this.changes
      .sort(
        (x, y) =>
          compareStrings(x.kind, y.kind) ||
          comparePaths(x.path, y.path) ||
          compareStrings(x.summary, y.summary),
      )
      .map((c) => ({ kind: c.kind, material: c.material, summary: c.summary, path: formatPath(c.path) }));
    return { material: changes.some((c) => c.material), changes };
  }

  private add(kind: string, material: boolean, path: ManifestPath, summary: string): void {
    this.changes.push({ kind, material, path, summary });
  }

  // -- words that need a manifest --------------------------------------------------------------

  /** A category's name as it reads in a sentence, from the manifest it belongs to. */
  private category(key: string, side: 'before' | 'after' = 'after'): string {
    const taxonomy = side === 'before' ? this.beforeTaxonomy : this.afterTaxonomy;
    return lowerFirst(taxonomy.get(key)?.name ?? key);
  }

  private categories(keys: readonly string[], side: 'before' | 'after' = 'after'): string {
    return joinAnd(keys.map((k) => this.category(k, side)));
  }

  private purposeName(key: string, side: 'before' | 'after' = 'after'): string {
    const m = side === 'before' ? this.before : this.after;
    return quote(m.purposes.find((p) => p.key === key)?.name ?? key);
  }

  private purposeNames(keys: readonly string[], side: 'before' | 'after' = 'after'): string {
    return joinAnd(keys.map((k) => this.purposeName(k, side)));
  }

  private recipientName(key: string, side: 'before' | 'after' = 'after'): string {
    const m = side === 'before' ? this.before : this.after;
    return m.recipients.find((r) => r.key === key)?.name ?? key;
  }

  // -- organization and policy -----------------------------------------------------------------

  private diffOrganization(): void {
    const b = this.before.organization;
    const a = this.after.organization;
    if (b.privacy_contact !== a.privacy_contact) {
      this.add(
        'organization.contact_changed',
        false,
        ['organization', 'privacy_contact'],
        `Our privacy contact changes from ${b.privacy_contact} to ${a.privacy_contact}.`,
      );
    }
    const addressFields = ['street', 'city', 'region', 'postal_code', 'country'] as const;
    if (addressFields.some((f) => b.address[f] !== a.address[f])) {
      this.add(
        'organization.address_changed',
        false,
        ['organization', 'address'],
        'Our postal address changes.',
      );
    }
    if (b.name !== a.name || b.legal_name !== a.legal_name) {
      this.add(
        'organization.name_changed',
        false,
        ['organization', b.legal_name !== a.legal_name ? 'legal_name' : 'name'],
        `Our name changes from ${b.legal_name} to ${a.legal_name}.`,
      );
    }
    if (b.description !== a.description || b.website !== a.website) {
      this.add(
        'organization.wording_changed',
        false,
        ['organization', b.website !== a.website ? 'website' : 'description'],
        'The description of our organization or its website address changes.',
      );
    }

    const certs = matchByKey(b.certifications, a.certifications);
    for (const { item, index } of certs.removed) {
      this.add(
        'certification.removed',
        true,
        ['organization', 'certifications', index],
        `We will no longer take part in the ${item.name}.`,
      );
    }
    for (const { item, index } of certs.added) {
      this.add(
        'certification.added',
        false,
        ['organization', 'certifications', index],
        `We now take part in the ${item.name}.`,
      );
    }
    for (const { before, after } of certs.both) {
      if (
        before.item.name !== after.item.name ||
        before.item.description !== after.item.description ||
        before.item.url !== after.item.url
      ) {
        this.add(
          'certification.wording_changed',
          false,
          ['organization', 'certifications', after.index],
          `The description of the ${after.item.name} changes.`,
        );
      }
    }

    const mechanisms = matchByKey(b.transfer_mechanisms, a.transfer_mechanisms);
    for (const { item, index } of mechanisms.removed) {
      this.add(
        'transfer.removed',
        true,
        ['organization', 'transfer_mechanisms', index],
        `We will no longer rely on the ${item.name} to protect your information when it leaves your country.`,
      );
    }
    for (const { item, index } of mechanisms.added) {
      this.add(
        'transfer.added',
        false,
        ['organization', 'transfer_mechanisms', index],
        `We now also rely on the ${item.name} to protect your information when it leaves your country.`,
      );
    }
    for (const { before, after } of mechanisms.both) {
      if (before.item.kind !== after.item.kind) {
        this.add(
          'transfer.changed',
          true,
          ['organization', 'transfer_mechanisms', after.index, 'kind'],
          `The ${after.item.name} changes from ${before.item.kind.replace(/_/g, ' ')} to ${after.item.kind.replace(/_/g, ' ')}.`,
        );
      } else if (before.item.name !== after.item.name || before.item.description !== after.item.description) {
        this.add(
          'transfer.wording_changed',
          false,
          ['organization', 'transfer_mechanisms', after.index],
          `The description of the ${after.item.name} changes.`,
        );
      }
    }

    this.diffSafeguards(b.safeguards, a.safeguards);
  }

  /**
   * Safeguards have no keys, so a reworded one cannot be told from a removed one by its text.
   * Unmatched old and new texts are paired in order as rewordings; only old texts left over, when
   * the list shrinks, are removals, and material.
   */
  private diffSafeguards(before: readonly string[], after: readonly string[]): void {
    const removed = before.flatMap((text, index) => (after.includes(text) ? [] : [{ text, index }]));
    const added = after.flatMap((text, index) => (before.includes(text) ? [] : [{ text, index }]));
    const reworded = Math.min(removed.length, added.length);
    removed.forEach(({ text, index }, i) => {
      const replacement = i < reworded ? added[i] : undefined;
      if (replacement) {
        this.add(
          'safeguard.wording_changed',
          false,
          ['organization', 'safeguards', replacement.index],
          `The safeguard ${quote(text)} now reads ${quote(replacement.text)}`,
        );
      } else {
        this.add(
          'safeguard.removed',
          true,
          ['organization', 'safeguards', index],
          `We no longer state this safeguard: ${quote(text)}`,
        );
      }
    });
    for (const { text, index } of added.slice(reworded)) {
      this.add(
        'safeguard.added',
        false,
        ['organization', 'safeguards', index],
        `We add a safeguard: ${quote(text)}`,
      );
    }
  }

  private diffPolicy(): void {
    const b = this.before.policy;
    const a = this.after.policy;
    if (b.version !== a.version || b.effective !== a.effective) {
      this.add(
        'policy.version_changed',
        false,
        ['policy', b.version !== a.version ? 'version' : 'effective'],
        `The policy changes from version ${b.version} (effective ${b.effective}) to version ${a.version} (effective ${a.effective}).`,
      );
    }
  }

  // -- purposes --------------------------------------------------------------------------------

  private diffPurposes(): void {
    const { added, removed, both } = matchByKey(this.before.purposes, this.after.purposes);
    for (const { item, index } of added) {
      this.add(
        'purpose.added',
        true,
        ['purposes', index],
        `We will use your information for a new purpose: ${quote(item.name)} (${lowerFirst(item.description).replace(/\.$/, '')}).`,
      );
    }
    for (const { item, index } of removed) {
      this.add(
        'purpose.removed',
        false,
        ['purposes', index],
        `We no longer use your information for ${quote(item.name)}.`,
      );
    }
    for (const { before, after } of both) this.diffPurpose(before.item, after.item, after.index);
  }

  private diffPurpose(b: Purpose, a: Purpose, i: number): void {
    const name = quote(a.name);
    this.diffConsent(b, a, i);
    if (b.legal_basis !== a.legal_basis) {
      this.add(
        'purpose.legal_basis_changed',
        true,
        ['purposes', i, 'legal_basis'],
        `We will do ${name} on the basis of ${LEGAL_BASIS_WORDS[a.legal_basis]} instead of ${LEGAL_BASIS_WORDS[b.legal_basis]}.`,
      );
    }
    if (b.use !== a.use) {
      this.add(
        'purpose.use_changed',
        true,
        ['purposes', i, 'use'],
        `${name} changes from ${b.use.replace(/_/g, ' ')} to ${a.use.replace(/_/g, ' ')}.`,
      );
    }
    const before = retentionDays(b.retention);
    const after = retentionDays(a.retention);
    if (before !== after) {
      const longer = after > before;
      this.add(
        longer ? 'purpose.retention_longer' : 'purpose.retention_shorter',
        longer,
        a.retention === undefined ? ['purposes', i] : ['purposes', i, 'retention'],
        `We will keep information used for ${name} for ${describeRetention(a.retention)} instead of ${describeRetention(b.retention)}.`,
      );
    }
    const newCategories = a.categories.filter((c) => !b.categories.some((old) => coversCategory(old, c)));
    if (newCategories.length > 0) {
      this.add(
        'purpose.categories_added',
        true,
        ['purposes', i, 'categories'],
        `For ${name} we may now also use your ${this.categories(newCategories)}.`,
      );
    }
    const droppedCategories = b.categories.filter((c) => !a.categories.some((now) => coversCategory(now, c)));
    if (droppedCategories.length > 0) {
      this.add(
        'purpose.categories_removed',
        false,
        ['purposes', i, 'categories'],
        `For ${name} we will no longer use your ${this.categories(droppedCategories, 'before')}.`,
      );
    }
    const newChannels = a.channels.filter((c) => !b.channels.includes(c));
    if (newChannels.length > 0) {
      this.add(
        'purpose.channels_added',
        true,
        ['purposes', i, 'channels'],
        `For ${name} we may now reach you ${joinAnd(newChannels.map((c) => CHANNEL_WORDS[c] ?? c))}.`,
      );
    }
    const droppedChannels = b.channels.filter((c) => !a.channels.includes(c));
    if (droppedChannels.length > 0) {
      this.add(
        'purpose.channels_removed',
        false,
        ['purposes', i, 'channels'],
        `For ${name} we will no longer reach you ${joinAnd(droppedChannels.map((c) => CHANNEL_WORDS[c] ?? c))}.`,
      );
    }
    if (b.gpc !== a.gpc) {
      this.add(
        a.gpc ? 'purpose.gpc_added' : 'purpose.gpc_removed',
        !a.gpc,
        ['purposes', i, 'gpc'],
        a.gpc
          ? `${name} will now stop when your browser sends a Global Privacy Control signal.`
          : `${name} will no longer stop when your browser sends a Global Privacy Control signal.`,
      );
    }
    if (b.name !== a.name || b.description !== a.description) {
      this.add('purpose.wording_changed', false, ['purposes', i], `The description of ${name} changes.`);
    }
  }

  /**
   * Compares the consent of a purpose in every jurisdiction either version names, "default"
   * included, using the mode each jurisdiction actually gets (France inherits the EU's rule).
   */
  private diffConsent(b: Purpose, a: Purpose, i: number): void {
    const beforeModes = consentModes(b);
    const afterModes = consentModes(a);
    const jurisdictions = [...new Set([...Object.keys(beforeModes), ...Object.keys(afterModes)])].sort(
      (x, y) => (x === 'default' ? -1 : y === 'default' ? 1 : compareStrings(x, y)),
    );
    const hasExceptions = jurisdictions.length > 1;
    const modeIn = (purpose: Purpose, modes: Record<string, ConsentMode>, j: string): ConsentMode =>
      j === 'default' ? (modes.default ?? consentModeFor(purpose, undefined)) : consentModeFor(purpose, j);
    for (const j of jurisdictions) {
      const from = modeIn(b, beforeModes, j);
      const to = modeIn(a, afterModes, j);
      if (from === to) continue;
      const weakened = CONSENT_STRICTNESS[to] < CONSENT_STRICTNESS[from];
      const where =
        j === 'default'
          ? hasExceptions
            ? 'everywhere without a rule of its own'
            : 'everywhere'
          : `in ${describePlace(j)}`;
      this.add(
        weakened ? 'purpose.consent_weakened' : 'purpose.consent_strengthened',
        weakened,
        typeof a.consent === 'string' || !(j in a.consent)
          ? ['purposes', i, 'consent']
          : ['purposes', i, 'consent', j],
        `${quote(a.name)} ${where} changes from ${MODE_WORDS[from]} to ${MODE_WORDS[to]}: ${consentConsequence(from, to, a)}.`,
      );
    }
  }

  // -- sources ---------------------------------------------------------------------------------

  private diffSources(): void {
    const { added, removed, both } = matchByKey(this.before.sources, this.after.sources);
    for (const { item, index } of added) {
      this.add(
        'source.added',
        true,
        ['sources', index],
        `We will now collect your ${this.categories(item.categories)} at a new place: ${item.name}.`,
      );
    }
    for (const { item, index } of removed) {
      this.add(
        'source.removed',
        false,
        ['sources', index],
        `We no longer collect information at ${item.name}.`,
      );
    }
    for (const { before, after } of both) this.diffSource(before.item, before.index, after.item, after.index);
  }

  private diffSource(b: Source, bi: number, a: Source, i: number): void {
    const name = a.name;
    a.categories.forEach((category, j) => {
      if (b.categories.includes(category)) return;
      const parent = b.categories.find((c) => coversCategory(c, category));
      if (parent === undefined) {
        this.add(
          'category.collected',
          true,
          ['sources', i, 'categories', j],
          `We will now collect your ${this.category(category)}${this.afterTaxonomy.get(category)?.sensitive ? ', which the law treats as sensitive,' : ''} at ${name}.`,
        );
      } else {
        this.add(
          'category.clarified',
          false,
          ['sources', i, 'categories', j],
          `${name} now names your ${this.category(category)}, which it already collected as part of your ${this.category(parent, 'before')}.`,
        );
      }
    });
    b.categories.forEach((category, j) => {
      if (a.categories.some((c) => coversCategory(c, category))) return;
      this.add(
        'category.no_longer_collected',
        false,
        ['sources', bi, 'categories', j],
        `We will no longer collect your ${this.category(category, 'before')} at ${b.name}.`,
      );
    });

    const newPurposes = a.purposes.filter((p) => !b.purposes.includes(p));
    if (newPurposes.length > 0) {
      this.add(
        'source.purposes_added',
        true,
        ['sources', i, 'purposes'],
        `Information collected at ${name} will now also be used for ${this.purposeNames(newPurposes)}.`,
      );
    }
    const droppedPurposes = b.purposes.filter((p) => !a.purposes.includes(p));
    if (droppedPurposes.length > 0) {
      this.add(
        'source.purposes_removed',
        false,
        ['sources', i, 'purposes'],
        `Information collected at ${name} will no longer be used for ${this.purposeNames(droppedPurposes, 'before')}.`,
      );
    }

    if (b.voluntary !== a.voluntary) {
      this.add(
        a.voluntary ? 'source.now_voluntary' : 'source.no_longer_voluntary',
        !a.voluntary,
        ['sources', i, 'voluntary'],
        a.voluntary
          ? `Giving us information at ${name} is now voluntary.`
          : `Giving us information at ${name} will no longer be voluntary.`,
      );
    }
    for (const [field, spec] of Object.entries(a.fields ?? {})) {
      const old = b.fields?.[field];
      if (old !== undefined && !old.required && spec.required) {
        this.add(
          'source.field_required',
          true,
          ['sources', i, 'fields', field],
          `Your ${this.category(spec.category)} will no longer be optional at ${name}.`,
        );
      }
    }

    const before = durationDays(b.retention);
    const after = durationDays(a.retention);
    if (before !== after) {
      const longer = after > before;
      this.add(
        longer ? 'source.retention_longer' : 'source.retention_shorter',
        longer,
        ['sources', i, 'retention'],
        `We will keep information collected at ${name} for ${describeDuration(a.retention)} instead of ${describeDuration(b.retention)}.`,
      );
    }

    // A category that stops passing straight through to a recipient may now be stored by us.
    const same = (x: { category: string; recipient: string }, y: { category: string; recipient: string }) =>
      x.category === y.category && x.recipient === y.recipient;
    b.pass_through.forEach((pt, j) => {
      if (a.pass_through.some((x) => same(x, pt))) return;
      this.add(
        'source.pass_through_removed',
        true,
        ['sources', bi, 'pass_through', j],
        `Your ${this.category(pt.category, 'before')} given at ${b.name} will no longer only be passed straight to ${this.recipientName(pt.recipient, 'before')}: we may now store it.`,
      );
    });
    a.pass_through.forEach((pt, j) => {
      if (b.pass_through.some((x) => same(x, pt))) return;
      this.add(
        'source.pass_through_added',
        false,
        ['sources', i, 'pass_through', j],
        `Your ${this.category(pt.category)} given at ${name} will now be passed straight to ${this.recipientName(pt.recipient)} and not stored by us.`,
      );
    });

    if (b.name !== a.name || b.description !== a.description || b.notice !== a.notice || b.kind !== a.kind) {
      this.add('source.wording_changed', false, ['sources', i], `The description of ${name} changes.`);
    }
  }

  // -- recipients ------------------------------------------------------------------------------

  private diffRecipients(): void {
    const { added, removed, both } = matchByKey(this.before.recipients, this.after.recipients);
    for (const { item, index } of added) {
      this.add(
        'recipient.added',
        true,
        ['recipients', index],
        `We will now share your ${this.categories(item.categories)} with ${item.name}, ${RECIPIENT_KIND_WORDS[item.kind]} in ${describePlace(item.country)}, for ${this.purposeNames(item.purposes)}.`,
      );
    }
    for (const { item, index } of removed) {
      this.add(
        'recipient.removed',
        false,
        ['recipients', index],
        `We no longer share your information with ${item.name}.`,
      );
    }
    for (const { before, after } of both) this.diffRecipient(before.item, after.item, after.index);
  }

  private diffRecipient(b: Recipient, a: Recipient, i: number): void {
    const name = a.name;
    const newCategories = a.categories.filter((c) => !b.categories.some((old) => coversCategory(old, c)));
    if (newCategories.length > 0) {
      this.add(
        'recipient.categories_added',
        true,
        ['recipients', i, 'categories'],
        `We will now also share your ${this.categories(newCategories)} with ${name}.`,
      );
    }
    const droppedCategories = b.categories.filter((c) => !a.categories.some((now) => coversCategory(now, c)));
    if (droppedCategories.length > 0) {
      this.add(
        'recipient.categories_removed',
        false,
        ['recipients', i, 'categories'],
        `We will no longer share your ${this.categories(droppedCategories, 'before')} with ${name}.`,
      );
    }
    const newPurposes = a.purposes.filter((p) => !b.purposes.includes(p));
    if (newPurposes.length > 0) {
      this.add(
        'recipient.purposes_added',
        true,
        ['recipients', i, 'purposes'],
        `${name} will now also receive your information for ${this.purposeNames(newPurposes)}.`,
      );
    }
    const droppedPurposes = b.purposes.filter((p) => !a.purposes.includes(p));
    if (droppedPurposes.length > 0) {
      this.add(
        'recipient.purposes_removed',
        false,
        ['recipients', i, 'purposes'],
        `${name} will no longer receive your information for ${this.purposeNames(droppedPurposes, 'before')}.`,
      );
    }
    if (b.country !== a.country) {
      this.add(
        'recipient.country_changed',
        true,
        ['recipients', i, 'country'],
        `${name} will hold your information in ${describePlace(a.country)} instead of ${describePlace(b.country)}.`,
      );
    }
    if (b.transfer_mechanism !== a.transfer_mechanism) {
      const mechanism = (m: Manifest, key: string | undefined) =>
        key === undefined
          ? 'no transfer mechanism'
          : `the ${m.organization.transfer_mechanisms.find((t) => t.key === key)?.name ?? key}`;
      this.add(
        'transfer.changed',
        true,
        a.transfer_mechanism === undefined ? ['recipients', i] : ['recipients', i, 'transfer_mechanism'],
        `Transfers of your information to ${name} will rely on ${mechanism(this.after, a.transfer_mechanism)} instead of ${mechanism(this.before, b.transfer_mechanism)}.`,
      );
    }
    if (b.consideration !== a.consideration) {
      const gives = a.consideration !== 'none';
      this.add(
        'recipient.consideration_changed',
        gives,
        ['recipients', i, 'consideration'],
        gives
          ? `${name} will now give us something in return for your information: this is a ${a.consideration === 'rent' ? 'rental' : a.consideration} of your personal information.`
          : `${name} will no longer give us anything in return for your information.`,
      );
    }
    if (b.kind !== a.kind) {
      // Only a processor is bound to act for us alone; any other move loosens that hold.
      this.add(
        'recipient.kind_changed',
        a.kind !== 'processor',
        ['recipients', i, 'kind'],
        `${name} will be ${RECIPIENT_KIND_WORDS[a.kind]} instead of ${RECIPIENT_KIND_WORDS[b.kind]}.`,
      );
    }
    if (b.agreement !== undefined && a.agreement === undefined) {
      this.add(
        'recipient.agreement_removed',
        true,
        ['recipients', i],
        `We will no longer have a written agreement with ${name} (it was ${b.agreement.reference}).`,
      );
    } else if (a.agreement !== undefined && b.agreement?.reference !== a.agreement.reference) {
      this.add(
        b.agreement === undefined ? 'recipient.agreement_added' : 'recipient.agreement_changed',
        false,
        ['recipients', i, 'agreement'],
        `Our agreement with ${name} is now ${a.agreement.reference}.`,
      );
    }
    if (b.name !== a.name || b.description !== a.description) {
      this.add('recipient.wording_changed', false, ['recipients', i], `The description of ${name} changes.`);
    }
  }

  // -- retention rules -------------------------------------------------------------------------

  private diffRetention(): void {
    const keyOf = (r: RetentionRule) => `${r.category ?? '*'}|${r.purpose ?? '*'}`;
    const withKeys = (rules: readonly RetentionRule[]) => rules.map((r) => ({ ...r, key: keyOf(r) }));
    const { added, removed, both } = matchByKey(
      withKeys(this.before.retention),
      withKeys(this.after.retention),
    );
    const what = (r: RetentionRule, side: 'before' | 'after') =>
      `${r.category === undefined ? 'personal information' : `your ${this.category(r.category, side)}`}${r.purpose === undefined ? '' : ` used for ${this.purposeName(r.purpose, side)}`}`;
    for (const { item, index } of removed) {
      this.add(
        'retention.rule_removed',
        true,
        ['retention', index],
        `We will no longer limit how long we keep ${what(item, 'before')} to ${describeDuration(item.max)}.`,
      );
    }
    for (const { item, index } of added) {
      this.add(
        'retention.rule_added',
        false,
        ['retention', index],
        `We will never keep ${what(item, 'after')} longer than ${describeDuration(item.max)}.`,
      );
    }
    for (const { before, after } of both) {
      const from = durationDays(before.item.max);
      const to = durationDays(after.item.max);
      if (from === to) continue;
      this.add(
        to > from ? 'retention.rule_longer' : 'retention.rule_shorter',
        to > from,
        ['retention', after.index, 'max'],
        `We may keep ${what(after.item, 'after')} for up to ${describeDuration(after.item.max)} instead of ${describeDuration(before.item.max)}.`,
      );
    }
  }

  // -- choices ---------------------------------------------------------------------------------

  private diffChoices(): void {
    const { added, removed, both } = matchByKey(this.before.choices, this.after.choices);
    for (const { item, index } of removed) {
      this.add('choice.removed', true, ['choices', index], `We will no longer offer the ${item.name}.`);
    }
    for (const { item, index } of added) {
      this.add('choice.added', false, ['choices', index], `We now offer the ${item.name}.`);
    }
    for (const { before, after } of both) this.diffChoice(before.item, after.item, after.index);
  }

  private diffChoice(b: Choice, a: Choice, i: number): void {
    const name = a.name;
    const afterKeys = choicePurposeKeys(this.after, a);
    const beforeKeys = choicePurposeKeys(this.before, b);
    // A purpose that no longer exists is no choice lost; one that still exists but left the choice is.
    const stillUsed = new Set(this.after.purposes.map((p) => p.key));
    const lost = beforeKeys.filter((k) => !afterKeys.includes(k) && stillUsed.has(k));
    if (lost.length > 0) {
      this.add(
        'choice.purposes_removed',
        true,
        ['choices', i, 'purposes'],
        `You will no longer be able to use the ${name} for ${this.purposeNames(lost)}.`,
      );
    }
    const gained = afterKeys.filter((k) => !beforeKeys.includes(k));
    if (gained.length > 0) {
      this.add(
        'choice.purposes_added',
        false,
        ['choices', i, 'purposes'],
        `You can now use the ${name} for ${this.purposeNames(gained)}.`,
      );
    }
    if (b.actions.includes('withdraw') && !a.actions.includes('withdraw')) {
      this.add(
        'choice.withdraw_removed',
        true,
        ['choices', i, 'actions'],
        `You will no longer be able to withdraw your consent with the ${name}.`,
      );
    } else if (JSON.stringify([...b.actions].sort()) !== JSON.stringify([...a.actions].sort())) {
      this.add(
        'choice.actions_changed',
        false,
        ['choices', i, 'actions'],
        `What you can do with the ${name} changes.`,
      );
    }
    if (b.global_opt_out !== a.global_opt_out) {
      this.add(
        a.global_opt_out ? 'choice.global_opt_out_added' : 'choice.global_opt_out_removed',
        !a.global_opt_out,
        ['choices', i, 'global_opt_out'],
        a.global_opt_out
          ? `You can now opt out of our collection, use and distribution of your information with the ${name}.`
          : `You will no longer be able to opt out of our collection, use and distribution of your information with the ${name}.`,
      );
    }
    if (b.path !== a.path) {
      this.add(
        'choice.path_changed',
        false,
        a.path === undefined ? ['choices', i] : ['choices', i, 'path'],
        a.path === undefined ? `The ${name} no longer has its own page.` : `The ${name} moves to ${a.path}.`,
      );
    }
    if (b.name !== a.name || b.kind !== a.kind) {
      this.add('choice.wording_changed', false, ['choices', i], `The ${b.name} is now called the ${name}.`);
    }
  }

  // -- pledges ---------------------------------------------------------------------------------

  private diffPledges(): void {
    const { added, removed, both } = matchByKey(this.before.pledges, this.after.pledges);
    for (const { item, index } of removed) {
      this.add('pledge.removed', true, ['pledges', index], `We withdraw this promise: ${quote(item.text)}`);
    }
    for (const { item, index } of added) {
      this.add('pledge.added', false, ['pledges', index], `We add this promise: ${quote(item.text)}`);
    }
    for (const { before, after } of both) this.diffPledge(before.item, after.item, after.index);
  }

  private diffPledge(b: Pledge, a: Pledge, i: number): void {
    if (b.kind !== a.kind) {
      this.add(
        'pledge.kind_changed',
        true,
        ['pledges', i, 'kind'],
        `The promise ${quote(a.text)} changes from a ${b.kind.replace(/_/g, ' ')} promise to a ${a.kind.replace(/_/g, ' ')} promise.`,
      );
    } else {
      const narrowed = pledgeNarrowed(b, a);
      const broadened = pledgeNarrowed(a, b);
      if (narrowed) {
        this.add(
          'pledge.narrowed',
          true,
          ['pledges', i],
          `The promise ${quote(a.text)} now covers less than it did.`,
        );
      } else if (broadened) {
        this.add(
          'pledge.broadened',
          false,
          ['pledges', i],
          `The promise ${quote(a.text)} now covers more than it did.`,
        );
      }
    }
    if (b.text !== a.text) {
      this.add(
        'pledge.text_changed',
        false,
        ['pledges', i, 'text'],
        `The promise ${quote(b.text)} now reads ${quote(a.text)}`,
      );
    }
  }
}

/**
 * True when pledge `a` promises less than `b` did: it covers fewer categories or purposes (an absent
 * list covers everything), or lets the data go to more recipients.
 */
function pledgeNarrowed(b: Pledge, a: Pledge): boolean {
  const lost = (
    old: string[] | undefined,
    now: string[] | undefined,
    covers: (x: string, y: string) => boolean,
  ) => now !== undefined && (old === undefined || old.some((o) => !now.some((n) => covers(n, o))));
  const onlyToWidened = (a.only_to ?? []).some((r) => !(b.only_to ?? []).includes(r));
  return (
    lost(b.categories, a.categories, coversCategory) ||
    lost(b.purposes, a.purposes, (x, y) => x === y) ||
    onlyToWidened
  );
}

/** Compares two manifests; pure and deterministic (changes sorted by kind, then path). */
export function diffManifests(before: Manifest, after: Manifest): ManifestDiffResult {
  return new ManifestDiffer(before, after).run();
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
