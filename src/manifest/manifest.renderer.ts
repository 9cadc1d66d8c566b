/**
 * Writes the published privacy policy from the manifest, in Markdown and in HTML.
 *
 * Both formats are rendered from one intermediate document (sections of paragraphs and lists, each
 * sentence tagged with the manifest path it came from), so the Markdown and the HTML can never say
 * different things. The output depends on nothing but the manifest: no clock, no locale, no
 * environment, so the same manifest always gives byte-identical text that can be committed and
 * compared.
 */
import { html, safeHref, type SafeHtml } from '../platform/html.js';
import { describeDuration } from './duration.js';
import {
  CONSENT_MODES,
  consentModes,
  type Choice,
  type ConsentMode,
  type LegalBasis,
  type Manifest,
  type Purpose,
  type Recipient,
  type RecipientKind,
  type Source,
  type SourceKind,
} from './manifest.schema.js';
import { formatPath, type ManifestPath } from './problems.js';
import { Taxonomy } from './taxonomy.js';

/** Options of {@link renderPolicyHtml}. */
export interface RenderPolicyHtmlOptions {
  /** Where the server serves {@link POLICY_CSS}; `/assets/policy.css` unless given. */
  stylesheetHref?: string;
  /**
   * Where the server's preference center is. When given, preference-center choices link there
   * instead of their manifest path, and the footer links to it.
   */
  preferencesHref?: string;
}

/** The formats {@link renderPolicy} writes. */
export type PolicyFormat = 'md' | 'html';

// ---------------------------------------------------------------------------------------------
// The intermediate document

type Inline =
  | string
  | { kind: 'link'; href: string | undefined; text: string }
  | { kind: 'strong'; content: Inline[] }
  | { kind: 'time'; datetime: string; text: string };

interface Item {
  path?: ManifestPath;
  content: Inline[];
}

type Block =
  | { kind: 'p'; path?: ManifestPath; content: Inline[]; className?: string }
  | { kind: 'address'; path?: ManifestPath; content: Inline[] }
  | { kind: 'ul'; items: Item[] }
  | { kind: 'h3'; id: string; text: string };

interface Section {
  id: string;
  title: string;
  blocks: Block[];
  /** The update notice is a complementary box, not part of the policy's own sections. */
  aside?: boolean;
}

interface PolicyDocument {
  title: string;
  organization: { name: string; website: string };
  lead: Block[];
  sections: Section[];
  footer: Block[];
}

const link = (text: string, href: string | undefined): Inline => ({ kind: 'link', href, text });
const strong = (...content: Inline[]): Inline => ({ kind: 'strong', content });
const p = (content: Inline[], path?: ManifestPath, className?: string): Block => ({
  kind: 'p',
  content,
  ...(path ? { path } : {}),
  ...(className ? { className } : {}),
});

// ---------------------------------------------------------------------------------------------
// Words

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
function formatDate(iso: string): string {
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

function upperFirst(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Text in typographic quotes, as names of purposes are shown inside sentences. */
export const quote = (text: string): string => `“${text}”`;

/** Ends manifest text with a full stop unless it already ends a sentence ("Ltd." stays "Ltd."). */
export function endSentence(text: string): string {
  return /[.!?…:;]["”’)]?$/.test(text) ? text : `${text}.`;
}

const LEGAL_BASIS_WORDS: Record<LegalBasis, string> = {
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
function describeConsent(purpose: Purpose): string {
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

// ---------------------------------------------------------------------------------------------
// Building the document from the manifest

class PolicyBuilder {
  private readonly taxonomy: Taxonomy;

  constructor(
    private readonly manifest: Manifest,
    private readonly preferencesHref: string | undefined,
  ) {
    this.taxonomy = new Taxonomy(manifest.categories);
  }

  build(): PolicyDocument {
    const m = this.manifest;
    const sections: Section[] = [];
    const notice = this.updateNotice();
    if (notice) sections.push(notice);
    sections.push(
      this.introduction(),
      this.collection(),
      this.use(),
      this.sharing(),
      this.choices(),
      this.contact(),
    );
    const effective: Inline = {
      kind: 'time',
      datetime: m.policy.effective,
      text: formatDate(m.policy.effective),
    };
    const version = m.policy.version === m.policy.effective ? '' : ` (version ${m.policy.version})`;
    const footer: Block[] = [
      p(
        [
          `Privacy Policy Overview of ${m.organization.name}, version ${m.policy.version}, effective `,
          effective,
          '.',
        ],
        ['policy'],
      ),
    ];
    if (this.preferencesHref !== undefined) {
      footer.push(
        p([
          'Manage your privacy choices in our ',
          link('preference center', safeHref(this.preferencesHref)),
          '.',
        ]),
      );
    }
    return {
      title: `Privacy Policy Overview | ${m.organization.name}`,
      organization: { name: m.organization.name, website: m.organization.website },
      lead: [p(['Last updated on ', effective, `${version}.`], ['policy'], 'last-updated')],
      sections,
      footer,
    };
  }

  private categoryName(key: string): string {
    return lowerFirst(this.taxonomy.get(key)?.name ?? key);
  }

  private categories(keys: readonly string[]): string {
    return joinAnd([...new Set(keys)].map((k) => this.categoryName(k)));
  }

  private purposeNames(keys: readonly string[]): string {
    return joinAnd(keys.map((k) => quote(this.manifest.purposes.find((x) => x.key === k)?.name ?? k)));
  }

  private recipientName(key: string): string {
    return this.manifest.recipients.find((r) => r.key === key)?.name ?? key;
  }

  private contactLink(): Inline {
    const email = this.manifest.organization.privacy_contact;
    return link(email, safeHref(`mailto:${email}`));
  }

  private updateNotice(): Section | undefined {
    const { policy } = this.manifest;
    if (policy.summary === undefined && policy.changes.length === 0) return undefined;
    const blocks: Block[] = [
      p(
        [
          strong(`Our privacy policy has been updated effective ${formatDate(policy.effective)}.`),
          ...(policy.summary === undefined ? [] : [` ${policy.summary}`]),
        ],
        policy.summary === undefined ? ['policy', 'effective'] : ['policy', 'summary'],
      ),
    ];
    if (policy.changes.length > 0) {
      blocks.push({
        kind: 'ul',
        items: policy.changes.map((change, i) => ({ path: ['policy', 'changes', i], content: [change] })),
      });
    }
    blocks.push(
      p(
        ['If you have questions about this change, please contact us at ', this.contactLink(), '.'],
        ['organization', 'privacy_contact'],
      ),
    );
    return { id: 'privacy-updated', title: 'Privacy – Updated', blocks, aside: true };
  }

  private introduction(): Section {
    const org = this.manifest.organization;
    const blocks: Block[] = [
      p(
        [
          `This Privacy Policy Overview explains how ${org.name} collects, uses and shares your personal information on `,
          link(org.website, safeHref(org.website)),
          ' and in the products that link to this notice.',
        ],
        ['organization', 'website'],
      ),
    ];
    const items: Item[] = [];
    if (org.description !== undefined) {
      items.push({ path: ['organization', 'description'], content: [endSentence(org.description)] });
    }
    // "Example Online, a division of Example Systems, Inc., is committed": close the apposition.
    const subject = org.legal_name.includes(',') ? `${org.legal_name},` : org.legal_name;
    items.push({
      path: ['organization', 'legal_name'],
      content: [`${subject} is committed to respecting your privacy.`],
    });
    org.certifications.forEach((cert, i) => {
      items.push({
        path: ['organization', 'certifications', i],
        content: [
          strong(cert.url === undefined ? cert.name : link(cert.name, safeHref(cert.url))),
          `: ${endSentence(cert.description)}`,
        ],
      });
    });
    org.transfer_mechanisms.forEach((mechanism, i) => {
      items.push({
        path: ['organization', 'transfer_mechanisms', i],
        content: [endSentence(mechanism.description)],
      });
    });
    blocks.push({ kind: 'ul', items });
    return { id: 'introduction', title: 'Introduction', blocks };
  }

  private collection(): Section {
    const { sources } = this.manifest;
    const blocks: Block[] =
      sources.length === 0
        ? [p(['We do not collect personal information through our sites or products.'], ['sources'])]
        : [{ kind: 'ul', items: sources.map((source, i) => this.sourceItem(source, i)) }];
    return { id: 'information-we-collect', title: 'Information We Collect', blocks };
  }

  private collectionSentence(kind: SourceKind, voluntary: boolean, cats: string): string {
    const supplied = voluntary ? 'you voluntarily supply to us' : 'you supply to us';
    switch (kind) {
      case 'registration':
        return `When you register for an account, we need to collect your ${cats}.`;
      case 'trial_signup':
        return `When you sign up for a free trial, we need to collect your ${cats}.`;
      case 'billing':
        return `When you buy from us, we need to collect billing information: your ${cats}.`;
      case 'survey':
        return `We collect the information ${supplied} through surveys: your ${cats}.`;
      case 'feedback':
        return `We collect the information ${supplied} as feedback: your ${cats}.`;
      case 'product_use':
        return `While you use our products, we collect your ${cats}, as needed to provide the service.`;
      case 'cookie':
        return `We use cookies and web beacons to keep track of your interactions with our sites and services; our cookies record your ${cats}.`;
      case 'web_beacon':
        return `We use cookies and web beacons to keep track of your interactions with our sites and services; our web beacons record your ${cats}.`;
    }
  }

  private sourceItem(source: Source, index: number): Item {
    const passed = new Set(source.pass_through.map((pt) => pt.category));
    const sentences: string[] = [
      this.collectionSentence(source.kind, source.voluntary, this.categories(source.categories)),
    ];
    const asked = ['registration', 'trial_signup', 'billing', 'survey', 'feedback'].includes(source.kind);
    if (source.voluntary && source.kind !== 'survey' && source.kind !== 'feedback') {
      sentences.push('Giving us this information is voluntary.');
    } else if (!source.voluntary && asked) {
      const fields = Object.values(source.fields ?? {});
      const required = new Set(fields.filter((f) => f.required).map((f) => f.category));
      const optional = [...new Set(fields.filter((f) => !f.required).map((f) => f.category))].filter(
        (c) => !required.has(c),
      );
      sentences.push(
        optional.length === 0
          ? 'You need to give us this information to use our services.'
          : `You need to give us this information to use our services, except your ${this.categories(optional)}, which ${optional.length === 1 ? 'is' : 'are'} optional.`,
      );
    }
    const byRecipient = new Map<string, string[]>();
    for (const pt of source.pass_through)
      byRecipient.set(pt.recipient, [...(byRecipient.get(pt.recipient) ?? []), pt.category]);
    for (const [recipient, cats] of byRecipient) {
      sentences.push(
        `${upperFirst(`your ${this.categories(cats)}`)} ${cats.length === 1 ? 'is' : 'are'} passed straight to ${this.recipientName(recipient)} and never stored by us.`,
      );
    }
    sentences.push(`We use it for ${this.purposeNames(source.purposes)}.`);
    const stored = passed.size > 0 ? 'We keep the rest' : 'We keep it';
    sentences.push(`${stored} for up to ${describeDuration(source.retention)}.`);
    if (source.description !== undefined) sentences.push(endSentence(source.description));
    if (source.notice !== undefined)
      sentences.push(`Where we collect it, we tell you: ${quote(source.notice)}`);
    return {
      path: ['sources', index],
      content: [strong(endSentence(source.name)), ` ${sentences.join(' ')}`],
    };
  }

  private use(): Section {
    const m = this.manifest;
    const blocks: Block[] = [
      p(['We use your information for these purposes:']),
      {
        kind: 'ul',
        items: m.purposes.map((purpose, i) => {
          const sentences = [
            endSentence(purpose.description),
            `For this we use your ${this.categories(purpose.categories)}.`,
            LEGAL_BASIS_WORDS[purpose.legal_basis],
            describeConsent(purpose),
          ];
          if (purpose.retention !== undefined) {
            sentences.push(
              `We keep information used for this for at most ${describeDuration(purpose.retention)}.`,
            );
          }
          return {
            path: ['purposes', i],
            content: [strong(endSentence(purpose.name)), ` ${sentences.join(' ')}`],
          };
        }),
      },
    ];
    if (m.retention.length > 0) {
      blocks.push(
        { kind: 'h3', id: 'how-long-we-keep-it', text: 'How long we keep it' },
        {
          kind: 'ul',
          items: m.retention.map((rule, i) => {
            const what =
              rule.category === undefined
                ? 'personal information'
                : `your ${this.categoryName(rule.category)}`;
            const why = rule.purpose === undefined ? '' : ` used for ${this.purposeNames([rule.purpose])}`;
            const reason = rule.reason === undefined ? '' : ` ${endSentence(rule.reason)}`;
            return {
              path: ['retention', i],
              content: [`We never keep ${what}${why} longer than ${describeDuration(rule.max)}.${reason}`],
            };
          }),
        },
      );
    }
    const commitments: Item[] = [
      ...this.pledgeItems(['no_sale', 'never_use', 'never_store', 'encryption']),
      ...m.organization.safeguards.map((text, i) => ({
        path: ['organization', 'safeguards', i],
        content: [text],
      })),
    ];
    if (commitments.length > 0) {
      blocks.push(
        { kind: 'h3', id: 'use-commitments', text: 'Our commitments' },
        { kind: 'ul', items: commitments },
      );
    }
    return { id: 'how-we-use-your-information', title: 'How We Use Your Information', blocks };
  }

  private pledgeItems(kinds: readonly string[]): Item[] {
    return this.manifest.pledges.flatMap((pledge, i) =>
      kinds.includes(pledge.kind) ? [{ path: ['pledges', i], content: [pledge.text] }] : [],
    );
  }

  private sharing(): Section {
    const m = this.manifest;
    const groups: Array<{ kind: RecipientKind; id: string; title: string; intro: string }> = [
      {
        kind: 'processor',
        id: 'service-providers',
        title: 'Service providers',
        intro:
          'In order to conduct business we share some of your information with service providers, who process it on our behalf:',
      },
      {
        kind: 'affiliate',
        id: 'group-companies',
        title: 'Companies of our group',
        intro: 'We share some of your information among the companies of our group:',
      },
      {
        kind: 'third_party',
        id: 'third-parties',
        title: 'Other third parties',
        intro: 'We share some of your information with these third parties:',
      },
      {
        kind: 'authority',
        id: 'authorities',
        title: 'Authorities',
        intro: 'We may need to disclose your information as required by law:',
      },
    ];
    const blocks: Block[] = [];
    for (const group of groups) {
      const items = m.recipients.flatMap((recipient, i) =>
        recipient.kind === group.kind ? [this.recipientItem(recipient, i)] : [],
      );
      if (items.length === 0) continue;
      blocks.push({ kind: 'h3', id: group.id, text: group.title }, p([group.intro]), { kind: 'ul', items });
    }
    if (blocks.length === 0)
      blocks.push(p(['We do not share your personal information with anyone.'], ['recipients']));
    const commitments = this.pledgeItems(['processor_agreement', 'legal_disclosure', 'no_sale']);
    if (commitments.length > 0) {
      blocks.push(
        { kind: 'h3', id: 'share-commitments', text: 'Our commitments' },
        { kind: 'ul', items: commitments },
      );
    }
    return { id: 'how-we-share-your-information', title: 'How We Share Your Information', blocks };
  }

  private recipientItem(recipient: Recipient, index: number): Item {
    const m = this.manifest;
    const sentences: string[] = [];
    if (recipient.description !== undefined) sentences.push(endSentence(recipient.description));
    if (recipient.affiliate !== undefined) {
      const affiliate = m.organization.affiliates.find((a) => a.key === recipient.affiliate);
      if (affiliate && affiliate.name !== recipient.name)
        sentences.push(`This is ${endSentence(affiliate.name)}`);
    }
    sentences.push(
      `They receive your ${this.categories(recipient.categories)}, for ${this.purposeNames(recipient.purposes)}.`,
    );
    const mechanism = m.organization.transfer_mechanisms.find((t) => t.key === recipient.transfer_mechanism);
    sentences.push(
      `They are in ${describePlace(recipient.country)}${mechanism ? `; transfers to them are covered by the ${mechanism.name}` : ''}.`,
    );
    if (recipient.agreement !== undefined) {
      sentences.push(
        `Our agreement with them is ${recipient.agreement.reference}, signed ${formatDate(recipient.agreement.signed)}.`,
      );
    }
    switch (recipient.consideration) {
      case 'none':
        break;
      case 'sale':
        sentences.push('They pay us for your information: this is a sale of your personal information.');
        break;
      case 'trade':
        sentences.push(
          'They give us something in return for your information: this is a trade of your personal information.',
        );
        break;
      case 'rent':
        sentences.push(
          'They pay us to use your information for a time: this is a rental of your personal information.',
        );
        break;
    }
    return {
      path: ['recipients', index],
      content: [strong(endSentence(recipient.name)), ` ${sentences.join(' ')}`],
    };
  }

  private choiceHref(choice: Choice): string | undefined {
    if (choice.kind === 'preference_center' && this.preferencesHref !== undefined)
      return safeHref(this.preferencesHref);
    return choice.path === undefined ? undefined : safeHref(choice.path);
  }

  private choices(): Section {
    const m = this.manifest;
    const items: Item[] = m.choices.map((choice, i) => {
      const href = this.choiceHref(choice);
      const actions = new Set(choice.actions);
      const keys = choicePurposeKeys(m, choice);
      const what = keys.length === 0 ? 'every purpose that offers a choice' : this.purposeNames(keys);
      const verb =
        actions.has('give') && actions.has('withdraw')
          ? `give or withdraw your consent for ${what}`
          : actions.has('give')
            ? `give your consent for ${what}`
            : `opt out of ${what}`;
      const where: Inline[] =
        href !== undefined
          ? ['Visit our ', link(choice.name, href)]
          : choice.kind === 'cookie_banner'
            ? [`Use the ${choice.name} on our sites`]
            : [`Use the ${choice.name}`];
      const rest = choice.global_opt_out
        ? ' There you can also opt out of our collection, use and distribution of your information.'
        : '';
      return { path: ['choices', i], content: [...where, ` to ${verb}.${rest}`] };
    });
    items.push(...this.pledgeItems(['marketing_opt_out']));
    const blocks: Block[] =
      items.length === 0
        ? [
            p(
              ['To change your choices about your information, contact us at ', this.contactLink(), '.'],
              ['organization', 'privacy_contact'],
            ),
          ]
        : [{ kind: 'ul', items }];
    return { id: 'communication-choices', title: 'Communication Choices', blocks };
  }

  private contact(): Section {
    const org = this.manifest.organization;
    const a = org.address;
    const cityLine = [a.city, [a.region, a.postal_code].filter((x) => x !== undefined).join(' ')].join(', ');
    return {
      id: 'contact',
      title: 'Contact',
      blocks: [
        p(
          [
            'If you have questions about this policy or about your information, contact us at ',
            this.contactLink(),
            '.',
          ],
          ['organization', 'privacy_contact'],
        ),
        p(['You can also write to us:']),
        {
          kind: 'address',
          path: ['organization', 'address'],
          // An address line names the country without an article: "United States".
          content: [
            [org.legal_name, a.street, cityLine, describePlace(a.country).replace(/^the /, '')].join(', '),
          ],
        },
      ],
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Markdown

/**
 * Escapes manifest text for Markdown, so a name containing `*`, `[` or `<` is shown as written and
 * cannot become a link or raw HTML when the Markdown is converted. Whitespace is collapsed because
 * a line break inside a list item would end it.
 */
function escapeMarkdown(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/[\\`*_[\]<>]/g, '\\$&')
    .replace(/&(?=#?[A-Za-z0-9]+;)/g, '\\&')
    .replace(/^([#+\-=])/, '\\$1')
    .replace(/^(\d+)([.)])/, '$1\\$2');
}

function markdownHref(href: string, website: string): string {
  // A site path is resolved against the website: a Markdown file is read away from the site.
  const absolute = href.startsWith('/') ? new URL(href, website).href : href;
  return absolute.replace(
    /[()\s]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

function inlineMarkdown(inline: Inline, website: string): string {
  if (typeof inline === 'string') return escapeMarkdown(inline);
  switch (inline.kind) {
    case 'link':
      return inline.href === undefined
        ? escapeMarkdown(inline.text)
        : `[${escapeMarkdown(inline.text)}](${markdownHref(inline.href, website)})`;
    case 'strong':
      return `**${inline.content.map((i) => inlineMarkdown(i, website)).join('')}**`;
    case 'time':
      return escapeMarkdown(inline.text);
  }
}

function blockMarkdown(block: Block, website: string): string {
  const inlines = (content: Inline[]) => content.map((i) => inlineMarkdown(i, website)).join('');
  switch (block.kind) {
    case 'p':
    case 'address':
      return inlines(block.content);
    case 'ul':
      return block.items.map((item) => `- ${inlines(item.content)}`).join('\n');
    case 'h3':
      return `### ${escapeMarkdown(block.text)}`;
  }
}

/** The published policy as Markdown: plain text with headings and lists, no manifest paths. */
export function renderPolicyMarkdown(manifest: Manifest): string {
  const doc = new PolicyBuilder(manifest, undefined).build();
  const website = doc.organization.website;
  const parts: string[] = [
    `# ${escapeMarkdown(doc.title)}`,
    ...doc.lead.map((b) => blockMarkdown(b, website)),
  ];
  for (const section of doc.sections) {
    parts.push(
      `## ${escapeMarkdown(section.title)}`,
      ...section.blocks.map((b) => blockMarkdown(b, website)),
    );
  }
  parts.push('---', ...doc.footer.map((b) => blockMarkdown(b, website)));
  return `${parts.join('\n\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// HTML

function pathAttribute(path: ManifestPath | undefined): SafeHtml | undefined {
  return path === undefined ? undefined : html` data-manifest-path="${formatPath(path)}"`;
}

function inlineHtml(inline: Inline): SafeHtml {
  if (typeof inline === 'string') return html`${inline}`;
  switch (inline.kind) {
    case 'link':
      return inline.href === undefined
        ? html`${inline.text}`
        : html`<a href="${inline.href}">${inline.text}</a>`;
    case 'strong':
      return html`<strong>${inline.content.map(inlineHtml)}</strong>`;
    case 'time':
      return html`<time datetime="${inline.datetime}">${inline.text}</time>`;
  }
}

// Prettier formats html`` templates as HTML, which would move the whitespace of the output; the
// functions that lay out the page are therefore left as written.
// prettier-ignore
function blockHtml(block: Block, indent: string): SafeHtml {
  switch (block.kind) {
    case 'p': {
      const cls = block.className === undefined ? undefined : html` class="${block.className}"`;
      return html`${indent}<p${cls}${pathAttribute(block.path)}>${block.content.map(inlineHtml)}</p>`;
    }
    case 'address':
      return html`${indent}<address${pathAttribute(block.path)}>${block.content.map(inlineHtml)}</address>`;
    case 'ul': {
      const items = block.items.map(
        (item) => html`\n${indent}  <li${pathAttribute(item.path)}>${item.content.map(inlineHtml)}</li>`,
      );
      return html`${indent}<ul>${items}\n${indent}</ul>`;
    }
    case 'h3':
      return html`${indent}<h3 id="${block.id}">${block.text}</h3>`;
  }
}

// prettier-ignore
function sectionHtml(section: Section): SafeHtml {
  const titleId = `${section.id}-title`;
  const blocks = section.blocks.map((b) => html`\n${blockHtml(b, '      ')}`);
  const heading = html`\n      <h2 id="${titleId}">${section.title}</h2>`;
  return section.aside
    ? html`    <aside id="${section.id}" class="policy-update" aria-labelledby="${titleId}">${heading}${blocks}\n    </aside>`
    : html`    <section id="${section.id}" aria-labelledby="${titleId}">${heading}${blocks}\n    </section>`;
}

/**
 * The published policy as a complete HTML5 document: no script, no inline style (the server's
 * Content-Security-Policy forbids both), one stylesheet link, and a `data-manifest-path` on every
 * element whose words come from the manifest so a reviewer can trace each sentence to its source.
 */
// prettier-ignore
export function renderPolicyHtml(manifest: Manifest, options: RenderPolicyHtmlOptions = {}): string {
  const doc = new PolicyBuilder(manifest, options.preferencesHref).build();
  const stylesheet = options.stylesheetHref ?? '/assets/policy.css';
  const website = safeHref(doc.organization.website);
  const siteName =
    website === undefined ? html`${doc.organization.name}` : html`<a href="${website}">${doc.organization.name}</a>`;
  const page = html`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="generator" content="Pledge">
  <title>${doc.title}</title>
  <link rel="stylesheet" href="${stylesheet}">
</head>
<body>
  <a class="skip-link" href="#policy">Skip to the privacy policy</a>
  <header class="site-header">
    <p class="site-name" data-manifest-path="organization.name">${siteName}</p>
  </header>
  <main id="policy" tabindex="-1">
    <h1 data-manifest-path="organization.name">${doc.title}</h1>
${doc.lead.map((b) => html`${blockHtml(b, '    ')}\n`)}${doc.sections.map((s) => html`${sectionHtml(s)}\n`)}  </main>
  <footer class="site-footer">
${doc.footer.map((b) => html`${blockHtml(b, '    ')}\n`)}  </footer>
</body>
</html>
`;
  return page.value;
}

/** The published policy in `format`. */
export function renderPolicy(manifest: Manifest, format: PolicyFormat): string {
  return format === 'html' ? renderPolicyHtml(manifest) : renderPolicyMarkdown(manifest);
}

// ---------------------------------------------------------------------------------------------
// Stylesheet

/**
 * The stylesheet of the HTML policy, served by the server at `/assets/policy.css`. Every text colour
 * has a contrast of at least 6.5:1 with its background (WCAG AA asks 4.5:1), in light and dark mode.
 */
export const POLICY_CSS = `/* Pledge privacy policy. Contrast of every text colour >= 6.5:1 (WCAG AA asks 4.5:1). */
:root {
  color-scheme: light dark;
  --text: #1b1b1f;
  --muted: #4a4d55;
  --background: #ffffff;
  --link: #0a4fbf;
  --focus: #0a4fbf;
  --notice-background: #fff6dc;
  --notice-border: #6f3e00;
  --rule: #c9ccd3;
  --footer-background: #f4f5f7;
}

@media (prefers-color-scheme: dark) {
  :root {
    --text: #e6e6ea;
    --muted: #b8bbc4;
    --background: #16171b;
    --link: #8cb4ff;
    --focus: #8cb4ff;
    --notice-background: #2b2618;
    --notice-border: #ffd27a;
    --rule: #4a4d55;
    --footer-background: #1f2026;
  }
}

*,
*::before,
*::after {
  box-sizing: border-box;
}

html {
  font-size: 100%;
  -webkit-text-size-adjust: 100%;
  text-size-adjust: 100%;
}

body {
  margin: 0;
  background: var(--background);
  color: var(--text);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 1.0625rem;
  line-height: 1.6;
}

.site-header,
main,
.site-footer > * {
  max-width: 44rem;
  margin-left: auto;
  margin-right: auto;
  padding-left: 1.25rem;
  padding-right: 1.25rem;
}

.site-header {
  padding-top: 1.25rem;
}

.site-name {
  margin: 0;
  font-weight: 600;
}

main {
  padding-bottom: 3rem;
}

main:focus {
  outline: none;
}

h1,
h2,
h3 {
  line-height: 1.25;
  margin: 2rem 0 0.75rem;
}

h1 {
  font-size: 2rem;
}

h2 {
  font-size: 1.5rem;
  padding-top: 1.25rem;
  border-top: 1px solid var(--rule);
}

h3 {
  font-size: 1.1875rem;
}

p,
ul,
address {
  margin: 0 0 1rem;
}

ul {
  padding-left: 1.5rem;
}

li {
  margin-bottom: 0.6rem;
}

address {
  font-style: normal;
}

a {
  color: var(--link);
  text-decoration: underline;
  text-underline-offset: 0.15em;
  overflow-wrap: anywhere;
}

a:hover {
  text-decoration-thickness: 2px;
}

:focus-visible {
  outline: 3px solid var(--focus);
  outline-offset: 2px;
  border-radius: 2px;
}

.last-updated,
.site-footer {
  color: var(--muted);
}

.policy-update {
  margin: 1.5rem 0;
  padding: 0.25rem 1.25rem;
  background: var(--notice-background);
  border-left: 0.375rem solid var(--notice-border);
  border-radius: 0.25rem;
}

.policy-update h2 {
  border-top: 0;
  margin-top: 0.75rem;
  padding-top: 0;
}

.skip-link {
  position: absolute;
  left: 1rem;
  top: -100rem;
  padding: 0.5rem 1rem;
  background: var(--background);
  color: var(--link);
  z-index: 1;
}

.skip-link:focus {
  top: 1rem;
}

.site-footer {
  padding: 1.5rem 0;
  background: var(--footer-background);
  border-top: 1px solid var(--rule);
  font-size: 0.9375rem;
}

.site-footer p {
  margin-bottom: 0.5rem;
}

@media print {
  :root {
    --text: #000000;
    --muted: #000000;
    --background: #ffffff;
    --link: #000000;
    --notice-background: #ffffff;
    --notice-border: #000000;
    --footer-background: #ffffff;
  }

  body {
    font-size: 11pt;
  }

  .skip-link {
    display: none;
  }

  main {
    padding-bottom: 0;
  }

  h2,
  h3 {
    break-after: avoid;
  }

  li,
  .policy-update {
    break-inside: avoid;
  }

  main a[href^="http"]::after,
  main a[href^="mailto:"]::after {
    content: " <" attr(href) ">";
    font-size: 0.875em;
    overflow-wrap: anywhere;
  }
}
`;
