/**
 * The round trip with Fides on Fides' own example files (test/fixtures/fides/, Apache-2.0):
 * `pledge import fides` turns their systems and dataset into manifest blocks that `pledge check`
 * accepts, says what it could not map, and `pledge export fides` writes them back as the same
 * Fides resources, as far as a manifest holds them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { exportFides } from '../../src/manifest/fides.export.js';
import { importFides } from '../../src/manifest/fides.import.js';
import { checkManifest } from '../../src/manifest/manifest.checker.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import { ROOT, runPledge } from '../helpers/cli.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/fides');
const MANIFEST = path.join(FIXTURES, 'pledge.yaml');
const manifestText = await readFile(MANIFEST, 'utf8');
const files = await Promise.all(
  ['demo_system.yml', 'demo_dataset.yml'].map(async (f) => ({
    file: f,
    text: await readFile(path.join(FIXTURES, f), 'utf8'),
  })),
);
type Obj = Record<string, unknown>;
const original = {
  system: (parse(files[0]?.text ?? '') as { system: Obj[] }).system,
  dataset: (parse(files[1]?.text ?? '') as { dataset: Obj[] }).dataset,
};

function load(text: string): Manifest {
  const loaded = parseManifest(text, 'pledge.yaml');
  assert.deepEqual(loaded.problems, [], 'the manifest is schema-valid');
  assert.ok(loaded.manifest);
  assert.deepEqual(checkManifest(loaded.manifest, loaded.locator).problems, [], 'and passes pledge check');
  return loaded.manifest;
}

/** What a manifest holds of a Fides system: the fields the round trip keeps. */
const kept = (s: Obj) => ({
  fides_key: s.fides_key,
  name: s.name,
  description: s.description,
  system_type: s.system_type,
  privacy_declarations: (s.privacy_declarations as Obj[]).map((d) => ({
    data_use: d.data_use,
    data_categories: d.data_categories,
    data_subjects: d.data_subjects,
  })),
});
const keptDataset = (d: Obj) => ({
  fides_key: d.fides_key,
  name: d.name,
  description: d.description,
  collections: (d.collections as Obj[]).map((c) => ({
    name: c.name,
    description: c.description,
    fields: (c.fields as Obj[]).map((f) => ({
      name: f.name,
      description: f.description,
      data_categories: f.data_categories,
    })),
  })),
});

describe('pledge import fides, then pledge export fides, on Fides’ demo files', () => {
  const base = load(manifestText);
  const imported = importFides(files, base);

  test('each privacy declaration goes to the purpose that declares its data use', () => {
    assert.deepEqual(
      imported.systems.map((s) => [s.key, s.declarations]),
      [
        [
          'demo_analytics_system',
          [{ purpose: 'improve-service', categories: ['user.contact', 'user.device.cookie_id'] }],
        ],
        ['demo_marketing_system', [{ purpose: 'advertising', categories: ['user.device.cookie_id'] }]],
      ],
    );
    assert.deepEqual(
      imported.datasets[0]?.collections[0]?.fields.map((f) => [f.name, f.data_categories]),
      [
        ['created_at', ['system.operations']],
        ['email', ['user.contact.email']],
        ['first_name', ['user.name']],
        ['food_preference', []],
        ['state', ['user.contact.address.state']],
        ['uuid', ['user.unique_id']],
      ],
    );
  });

  test('what a manifest has no place for is reported, one line each', () => {
    assert.deepEqual(imported.notes, [
      'demo_system.yml: system demo_analytics_system: administrating_department not imported (a manifest has no place for it)',
      'demo_system.yml: system demo_analytics_system: ingress not imported (a manifest has no place for it)',
      'demo_system.yml: system demo_analytics_system privacy_declarations[0]: dataset_references not imported (a manifest has no place for it)',
      'demo_system.yml: system demo_analytics_system privacy_declarations[0]: name "Analyze customer behaviour for improvements." not kept (the purpose\'s name is used)',
      'demo_system.yml: system demo_marketing_system: administrating_department not imported (a manifest has no place for it)',
      'demo_system.yml: system demo_marketing_system: egress not imported (a manifest has no place for it)',
      'demo_system.yml: system demo_marketing_system privacy_declarations[0]: name "Collect data for marketing" not kept (the purpose\'s name is used)',
    ]);
  });

  test('the imported blocks pass pledge check, and export gives back the same systems and dataset', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pledge-fides-'));
    const blocks = await runPledge([
      'import',
      'fides',
      path.join(FIXTURES, 'demo_system.yml'),
      path.join(FIXTURES, 'demo_dataset.yml'),
      '--manifest',
      MANIFEST,
    ]);
    assert.equal(blocks.code, 1, 'exit 1: some fields were not mapped');
    assert.match(
      blocks.stderr,
      /not mapped: .*demo_system\.yml: system demo_analytics_system: ingress not imported/,
    );
    assert.match(blocks.stderr, /7 things not mapped/);
    const combined = `${manifestText}\n${blocks.stdout}`;
    load(combined);
    const file = path.join(dir, 'pledge.yaml');
    await writeFile(file, combined, 'utf8');

    const exported = await runPledge(['export', 'fides', file]);
    assert.equal(exported.code, 0, exported.stderr);
    const back = parse(exported.stdout) as { system: Obj[]; dataset: Obj[] };
    assert.deepEqual(back.system.map(kept), original.system.map(kept));
    assert.deepEqual(back.dataset.map(keptDataset), original.dataset.map(keptDataset));
  });
});

describe('what cannot be mapped is said, not guessed', () => {
  const base = load(manifestText);

  test('a data use no purpose declares is skipped; a narrower one goes to the purpose above it', () => {
    const result = importFides(
      [
        {
          file: 'x.yml',
          text: `system:
  - fides_key: Billing.Service
    name: Billing
    privacy_declarations:
      - data_use: essential.service.payment_processing
        data_categories: [user.financial.credit_card]
        data_subjects: [customer]
      - data_use: marketing.advertising.third_party.targeted
        data_categories: [user.device.cookie_id, user.made_up]
        data_subjects: [customer, employee]
organization:
  - fides_key: acme
`,
        },
      ],
      base,
    );
    assert.deepEqual(result.systems, [
      {
        key: 'billing_service',
        name: 'Billing',
        declarations: [{ purpose: 'advertising', categories: ['user.device.cookie_id'] }],
      },
    ]);
    assert.deepEqual(result.notes, [
      'x.yml: system Billing.Service: imported under the key "billing_service"',
      'x.yml: system billing_service privacy_declarations[0]: no purpose declares data use "essential.service.payment_processing" (set data_use: essential.service.payment_processing on the purpose it is); declaration skipped',
      'x.yml: system billing_service privacy_declarations[1]: no purpose declares data use "marketing.advertising.third_party.targeted"; mapped to advertising, which declares "marketing.advertising"',
      'x.yml: system billing_service privacy_declarations[1]: data subjects employee are not in data_subjects of purpose advertising',
      'x.yml: system billing_service privacy_declarations[1]: data category "user.made_up" is not in the taxonomy (declare it under categories: first)',
      'x.yml: organization: not imported (only system and dataset resources have a place in a manifest)',
    ]);
  });

  test('export writes Pledge extensions as their fideslang parent and names a purpose without data_use', () => {
    const m = load(
      manifestText.replace('    data_use: marketing.advertising\n', '') +
        `systems:
  - key: billing
    name: Billing
    declarations:
      - purpose: improve-service
        categories: [user.contact.email]
      - purpose: advertising
`,
    );
    m.purposes[0]?.categories.push(
      'user.financial.payment_card.token',
      'user.financial.payment_card.last_four',
    );
    const sys = m.systems[0];
    assert.ok(sys?.declarations?.[0]);
    sys.declarations[0].categories = [
      'user.financial.payment_card.token',
      'user.financial.payment_card.last_four',
    ];
    const result = exportFides(m);
    const back = parse(result.yaml) as { system: Array<{ privacy_declarations: Obj[] }> };
    assert.deepEqual(back.system[0]?.privacy_declarations, [
      {
        name: 'Improve our service',
        data_use: 'functional.service.improve',
        data_categories: ['user.financial.credit_card'],
        data_subjects: ['customer'],
      },
    ]);
    assert.deepEqual(result.notes, [
      'system billing, purpose advertising: not written (the purpose has no data_use, which Fides requires)',
    ]);
  });

  test('a dataset’s fides_meta identity, primary_key and references are kept for the connectors', () => {
    const result = importFides(
      [
        {
          file: 'shop.yml',
          text: `dataset:
  - fides_key: shop
    name: Shop
    collections:
      - name: customer
        fields:
          - name: id
            fides_meta: { primary_key: true, data_type: integer }
          - name: email
            data_categories: [user.contact.email]
            fides_meta: { identity: email }
          - name: mobile
            fides_meta: { identity: phone_number }
      - name: orders
        fields:
          - name: customer_id
            fides_meta:
              references: [{ dataset: shop, field: customer.id, direction: from }]
`,
        },
      ],
      base,
    );
    assert.deepEqual(result.datasets[0]?.collections, [
      {
        name: 'customer',
        fields: [
          { name: 'id', data_categories: [], primary_key: true },
          { name: 'email', data_categories: ['user.contact.email'], identity: 'email' },
          { name: 'mobile', data_categories: [], identity: 'phone' },
        ],
      },
      {
        name: 'orders',
        fields: [
          {
            name: 'customer_id',
            data_categories: [],
            references: [{ dataset: 'shop', field: 'customer.id', direction: 'from' }],
          },
        ],
      },
    ]);
    assert.deepEqual(result.notes, [
      'shop.yml: dataset shop collection customer field id: fides_meta.data_type not imported (connectors do not use it)',
    ]);
    const m = load(manifestText);
    m.datasets.push(...result.datasets);
    const back = parse(exportFides(m).yaml) as { dataset: Array<{ collections: Obj[] }> };
    assert.deepEqual(
      (back.dataset[0]?.collections[0]?.fields as Obj[]).map((f) => f.fides_meta),
      [{ primary_key: true }, { identity: 'email' }, { identity: 'phone_number' }],
      'and written back in Fides’ spelling',
    );
  });

  test('an import with a manifest that fails pledge check exits 2 and writes nothing', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pledge-fides-'));
    const broken = path.join(dir, 'pledge.yaml');
    await writeFile(
      broken,
      manifestText.replace('data_use: marketing.advertising', 'data_use: marketing.adverts'),
    );
    const run = await runPledge([
      'import',
      'fides',
      path.join(FIXTURES, 'demo_system.yml'),
      '--manifest',
      broken,
    ]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /check\.unknown_data_use/);
  });
});
