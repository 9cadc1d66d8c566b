/**
 * The record of processing activities (GDPR Art. 30(1)) as data, built from the manifest: one
 * activity per purpose, with the systems that carry it out, the categories and data subjects, the
 * recipients, the transfers abroad, the time limits and the security measures. The HTML and CSV
 * renderers (ropa.renderer.ts) both write this one structure, so they cannot disagree.
 */
import { getDataSubject, getDataUse } from './fideslang.js';
import { describeDuration } from './duration.js';
import type { Manifest, Purpose, Recipient, System } from './manifest.schema.js';
import { describePlace } from './policy.wording.js';
import { Taxonomy } from './taxonomy.js';

/** A key with the name a reader sees. */
export interface Named {
  key: string;
  name: string;
}

/** One processing activity: what Art. 30(1)(b) to (g) asks about one purpose. */
export interface RopaActivity {
  purpose: Named & { description: string };
  /** The fideslang data use the purpose declares, if any. */
  dataUse?: Named;
  legalBasis: string;
  /** The company's own systems that process data for it, each with the categories it uses for it. */
  systems: Array<Named & { categories: Named[] }>;
  categories: Array<Named & { sensitive: boolean }>;
  /** Empty when the purpose declares no `data_subjects`. */
  dataSubjects: Named[];
  recipients: Array<Named & { kind: string; country: string; categories: Named[] }>;
  /** Recipients outside the organization's country, or under a transfer mechanism. */
  transfers: Array<{ recipient: Named; country: string; countryName: string; mechanism?: Named }>;
  /** The purpose's own limit, then every retention rule that limits it further. */
  retention: string[];
  /** The organization's technical and organisational measures (Art. 32), the same for every activity. */
  safeguards: string[];
}

/** The whole record: the controller (Art. 30(1)(a)) and its activities. */
export interface Ropa {
  controller: {
    name: string;
    legalName: string;
    address: string;
    contact: string;
  };
  policyVersion: string;
  activities: RopaActivity[];
}

const LEGAL_BASES: Record<Purpose['legal_basis'], string> = {
  contract: 'Contract (Art. 6(1)(b))',
  consent: 'Consent (Art. 6(1)(a))',
  legitimate_interest: 'Legitimate interest (Art. 6(1)(f))',
  legal_obligation: 'Legal obligation (Art. 6(1)(c))',
};

/** Builds the record of processing activities from a valid manifest. Depends on nothing else. */
export function buildRopa(manifest: Manifest): Ropa {
  const taxonomy = new Taxonomy(manifest.categories);
  const category = (key: string): Named => ({ key, name: taxonomy.get(key)?.name ?? key });
  const mechanisms = new Map(manifest.organization.transfer_mechanisms.map((m) => [m.key, m]));
  const home = manifest.organization.address.country;
  const a = manifest.organization.address;

  const activities = manifest.purposes.map((purpose): RopaActivity => {
    const recipients = manifest.recipients
      .map((r) => ({ r, categories: recipientCategoriesFor(r, purpose.key) }))
      .filter((x): x is { r: Recipient; categories: string[] } => x.categories !== undefined);
    const dataUse = purpose.data_use === undefined ? undefined : getDataUse(purpose.data_use);
    return {
      purpose: { key: purpose.key, name: purpose.name, description: purpose.description },
      ...(purpose.data_use === undefined
        ? {}
        : { dataUse: { key: purpose.data_use, name: dataUse?.name ?? purpose.data_use } }),
      legalBasis: LEGAL_BASES[purpose.legal_basis],
      systems: manifest.systems
        .map((s) => ({ s, categories: systemCategoriesFor(s, purpose) }))
        .filter((x): x is { s: System; categories: string[] } => x.categories !== undefined)
        .map(({ s, categories }) => ({ key: s.key, name: s.name, categories: categories.map(category) })),
      categories: purpose.categories.map((key) => ({
        ...category(key),
        sensitive: taxonomy.get(key)?.sensitive === true,
      })),
      dataSubjects: (purpose.data_subjects ?? []).map((key) => ({
        key,
        name: getDataSubject(key)?.name ?? key,
      })),
      recipients: recipients.map(({ r, categories }) => ({
        key: r.key,
        name: r.name,
        kind: r.kind,
        country: r.country,
        categories: categories.map(category),
      })),
      transfers: recipients
        .filter(({ r }) => r.country !== home || r.transfer_mechanism !== undefined)
        .map(({ r }) => {
          const m = r.transfer_mechanism === undefined ? undefined : mechanisms.get(r.transfer_mechanism);
          return {
            recipient: { key: r.key, name: r.name },
            country: r.country,
            countryName: describePlace(r.country),
            ...(m === undefined ? {} : { mechanism: { key: m.key, name: m.name } }),
          };
        }),
      retention: retentionOf(manifest, purpose, taxonomy),
      safeguards: [...manifest.organization.safeguards],
    };
  });

  return {
    controller: {
      name: manifest.organization.name,
      legalName: manifest.organization.legal_name,
      address: [a.street, a.city, a.region, a.postal_code, describePlace(a.country)]
        .filter((p): p is string => p !== undefined)
        .join(', '),
      contact: manifest.organization.privacy_contact,
    },
    policyVersion: manifest.policy.version,
    activities,
  };
}

/** What a recipient receives for a purpose: its declaration's categories, or both lists' product. */
function recipientCategoriesFor(r: Recipient, purpose: string): string[] | undefined {
  if (r.declarations !== undefined) {
    const found = r.declarations.filter((d) => d.purpose === purpose);
    return found.length === 0 ? undefined : [...new Set(found.flatMap((d) => d.categories))];
  }
  return r.purposes.includes(purpose) ? r.categories : undefined;
}

/**
 * What a system uses for a purpose: its declaration's categories (absent: all of the purpose's), or
 * with the two-list form its `categories` where given, else the purpose's.
 */
function systemCategoriesFor(s: System, purpose: Purpose): string[] | undefined {
  if (s.declarations !== undefined) {
    const found = s.declarations.filter((d) => d.purpose === purpose.key);
    if (found.length === 0) return undefined;
    return [...new Set(found.flatMap((d) => d.categories ?? purpose.categories))];
  }
  if (!s.purposes.includes(purpose.key)) return undefined;
  return s.categories ?? purpose.categories;
}

function retentionOf(manifest: Manifest, purpose: Purpose, taxonomy: Taxonomy): string[] {
  const out = [
    purpose.retention === undefined
      ? 'No limit of its own'
      : `At most ${describeDuration(purpose.retention)}`,
  ];
  for (const rule of manifest.retention) {
    const applies =
      rule.purpose === purpose.key ||
      (rule.purpose === undefined &&
        rule.category !== undefined &&
        purpose.categories.some((c) => taxonomy.overlaps(c, rule.category ?? '')));
    if (!applies) continue;
    const what =
      rule.category === undefined ? 'everything' : (taxonomy.get(rule.category)?.name ?? rule.category);
    out.push(`${what}: at most ${describeDuration(rule.max)}${rule.reason ? ` (${rule.reason})` : ''}`);
  }
  return out;
}
