/**
 * The built-in taxonomy of data categories.
 *
 * Keys are dotted paths; a rule on a parent covers all of its children (`user.contact` covers
 * `user.contact.email`). Keys follow fideslang's where fideslang has one, so a Fides user can read a
 * Pledge manifest; where Pledge needs a finer key than fideslang (payment cards are split so that
 * the number can be refused while its token is kept) the entry names its fideslang counterpart.
 */

/** One category of personal data. */
export interface CategoryDefinition {
  key: string;
  name: string;
  description: string;
  /** Special categories (GDPR Art. 9) and data that the law treats as sensitive. */
  sensitive?: boolean;
  /** The fideslang key this one maps to when it is not itself a fideslang key. */
  fides?: string;
}

const c = (key: string, name: string, description: string, extra: Partial<CategoryDefinition> = {}) => ({
  key,
  name,
  description,
  ...extra,
});

/** Every built-in category, parents before children. */
export const BUILT_IN_CATEGORIES: readonly CategoryDefinition[] = [
  c('user', 'Personal data', 'Any information about a person.'),
  c('user.account', 'Account information', 'Information about the account a person holds with us.'),
  c('user.account.username', 'Username', 'The name a person signs in with.'),
  c('user.account.settings', 'Account settings', 'Choices a person made in their account settings.'),
  c('user.authorization', 'Authorization data', 'Data used to prove who a person is.'),
  c('user.authorization.credentials', 'Credentials', 'Passwords, keys and other secrets.'),
  c('user.behavior', 'Behavioral data', 'How a person uses our sites and services.'),
  c('user.behavior.browsing_history', 'Browsing history', 'Pages a person visited on our sites.'),
  c('user.behavior.purchase_history', 'Purchase history', 'What a person bought from us.'),
  c(
    'user.behavior.product_usage',
    'Product usage',
    'Events recorded while a person uses our products, such as meetings held and features used.',
    { fides: 'user.behavior' },
  ),
  c('user.contact', 'Contact information', 'How to reach a person.'),
  c('user.contact.email', 'E-mail address', 'A person’s e-mail address.'),
  c('user.contact.phone_number', 'Phone number', 'A person’s telephone number.'),
  c('user.contact.address', 'Postal address', 'A person’s postal or billing address.'),
  c('user.contact.organization', 'Organization', 'The company or organization a person belongs to.'),
  c('user.content', 'Content', 'What a person creates or shares through our services.'),
  c(
    'user.content.private',
    'Private content',
    'Content shared only with chosen people, such as meeting recordings.',
  ),
  c('user.content.public', 'Public content', 'Content a person chose to publish.'),
  c('user.demographic', 'Demographic data', 'Age, language and similar traits.'),
  c('user.demographic.language', 'Language', 'The language a person prefers.'),
  c('user.device', 'Device data', 'Information about the device a person uses.'),
  c('user.device.cookie_id', 'Cookie identifier', 'An identifier stored in a cookie on a person’s browser.'),
  c('user.device.device_id', 'Device identifier', 'An identifier of a person’s device.'),
  c('user.device.ip_address', 'IP address', 'The network address a device connects from.'),
  c('user.device.browser', 'Browser details', 'Browser type, version and settings.', {
    fides: 'user.device',
  }),
  c('user.financial', 'Financial information', 'Payment and billing information.'),
  c('user.financial.bank_account', 'Bank account', 'A person’s bank account details.'),
  c('user.financial.payment_card', 'Payment card', 'Details of a credit or debit card.', {
    fides: 'user.financial.credit_card',
  }),
  c('user.financial.payment_card.number', 'Card number', 'The primary account number of a card.', {
    fides: 'user.financial.credit_card',
    sensitive: true,
  }),
  c('user.financial.payment_card.security_code', 'Card security code', 'The CVV or CVC of a card.', {
    fides: 'user.financial.credit_card',
    sensitive: true,
  }),
  c('user.financial.payment_card.expiry', 'Card expiry', 'The month and year a card expires.', {
    fides: 'user.financial.credit_card',
  }),
  c('user.financial.payment_card.token', 'Card token', 'A processor’s token that stands for a card.', {
    fides: 'user.financial.credit_card',
  }),
  c(
    'user.financial.payment_card.last_four',
    'Card last four digits',
    'The last four digits and brand of a card.',
    {
      fides: 'user.financial.credit_card',
    },
  ),
  c('user.government_id', 'Government identifier', 'Passport, tax and other official numbers.', {
    sensitive: true,
  }),
  c('user.health_and_medical', 'Health data', 'Information about a person’s health.', { sensitive: true }),
  c('user.job_title', 'Job title', 'A person’s role at work.'),
  c('user.location', 'Location', 'Where a person is.'),
  c('user.location.imprecise', 'Approximate location', 'Country or city, derived from an IP address.'),
  c('user.location.precise', 'Precise location', 'GPS or similarly exact location.', { sensitive: true }),
  c('user.name', 'Name', 'A person’s name.'),
  c('user.name.first', 'First name', 'A person’s given name.'),
  c('user.name.last', 'Last name', 'A person’s family name.'),
  c('user.survey', 'Survey answers', 'Answers a person gave to a survey.', { fides: 'user' }),
  c('user.feedback', 'Feedback', 'Comments and ratings a person sent us.', { fides: 'user.content' }),
  c('user.unique_id', 'Unique identifier', 'An identifier assigned to a person, such as an account id.'),
  c('user.workplace', 'Workplace', 'Where a person works.'),
];

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
}
