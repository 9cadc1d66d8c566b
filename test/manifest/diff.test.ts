/**
 * `diffManifests` over a table of edits to the example manifest: each row makes one change and
 * asserts the code a tool matches on, whether people must be told, and that the summary names what
 * changed in words they understand. Also `pledge diff`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { stringify } from 'yaml';
import { diffManifests, renderDiffText, type ManifestChange } from '../../src/manifest/manifest.diff.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import { ROOT, runPledge } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const exampleText = await readFile(EXAMPLE, 'utf8');
const loaded = parseManifest(exampleText, EXAMPLE);
assert.ok(loaded.manifest, 'the example manifest is valid');
const example: Manifest = loaded.manifest;

/** A copy of the example with one change. */
function modified(change: (m: Manifest) => void): Manifest {
  const copy = structuredClone(example);
  change(copy);
  return copy;
}

/** Looks up an entry by key, so a row reads as the change it makes. */
function entry<T extends { key: string }>(list: T[], key: string): T {
  const found = list.find((e) => e.key === key);
  assert.ok(found, `test setup: no entry "${key}"`);
  return found;
}

interface Row {
  name: string;
  change: (m: Manifest) => void;
  kind: string;
  material: boolean;
  path: string;
  /** Words the summary must contain: the thing that changed, named as people know it. */
  says: RegExp[];
}

const ROWS: Row[] = [
  {
    name: 'a source collects a new category',
    change: (m) => entry(m.sources, 'trial-signup').categories.push('user.contact.phone_number'),
    kind: 'category.collected',
    material: true,
    path: 'sources[1].categories[3]',
    says: [/We will now collect your phone number at Free trial sign-up\./],
  },
  {
    name: 'a source names a category it already collected under its parent',
    change: (m) => entry(m.sources, 'billing').categories.push('user.financial.payment_card.last_four'),
    kind: 'category.clarified',
    material: false,
    path: 'sources[2].categories[3]',
    says: [/card last four digits/, /payment card/],
  },
  {
    name: 'a source stops collecting a category',
    change: (m) => {
      const s = entry(m.sources, 'registration');
      s.categories = s.categories.filter((c) => c !== 'user.contact.phone_number');
    },
    kind: 'category.no_longer_collected',
    material: false,
    path: 'sources[0].categories[3]',
    says: [/no longer collect your phone number at Account registration/],
  },
  {
    name: 'a new collection point',
    change: (m) =>
      m.sources.push({
        ...structuredClone(entry(m.sources, 'feedback')),
        key: 'chat',
        name: 'Support chat',
        kind: 'feedback',
      }),
    kind: 'source.added',
    material: true,
    path: 'sources[8]',
    says: [/Support chat/, /feedback and e-mail address/],
  },
  {
    name: 'a collection point is removed',
    change: (m) => {
      m.sources = m.sources.filter((s) => s.key !== 'web-beacons');
    },
    kind: 'source.removed',
    material: false,
    path: 'sources[7]',
    says: [/Web beacons/],
  },
  {
    name: 'a source keeps data longer',
    change: (m) => {
      entry(m.sources, 'registration').retention = 'P10Y';
    },
    kind: 'source.retention_longer',
    material: true,
    path: 'sources[0].retention',
    says: [/Account registration for 10 years instead of 7 years/],
  },
  {
    name: 'a source keeps data for less time',
    change: (m) => {
      entry(m.sources, 'registration').retention = 'P5Y';
    },
    kind: 'source.retention_shorter',
    material: false,
    path: 'sources[0].retention',
    says: [/5 years instead of 7 years/],
  },
  {
    name: 'data from a source is used for a new purpose',
    change: (m) => entry(m.sources, 'customer-survey').purposes.push('marketing-email'),
    kind: 'source.purposes_added',
    material: true,
    path: 'sources[3].purposes',
    says: [/Customer surveys/, /Tell you about products/],
  },
  {
    name: 'a voluntary source becomes compulsory',
    change: (m) => {
      entry(m.sources, 'customer-survey').voluntary = false;
    },
    kind: 'source.no_longer_voluntary',
    material: true,
    path: 'sources[3].voluntary',
    says: [/Customer surveys will no longer be voluntary/],
  },
  {
    name: 'an optional field becomes required',
    change: (m) => {
      entry(m.sources, 'registration').fields!.phone!.required = true;
    },
    kind: 'source.field_required',
    material: true,
    path: 'sources[0].fields.phone',
    says: [/phone number will no longer be optional at Account registration/],
  },
  {
    name: 'card numbers stop passing straight through',
    change: (m) => {
      const billing = entry(m.sources, 'billing');
      billing.pass_through = billing.pass_through.filter(
        (p) => p.category !== 'user.financial.payment_card.number',
      );
    },
    kind: 'source.pass_through_removed',
    material: true,
    path: 'sources[2].pass_through[0]',
    says: [/card number/, /Card processor/, /may now store it/],
  },
  {
    name: 'a new recipient',
    change: (m) =>
      m.recipients.push({
        key: 'ad-network',
        name: 'AdNet Ltd.',
        kind: 'third_party',
        categories: ['user.contact.email', 'user.behavior.browsing_history'],
        purposes: ['site-analytics'],
        country: 'IE',
        consideration: 'none',
      }),
    kind: 'recipient.added',
    material: true,
    path: 'recipients[6]',
    says: [/AdNet Ltd\./, /e-mail address and browsing history/, /Ireland/, /Measure how our sites are used/],
  },
  {
    name: 'a recipient is removed',
    change: (m) => {
      m.recipients = m.recipients.filter((r) => r.key !== 'email-delivery');
    },
    kind: 'recipient.removed',
    material: false,
    path: 'recipients[1]',
    says: [/E-mail delivery provider/],
  },
  {
    name: 'a recipient receives new categories',
    change: (m) => entry(m.recipients, 'email-delivery').categories.push('user.contact.phone_number'),
    kind: 'recipient.categories_added',
    material: true,
    path: 'recipients[1].categories',
    says: [/phone number with E-mail delivery provider/],
  },
  {
    name: 'a recipient receives data for a new purpose',
    change: (m) => entry(m.recipients, 'card-processor').purposes.push('marketing-email'),
    kind: 'recipient.purposes_added',
    material: true,
    path: 'recipients[0].purposes',
    says: [/Card processor/, /Tell you about products/],
  },
  {
    name: 'a recipient starts paying for data',
    change: (m) => {
      entry(m.recipients, 'email-delivery').consideration = 'sale';
    },
    kind: 'recipient.consideration_changed',
    material: true,
    path: 'recipients[1].consideration',
    says: [/E-mail delivery provider/, /sale of your personal information/],
  },
  {
    name: 'a recipient moves country',
    change: (m) => {
      entry(m.recipients, 'card-processor').country = 'SG';
    },
    kind: 'recipient.country_changed',
    material: true,
    path: 'recipients[0].country',
    says: [/Card processor will hold your information in Singapore instead of the United States/],
  },
  {
    name: 'a processor becomes a third party',
    change: (m) => {
      entry(m.recipients, 'email-delivery').kind = 'third_party';
    },
    kind: 'recipient.kind_changed',
    material: true,
    path: 'recipients[1].kind',
    says: [/a third party instead of a service provider/],
  },
  {
    name: 'a recipient loses its written agreement',
    change: (m) => {
      delete entry(m.recipients, 'card-processor').agreement;
    },
    kind: 'recipient.agreement_removed',
    material: true,
    path: 'recipients[0]',
    says: [/Card processor/, /DPA-2012-004/],
  },
  {
    name: 'the transfer mechanism of a recipient changes',
    change: (m) => {
      entry(m.recipients, 'group-companies-uk').transfer_mechanism = 'dpf';
    },
    kind: 'transfer.changed',
    material: true,
    path: 'recipients[3].transfer_mechanism',
    says: [/Example Systems UK Ltd\./, /Data Privacy Framework instead of the Standard Contractual Clauses/],
  },
  {
    name: 'an organization-wide transfer mechanism is dropped',
    change: (m) => {
      m.organization.transfer_mechanisms = m.organization.transfer_mechanisms.filter((t) => t.key !== 'dpf');
    },
    kind: 'transfer.removed',
    material: true,
    path: 'organization.transfer_mechanisms[0]',
    says: [/EU-U\.S\. and Swiss-U\.S\. Data Privacy Framework/],
  },
  {
    name: 'a new purpose',
    change: (m) =>
      m.purposes.push({
        key: 'security',
        name: 'Keep our services secure',
        description: 'Detect and stop abuse of our services.',
        use: 'security',
        categories: ['user.device.ip_address'],
        legal_basis: 'legitimate_interest',
        consent: 'required',
        channels: [],
        gpc: false,
      }),
    kind: 'purpose.added',
    material: true,
    path: 'purposes[5]',
    says: [/a new purpose: “Keep our services secure” \(detect and stop abuse of our services\)/],
  },
  {
    name: 'a purpose is removed',
    change: (m) => {
      m.purposes = m.purposes.filter((p) => p.key !== 'improve-products');
    },
    kind: 'purpose.removed',
    material: false,
    path: 'purposes[2]',
    says: [/Improve our products and websites/],
  },
  {
    name: 'marketing in the EU goes from opt-in to opt-out',
    change: (m) => {
      entry(m.purposes, 'marketing-email').consent = { default: 'opt_in', US: 'opt_out', EU: 'opt_out' };
    },
    kind: 'purpose.consent_weakened',
    material: true,
    path: 'purposes[1].consent.EU',
    says: [
      /“Tell you about products, partners, opportunities and events” in the European Union changes from opt-in to opt-out: we may now e-mail you until you object\./,
    ],
  },
  {
    name: 'marketing in the US becomes opt-in',
    change: (m) => {
      entry(m.purposes, 'marketing-email').consent = 'opt_in';
    },
    kind: 'purpose.consent_strengthened',
    material: false,
    path: 'purposes[1].consent',
    says: [
      /in the United States changes from opt-out to opt-in: we will now e-mail you only with your consent/,
    ],
  },
  {
    name: 'the default consent is weakened',
    change: (m) => {
      entry(m.purposes, 'site-analytics').consent = { default: 'opt_out', US: 'opt_out' };
    },
    kind: 'purpose.consent_weakened',
    material: true,
    path: 'purposes[3].consent.default',
    says: [
      /Measure how our sites are used” everywhere without a rule of its own changes from opt-in to opt-out/,
    ],
  },
  {
    name: 'the legal basis of a purpose changes',
    change: (m) => {
      entry(m.purposes, 'improve-products').legal_basis = 'contract';
    },
    kind: 'purpose.legal_basis_changed',
    material: true,
    path: 'purposes[2].legal_basis',
    says: [/Improve our products and websites/, /our contract with you instead of our legitimate interest/],
  },
  {
    name: 'a purpose keeps data longer',
    change: (m) => {
      entry(m.purposes, 'site-analytics').retention = 'P25M';
    },
    kind: 'purpose.retention_longer',
    material: true,
    path: 'purposes[3].retention',
    says: [/Measure how our sites are used/, /25 months instead of 13 months/],
  },
  {
    name: 'a purpose loses its retention limit',
    change: (m) => {
      delete entry(m.purposes, 'marketing-email').retention;
    },
    kind: 'purpose.retention_longer',
    material: true,
    path: 'purposes[1]',
    says: [/no set limit instead of 3 years/],
  },
  {
    name: 'a purpose may use a new category',
    change: (m) => entry(m.purposes, 'marketing-email').categories.push('user.behavior.purchase_history'),
    kind: 'purpose.categories_added',
    material: true,
    path: 'purposes[1].categories',
    says: [
      /“Tell you about products, partners, opportunities and events” we may now also use your purchase history/,
    ],
  },
  {
    name: 'a purpose uses fewer categories',
    change: (m) => {
      entry(m.purposes, 'marketing-email').categories = ['user.contact.email'];
    },
    kind: 'purpose.categories_removed',
    material: false,
    path: 'purposes[1].categories',
    says: [/no longer use your name and organization/],
  },
  {
    name: 'a purpose may reach people on a new channel',
    change: (m) => entry(m.purposes, 'marketing-email').channels.push('phone'),
    kind: 'purpose.channels_added',
    material: true,
    path: 'purposes[1].channels',
    says: [/may now reach you by phone/],
  },
  {
    name: 'a retention rule is dropped',
    change: (m) => {
      m.retention = m.retention.filter((r) => r.category !== 'user.behavior');
    },
    kind: 'retention.rule_removed',
    material: true,
    path: 'retention[0]',
    says: [/no longer limit how long we keep your behavioral data to 2 years/],
  },
  {
    name: 'a pledge is removed',
    change: (m) => {
      m.pledges = m.pledges.filter((p) => p.key !== 'no-sale');
    },
    kind: 'pledge.removed',
    material: true,
    path: 'pledges[0]',
    says: [/We do not sell, trade, or rent your personal information to third parties\./],
  },
  {
    name: 'a pledge is added',
    change: (m) =>
      m.pledges.push({
        key: 'no-ads',
        kind: 'never_use',
        text: 'We never use your data for advertising.',
        purposes: ['provide-service'],
      }),
    kind: 'pledge.added',
    material: false,
    path: 'pledges[7]',
    says: [/We never use your data for advertising\./],
  },
  {
    name: 'a pledge is reworded',
    change: (m) => {
      entry(m.pledges, 'encrypted-at-rest').text =
        'We protect your information with encryption, firewalls and TLS.';
    },
    kind: 'pledge.text_changed',
    material: false,
    path: 'pledges[5].text',
    says: [/encryption, firewalls and TLS/],
  },
  {
    name: 'a never-store pledge lets card numbers go to one more recipient',
    change: (m) => entry(m.pledges, 'card-numbers-pass-through').only_to!.push('email-delivery'),
    kind: 'pledge.narrowed',
    material: true,
    path: 'pledges[1]',
    says: [/We never store your card number/],
  },
  {
    name: 'a choice is removed',
    change: (m) => {
      m.choices = m.choices.filter((c) => c.key !== 'unsubscribe');
    },
    kind: 'choice.removed',
    material: true,
    path: 'choices[0]',
    says: [/Unsubscribe page/],
  },
  {
    name: 'a choice covers fewer purposes',
    change: (m) => {
      entry(m.choices, 'preferences').purposes = ['marketing-email'];
    },
    kind: 'choice.purposes_removed',
    material: true,
    path: 'choices[1].purposes',
    says: [/Preference center/, /Improve our products and websites” and “Measure how our sites are used/],
  },
  {
    name: 'a choice no longer offers the global opt-out',
    change: (m) => {
      entry(m.choices, 'unsubscribe').global_opt_out = false;
    },
    kind: 'choice.global_opt_out_removed',
    material: true,
    path: 'choices[0].global_opt_out',
    says: [/no longer be able to opt out of our collection, use and distribution/, /Unsubscribe page/],
  },
  {
    name: 'a choice no longer lets people withdraw consent',
    change: (m) => {
      entry(m.choices, 'cookie-banner').actions = ['give'];
    },
    kind: 'choice.withdraw_removed',
    material: true,
    path: 'choices[3].actions',
    says: [/withdraw your consent with the Cookie banner/],
  },
  {
    name: 'a certification is dropped',
    change: (m) => {
      m.organization.certifications = [];
    },
    kind: 'certification.removed',
    material: true,
    path: 'organization.certifications[0]',
    says: [/TrustSeal Privacy Program/],
  },
  {
    name: 'a safeguard is dropped',
    change: (m) => {
      m.organization.safeguards = m.organization.safeguards.slice(0, 2);
    },
    kind: 'safeguard.removed',
    material: true,
    path: 'organization.safeguards[2]',
    says: [/firewalls and access to personal data is logged/],
  },
  {
    name: 'a safeguard is reworded',
    change: (m) => {
      m.organization.safeguards[1] = 'Every connection to our sites and services is encrypted with TLS.';
    },
    kind: 'safeguard.wording_changed',
    material: false,
    path: 'organization.safeguards[1]',
    says: [/Every connection to our sites/],
  },
  {
    name: 'the privacy contact changes',
    change: (m) => {
      m.organization.privacy_contact = 'dpo@example-online.test';
    },
    kind: 'organization.contact_changed',
    material: false,
    path: 'organization.privacy_contact',
    says: [/privacy@example-online\.test to dpo@example-online\.test/],
  },
  {
    name: 'the policy version changes',
    change: (m) => {
      m.policy.version = '2013-01-01';
      m.policy.effective = '2013-01-01';
    },
    kind: 'policy.version_changed',
    material: false,
    path: 'policy.version',
    says: [/2012-09-07/, /2013-01-01/],
  },
  {
    name: 'a purpose is only reworded',
    change: (m) => {
      entry(m.purposes, 'provide-service').description = 'Run your account and meetings, and bill you.';
    },
    kind: 'purpose.wording_changed',
    material: false,
    path: 'purposes[0]',
    says: [/Provide the services you request/],
  },
];

describe('diffManifests', () => {
  test('an unchanged manifest has no changes and is not material', () => {
    assert.deepEqual(diffManifests(example, structuredClone(example)), { material: false, changes: [] });
  });

  for (const row of ROWS) {
    test(`${row.name}: ${row.kind}, ${row.material ? 'material' : 'not material'}`, () => {
      const result = diffManifests(example, modified(row.change));
      assert.deepEqual(
        result.changes.map((c) => c.kind),
        [row.kind],
        `exactly one change, ${row.kind}; got ${JSON.stringify(result.changes, null, 2)}`,
      );
      const change = result.changes[0] as ManifestChange;
      assert.equal(change.material, row.material);
      assert.equal(result.material, row.material);
      assert.equal(change.path, row.path);
      for (const words of row.says) assert.match(change.summary, words);
    });
  }

  test('weakening consent everywhere reports each jurisdiction, and the choice it leaves', () => {
    const result = diffManifests(
      example,
      modified((m) => {
        entry(m.purposes, 'improve-products').consent = 'required';
      }),
    );
    assert.deepEqual(
      result.changes.map((c) => [c.kind, c.path, c.material]),
      [
        // The preference center offers "all" purposes with a choice: this one leaves it.
        ['choice.purposes_removed', 'choices[1].purposes', true],
        ['purpose.consent_weakened', 'purposes[2].consent', true],
        ['purpose.consent_weakened', 'purposes[2].consent', true],
        ['purpose.consent_weakened', 'purposes[2].consent', true],
      ],
    );
    const consent = result.changes.filter((c) => c.kind === 'purpose.consent_weakened');
    assert.deepEqual(
      consent.map((c) => /^“[^”]+” (.*) changes/.exec(c.summary)?.[1]),
      ['everywhere without a rule of its own', 'in the European Union', 'in the United States'],
    );
    assert.match(consent[0]!.summary, /opt-out to required: you will no longer be able to opt out/);
    assert.match(
      result.changes[0]!.summary,
      /no longer be able to use the Preference center for “Improve our products/,
    );
  });

  test('a country inherits the EU rule: an opt-out for France alone is a weakening there', () => {
    const result = diffManifests(
      example,
      modified((m) => {
        entry(m.purposes, 'site-analytics').consent = { default: 'opt_in', US: 'opt_out', FR: 'opt_out' };
      }),
    );
    assert.deepEqual(
      result.changes.map((c) => [c.kind, c.path]),
      [['purpose.consent_weakened', 'purposes[3].consent.FR']],
    );
    assert.match(result.changes[0]!.summary, /in France changes from opt-in to opt-out/);
  });

  test('several changes come sorted by kind, then path, and the same inputs give the same result', () => {
    const after = modified((m) => {
      entry(m.sources, 'registration').retention = 'P10Y';
      m.pledges = m.pledges.filter((p) => p.key !== 'no-sale');
      entry(m.sources, 'trial-signup').categories.push('user.contact.phone_number');
      entry(m.sources, 'customer-survey').categories.push('user.contact.phone_number');
      m.policy.version = '2013';
    });
    const result = diffManifests(example, after);
    assert.deepEqual(
      result.changes.map((c) => `${c.kind} ${c.path}`),
      [
        'category.collected sources[1].categories[3]',
        'category.collected sources[3].categories[2]',
        'pledge.removed pledges[0]',
        'policy.version_changed policy.version',
        'source.retention_longer sources[0].retention',
      ],
    );
    assert.equal(result.material, true);
    assert.deepEqual(diffManifests(example, structuredClone(after)), result);
  });

  test('paths sort by number: sources[10] comes after sources[2]', () => {
    const after = modified((m) => {
      for (let i = 0; i < 4; i++) {
        m.sources.push({
          ...structuredClone(entry(m.sources, 'feedback')),
          key: `extra-${i}`,
          name: `Extra ${i}`,
        });
      }
    });
    const paths = diffManifests(example, after).changes.map((c) => c.path);
    assert.deepEqual(paths, ['sources[8]', 'sources[9]', 'sources[10]', 'sources[11]']);
  });

  test('shorter retention and stronger consent together are not material', () => {
    const result = diffManifests(
      example,
      modified((m) => {
        entry(m.sources, 'registration').retention = 'P5Y';
        entry(m.purposes, 'marketing-email').consent = 'opt_in';
        m.recipients = m.recipients.filter((r) => r.key !== 'authorities');
      }),
    );
    assert.equal(result.changes.length, 3);
    assert.equal(result.material, false);
  });
});

describe('renderDiffText', () => {
  test('lists material changes first, with code, path and summary, and ends with the verdict', () => {
    const result = diffManifests(
      example,
      modified((m) => {
        entry(m.sources, 'registration').retention = 'P5Y';
        entry(m.recipients, 'email-delivery').categories.push('user.contact.phone_number');
      }),
    );
    const text = renderDiffText(result);
    assert.ok(text.endsWith('\nmaterial: yes\n'));
    assert.ok(
      text.indexOf('recipient.categories_added at recipients[1].categories') <
        text.indexOf('source.retention_shorter'),
    );
    assert.match(text, /Material changes.*\(1\):/);
    assert.match(text, /Other changes \(1\):/);
    assert.match(text, /We will now also share your phone number with E-mail delivery provider\./);
  });

  test('says so when nothing changed', () => {
    assert.equal(renderDiffText(diffManifests(example, example)), 'No changes.\n\nmaterial: no\n');
  });
});

describe('pledge diff', () => {
  async function writeManifest(manifest: Manifest): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'pledge-diff-'));
    const file = path.join(dir, 'pledge.yaml');
    await writeFile(file, stringify(manifest));
    return file;
  }

  test('prints the report and exits 0 whatever the verdict', async () => {
    const weaker = await writeManifest(
      modified((m) => {
        m.pledges = m.pledges.filter((p) => p.key !== 'no-sale');
      }),
    );
    const r = await runPledge(['diff', EXAMPLE, weaker]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pledge\.removed at pledges\[0\]/);
    assert.ok(r.stdout.endsWith('material: yes\n'));
    const same = await runPledge(['diff', EXAMPLE, EXAMPLE]);
    assert.equal(same.code, 0);
    assert.ok(same.stdout.endsWith('material: no\n'));
  });

  test('--format json prints the ManifestDiffResult', async () => {
    const after = modified((m) => {
      entry(m.sources, 'registration').retention = 'P10Y';
    });
    const r = await runPledge(['diff', EXAMPLE, await writeManifest(after), '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), diffManifests(example, after));
  });

  test('an unreadable or invalid manifest exits 2 with its problems', async () => {
    const missing = await runPledge(['diff', EXAMPLE, 'no-such-pledge.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no-such-pledge\.yaml:1:1: error manifest\.unreadable/);
    assert.equal(missing.stdout, '');
    const dir = await mkdtemp(path.join(tmpdir(), 'pledge-diff-'));
    const invalid = path.join(dir, 'pledge.yaml');
    await writeFile(invalid, exampleText.replace('consent: required', 'consent: sometimes'));
    const r = await runPledge(['diff', invalid, EXAMPLE]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pledge\.yaml:\d+:\d+: error manifest\.\w+: purposes\[0\]\.consent/);
  });
});
