/**
 * The intermediate document of the published policy: sections of paragraphs and lists, each
 * sentence tagged with the manifest path it came from, built from the manifest. The Markdown and
 * HTML renderers both write this one document, so the two formats can never say different things.
 */
import { safeHref } from '../platform/html.js';
import { describeDuration } from './duration.js';
import type { Choice, Manifest, Recipient, RecipientKind, Source, SourceKind } from './manifest.schema.js';
import type { ManifestPath } from './problems.js';
import { Taxonomy } from './taxonomy.js';
import {
  LEGAL_BASIS_WORDS,
  choicePurposeKeys,
  describeConsent,
  describePlace,
  endSentence,
  formatDate,
  joinAnd,
  lowerFirst,
  quote,
  upperFirst,
} from './policy.wording.js';

export type Inline =
  | string
  | { kind: 'link'; href: string | undefined; text: string }
  | { kind: 'strong'; content: Inline[] }
  | { kind: 'time'; datetime: string; text: string };

export interface Item {
  path?: ManifestPath;
  content: Inline[];
}

export type Block =
  | { kind: 'p'; path?: ManifestPath; content: Inline[]; className?: string }
  | { kind: 'address'; path?: ManifestPath; content: Inline[] }
  | { kind: 'ul'; items: Item[] }
  | { kind: 'h3'; id: string; text: string };

export interface Section {
  id: string;
  title: string;
  blocks: Block[];
  /** The update notice is a complementary box, not part of the policy's own sections. */
  aside?: boolean;
}

export interface PolicyDocument {
  title: string;
  organization: { name: string; website: string };
  lead: Block[];
  sections: Section[];
  footer: Block[];
}

/** Where the list of processors and sub-processors is published (processors.page.ts). */
export const PROCESSORS_PATH = '/privacy/processors';

/** Where the transparency report of legal requests is published (src/share/legal.routes.ts). */
export const TRANSPARENCY_PATH = '/privacy/transparency';
/** The public page where people ask for their data, its erasure or correction, or ask a question. */
export const REQUESTS_PATH = '/requests';

const link = (text: string, href: string | undefined): Inline => ({ kind: 'link', href, text });
const strong = (...content: Inline[]): Inline => ({ kind: 'strong', content });
const p = (content: Inline[], path?: ManifestPath, className?: string): Block => ({
  kind: 'p',
  content,
  ...(path ? { path } : {}),
  ...(className ? { className } : {}),
});

// ---------------------------------------------------------------------------------------------
// Building the document from the manifest

export class PolicyBuilder {
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
    const transparencyReport = p([
      'Our ',
      link('transparency report', TRANSPARENCY_PATH),
      ' counts the requests authorities make for information about people, by type of authority, legal basis and outcome, and how many people and accounts they concerned.',
    ]);
    for (const group of groups) {
      const items = m.recipients.flatMap((recipient, i) =>
        recipient.kind === group.kind ? [this.recipientItem(recipient, i)] : [],
      );
      if (items.length === 0) continue;
      blocks.push({ kind: 'h3', id: group.id, text: group.title }, p([group.intro]), { kind: 'ul', items });
      if (group.kind === 'authority') blocks.push(transparencyReport);
    }
    if (blocks.length === 0)
      blocks.push(p(['We do not share your personal information with anyone.'], ['recipients']));
    if (m.recipients.some((r) => r.kind === 'processor' || r.kind === 'affiliate')) {
      // The list of processors has its own page (and a feed of its changes) so customers can follow it.
      blocks.push(
        p([
          'Our ',
          link('list of processors and sub-processors', PROCESSORS_PATH),
          ' says who processes your information for us, where, and since when; subscribe to ',
          link('its feed of changes', `${PROCESSORS_PATH}.atom`),
          ' to be told when it changes.',
        ]),
      );
    }
    const commitments = this.pledgeItems(['processor_agreement', 'legal_disclosure', 'no_sale']);
    if (commitments.length > 0) {
      blocks.push(
        { kind: 'h3', id: 'share-commitments', text: 'Our commitments' },
        { kind: 'ul', items: commitments },
      );
    }
    // Where the policy speaks of disclosures required by law, it says where they are counted.
    const speaksOfLaw = m.pledges.some((x) => x.kind === 'legal_disclosure');
    if (speaksOfLaw && !blocks.includes(transparencyReport)) blocks.push(transparencyReport);
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
    // Declared pair by pair, it says what goes for which purpose: the union of the pairs would tell
    // people an affiliate gets for marketing what it gets only to provide the service.
    const pairs = recipient.declarations?.filter((d) => (d.categories ?? []).length > 0) ?? [];
    sentences.push(
      pairs.length > 0
        ? `They receive ${joinAnd(pairs.map((d) => `your ${this.categories(d.categories ?? [])} for ${this.purposeNames([d.purpose])}`))}.`
        : `They receive your ${this.categories(recipient.categories)}, for ${this.purposeNames(recipient.purposes)}.`,
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
        p([
          'To ask for a copy of your data, its correction or erasure, to object to a use of it, or to ask a question, use our ',
          link('request form', REQUESTS_PATH),
          '.',
        ]),
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
