/**
 * The pledge rules of `pledge check`: for each kind of pledge (no sale, never store, never use for,
 * marketing opt-out), the declared flows that would break it. The checker (manifest.checker.ts)
 * finds the pledges and reports what these rules name, with locations.
 */
import {
  consentModes,
  type Manifest,
  type Pledge,
  type Purpose,
  type PurposeUse,
  type Source,
} from './manifest.schema.js';
import type { ManifestPath } from './problems.js';
import { coversCategory, type Taxonomy } from './taxonomy.js';

/** Reports a flow that breaks the pledge being checked: where, what flows, and how to fix it. */
export type Violate = (path: ManifestPath, flow: string, hint: string) => void;
/** The manifest's purposes by key, with their position in the list. */
export type PurposeIndex = Map<string, { purpose: Purpose; index: number }>;

const SELLING: readonly PurposeUse[] = ['sale', 'trade', 'rent'];

export function checkNoSale(manifest: Manifest, purposes: PurposeIndex, violate: Violate): void {
  manifest.purposes.forEach((p, i) => {
    if (SELLING.includes(p.use)) {
      violate(
        ['purposes', i, 'use'],
        `purpose "${p.key}", whose use is ${p.use},`,
        `remove the purpose, or change its use`,
      );
    }
  });
  manifest.recipients.forEach((r, i) => {
    if (r.consideration !== 'none') {
      violate(
        ['recipients', i, 'consideration'],
        `sharing with "${r.key}" in exchange for ${r.consideration === 'sale' ? 'payment' : r.consideration}`,
        'share only without consideration (consideration: none), or stop sharing with this recipient',
      );
    }
    r.purposes.forEach((k, j) => {
      const p = purposes.get(k)?.purpose;
      if (p && SELLING.includes(p.use)) {
        violate(
          ['recipients', i, 'purposes', j],
          `sharing with "${r.key}" for "${k}" (use: ${p.use})`,
          `remove "${k}" from this recipient's purposes`,
        );
      }
    });
  });
}

export function checkNeverStore(manifest: Manifest, pledge: Pledge, violate: Violate): void {
  const protectedCategories = pledge.categories ?? [];
  manifest.sources.forEach((s: Source, i) => {
    for (const k of protectedCategories) {
      const collects = s.categories.some((c) => coversCategory(c, k) || coversCategory(k, c));
      if (!collects) continue;
      const passed = s.pass_through.find((pt) => coversCategory(pt.category, k));
      if (!passed) {
        violate(
          ['sources', i],
          `source "${s.key}" collects "${k}" and would store it, which`,
          `add pass_through: [{ category: ${k}, recipient: <${(pledge.only_to ?? ['recipient']).join('|')}> }] so it is forwarded and never stored`,
        );
        continue;
      }
      if (pledge.only_to && !pledge.only_to.includes(passed.recipient)) {
        const j = s.pass_through.indexOf(passed);
        violate(
          ['sources', i, 'pass_through', j, 'recipient'],
          `source "${s.key}" passes "${k}" to "${passed.recipient}", which`,
          `pass it only to ${pledge.only_to.join(', ')}`,
        );
      }
    }
  });
  manifest.recipients.forEach((r, i) => {
    if (pledge.only_to === undefined || pledge.only_to.includes(r.key)) return;
    r.categories.forEach((c, j) => {
      const k = protectedCategories.find((pc) => coversCategory(pc, c));
      if (k !== undefined) {
        violate(
          ['recipients', i, 'categories', j],
          `recipient "${r.key}" receives "${c}", which`,
          `only ${pledge.only_to?.join(', ')} may receive "${k}"; remove it from this recipient`,
        );
      }
    });
  });
}

export function checkNeverUse(
  manifest: Manifest,
  pledge: Pledge,
  purposes: PurposeIndex,
  taxonomy: Taxonomy,
  violate: Violate,
): void {
  const cats = pledge.categories ?? [];
  for (const key of pledge.purposes ?? []) {
    const entry = purposes.get(key);
    if (!entry) continue;
    entry.purpose.categories.forEach((c, j) => {
      const k = cats.find((pc) => taxonomy.overlaps(pc, c));
      if (k !== undefined) {
        violate(
          ['purposes', entry.index, 'categories', j],
          `purpose "${key}" may use "${c}", which includes "${k}"; that`,
          `narrow the purpose's categories so they exclude "${k}"`,
        );
      }
    });
  }
  manifest.recipients.forEach((r, i) => {
    const forbidden = r.purposes.filter((p) => (pledge.purposes ?? []).includes(p));
    if (forbidden.length === 0) return;
    r.categories.forEach((c, j) => {
      const k = cats.find((pc) => coversCategory(pc, c));
      if (k !== undefined) {
        violate(
          ['recipients', i, 'categories', j],
          `recipient "${r.key}" receives "${c}" for ${forbidden.join(', ')}; that`,
          `stop sharing "${c}" with "${r.key}" for ${forbidden.join(', ')}`,
        );
      }
    });
  });
}

export function checkMarketingOptOut(manifest: Manifest, pledge: Pledge, violate: Violate): void {
  const listed = pledge.purposes;
  manifest.purposes.forEach((p, i) => {
    const covered = listed ? listed.includes(p.key) : p.use === 'marketing';
    if (!covered || !p.channels.includes('email')) return;
    const modes = consentModes(p);
    for (const [j, mode] of Object.entries(modes)) {
      if (mode === 'required') {
        violate(
          ['purposes', i, 'consent'],
          `marketing purpose "${p.key}" is required (no choice) in ${j === 'default' ? 'its default jurisdiction' : j}, which`,
          'marketing must be opt_out or opt_in everywhere',
        );
      }
    }
    const link = manifest.choices.some(
      (c) =>
        c.kind === 'email_link' &&
        c.actions.includes('withdraw') &&
        (c.purposes === 'all' || c.purposes.includes(p.key)),
    );
    if (!link) {
      violate(
        ['purposes', i],
        `marketing e-mail for "${p.key}" without an unsubscribe link in every message`,
        `add a choice of kind email_link with actions: [withdraw] whose purposes include "${p.key}"`,
      );
    }
  });
  if (listed) {
    manifest.purposes.forEach((p, i) => {
      if (p.use === 'marketing' && p.channels.includes('email') && !listed.includes(p.key)) {
        violate(
          ['purposes', i, 'use'],
          `marketing purpose "${p.key}" is not covered by the pledge, so its e-mails`,
          `add "${p.key}" to the pledge's purposes`,
        );
      }
    });
  }
}
