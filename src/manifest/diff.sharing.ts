/**
 * The rules of the diff for what happens to the data once collected: the recipients it is shared
 * with, how long it is kept, the choices people have and the promises we make.
 */
import { RECIPIENT_KIND_WORDS, matchByKey, type DiffContext } from './diff.context.js';
import { durationDays, describeDuration } from './duration.js';
import type { Choice, Manifest, Pledge, Recipient, RetentionRule } from './manifest.schema.js';
import { choicePurposeKeys, describePlace, quote } from './policy.wording.js';
import { coversCategory } from './taxonomy.js';

// -- recipients ------------------------------------------------------------------------------

export function diffRecipients(ctx: DiffContext): void {
  const { added, removed, both } = matchByKey(ctx.before.recipients, ctx.after.recipients);
  for (const { item, index } of added) {
    ctx.add(
      'recipient.added',
      true,
      ['recipients', index],
      `We will now share your ${ctx.categories(item.categories)} with ${item.name}, ${RECIPIENT_KIND_WORDS[item.kind]} in ${describePlace(item.country)}, for ${ctx.purposeNames(item.purposes)}.`,
    );
  }
  for (const { item, index } of removed) {
    ctx.add(
      'recipient.removed',
      false,
      ['recipients', index],
      `We no longer share your information with ${item.name}.`,
    );
  }
  for (const { before, after } of both) diffRecipient(ctx, before.item, after.item, after.index);
}

function diffRecipient(ctx: DiffContext, b: Recipient, a: Recipient, i: number): void {
  const name = a.name;
  const newCategories = a.categories.filter((c) => !b.categories.some((old) => coversCategory(old, c)));
  if (newCategories.length > 0) {
    ctx.add(
      'recipient.categories_added',
      true,
      ['recipients', i, 'categories'],
      `We will now also share your ${ctx.categories(newCategories)} with ${name}.`,
    );
  }
  const droppedCategories = b.categories.filter((c) => !a.categories.some((now) => coversCategory(now, c)));
  if (droppedCategories.length > 0) {
    ctx.add(
      'recipient.categories_removed',
      false,
      ['recipients', i, 'categories'],
      `We will no longer share your ${ctx.categories(droppedCategories, 'before')} with ${name}.`,
    );
  }
  const newPurposes = a.purposes.filter((p) => !b.purposes.includes(p));
  if (newPurposes.length > 0) {
    ctx.add(
      'recipient.purposes_added',
      true,
      ['recipients', i, 'purposes'],
      `${name} will now also receive your information for ${ctx.purposeNames(newPurposes)}.`,
    );
  }
  const droppedPurposes = b.purposes.filter((p) => !a.purposes.includes(p));
  if (droppedPurposes.length > 0) {
    ctx.add(
      'recipient.purposes_removed',
      false,
      ['recipients', i, 'purposes'],
      `${name} will no longer receive your information for ${ctx.purposeNames(droppedPurposes, 'before')}.`,
    );
  }
  if (b.country !== a.country) {
    ctx.add(
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
    ctx.add(
      'transfer.changed',
      true,
      a.transfer_mechanism === undefined ? ['recipients', i] : ['recipients', i, 'transfer_mechanism'],
      `Transfers of your information to ${name} will rely on ${mechanism(ctx.after, a.transfer_mechanism)} instead of ${mechanism(ctx.before, b.transfer_mechanism)}.`,
    );
  }
  if (b.consideration !== a.consideration) {
    const gives = a.consideration !== 'none';
    ctx.add(
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
    ctx.add(
      'recipient.kind_changed',
      a.kind !== 'processor',
      ['recipients', i, 'kind'],
      `${name} will be ${RECIPIENT_KIND_WORDS[a.kind]} instead of ${RECIPIENT_KIND_WORDS[b.kind]}.`,
    );
  }
  if (b.agreement !== undefined && a.agreement === undefined) {
    ctx.add(
      'recipient.agreement_removed',
      true,
      ['recipients', i],
      `We will no longer have a written agreement with ${name} (it was ${b.agreement.reference}).`,
    );
  } else if (a.agreement !== undefined && b.agreement?.reference !== a.agreement.reference) {
    ctx.add(
      b.agreement === undefined ? 'recipient.agreement_added' : 'recipient.agreement_changed',
      false,
      ['recipients', i, 'agreement'],
      `Our agreement with ${name} is now ${a.agreement.reference}.`,
    );
  }
  diffDeclarations(ctx, b, a, i);
  diffSubProcessors(ctx, b, a, i);
  if (b.contact !== a.contact || b.webhook !== a.webhook) {
    ctx.add(
      'recipient.contact_changed',
      false,
      ['recipients', i, a.contact === undefined ? 'key' : 'contact'],
      `Where we send ${name} notices of changes to this policy changes.`,
    );
  }
  if (b.name !== a.name || b.description !== a.description) {
    ctx.add('recipient.wording_changed', false, ['recipients', i], `The description of ${name} changes.`);
  }
}

/** A recipient's (purpose, category) pairs: its declarations, or every purpose with every category. */
function pairsOf(r: Recipient): Array<{ purpose: string; category: string }> {
  return r.declarations !== undefined
    ? r.declarations.flatMap((d) => d.categories.map((category) => ({ purpose: d.purpose, category })))
    : r.purposes.flatMap((purpose) => r.categories.map((category) => ({ purpose, category })));
}

/**
 * A category it received for one purpose and now receives for another as well: neither list grew
 * (so the rules above say nothing), yet more of it flows.
 */
function diffDeclarations(ctx: DiffContext, b: Recipient, a: Recipient, i: number): void {
  const before = pairsOf(b);
  const widened = pairsOf(a).filter(
    (p) =>
      b.purposes.includes(p.purpose) &&
      b.categories.some((c) => coversCategory(c, p.category)) &&
      !before.some((o) => o.purpose === p.purpose && coversCategory(o.category, p.category)),
  );
  for (const purpose of [...new Set(widened.map((p) => p.purpose))]) {
    const categories = widened.filter((p) => p.purpose === purpose).map((p) => p.category);
    const d = a.declarations?.findIndex((x) => x.purpose === purpose) ?? -1;
    ctx.add(
      'recipient.declarations_widened',
      true,
      d >= 0 ? ['recipients', i, 'declarations', d] : ['recipients', i, 'categories'],
      `${a.name} will now also receive your ${ctx.categories(categories)} for ${ctx.purposeName(purpose, 'after')}.`,
    );
  }
}

/** The companies a processor hands data on to, matched by name and purpose. */
function diffSubProcessors(ctx: DiffContext, b: Recipient, a: Recipient, i: number): void {
  const keyed = (r: Recipient) =>
    (r.sub_processors ?? []).map((s) => ({ ...s, key: `${s.name}|${s.purpose}` }));
  const { added, removed, both } = matchByKey(keyed(b), keyed(a));
  for (const { item, index } of added) {
    ctx.add(
      'sub_processor.added',
      true,
      ['recipients', i, 'sub_processors', index],
      `${a.name} will now pass your information to ${item.name}, in ${describePlace(item.country)}, for ${ctx.purposeName(item.purpose, 'after')}.`,
    );
  }
  for (const { item } of removed) {
    ctx.add(
      'sub_processor.removed',
      false,
      ['recipients', i, 'sub_processors'],
      `${a.name} no longer passes your information to ${item.name}.`,
    );
  }
  for (const { before, after } of both) {
    if (before.item.country === after.item.country) continue;
    ctx.add(
      'sub_processor.country_changed',
      true,
      ['recipients', i, 'sub_processors', after.index, 'country'],
      `${after.item.name}, which ${a.name} passes your information to, will hold it in ${describePlace(after.item.country)} instead of ${describePlace(before.item.country)}.`,
    );
  }
}

// -- retention rules -------------------------------------------------------------------------

export function diffRetention(ctx: DiffContext): void {
  const keyOf = (r: RetentionRule) => `${r.category ?? '*'}|${r.purpose ?? '*'}`;
  const withKeys = (rules: readonly RetentionRule[]) => rules.map((r) => ({ ...r, key: keyOf(r) }));
  const { added, removed, both } = matchByKey(withKeys(ctx.before.retention), withKeys(ctx.after.retention));
  const what = (r: RetentionRule, side: 'before' | 'after') =>
    `${r.category === undefined ? 'personal information' : `your ${ctx.category(r.category, side)}`}${r.purpose === undefined ? '' : ` used for ${ctx.purposeName(r.purpose, side)}`}`;
  for (const { item, index } of removed) {
    ctx.add(
      'retention.rule_removed',
      true,
      ['retention', index],
      `We will no longer limit how long we keep ${what(item, 'before')} to ${describeDuration(item.max)}.`,
    );
  }
  for (const { item, index } of added) {
    ctx.add(
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
    ctx.add(
      to > from ? 'retention.rule_longer' : 'retention.rule_shorter',
      to > from,
      ['retention', after.index, 'max'],
      `We may keep ${what(after.item, 'after')} for up to ${describeDuration(after.item.max)} instead of ${describeDuration(before.item.max)}.`,
    );
  }
}

// -- choices ---------------------------------------------------------------------------------

export function diffChoices(ctx: DiffContext): void {
  const { added, removed, both } = matchByKey(ctx.before.choices, ctx.after.choices);
  for (const { item, index } of removed) {
    ctx.add('choice.removed', true, ['choices', index], `We will no longer offer the ${item.name}.`);
  }
  for (const { item, index } of added) {
    ctx.add('choice.added', false, ['choices', index], `We now offer the ${item.name}.`);
  }
  for (const { before, after } of both) diffChoice(ctx, before.item, after.item, after.index);
}

function diffChoice(ctx: DiffContext, b: Choice, a: Choice, i: number): void {
  const name = a.name;
  const afterKeys = choicePurposeKeys(ctx.after, a);
  const beforeKeys = choicePurposeKeys(ctx.before, b);
  // A purpose that no longer exists is no choice lost; one that still exists but left the choice is.
  const stillUsed = new Set(ctx.after.purposes.map((p) => p.key));
  const lost = beforeKeys.filter((k) => !afterKeys.includes(k) && stillUsed.has(k));
  if (lost.length > 0) {
    ctx.add(
      'choice.purposes_removed',
      true,
      ['choices', i, 'purposes'],
      `You will no longer be able to use the ${name} for ${ctx.purposeNames(lost)}.`,
    );
  }
  const gained = afterKeys.filter((k) => !beforeKeys.includes(k));
  if (gained.length > 0) {
    ctx.add(
      'choice.purposes_added',
      false,
      ['choices', i, 'purposes'],
      `You can now use the ${name} for ${ctx.purposeNames(gained)}.`,
    );
  }
  if (b.actions.includes('withdraw') && !a.actions.includes('withdraw')) {
    ctx.add(
      'choice.withdraw_removed',
      true,
      ['choices', i, 'actions'],
      `You will no longer be able to withdraw your consent with the ${name}.`,
    );
  } else if (JSON.stringify([...b.actions].sort()) !== JSON.stringify([...a.actions].sort())) {
    ctx.add(
      'choice.actions_changed',
      false,
      ['choices', i, 'actions'],
      `What you can do with the ${name} changes.`,
    );
  }
  if (b.global_opt_out !== a.global_opt_out) {
    ctx.add(
      a.global_opt_out ? 'choice.global_opt_out_added' : 'choice.global_opt_out_removed',
      !a.global_opt_out,
      ['choices', i, 'global_opt_out'],
      a.global_opt_out
        ? `You can now opt out of our collection, use and distribution of your information with the ${name}.`
        : `You will no longer be able to opt out of our collection, use and distribution of your information with the ${name}.`,
    );
  }
  if (b.path !== a.path) {
    ctx.add(
      'choice.path_changed',
      false,
      a.path === undefined ? ['choices', i] : ['choices', i, 'path'],
      a.path === undefined ? `The ${name} no longer has its own page.` : `The ${name} moves to ${a.path}.`,
    );
  }
  if (b.name !== a.name || b.kind !== a.kind) {
    ctx.add('choice.wording_changed', false, ['choices', i], `The ${b.name} is now called the ${name}.`);
  }
}

// -- pledges ---------------------------------------------------------------------------------

export function diffPledges(ctx: DiffContext): void {
  const { added, removed, both } = matchByKey(ctx.before.pledges, ctx.after.pledges);
  for (const { item, index } of removed) {
    ctx.add('pledge.removed', true, ['pledges', index], `We withdraw this promise: ${quote(item.text)}`);
  }
  for (const { item, index } of added) {
    ctx.add('pledge.added', false, ['pledges', index], `We add this promise: ${quote(item.text)}`);
  }
  for (const { before, after } of both) diffPledge(ctx, before.item, after.item, after.index);
}

function diffPledge(ctx: DiffContext, b: Pledge, a: Pledge, i: number): void {
  if (b.kind !== a.kind) {
    ctx.add(
      'pledge.kind_changed',
      true,
      ['pledges', i, 'kind'],
      `The promise ${quote(a.text)} changes from a ${b.kind.replace(/_/g, ' ')} promise to a ${a.kind.replace(/_/g, ' ')} promise.`,
    );
  } else {
    const narrowed = pledgeNarrowed(b, a);
    const broadened = pledgeNarrowed(a, b);
    if (narrowed) {
      ctx.add(
        'pledge.narrowed',
        true,
        ['pledges', i],
        `The promise ${quote(a.text)} now covers less than it did.`,
      );
    } else if (broadened) {
      ctx.add(
        'pledge.broadened',
        false,
        ['pledges', i],
        `The promise ${quote(a.text)} now covers more than it did.`,
      );
    }
  }
  if (b.text !== a.text) {
    ctx.add(
      'pledge.text_changed',
      false,
      ['pledges', i, 'text'],
      `The promise ${quote(b.text)} now reads ${quote(a.text)}`,
    );
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
