/**
 * The diff rules for what processors receive and pass on: a category a recipient now receives for
 * a further purpose (its declarations widened, though neither list grew), sub-processors added,
 * removed or moved, and a change of notice contact. Each row makes one change to the example and
 * asserts the code, whether it is material, where it is and what people are told.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { diffManifests } from '../../src/manifest/manifest.diff.js';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { Manifest, Recipient } from '../../src/manifest/manifest.schema.js';
import { ROOT } from '../helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'examples/example-online/pledge.yaml');
const loaded = parseManifest(await readFile(EXAMPLE, 'utf8'), EXAMPLE);
assert.ok(loaded.manifest);
const example: Manifest = loaded.manifest;

function recipient(m: Manifest, key: string): Recipient {
  const r = m.recipients.find((x) => x.key === key);
  assert.ok(r, key);
  return r;
}

const ROWS: Array<{
  name: string;
  change: (m: Manifest) => void;
  kind: string;
  material: boolean;
  path: string;
  says: RegExp;
}> = [
  {
    name: 'an affiliate receives for marketing what it received only to provide the service',
    change: (m) => {
      const g = recipient(m, 'group-companies');
      g.declarations = g.declarations?.map((d) =>
        d.purpose === 'marketing-email' ? { ...d, categories: [...d.categories, 'user.account'] } : d,
      );
    },
    kind: 'recipient.declarations_widened',
    material: true,
    path: 'recipients[2].declarations[1]',
    says: /Companies of the Example Systems group will now also receive your .+ for “Tell you about/,
  },
  {
    name: 'a processor adds a sub-processor',
    change: (m) =>
      recipient(m, 'card-processor').sub_processors?.push({
        name: 'Chargeback handling service',
        country: 'CA',
        purpose: 'provide-service',
      }),
    kind: 'sub_processor.added',
    material: true,
    path: 'recipients[0].sub_processors[2]',
    says: /Card processor will now pass your information to Chargeback handling service, in Canada/,
  },
  {
    name: 'a processor drops a sub-processor',
    change: (m) => recipient(m, 'card-processor').sub_processors?.pop(),
    kind: 'sub_processor.removed',
    material: false,
    path: 'recipients[0].sub_processors',
    says: /no longer passes your information to Fraud screening service/,
  },
  {
    name: 'a sub-processor moves abroad',
    change: (m) => {
      const sub = recipient(m, 'email-delivery').sub_processors?.[0];
      assert.ok(sub);
      sub.country = 'SG';
    },
    kind: 'sub_processor.country_changed',
    material: true,
    path: 'recipients[1].sub_processors[0].country',
    says: /Cloud hosting provider, which E-mail delivery provider passes your information to, will hold it in Singapore/,
  },
  {
    name: 'notices go to another address',
    change: (m) => {
      recipient(m, 'card-processor').contact = 'dpo@card-processor.example';
    },
    kind: 'recipient.contact_changed',
    material: false,
    path: 'recipients[0].contact',
    says: /notices of changes to this policy/,
  },
];

describe('pledge diff: processors and sub-processors', () => {
  for (const row of ROWS) {
    test(row.name, () => {
      const after = structuredClone(example);
      row.change(after);
      const { changes } = diffManifests(example, after);
      assert.deepEqual(
        changes.map((c) => [c.kind, c.material, c.path]),
        [[row.kind, row.material, row.path]],
      );
      assert.match(changes[0]!.summary, row.says);
    });
  }
});
