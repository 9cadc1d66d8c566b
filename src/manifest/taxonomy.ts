/**
 * The built-in taxonomy of data categories: fideslang's data categories, all of them, and Pledge's
 * own finer keys as extensions of a fideslang parent.
 *
 * Keys are dotted paths; a rule on a parent covers all of its children (`user.contact` covers
 * `user.contact.email`). fideslang's keys come from its data file (./fideslang.ts), so a Fides data
 * map reads as it is. Pledge's extensions exist where Pledge needs a finer key than fideslang
 * (payment cards are split so that the number can be refused while its token is kept); each names
 * in `fides` the fideslang key it is exported as.
 */
import { FIDESLANG_CATEGORIES } from './fideslang.js';

/** One category of personal data. */
export interface CategoryDefinition {
  key: string;
  /** The short name the published policy shows. */
  name: string;
  description: string;
  /** Special categories (GDPR Art. 9 and 10) and data that the law treats as sensitive. */
  sensitive?: boolean;
  /** The fideslang key this one maps to when it is not itself a fideslang key. */
  fides?: string;
  /** fideslang's own name, for a key that is fideslang's (written for a data map, not a policy). */
  fidesName?: string;
}

/**
 * The names the published policy shows for fideslang's keys. fideslang's names are written for a
 * data map ("User Contact Email"); a policy says "your e-mail address", and the renderer lower-cases
 * only the first letter of a name, so these are in sentence case.
 */
const PLAIN_NAMES: Readonly<Record<string, string>> = {
  system: 'System data',
  'system.authentication': 'System authentication data',
  'system.operations': 'System operations data',
  user: 'Personal data',
  'user.account': 'Account information',
  'user.account.settings': 'Account settings',
  'user.account.username': 'Username',
  'user.authorization': 'Authorization data',
  'user.authorization.credentials': 'Credentials',
  'user.authorization.biometric': 'Biometric credentials',
  'user.authorization.password': 'Password',
  'user.behavior': 'Behavioral data',
  'user.behavior.browsing_history': 'Browsing history',
  'user.behavior.media_consumption': 'Media consumption',
  'user.behavior.purchase_history': 'Purchase history',
  'user.behavior.search_history': 'Search history',
  'user.biometric': 'Biometric data',
  'user.biometric.fingerprint': 'Fingerprint',
  'user.biometric.retinal': 'Retina scan',
  'user.biometric.voice': 'Voice recording',
  'user.biometric.health': 'Biometric health data',
  'user.childrens': 'Children’s data',
  'user.contact': 'Contact information',
  'user.contact.address': 'Postal address',
  'user.contact.address.city': 'City',
  'user.contact.address.country': 'Country',
  'user.contact.address.postal_code': 'Postal code',
  'user.contact.address.state': 'State or region',
  'user.contact.address.street': 'Street address',
  'user.contact.email': 'E-mail address',
  'user.contact.fax_number': 'Fax number',
  'user.contact.organization': 'Organization',
  'user.contact.phone_number': 'Phone number',
  'user.contact.url': 'Website',
  'user.content': 'Content',
  'user.content.private': 'Private content',
  'user.content.public': 'Public content',
  'user.content.self_image': 'Pictures of yourself',
  'user.criminal_history': 'Criminal history',
  'user.demographic': 'Demographic data',
  'user.demographic.age_range': 'Age range',
  'user.demographic.date_of_birth': 'Date of birth',
  'user.demographic.gender': 'Gender',
  'user.demographic.language': 'Language',
  'user.demographic.marital_status': 'Marital status',
  'user.demographic.political_opinion': 'Political opinions',
  'user.demographic.profile': 'Profile',
  'user.demographic.race_ethnicity': 'Racial or ethnic origin',
  'user.demographic.religious_belief': 'Religious beliefs',
  'user.demographic.sexual_orientation': 'Sexual orientation',
  'user.device': 'Device data',
  'user.device.cookie': 'Cookies',
  'user.device.cookie_id': 'Cookie identifier',
  'user.device.device_id': 'Device identifier',
  'user.device.ip_address': 'IP address',
  'user.financial': 'Financial information',
  'user.financial.bank_account': 'Bank account',
  'user.financial.credit_card': 'Credit card',
  'user.government_id': 'Government identifier',
  'user.government_id.birth_certificate': 'Birth certificate',
  'user.government_id.drivers_license_number': 'Driver’s licence number',
  'user.government_id.immigration': 'Immigration identifier',
  'user.government_id.national_identification_number': 'National identification number',
  'user.government_id.passport_number': 'Passport number',
  'user.government_id.vehicle_registration': 'Vehicle registration',
  'user.health_and_medical': 'Health data',
  'user.health_and_medical.genetic': 'Genetic data',
  'user.health_and_medical.insurance_beneficiary_id': 'Health insurance number',
  'user.health_and_medical.record_id': 'Medical record number',
  'user.job_title': 'Job title',
  'user.location': 'Location',
  'user.location.imprecise': 'Approximate location',
  'user.location.precise': 'Precise location',
  'user.name': 'Name',
  'user.name.first': 'First name',
  'user.name.last': 'Last name',
  'user.payment': 'Payment data',
  'user.privacy_preferences': 'Privacy preferences',
  'user.sensor': 'Sensor data',
  'user.social': 'Social data',
  'user.telemetry': 'Telemetry data',
  'user.unique_id': 'Unique identifier',
  'user.unique_id.pseudonymous': 'Pseudonymous identifier',
  'user.user_sensor': 'User sensor data',
  'user.workplace': 'Workplace',
};

/**
 * fideslang keys Pledge marks sensitive: special categories (GDPR Art. 9), criminal data (Art. 10),
 * children's data, official identifiers and exact location. fideslang itself has no such flag.
 */
const SENSITIVE_FIDESLANG = new Set([
  'user.authorization.biometric',
  'user.biometric',
  'user.biometric.fingerprint',
  'user.biometric.retinal',
  'user.biometric.voice',
  'user.biometric.health',
  'user.childrens',
  'user.criminal_history',
  'user.demographic.political_opinion',
  'user.demographic.race_ethnicity',
  'user.demographic.religious_belief',
  'user.demographic.sexual_orientation',
  'user.government_id',
  'user.government_id.birth_certificate',
  'user.government_id.drivers_license_number',
  'user.government_id.immigration',
  'user.government_id.national_identification_number',
  'user.government_id.passport_number',
  'user.government_id.vehicle_registration',
  'user.health_and_medical',
  'user.health_and_medical.genetic',
  'user.health_and_medical.insurance_beneficiary_id',
  'user.health_and_medical.record_id',
  'user.location.precise',
]);

const ext = (key: string, name: string, description: string, fides: string, sensitive = false) => ({
  key,
  name,
  description,
  fides,
  ...(sensitive ? { sensitive } : {}),
});

/**
 * Pledge's own keys, each an extension of the fideslang key in `fides` (which is what `pledge export
 * fides` writes for it). The payment card keys stay under `user.financial.payment_card` (nothing
 * stored is renamed); their fideslang parent is `user.financial.credit_card`.
 */
export const PLEDGE_EXTENSIONS: readonly CategoryDefinition[] = [
  ext(
    'user.behavior.product_usage',
    'Product usage',
    'Events recorded while a person uses our products, such as meetings held and features used.',
    'user.behavior',
  ),
  ext('user.device.browser', 'Browser details', 'Browser type, version and settings.', 'user.device'),
  ext(
    'user.financial.payment_card',
    'Payment card',
    'Details of a credit or debit card.',
    'user.financial.credit_card',
  ),
  ext(
    'user.financial.payment_card.number',
    'Card number',
    'The primary account number of a card.',
    'user.financial.credit_card',
    true,
  ),
  ext(
    'user.financial.payment_card.security_code',
    'Card security code',
    'The CVV or CVC of a card.',
    'user.financial.credit_card',
    true,
  ),
  ext(
    'user.financial.payment_card.expiry',
    'Card expiry',
    'The month and year a card expires.',
    'user.financial.credit_card',
  ),
  ext(
    'user.financial.payment_card.token',
    'Card token',
    'A processor’s token that stands for a card.',
    'user.financial.credit_card',
  ),
  ext(
    'user.financial.payment_card.last_four',
    'Card last four digits',
    'The last four digits of a card.',
    'user.financial.credit_card',
  ),
  ext(
    'user.financial.payment_card.brand',
    'Card brand',
    'The network that issued a card (Visa, Mastercard, American Express ...).',
    'user.financial.credit_card',
  ),
  ext('user.survey', 'Survey answers', 'Answers a person gave to a survey.', 'user'),
  ext('user.feedback', 'Feedback', 'Comments and ratings a person sent us.', 'user.content'),
];

const FIDESLANG_KEYS = new Set(FIDESLANG_CATEGORIES.map((c) => c.key));

/** Every built-in category: fideslang's (parents before children), then Pledge's extensions. */
export const BUILT_IN_CATEGORIES: readonly CategoryDefinition[] = [
  ...FIDESLANG_CATEGORIES.map((c): CategoryDefinition => ({
    key: c.key,
    name: PLAIN_NAMES[c.key] ?? c.name,
    description: c.description,
    fidesName: c.name,
    ...(SENSITIVE_FIDESLANG.has(c.key) ? { sensitive: true } : {}),
  })),
  ...PLEDGE_EXTENSIONS,
];

/** True when `key` is one of fideslang's data categories. */
export function isFideslangCategory(key: string): boolean {
  return FIDESLANG_KEYS.has(key);
}

/** True when `parent` is `child` or one of its ancestors in the dotted hierarchy. */
export function coversCategory(parent: string, child: string): boolean {
  return child === parent || child.startsWith(`${parent}.`);
}

/** The parent key of a dotted key, or `undefined` for a root. */
export function parentKey(key: string): string | undefined {
  const i = key.lastIndexOf('.');
  return i < 0 ? undefined : key.slice(0, i);
}

/** A category lookup over the built-in taxonomy and a manifest's extensions. */
export class Taxonomy {
  private readonly byKey: Map<string, CategoryDefinition>;

  constructor(extensions: readonly CategoryDefinition[] = []) {
    this.byKey = new Map(BUILT_IN_CATEGORIES.map((d) => [d.key, d]));
    for (const ext of extensions) this.byKey.set(ext.key, ext);
  }

  /** The category with this key, or `undefined`. */
  get(key: string): CategoryDefinition | undefined {
    return this.byKey.get(key);
  }

  /** Every key, in a stable order. */
  keys(): string[] {
    return [...this.byKey.keys()];
  }

  /** True when the key is a known category. */
  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** True when one of `granted` covers `key` (itself or an ancestor). */
  isCoveredBy(key: string, granted: readonly string[]): boolean {
    return granted.some((g) => coversCategory(g, key));
  }

  /** True when `a` and `b` overlap: one covers the other. */
  overlaps(a: string, b: string): boolean {
    return coversCategory(a, b) || coversCategory(b, a);
  }

  /**
   * The fideslang key a category is written as for Fides: itself when it is fideslang's, else the
   * `fides` of it or of its nearest ancestor that has one, else its nearest fideslang ancestor.
   * `undefined` only for a key under a root fideslang does not have (an `employee` extension).
   */
  fidesKeyOf(key: string): string | undefined {
    for (let k: string | undefined = key; k !== undefined; k = parentKey(k)) {
      if (isFideslangCategory(k)) return k;
      const mapped = this.byKey.get(k)?.fides;
      if (mapped !== undefined) return mapped;
    }
    return undefined;
  }
}
