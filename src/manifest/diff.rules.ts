/**
 * The rules of the diff for who we are and what we collect: the organization, the policy version,
 * the purposes and their consent, and the sources of data. Each adds its changes to the context.
 */
import {
  CHANNEL_WORDS,
  LEGAL_BASIS_WORDS,
  MODE_WORDS,
  compareStrings,
  consentConsequence,
  describeRetention,
  matchByKey,
  retentionDays,
  type DiffContext,
} from './diff.context.js';
import { durationDays, describeDuration } from './duration.js';
import {
  CONSENT_STRICTNESS,
  consentModeFor,
  consentModes,
  type ConsentMode,
  type Purpose,
  type Source,
} from './manifest.schema.js';
import { describePlace, joinAnd, lowerFirst, quote } from './policy.wording.js';
import { coversCategory } from './taxonomy.js';

// -- organization and policy -----------------------------------------------------------------

export function diffOrganization(ctx: DiffContext): void {
  const b = ctx.before.organization;
  const a = ctx.after.organization;
  if (b.privacy_contact !== a.privacy_contact) {
    ctx.add(
      'organization.contact_changed',
      false,
      ['organization', 'privacy_contact'],
      `Our privacy contact changes from ${b.privacy_contact} to ${a.privacy_contact}.`,
    );
  }
  const addressFields = ['street', 'city', 'region', 'postal_code', 'country'] as const;
  if (addressFields.some((f) => b.address[f] !== a.address[f])) {
    ctx.add(
      'organization.address_changed',
      false,
      ['organization', 'address'],
      'Our postal address changes.',
    );
  }
  if (b.name !== a.name || b.legal_name !== a.legal_name) {
    ctx.add(
      'organization.name_changed',
      false,
      ['organization', b.legal_name !== a.legal_name ? 'legal_name' : 'name'],
      `Our name changes from ${b.legal_name} to ${a.legal_name}.`,
    );
  }
  if (b.description !== a.description || b.website !== a.website) {
    ctx.add(
      'organization.wording_changed',
      false,
      ['organization', b.website !== a.website ? 'website' : 'description'],
      'The description of our organization or its website address changes.',
    );
  }

  const certs = matchByKey(b.certifications, a.certifications);
  for (const { item, index } of certs.removed) {
    ctx.add(
      'certification.removed',
      true,
      ['organization', 'certifications', index],
      `We will no longer take part in the ${item.name}.`,
    );
  }
  for (const { item, index } of certs.added) {
    ctx.add(
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
      ctx.add(
        'certification.wording_changed',
        false,
        ['organization', 'certifications', after.index],
        `The description of the ${after.item.name} changes.`,
      );
    }
  }

  const mechanisms = matchByKey(b.transfer_mechanisms, a.transfer_mechanisms);
  for (const { item, index } of mechanisms.removed) {
    ctx.add(
      'transfer.removed',
      true,
      ['organization', 'transfer_mechanisms', index],
      `We will no longer rely on the ${item.name} to protect your information when it leaves your country.`,
    );
  }
  for (const { item, index } of mechanisms.added) {
    ctx.add(
      'transfer.added',
      false,
      ['organization', 'transfer_mechanisms', index],
      `We now also rely on the ${item.name} to protect your information when it leaves your country.`,
    );
  }
  for (const { before, after } of mechanisms.both) {
    if (before.item.kind !== after.item.kind) {
      ctx.add(
        'transfer.changed',
        true,
        ['organization', 'transfer_mechanisms', after.index, 'kind'],
        `The ${after.item.name} changes from ${before.item.kind.replace(/_/g, ' ')} to ${after.item.kind.replace(/_/g, ' ')}.`,
      );
    } else if (before.item.name !== after.item.name || before.item.description !== after.item.description) {
      ctx.add(
        'transfer.wording_changed',
        false,
        ['organization', 'transfer_mechanisms', after.index],
        `The description of the ${after.item.name} changes.`,
      );
    }
  }

  diffSafeguards(ctx, b.safeguards, a.safeguards);
}

/**
 * Safeguards have no keys, so a reworded one cannot be told from a removed one by its text.
 * Unmatched old and new texts are paired in order as rewordings; only old texts left over, when
 * the list shrinks, are removals, and material.
 */
function diffSafeguards(ctx: DiffContext, before: readonly string[], after: readonly string[]): void {
  const removed = before.flatMap((text, index) => (after.includes(text) ? [] : [{ text, index }]));
  const added = after.flatMap((text, index) => (before.includes(text) ? [] : [{ text, index }]));
  const reworded = Math.min(removed.length, added.length);
  removed.forEach(({ text, index }, i) => {
    const replacement = i < reworded ? added[i] : undefined;
    if (replacement) {
      ctx.add(
        'safeguard.wording_changed',
        false,
        ['organization', 'safeguards', replacement.index],
        `The safeguard ${quote(text)} now reads ${quote(replacement.text)}`,
      );
    } else {
      ctx.add(
        'safeguard.removed',
        true,
        ['organization', 'safeguards', index],
        `We no longer state this safeguard: ${quote(text)}`,
      );
    }
  });
  for (const { text, index } of added.slice(reworded)) {
    ctx.add(
      'safeguard.added',
      false,
      ['organization', 'safeguards', index],
      `We add a safeguard: ${quote(text)}`,
    );
  }
}

export function diffPolicy(ctx: DiffContext): void {
  const b = ctx.before.policy;
  const a = ctx.after.policy;
  if (b.version !== a.version || b.effective !== a.effective) {
    ctx.add(
      'policy.version_changed',
      false,
      ['policy', b.version !== a.version ? 'version' : 'effective'],
      `The policy changes from version ${b.version} (effective ${b.effective}) to version ${a.version} (effective ${a.effective}).`,
    );
  }
}

// -- purposes --------------------------------------------------------------------------------

export function diffPurposes(ctx: DiffContext): void {
  const { added, removed, both } = matchByKey(ctx.before.purposes, ctx.after.purposes);
  for (const { item, index } of added) {
    ctx.add(
      'purpose.added',
      true,
      ['purposes', index],
      `We will use your information for a new purpose: ${quote(item.name)} (${lowerFirst(item.description).replace(/\.$/, '')}).`,
    );
  }
  for (const { item, index } of removed) {
    ctx.add(
      'purpose.removed',
      false,
      ['purposes', index],
      `We no longer use your information for ${quote(item.name)}.`,
    );
  }
  for (const { before, after } of both) diffPurpose(ctx, before.item, after.item, after.index);
}

function diffPurpose(ctx: DiffContext, b: Purpose, a: Purpose, i: number): void {
  const name = quote(a.name);
  diffConsent(ctx, b, a, i);
  if (b.legal_basis !== a.legal_basis) {
    ctx.add(
      'purpose.legal_basis_changed',
      true,
      ['purposes', i, 'legal_basis'],
      `We will do ${name} on the basis of ${LEGAL_BASIS_WORDS[a.legal_basis]} instead of ${LEGAL_BASIS_WORDS[b.legal_basis]}.`,
    );
  }
  if (b.use !== a.use) {
    ctx.add(
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
    ctx.add(
      longer ? 'purpose.retention_longer' : 'purpose.retention_shorter',
      longer,
      a.retention === undefined ? ['purposes', i] : ['purposes', i, 'retention'],
      `We will keep information used for ${name} for ${describeRetention(a.retention)} instead of ${describeRetention(b.retention)}.`,
    );
  }
  const newCategories = a.categories.filter((c) => !b.categories.some((old) => coversCategory(old, c)));
  if (newCategories.length > 0) {
    ctx.add(
      'purpose.categories_added',
      true,
      ['purposes', i, 'categories'],
      `For ${name} we may now also use your ${ctx.categories(newCategories)}.`,
    );
  }
  const droppedCategories = b.categories.filter((c) => !a.categories.some((now) => coversCategory(now, c)));
  if (droppedCategories.length > 0) {
    ctx.add(
      'purpose.categories_removed',
      false,
      ['purposes', i, 'categories'],
      `For ${name} we will no longer use your ${ctx.categories(droppedCategories, 'before')}.`,
    );
  }
  const newChannels = a.channels.filter((c) => !b.channels.includes(c));
  if (newChannels.length > 0) {
    ctx.add(
      'purpose.channels_added',
      true,
      ['purposes', i, 'channels'],
      `For ${name} we may now reach you ${joinAnd(newChannels.map((c) => CHANNEL_WORDS[c] ?? c))}.`,
    );
  }
  const droppedChannels = b.channels.filter((c) => !a.channels.includes(c));
  if (droppedChannels.length > 0) {
    ctx.add(
      'purpose.channels_removed',
      false,
      ['purposes', i, 'channels'],
      `For ${name} we will no longer reach you ${joinAnd(droppedChannels.map((c) => CHANNEL_WORDS[c] ?? c))}.`,
    );
  }
  if (b.gpc !== a.gpc) {
    ctx.add(
      a.gpc ? 'purpose.gpc_added' : 'purpose.gpc_removed',
      !a.gpc,
      ['purposes', i, 'gpc'],
      a.gpc
        ? `${name} will now stop when your browser sends a Global Privacy Control signal.`
        : `${name} will no longer stop when your browser sends a Global Privacy Control signal.`,
    );
  }
  if (b.name !== a.name || b.description !== a.description) {
    ctx.add('purpose.wording_changed', false, ['purposes', i], `The description of ${name} changes.`);
  }
}

/**
 * Compares the consent of a purpose in every jurisdiction either version names, "default"
 * included, using the mode each jurisdiction actually gets (France inherits the EU's rule).
 */
function diffConsent(ctx: DiffContext, b: Purpose, a: Purpose, i: number): void {
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
    ctx.add(
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

export function diffSources(ctx: DiffContext): void {
  const { added, removed, both } = matchByKey(ctx.before.sources, ctx.after.sources);
  for (const { item, index } of added) {
    ctx.add(
      'source.added',
      true,
      ['sources', index],
      `We will now collect your ${ctx.categories(item.categories)} at a new place: ${item.name}.`,
    );
  }
  for (const { item, index } of removed) {
    ctx.add('source.removed', false, ['sources', index], `We no longer collect information at ${item.name}.`);
  }
  for (const { before, after } of both) diffSource(ctx, before.item, before.index, after.item, after.index);
}

function diffSource(ctx: DiffContext, b: Source, bi: number, a: Source, i: number): void {
  const name = a.name;
  a.categories.forEach((category, j) => {
    if (b.categories.includes(category)) return;
    const parent = b.categories.find((c) => coversCategory(c, category));
    if (parent === undefined) {
      ctx.add(
        'category.collected',
        true,
        ['sources', i, 'categories', j],
        `We will now collect your ${ctx.category(category)}${ctx.afterTaxonomy.get(category)?.sensitive ? ', which the law treats as sensitive,' : ''} at ${name}.`,
      );
    } else {
      ctx.add(
        'category.clarified',
        false,
        ['sources', i, 'categories', j],
        `${name} now names your ${ctx.category(category)}, which it already collected as part of your ${ctx.category(parent, 'before')}.`,
      );
    }
  });
  b.categories.forEach((category, j) => {
    if (a.categories.some((c) => coversCategory(c, category))) return;
    ctx.add(
      'category.no_longer_collected',
      false,
      ['sources', bi, 'categories', j],
      `We will no longer collect your ${ctx.category(category, 'before')} at ${b.name}.`,
    );
  });

  const newPurposes = a.purposes.filter((p) => !b.purposes.includes(p));
  if (newPurposes.length > 0) {
    ctx.add(
      'source.purposes_added',
      true,
      ['sources', i, 'purposes'],
      `Information collected at ${name} will now also be used for ${ctx.purposeNames(newPurposes)}.`,
    );
  }
  const droppedPurposes = b.purposes.filter((p) => !a.purposes.includes(p));
  if (droppedPurposes.length > 0) {
    ctx.add(
      'source.purposes_removed',
      false,
      ['sources', i, 'purposes'],
      `Information collected at ${name} will no longer be used for ${ctx.purposeNames(droppedPurposes, 'before')}.`,
    );
  }

  if (b.voluntary !== a.voluntary) {
    ctx.add(
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
      ctx.add(
        'source.field_required',
        true,
        ['sources', i, 'fields', field],
        `Your ${ctx.category(spec.category)} will no longer be optional at ${name}.`,
      );
    }
  }

  const before = durationDays(b.retention);
  const after = durationDays(a.retention);
  if (before !== after) {
    const longer = after > before;
    ctx.add(
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
    ctx.add(
      'source.pass_through_removed',
      true,
      ['sources', bi, 'pass_through', j],
      `Your ${ctx.category(pt.category, 'before')} given at ${b.name} will no longer only be passed straight to ${ctx.recipientName(pt.recipient, 'before')}: we may now store it.`,
    );
  });
  a.pass_through.forEach((pt, j) => {
    if (b.pass_through.some((x) => same(x, pt))) return;
    ctx.add(
      'source.pass_through_added',
      false,
      ['sources', i, 'pass_through', j],
      `Your ${ctx.category(pt.category)} given at ${name} will now be passed straight to ${ctx.recipientName(pt.recipient)} and not stored by us.`,
    );
  });

  if (b.name !== a.name || b.description !== a.description || b.notice !== a.notice || b.kind !== a.kind) {
    ctx.add('source.wording_changed', false, ['sources', i], `The description of ${name} changes.`);
  }
}
