/**
 * The words of the published policy: dates, places, lists and consent in plain English. Fixed
 * tables rather than Intl, so the policy reads the same on every machine. The diff uses the same
 * helpers so that both speak alike.
 */
import {
  CONSENT_MODES,
  consentModes,
  type Choice,
  type ConsentMode,
  type LegalBasis,
  type Manifest,
  type Purpose,
} from './manifest.schema.js';

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** `2012-09-07` → "September 7, 2012"; by hand, because Intl output varies with the ICU data. */
export function formatDate(iso: string): string {
  const [y, m, d] = iso.split('-').map(Number);
  return `${MONTHS[(m ?? 1) - 1] ?? ''} ${d ?? ''}, ${y ?? ''}`;
}

/**
 * Names of jurisdictions and countries. A fixed table rather than Intl.DisplayNames so that the
 * policy reads the same on every machine; an unlisted code is shown as the code.
 */
const PLACE_NAMES: Record<string, string> = {
  EU: 'the European Union',
  EEA: 'the European Economic Area',
  AT: 'Austria',
  AU: 'Australia',
  BE: 'Belgium',
  BR: 'Brazil',
  CA: 'Canada',
  CH: 'Switzerland',
  CN: 'China',
  DE: 'Germany',
  DK: 'Denmark',
  ES: 'Spain',
  FI: 'Finland',
  FR: 'France',
  GB: 'the United Kingdom',
  IE: 'Ireland',
  IN: 'India',
  IS: 'Iceland',
  IT: 'Italy',
  JP: 'Japan',
  KR: 'South Korea',
  LI: 'Liechtenstein',
  LU: 'Luxembourg',
  MX: 'Mexico',
  NL: 'the Netherlands',
  NO: 'Norway',
  NZ: 'New Zealand',
  PL: 'Poland',
  PT: 'Portugal',
  SE: 'Sweden',
  SG: 'Singapore',
  US: 'the United States',
  'US-CA': 'California',
  ZA: 'South Africa',
};

/** A jurisdiction or country code in words ("the European Union", "Switzerland"). */
export function describePlace(code: string): string {
  return PLACE_NAMES[code] ?? code;
}

/** "a", "a and b", "a, b and c"; shared with the diff so both speak alike. */
export function joinAnd(parts: readonly string[]): string {
  if (parts.length <= 1) return parts[0] ?? '';
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1] ?? ''}`;
}

/**
 * Lower-cases the first letter of a sentence-case name so it reads inside a sentence ("your
 * e-mail address"), but leaves acronyms alone ("IP address").
 */
export function lowerFirst(name: string): string {
  return /^[A-Z](?:[a-z]|-[a-z]|\s|$)/.test(name) ? name.charAt(0).toLowerCase() + name.slice(1) : name;
}

export function upperFirst(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Text in typographic quotes, as names of purposes are shown inside sentences. */
export const quote = (text: string): string => `“${text}”`;

/** Ends manifest text with a full stop unless it already ends a sentence ("Ltd." stays "Ltd."). */
export function endSentence(text: string): string {
  return /[.!?…:;]["”’)]?$/.test(text) ? text : `${text}.`;
}

export const LEGAL_BASIS_WORDS: Record<LegalBasis, string> = {
  contract: 'We do this to perform our contract with you.',
  consent: 'We do this on the basis of your consent.',
  legitimate_interest: 'We do this in our legitimate interest, which we balance against your rights.',
  legal_obligation: 'We do this because the law requires it.',
};

function consentWords(mode: ConsentMode, purpose: Purpose): string {
  switch (mode) {
    case 'required':
      // The legal basis already says the law requires it; say what that means for the reader.
      return purpose.legal_basis === 'legal_obligation'
        ? 'you cannot opt out of this'
        : 'this is needed to provide the service';
    case 'opt_out':
      return 'you can opt out at any time';
    case 'opt_in':
      return 'we do this only with your consent';
  }
}

/**
 * The consent a purpose asks for, in words. Jurisdictions with the default's mode are folded into
 * "everywhere else" so a reader sees only where the rule differs.
 */
export function describeConsent(purpose: Purpose): string {
  const modes = consentModes(purpose);
  const fallback = modes.default ?? 'opt_in';
  const exceptions = Object.entries(modes)
    .filter(([j, mode]) => j !== 'default' && mode !== fallback)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (exceptions.length === 0) return `${upperFirst(consentWords(fallback, purpose))}.`;
  const sentences = CONSENT_MODES.flatMap((mode) => {
    const places = exceptions.filter(([, m]) => m === mode).map(([j]) => describePlace(j));
    return places.length === 0 ? [] : [`In ${joinAnd(places)}: ${consentWords(mode, purpose)}.`];
  });
  sentences.push(`Everywhere else: ${consentWords(fallback, purpose)}.`);
  return sentences.join(' ');
}

/**
 * The purposes a choice covers. "all" means every purpose that offers a choice somewhere: one whose
 * consent is not `required` in at least one jurisdiction.
 */
export function choicePurposeKeys(manifest: Manifest, choice: Choice): string[] {
  if (choice.purposes !== 'all') return [...choice.purposes];
  return manifest.purposes
    .filter((purpose) => Object.values(consentModes(purpose)).some((mode) => mode !== 'required'))
    .map((purpose) => purpose.key);
}
