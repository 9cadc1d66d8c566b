/**
 * The manifest (`pledge.yaml`) as data: the one schema from which the loader validates, the
 * checker reasons, the renderer writes the policy and docs/pledge.schema.json is generated.
 *
 * Every object is strict: an unknown key is an error, because a misspelt `retenton:` that is
 * silently ignored is a promise that silently is not kept.
 */
import { z } from 'zod';
import { datasetSchema } from './dataset.schema.js';
import { requestsSchema } from './requests.schema.js';
import { DURATION_PATTERN } from './duration.js';
import { isMailboxAddress } from '../platform/email-address.js';

const KEY = /^[a-z][a-z0-9_-]*$/;
const CATEGORY_KEY = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
const JURISDICTION = /^(default|EU|EEA|[A-Z]{2}(-[A-Z0-9]{1,3})?)$/;

const key = () =>
  z
    .string()
    .regex(
      KEY,
      'must be lower-case letters, digits, "-" or "_", starting with a letter (e.g. "card-processor")',
    );
const categoryKey = () =>
  z.string().regex(CATEGORY_KEY, 'must be a dotted category key such as "user.contact.email"');
const text = () => z.string().trim().min(1, 'must not be empty');
const duration = () =>
  z.string().regex(DURATION_PATTERN, 'must be an ISO 8601 duration such as "P30D", "P13M" or "P7Y"');
const isoDate = () =>
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date written YYYY-MM-DD')
    // A round trip rejects dates that Date.parse would roll over, such as 2012-02-30.
    .refine((s) => {
      const t = Date.parse(`${s}T00:00:00Z`);
      return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === s;
    }, 'is not a real calendar date');

/** A host name a tag loads from ("www.googletagmanager.com"); it covers its subdomains too. */
const domainName = () =>
  z
    .string()
    .regex(
      /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
      'must be a lower-case host name such as "www.googletagmanager.com" (no scheme, port or path)',
    );
/** A cookie name, or a pattern with "*" standing for any characters ("_ga*"). */
const cookiePattern = () =>
  z
    .string()
    .regex(
      /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,200}$/,
      'must be a cookie name such as "_ga", or a pattern with "*" such as "_ga_*"',
    );

/** The signals of Google Consent Mode v2 a purpose can grant (https://developers.google.com/tag-platform/security/concepts/consent-mode). */
export const CONSENT_MODE_SIGNALS = [
  'ad_storage',
  'analytics_storage',
  'ad_user_data',
  'ad_personalization',
  'functionality_storage',
  'personalization_storage',
] as const;
export type ConsentModeSignal = (typeof CONSENT_MODE_SIGNALS)[number];

/** How a purpose may be used for a person: no choice, until they object, or only once they agree. */
export const CONSENT_MODES = ['required', 'opt_out', 'opt_in'] as const;
export type ConsentMode = (typeof CONSENT_MODES)[number];

/** Strictness order used when a jurisdiction is unknown, and to detect weakened consent. */
export const CONSENT_STRICTNESS: Record<ConsentMode, number> = { required: 0, opt_out: 1, opt_in: 2 };

export const LEGAL_BASES = ['contract', 'consent', 'legitimate_interest', 'legal_obligation'] as const;
export type LegalBasis = (typeof LEGAL_BASES)[number];

/**
 * What a purpose does with data. The checker reasons over these: `sale`, `trade` and `rent` are
 * the activities the no-sale pledge forbids; `marketing` is what the marketing pledges cover.
 */
export const PURPOSE_USES = [
  'service',
  'marketing',
  'improvement',
  'analytics',
  'security',
  'legal',
  'advertising',
  'sale',
  'trade',
  'rent',
] as const;
export type PurposeUse = (typeof PURPOSE_USES)[number];

export const CHANNELS = ['email', 'web', 'phone', 'sms', 'postal', 'in_product'] as const;

export const SOURCE_KINDS = [
  'registration',
  'billing',
  'trial_signup',
  'survey',
  'feedback',
  'product_use',
  'cookie',
  'web_beacon',
] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

export const RECIPIENT_KINDS = ['processor', 'affiliate', 'authority', 'third_party'] as const;
export type RecipientKind = (typeof RECIPIENT_KINDS)[number];

/** What a recipient gives in return for data; anything but `none` is a sale, trade or rental. */
export const CONSIDERATIONS = ['none', 'sale', 'trade', 'rent'] as const;

export const TRANSFER_KINDS = [
  'adequacy',
  'data_privacy_framework',
  'safe_harbor',
  'standard_contractual_clauses',
  'binding_corporate_rules',
  'privacy_seal',
  'consent',
] as const;

export const CHOICE_KINDS = [
  'preference_center',
  'unsubscribe_page',
  'email_link',
  'cookie_banner',
  'api',
] as const;
export const CHOICE_ACTIONS = ['give', 'withdraw'] as const;

/** What a webhook can be told about. */
export const WEBHOOK_EVENTS = [
  'consent.changed',
  'subject.erased',
  'request.stalled',
  'request.task',
  'request.due',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const PLEDGE_KINDS = [
  'no_sale',
  'never_store',
  'never_use',
  'marketing_opt_out',
  'processor_agreement',
  'legal_disclosure',
  'encryption',
] as const;
export type PledgeKind = (typeof PLEDGE_KINDS)[number];

const address = z.strictObject({
  street: text(),
  city: text(),
  region: text().optional(),
  postal_code: text(),
  country: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166 country code such as "US"'),
});

const consent = z.union(
  [
    z.enum(CONSENT_MODES),
    z
      .record(
        z.string().regex(JURISDICTION, 'must be "default", "EU", "EEA" or a country code such as "US"'),
        z.enum(CONSENT_MODES),
      )
      .refine((m) => 'default' in m, 'needs a "default" mode for jurisdictions not listed'),
  ],
  {
    error:
      'must be "required", "opt_out", "opt_in", or a map from jurisdiction to mode with a "default" entry (e.g. { default: opt_in, US: opt_out })',
  },
);

export const categoryDefinitionSchema = z.strictObject({
  key: categoryKey(),
  name: text(),
  description: text(),
  sensitive: z.boolean().optional(),
  fides: categoryKey().optional(),
});

export const purposeSchema = z.strictObject({
  key: key(),
  name: text(),
  description: text(),
  use: z.enum(PURPOSE_USES),
  /** The categories this purpose may use; the use gate returns nothing else for it. */
  categories: z.array(categoryKey()).min(1, 'a purpose uses at least one category'),
  legal_basis: z.enum(LEGAL_BASES),
  consent,
  channels: z.array(z.enum(CHANNELS)).default([]),
  /** The longest this purpose may keep data; records kept for it may not outlive this. */
  retention: duration().optional(),
  /** Covered by a Global Privacy Control signal (sale, sharing, targeted advertising). */
  gpc: z.boolean().default(false),
  /** This purpose needs the full IP address; otherwise IP addresses are truncated when collected. */
  // `.optional()` after the default keeps purposes written in code (tests, fixtures) valid without it.
  full_ip_address: z.boolean().default(false).optional(),
  /** The cookies this purpose sets in browsers; withdrawing it deletes them (docs/tracking.md). */
  cookies: z.array(cookiePattern()).optional(),
  /** Third-party hosts its tags use: /pledge.js holds every request to them until the purpose is allowed. */
  domains: z.array(domainName()).optional(),
  /** The Google Consent Mode signals granted while this purpose is allowed (all are denied by default). */
  consent_mode: z.array(z.enum(CONSENT_MODE_SIGNALS)).optional(),
  /** The fideslang data use this purpose is (`essential.service`); `pledge check` knows the keys. */
  data_use: z
    .string()
    .regex(CATEGORY_KEY, 'must be a dotted fideslang data use such as "essential.service"')
    .optional(),
  /** Whose data it is, as fideslang data subjects (`customer`, `prospect` ...), for the ROPA. */
  data_subjects: z.array(key()).min(1).optional(),
});

const fieldSchema = z.strictObject({
  category: categoryKey(),
  required: z.boolean().default(false),
  description: text().optional(),
});

export const sourceSchema = z.strictObject({
  key: key(),
  name: text(),
  kind: z.enum(SOURCE_KINDS),
  description: text().optional(),
  categories: z.array(categoryKey()).min(1, 'a collection point collects at least one category'),
  purposes: z.array(key()).min(1, 'a collection point serves at least one purpose'),
  voluntary: z.boolean(),
  retention: duration(),
  /** The fields a request may carry, each with the category it holds. */
  fields: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an identifier'), fieldSchema)
    .optional(),
  /** Categories passed straight to a recipient and never stored (card numbers to the card processor). */
  pass_through: z.array(z.strictObject({ category: categoryKey(), recipient: key() })).default([]),
  /** The notice shown where the data is collected. */
  notice: text().optional(),
});

/**
 * A privacy declaration (as Fides calls it): one purpose and the categories used or received for
 * it. A pair says exactly what flows for what, where two lists would allow their cross product.
 */
const declarationSchema = z.strictObject({
  purpose: key(),
  categories: z.array(categoryKey()).min(1, 'a declaration names at least one category'),
});

/**
 * A recipient or system gives either two lists (every purpose covering every category) or
 * declarations. Both are accepted only when the lists are what the declarations make them (a
 * manifest written back from a parsed one carries both), so that neither can say more.
 */
function oneDeclarationForm(
  value: {
    purposes?: readonly string[] | undefined;
    categories?: readonly string[] | undefined;
    declarations?: ReadonlyArray<{ purpose: string; categories?: readonly string[] | undefined }> | undefined;
  },
  ctx: z.RefinementCtx,
  lists: 'purposes' | 'purposes and categories',
): void {
  const hasLists = value.purposes !== undefined;
  const declarations = value.declarations;
  if (hasLists && declarations !== undefined) {
    const same = (a: readonly string[] | undefined, b: readonly string[]) =>
      a === undefined || (a.length === b.length && a.every((x) => b.includes(x)));
    const categoriesToo = lists === 'purposes and categories';
    if (
      !same(value.purposes, declarationsOf(declarations)) ||
      (categoriesToo && !same(value.categories, categoriesOf(declarations)))
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['declarations'],
        message: `give either ${lists} or declarations, not both`,
      });
    }
    return;
  }
  if (!hasLists && declarations === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: `needs declarations (pairs of a purpose and its categories) or ${lists}`,
    });
  }
  if (lists === 'purposes and categories' && hasLists && value.categories === undefined) {
    ctx.addIssue({ code: 'custom', path: ['categories'], message: 'needs categories beside purposes' });
  }
}

const declarationsOf = (list: ReadonlyArray<{ purpose: string }>) => [...new Set(list.map((d) => d.purpose))];
/** The union of the declarations' categories, without those another of them covers (as written). */
const categoriesOf = (list: ReadonlyArray<{ categories?: readonly string[] | undefined }>) => {
  const all = [...new Set(list.flatMap((d) => d.categories ?? []))];
  return all.filter((c) => !all.some((d) => d !== c && c.startsWith(`${d}.`)));
};

const countryCode = () => z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166 country code such as "US"');

/**
 * A company a processor (or affiliate) hands data on to, for one of the purposes it receives data
 * for: published on /privacy/processors beside its processor.
 */
export const subProcessorSchema = z.strictObject({
  name: text(),
  country: countryCode(),
  /** The purpose it serves; `pledge check` requires one its processor receives data for. */
  purpose: key(),
  /** Since when it has processed data (YYYY-MM-DD), as published. */
  since: isoDate().optional(),
});
export type SubProcessor = z.infer<typeof subProcessorSchema>;

export const recipientSchema = z
  .strictObject({
    key: key(),
    name: text(),
    kind: z.enum(RECIPIENT_KINDS),
    description: text().optional(),
    /** With `purposes`: what it receives, every category for every purpose (checked by `pledge check`). */
    categories: z.array(categoryKey()).min(1).optional(),
    purposes: z.array(key()).min(1).optional(),
    /** Or what it receives for which purpose, pair by pair. */
    declarations: z.array(declarationSchema).min(1).optional(),
    agreement: z.strictObject({ reference: text(), signed: isoDate() }).optional(),
    /**
     * Since when it has received data (YYYY-MM-DD), as /privacy/processors publishes it; absent, the
     * date its agreement was signed.
     */
    since: isoDate().optional(),
    /**
     * Where notices of policy changes go (an e-mail address): a material change that touches what it
     * receives pauses its disclosures until it acknowledges. `pledge check` requires one of every
     * processor and affiliate.
     */
    contact: z
      .string()
      .trim()
      .refine(isMailboxAddress, 'must be an e-mail address such as "privacy@processor.example"')
      .optional(),
    /** Also POSTed those notices, signed like the consent webhooks (https; `pledge check` verifies). */
    webhook: z
      .url({
        protocol: /^https?$/,
        error: 'must be an absolute https URL such as "https://processor.example/hooks/pledge"',
      })
      .optional(),
    /** The companies it hands data on to (name, country, purpose), published beside it. */
    sub_processors: z.array(subProcessorSchema).optional(),
    country: countryCode(),
    transfer_mechanism: key().optional(),
    affiliate: key().optional(),
    consideration: z.enum(CONSIDERATIONS).default('none'),
    /** Hosts its tags load from: held by /pledge.js until every purpose it serves that asks for a choice is allowed. */
    domains: z.array(domainName()).optional(),
  })
  .superRefine((r, ctx) => oneDeclarationForm(r, ctx, 'purposes and categories'))
  // Everything downstream reads the two lists; in the declaration form they are its union.
  .transform((r) => ({
    ...r,
    purposes: r.purposes ?? declarationsOf(r.declarations ?? []),
    categories: r.categories ?? categoriesOf(r.declarations ?? []),
  }));

/**
 * A system: one of the company's own services or tools that calls Pledge (Fides' "system"). Its
 * API keys may read, decide and send only for its purposes, and collect only through its sources.
 */
export const systemSchema = z
  .strictObject({
    key: key(),
    name: text(),
    description: text().optional(),
    /** The purposes it serves; with `categories`, each purpose limited to those categories. */
    purposes: z.array(key()).min(1, 'a system serves at least one purpose').optional(),
    /** Narrower than the purposes': the only categories it may read. */
    categories: z.array(categoryKey()).min(1).optional(),
    /** Or, pair by pair, the categories it uses for each purpose. */
    declarations: z
      .array(
        z.strictObject({
          purpose: key(),
          /** Absent: every category of the purpose. */
          categories: z.array(categoryKey()).min(1).optional(),
        }),
      )
      .min(1)
      .optional(),
    /** The collection points it submits to. */
    sources: z.array(key()).default([]),
    /** Fides' `system_type`, kept for the round trip with Fides. */
    system_type: text().optional(),
    /**
     * The keyless endpoints of the web (/pledge.js's choices, /api/v1/beacon, /b.gif) act as this
     * system: they record and count only for its purposes and sources. At most one system is `web`.
     */
    web: z.boolean().optional(),
  })
  .superRefine((s, ctx) => oneDeclarationForm(s, ctx, 'purposes'))
  .transform((s) => ({ ...s, purposes: s.purposes ?? declarationsOf(s.declarations ?? []) }));

export const retentionRuleSchema = z.strictObject({
  category: categoryKey().optional(),
  purpose: key().optional(),
  max: duration(),
  reason: text().optional(),
});

const bannerPurposeTexts = z.strictObject({ name: text(), description: text() });

/** The texts of the banner and its choices dialog in one language. */
export const bannerTextsSchema = z.strictObject({
  title: text(),
  /** The banner's one paragraph; a link to the policy follows it. */
  text: text(),
  accept_all: text(),
  reject_all: text(),
  choose: text(),
  save: text(),
  /** The choices dialog's heading. */
  dialog_title: text(),
  /** Shown in the dialog beside a purpose that a Global Privacy Control signal turned off. */
  gpc: text(),
  /** The link to the policy. */
  policy_link: text(),
  /** Beside a purpose that is on until turned off (opt-out). */
  on_until_off: text().optional(),
  /** Purpose names and descriptions in this language (the manifest's own are the first language's). */
  purposes: z.record(key(), bannerPurposeTexts).default({}),
});
export type BannerTexts = z.infer<typeof bannerTextsSchema>;

export const bannerSchema = z.strictObject({
  /** Ask again after this long; at most P13M, as European regulators recommend. */
  ask_again: duration().default('P13M'),
  /** The first-party cookie that holds the choice. */
  cookie: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a cookie name of letters, digits, "-" or "_"')
    .default('pledge_consent'),
  /** Texts per language (BCP 47 primary tags: en, de, fr); the first is the fallback. */
  languages: z
    .record(
      z.string().regex(/^[a-z]{2,3}$/, 'must be a language code such as "en" or "de"'),
      bannerTextsSchema,
    )
    .refine((m) => Object.keys(m).length > 0, 'needs the texts of at least one language'),
});
export type Banner = z.infer<typeof bannerSchema>;

export const choiceSchema = z.strictObject({
  key: key(),
  name: text(),
  kind: z.enum(CHOICE_KINDS),
  path: z.string().regex(/^\//, 'must be a path on this site starting with "/"').optional(),
  actions: z.array(z.enum(CHOICE_ACTIONS)).min(1),
  /** Purposes offered here, or "all" for every purpose that offers a choice. */
  purposes: z.union([z.literal('all'), z.array(key()).min(1)]),
  /** Offers the "opt out of collection, use and distribution" switch. */
  global_opt_out: z.boolean().default(false),
  /** For a `cookie_banner`: how /pledge.js asks, and its texts per language. */
  banner: bannerSchema.optional(),
});

export const pledgeSchema = z.strictObject({
  key: key(),
  kind: z.enum(PLEDGE_KINDS),
  text: text(),
  categories: z.array(categoryKey()).optional(),
  purposes: z.array(key()).optional(),
  /** For never_store: the only recipients the categories may be passed to. */
  only_to: z.array(key()).optional(),
});

export const webhookSchema = z.strictObject({
  key: key(),
  name: text(),
  description: text().optional(),
  /**
   * The system (under systems:) the deliveries go to. `pledge check` requires it; the schema does not,
   * so that manifests recorded before systems existed still parse (diffs, past policy versions).
   */
  system: key().optional(),
  /** Where deliveries are POSTed; https (http only to a loopback host, which the checker verifies). */
  url: z.url({
    protocol: /^https?$/,
    error: 'must be an absolute https URL such as "https://crm.example.com/hooks/pledge"',
  }),
  /** What the system is told about (default: consent changes only). */
  events: z
    .array(z.enum(WEBHOOK_EVENTS))
    .min(1, 'a webhook receives at least one event')
    .default(['consent.changed']),
  /** The purposes whose changes are sent, or "all"; a global opt-out ("*") is always sent. */
  purposes: z.union([z.literal('all'), z.array(key()).min(1)]),
});

export const manifestSchema = z.strictObject({
  pledge: z.literal(1, 'must be 1, the manifest format this version of Pledge reads'),
  organization: z.strictObject({
    name: text(),
    legal_name: text(),
    description: text().optional(),
    website: z.url('must be an absolute URL such as "https://example.com"'),
    address,
    privacy_contact: z.email('must be an e-mail address'),
    affiliates: z
      .array(z.strictObject({ key: key(), name: text(), country: z.string().regex(/^[A-Z]{2}$/) }))
      .default([]),
    certifications: z
      .array(z.strictObject({ key: key(), name: text(), description: text(), url: z.url().optional() }))
      .default([]),
    transfer_mechanisms: z
      .array(z.strictObject({ key: key(), kind: z.enum(TRANSFER_KINDS), name: text(), description: text() }))
      .default([]),
    safeguards: z.array(text()).default([]),
  }),
  policy: z.strictObject({
    version: text(),
    effective: isoDate(),
    summary: text().optional(),
    changes: z.array(text()).default([]),
  }),
  jurisdictions: z
    .array(z.string().regex(JURISDICTION, 'must be "EU", "EEA" or a country code such as "US"'))
    .default([]),
  categories: z.array(categoryDefinitionSchema).default([]),
  purposes: z.array(purposeSchema).min(1, 'a manifest declares at least one purpose'),
  sources: z.array(sourceSchema).default([]),
  recipients: z.array(recipientSchema).default([]),
  /** The company's own services and tools that call Pledge, each bound to its purposes. */
  systems: z.array(systemSchema).default([]),
  retention: z.array(retentionRuleSchema).default([]),
  choices: z.array(choiceSchema).default([]),
  pledges: z.array(pledgeSchema).default([]),
  /** The systems told about changes of choices (and erasures), so they stop when a person says stop. */
  webhooks: z.array(webhookSchema).default([]),
  /** The company's stores of personal data, field by field (Fides datasets). */
  datasets: z.array(datasetSchema).default([]),
  /** Data-subject requests: deadlines per jurisdiction and their business-day calendars. */
  requests: requestsSchema.optional(),
});

/** A validated manifest. */
export type Manifest = z.infer<typeof manifestSchema>;
export type Purpose = Manifest['purposes'][number];
export type Source = Manifest['sources'][number];
export type Recipient = Manifest['recipients'][number];
export type Pledge = Manifest['pledges'][number];
export type Choice = Manifest['choices'][number];
export type RetentionRule = Manifest['retention'][number];
export type Webhook = Manifest['webhooks'][number];
export type System = Manifest['systems'][number];

const EU_MEMBERS = new Set(
  'AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE'.split(' '),
);
const EEA_ONLY = new Set(['IS', 'LI', 'NO']);

/**
 * The consent mode of a purpose in a jurisdiction. A country inherits "EU" or "EEA" when it is a
 * member and has no entry of its own; a person whose jurisdiction is unknown gets the strictest mode
 * the purpose has anywhere, so not knowing where someone lives never weakens their protection.
 */
export function consentModeFor(purpose: Purpose, jurisdiction: string | undefined): ConsentMode {
  if (typeof purpose.consent === 'string') return purpose.consent;
  const modes = purpose.consent;
  if (jurisdiction === undefined) return strictestMode(Object.values(modes));
  const country = jurisdiction.slice(0, 2);
  const candidates = [jurisdiction, country];
  if (EU_MEMBERS.has(country)) candidates.push('EU', 'EEA');
  if (EEA_ONLY.has(country)) candidates.push('EEA', 'EU');
  for (const c of candidates) {
    const mode = modes[c];
    if (mode !== undefined) return mode;
  }
  return modes.default ?? strictestMode(Object.values(modes));
}

/** Every consent mode a purpose uses, by jurisdiction ("default" included). */
export function consentModes(purpose: Purpose): Record<string, ConsentMode> {
  return typeof purpose.consent === 'string' ? { default: purpose.consent } : { ...purpose.consent };
}

/** The strictest of some modes (opt-in over opt-out over required). */
export function strictestMode(modes: readonly ConsentMode[]): ConsentMode {
  return modes.reduce<ConsentMode>(
    (a, b) => (CONSENT_STRICTNESS[b] > CONSENT_STRICTNESS[a] ? b : a),
    'required',
  );
}

/** The JSON Schema of the manifest, as published in docs/pledge.schema.json. */
export function manifestJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(manifestSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://pledge.dev/schema/pledge.schema.json',
    title: 'Pledge manifest (pledge.yaml)',
  };
}
