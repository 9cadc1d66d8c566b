/**
 * A large, valid and consistent pledge.yaml for benchmarks: the example's organization and
 * purposes, with many collection points and recipients built from a few realistic templates.
 *
 * Run it to write the file: `node --import tsx bench/generate-manifest.ts [OUT] [--sources N]
 * [--recipients M]` (default OUT: .bench/large-pledge.yaml, 1000 sources, 50 recipients).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';

/** How large a manifest {@link generateLargeManifest} writes. */
export interface GenerateManifestOptions {
  sources: number;
  recipients: number;
}

/** The default output of the command-line form, inside the git-ignored .bench/ folder. */
export const DEFAULT_LARGE_MANIFEST = '.bench/large-pledge.yaml';

interface SourceTemplate {
  kind: string;
  name: string;
  categories: string[];
  purposes: string[];
  voluntary: boolean;
  retention: string;
  fields: Record<string, { category: string; required?: boolean }>;
  pass_through?: Array<{ category: string; recipient: string }>;
  notice?: string;
}

/**
 * Collection points, each kept within the retention of its purposes and of the category rules
 * below, so that `pledge check` has every rule to evaluate and nothing to report.
 */
const SOURCE_TEMPLATES: readonly SourceTemplate[] = [
  {
    kind: 'registration',
    name: 'Account registration',
    categories: [
      'user.name',
      'user.contact.email',
      'user.account.username',
      'user.authorization.credentials',
    ],
    purposes: ['provide-service', 'marketing-email', 'security'],
    voluntary: false,
    retention: 'P3Y',
    fields: {
      email: { category: 'user.contact.email', required: true },
      first_name: { category: 'user.name.first', required: true },
      last_name: { category: 'user.name.last' },
      username: { category: 'user.account.username' },
      password: { category: 'user.authorization.credentials', required: true },
    },
    notice:
      'We use these details to run your account and, unless you object, to tell you about our products.',
  },
  {
    kind: 'trial_signup',
    name: 'Free trial sign-up',
    categories: ['user.name', 'user.contact.email', 'user.contact.organization'],
    purposes: ['provide-service', 'marketing-email'],
    voluntary: false,
    retention: 'P3Y',
    fields: {
      email: { category: 'user.contact.email', required: true },
      first_name: { category: 'user.name.first' },
      organization: { category: 'user.contact.organization' },
    },
  },
  {
    kind: 'billing',
    name: 'Billing',
    categories: ['user.name', 'user.contact.address', 'user.financial.payment_card'],
    purposes: ['billing'],
    voluntary: false,
    retention: 'P7Y',
    fields: {
      cardholder_name: { category: 'user.name', required: true },
      billing_address: { category: 'user.contact.address', required: true },
      card_number: { category: 'user.financial.payment_card.number', required: true },
      card_security_code: { category: 'user.financial.payment_card.security_code' },
      card_expiry: { category: 'user.financial.payment_card.expiry', required: true },
    },
    pass_through: [
      { category: 'user.financial.payment_card.number', recipient: 'card-processor' },
      { category: 'user.financial.payment_card.security_code', recipient: 'card-processor' },
    ],
  },
  {
    kind: 'survey',
    name: 'Customer survey',
    categories: ['user.survey', 'user.contact.email'],
    purposes: ['improve-products', 'provide-service'],
    voluntary: true,
    retention: 'P2Y',
    fields: {
      email: { category: 'user.contact.email' },
      answers: { category: 'user.survey', required: true },
    },
    notice: 'Your answers are voluntary. We use them to improve our products.',
  },
  {
    kind: 'feedback',
    name: 'Product feedback',
    categories: ['user.feedback', 'user.contact.email'],
    purposes: ['improve-products', 'provide-service'],
    voluntary: true,
    retention: 'P2Y',
    fields: {
      email: { category: 'user.contact.email' },
      message: { category: 'user.feedback', required: true },
      rating: { category: 'user.feedback' },
    },
  },
  {
    kind: 'product_use',
    name: 'Product events',
    categories: ['user.behavior.product_usage', 'user.device.ip_address', 'user.device.browser'],
    purposes: ['provide-service', 'improve-products', 'security'],
    voluntary: false,
    retention: 'P1Y',
    fields: {
      event: { category: 'user.behavior.product_usage', required: true },
      duration_ms: { category: 'user.behavior.product_usage' },
      ip: { category: 'user.device.ip_address' },
      user_agent: { category: 'user.device.browser' },
    },
  },
  {
    kind: 'cookie',
    name: 'Site cookies',
    categories: ['user.device.cookie_id', 'user.behavior.browsing_history'],
    purposes: ['site-analytics', 'provide-service'],
    voluntary: false,
    retention: 'P13M',
    fields: {},
  },
  {
    kind: 'web_beacon',
    name: 'Web beacons',
    categories: ['user.device.cookie_id', 'user.behavior.browsing_history', 'user.device.ip_address'],
    purposes: ['site-analytics'],
    voluntary: false,
    retention: 'P13M',
    fields: {},
  },
];

interface RecipientTemplate {
  kind: 'processor' | 'affiliate' | 'authority';
  name: string;
  categories: string[];
  purposes: string[];
  country: string;
  affiliate?: string;
  transfer_mechanism?: string;
}

const RECIPIENT_TEMPLATES: readonly RecipientTemplate[] = [
  {
    kind: 'processor',
    name: 'E-mail delivery provider',
    categories: ['user.name', 'user.contact.email'],
    purposes: ['provide-service', 'marketing-email'],
    country: 'US',
  },
  {
    kind: 'processor',
    name: 'Hosting provider',
    categories: ['user.name', 'user.contact', 'user.account', 'user.behavior.product_usage'],
    purposes: ['provide-service'],
    country: 'US',
  },
  {
    kind: 'processor',
    name: 'Analytics provider',
    categories: ['user.device.cookie_id', 'user.behavior.browsing_history'],
    purposes: ['site-analytics'],
    country: 'US',
  },
  {
    kind: 'affiliate',
    name: 'Group company in the United Kingdom',
    categories: ['user.name', 'user.contact', 'user.account'],
    purposes: ['provide-service'],
    country: 'GB',
    affiliate: 'example-systems-uk',
    transfer_mechanism: 'scc',
  },
  {
    kind: 'authority',
    name: 'Courts and public authorities',
    categories: ['user'],
    purposes: ['legal-compliance'],
    country: 'US',
  },
];

const PURPOSES = [
  {
    key: 'provide-service',
    name: 'Provide the services you request',
    description: 'Run your account and the services you use.',
    use: 'service',
    categories: [
      'user.name',
      'user.contact',
      'user.account',
      'user.authorization.credentials',
      'user.behavior.product_usage',
      'user.behavior.browsing_history',
      'user.device',
      'user.survey',
      'user.feedback',
    ],
    legal_basis: 'contract',
    consent: 'required',
    channels: ['web', 'email', 'in_product'],
    retention: 'P7Y',
  },
  {
    key: 'billing',
    name: 'Bill you',
    description: 'Charge your card and keep the records the law asks for.',
    use: 'service',
    categories: ['user.name', 'user.contact.address', 'user.financial.payment_card'],
    legal_basis: 'contract',
    consent: 'required',
    channels: ['web'],
    retention: 'P7Y',
  },
  {
    key: 'marketing-email',
    name: 'Tell you about our products',
    description: 'Send you news about our products, partners and events.',
    use: 'marketing',
    categories: ['user.name', 'user.contact.email', 'user.contact.organization'],
    legal_basis: 'consent',
    consent: { default: 'opt_in', US: 'opt_out' },
    channels: ['email'],
    retention: 'P3Y',
  },
  {
    key: 'improve-products',
    name: 'Improve our products',
    description: 'Learn which features are used and where our products fall short.',
    use: 'improvement',
    categories: ['user.behavior.product_usage', 'user.device', 'user.survey', 'user.feedback'],
    legal_basis: 'legitimate_interest',
    consent: 'opt_out',
    channels: ['web', 'in_product'],
    retention: 'P2Y',
  },
  {
    key: 'site-analytics',
    name: 'Measure how our sites are used',
    description: 'Count visits and interactions with our sites, with cookies and web beacons.',
    use: 'analytics',
    categories: ['user.device.cookie_id', 'user.behavior.browsing_history', 'user.device.ip_address'],
    legal_basis: 'consent',
    consent: { default: 'opt_in', US: 'opt_out' },
    channels: ['web'],
    retention: 'P13M',
  },
  {
    key: 'security',
    name: 'Keep our services secure',
    description: 'Detect abuse and protect accounts.',
    use: 'security',
    categories: ['user.account', 'user.authorization.credentials', 'user.device', 'user.name'],
    legal_basis: 'legitimate_interest',
    consent: 'required',
    channels: [],
    retention: 'P1Y',
  },
  {
    key: 'legal-compliance',
    name: 'Comply with the law',
    description: 'Answer lawful requests and judicial proceedings.',
    use: 'legal',
    categories: ['user'],
    legal_basis: 'legal_obligation',
    consent: 'required',
    channels: [],
    retention: 'P7Y',
  },
];

const pad = (n: number) => String(n).padStart(4, '0');

/**
 * Writes a manifest with `sources` collection points and `recipients` recipients (at least one:
 * the card processor that billing passes card numbers to). The result parses with no problems and
 * is meant to pass `pledge check`.
 */
export function generateLargeManifest(
  options: GenerateManifestOptions = { sources: 1000, recipients: 50 },
): string {
  const { sources: sourceCount, recipients: recipientCount } = options;
  if (!Number.isInteger(sourceCount) || sourceCount < 1)
    throw new RangeError('sources must be a whole number >= 1');
  if (!Number.isInteger(recipientCount) || recipientCount < 1) {
    throw new RangeError('recipients must be a whole number >= 1 (the card processor)');
  }

  const sources = Array.from({ length: sourceCount }, (_, i) => {
    const t = SOURCE_TEMPLATES[i % SOURCE_TEMPLATES.length]!;
    return {
      key: `${t.kind.replaceAll('_', '-')}-${pad(i)}`,
      name: `${t.name} ${pad(i)}`,
      kind: t.kind,
      description: `${t.name} on site ${Math.floor(i / SOURCE_TEMPLATES.length) + 1}.`,
      categories: t.categories,
      purposes: t.purposes,
      voluntary: t.voluntary,
      retention: t.retention,
      ...(Object.keys(t.fields).length > 0 ? { fields: t.fields } : {}),
      ...(t.pass_through ? { pass_through: t.pass_through } : {}),
      ...(t.notice !== undefined ? { notice: t.notice } : {}),
    };
  });

  const recipients = [
    {
      key: 'card-processor',
      name: 'Card processor',
      kind: 'processor',
      description: 'Processes card payments for us.',
      categories: ['user.name', 'user.contact.address', 'user.financial.payment_card'],
      purposes: ['billing'],
      agreement: { reference: 'DPA-0000', signed: '2024-01-15' },
      contact: 'privacy@card-processor.example',
      country: 'US',
    },
    ...Array.from({ length: recipientCount - 1 }, (_, j) => {
      const i = j + 1;
      const t = RECIPIENT_TEMPLATES[j % RECIPIENT_TEMPLATES.length]!;
      return {
        key: `${t.kind}-${pad(i)}`,
        name: `${t.name} ${pad(i)}`,
        kind: t.kind,
        categories: t.categories,
        purposes: t.purposes,
        ...(t.kind === 'authority'
          ? {}
          : {
              agreement: { reference: `DPA-${pad(i)}`, signed: '2024-01-15' },
              contact: `privacy@recipient-${pad(i)}.example`,
            }),
        country: t.country,
        ...(t.affiliate !== undefined ? { affiliate: t.affiliate } : {}),
        ...(t.transfer_mechanism !== undefined ? { transfer_mechanism: t.transfer_mechanism } : {}),
      };
    }),
  ];

  const manifest = {
    pledge: 1,
    organization: {
      name: 'Example Large',
      legal_name: 'Example Large, Inc.',
      description: `A generated manifest with ${sourceCount} collection points and ${recipientCount} recipients.`,
      website: 'https://www.example-large.test',
      address: {
        street: '1 Benchmark Way',
        city: 'Goleta',
        region: 'CA',
        postal_code: '93117',
        country: 'US',
      },
      privacy_contact: 'privacy@example-large.test',
      affiliates: [{ key: 'example-systems-uk', name: 'Example Systems UK Ltd.', country: 'GB' }],
      transfer_mechanisms: [
        {
          key: 'scc',
          kind: 'standard_contractual_clauses',
          name: 'Standard Contractual Clauses',
          description:
            "Transfers within the group are covered by the European Commission's standard clauses.",
        },
      ],
      safeguards: ['Personal data is encrypted field by field at rest.'],
    },
    policy: { version: '2026-01-01', effective: '2026-01-01', summary: 'A generated policy for benchmarks.' },
    jurisdictions: ['US', 'EU', 'GB'],
    purposes: PURPOSES,
    sources,
    recipients,
    retention: [
      { category: 'user.behavior', max: 'P2Y', reason: 'Usage data older than two years is not needed.' },
      { category: 'user.device.cookie_id', max: 'P13M', reason: 'Cookies live at most 13 months.' },
    ],
    choices: [
      {
        key: 'preferences',
        name: 'Preference center',
        kind: 'preference_center',
        path: '/preferences',
        actions: ['give', 'withdraw'],
        purposes: 'all',
        global_opt_out: true,
      },
      {
        key: 'email-unsubscribe-link',
        name: 'Unsubscribe link in every marketing e-mail',
        kind: 'email_link',
        actions: ['withdraw'],
        purposes: ['marketing-email'],
      },
      {
        key: 'cookie-banner',
        name: 'Cookie banner',
        kind: 'cookie_banner',
        actions: ['give', 'withdraw'],
        purposes: ['site-analytics'],
      },
    ],
    pledges: [
      { key: 'no-sale', kind: 'no_sale', text: 'We do not sell, trade, or rent your personal information.' },
      {
        key: 'card-numbers-pass-through',
        kind: 'never_store',
        text: 'We never store your card number or security code.',
        categories: ['user.financial.payment_card.number', 'user.financial.payment_card.security_code'],
        only_to: ['card-processor'],
      },
      {
        key: 'marketing-opt-out',
        kind: 'marketing_opt_out',
        text: 'Every marketing e-mail tells you how to opt out.',
        purposes: ['marketing-email'],
      },
      { key: 'processors-bound', kind: 'processor_agreement', text: 'Processors are bound by our policy.' },
      {
        key: 'legal-disclosure-only',
        kind: 'legal_disclosure',
        text: 'We disclose to authorities only as the law requires.',
      },
      { key: 'encrypted-at-rest', kind: 'encryption', text: 'We encrypt your personal information.' },
      {
        key: 'no-card-marketing',
        kind: 'never_use',
        text: 'We never use your card details to market to you.',
        categories: ['user.financial.payment_card'],
        purposes: ['marketing-email'],
      },
    ],
  };

  const header =
    `# Generated by bench/generate-manifest.ts: ${sourceCount} sources, ${recipientCount} recipients.\n` +
    '# A benchmark input; do not edit by hand.\n';
  return header + stringify(manifest, { lineWidth: 0, aliasDuplicateObjects: false });
}

function runFromCommandLine(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { sources: { type: 'string', default: '1000' }, recipients: { type: 'string', default: '50' } },
  });
  const out = path.resolve(positionals[0] ?? DEFAULT_LARGE_MANIFEST);
  const text = generateLargeManifest({
    sources: Number(values.sources),
    recipients: Number(values.recipients),
  });
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, text);
  process.stdout.write(`wrote ${out} (${text.length} bytes, ${text.split('\n').length} lines)\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runFromCommandLine();
}
