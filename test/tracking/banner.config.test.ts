/**
 * The configuration /pledge.js is built with: what the banner asks and holds, its texts with their
 * fallbacks, and a notice version that changes when what the visitor agreed to changes (so the
 * banner asks again), and only then.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { parseDocument, type Document } from 'yaml';
import { parseManifest } from '../../src/manifest/manifest.loader.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import { bannerConfigOf } from '../../src/tracking/banner.config.js';
import type { BannerConfig } from '../../src/tracking/banner.contract.js';
import { PARTNER_ADS } from '../helpers/manifests.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

const exampleText = await readFile(EXAMPLE_MANIFEST, 'utf8');
const PUBLIC_URL = 'https://pledge.example.com';

function manifestOf(edit: (doc: Document) => void = () => {}): Manifest {
  const doc = parseDocument(exampleText);
  edit(doc);
  const loaded = parseManifest(doc.toString(), 'pledge.yaml');
  assert.ok(loaded.manifest, JSON.stringify(loaded.problems));
  return loaded.manifest;
}

function configOf(edit?: (doc: Document) => void): BannerConfig {
  const config = bannerConfigOf(manifestOf(edit), { publicUrl: PUBLIC_URL });
  assert.ok(config);
  return config;
}

function indexOf(doc: Document, list: string, key: string): number {
  const items = (doc.get(list) as { items: Array<{ get(k: string): unknown }> }).items;
  return items.findIndex((item) => item.get('key') === key);
}
const bannerAt = (doc: Document) => ['choices', indexOf(doc, 'choices', 'cookie-banner')];

describe('the banner configuration', () => {
  test("the example's banner: one purpose, its cookie and Consent Mode signal, the beacon, three languages", () => {
    const config = configOf();
    assert.match(config.v, /^[A-Za-z0-9_-]{12}$/);
    assert.equal(config.o, PUBLIC_URL);
    assert.equal(config.p, `${PUBLIC_URL}/privacy`);
    assert.equal(config.n, 'pledge_consent');
    assert.equal(config.d, 395);
    assert.deepEqual(config.u, [
      { k: 'site-analytics', g: false, c: ['pledge_vid'], m: ['analytics_storage'] },
    ]);
    assert.deepEqual(config.h, []);
    assert.equal(config.b, 'site-analytics');
    assert.deepEqual(Object.keys(config.t), ['en', 'de', 'fr']);
    // English names no purpose: the manifest's own name and description are shown.
    assert.deepEqual(config.t.en?.purposes['site-analytics'], [
      'Measure how our sites are used',
      'Count visits and interactions with our sites, with cookies and web beacons.',
    ]);
    assert.equal(config.t.de?.purposes['site-analytics']?.[0], 'Nutzung unserer Websites messen');
    assert.equal(config.t.fr?.accept_all, 'Tout accepter');
  });

  test('no banner without a cookie_banner choice holding a banner: block', () => {
    const manifest = manifestOf((d) => d.deleteIn([...bannerAt(d), 'banner']));
    assert.equal(bannerConfigOf(manifest, { publicUrl: PUBLIC_URL }), undefined);
  });

  test('purposes: all asks every purpose that asks for a choice somewhere, never one required everywhere', () => {
    const config = configOf((d) => d.setIn([...bannerAt(d), 'purposes'], 'all'));
    const manifest = manifestOf();
    const required = manifest.purposes.filter((p) => p.consent === 'required').map((p) => p.key);
    assert.ok(required.length > 0, 'the example has required purposes');
    for (const key of required) assert.ok(!config.u.some((p) => p.k === key), `${key} is not asked`);
    assert.ok(config.u.some((p) => p.k === 'site-analytics'));
    assert.ok(config.u.some((p) => p.k === 'marketing-email'));
  });

  test("held hosts: a purpose's domains and a recipient's for the asked purposes it serves, merged per host", () => {
    const config = configOf((d) => {
      d.addIn(
        ['purposes'],
        d.createNode({ ...PARTNER_ADS, domains: ['ads.partner.example', 'cdn.tags.example'] }),
      );
      d.setIn([...bannerAt(d), 'purposes'], d.createNode(['site-analytics', 'partner-ads']));
      d.addIn(
        ['recipients'],
        d.createNode({
          key: 'tag-vendor',
          name: 'Tag vendor',
          kind: 'processor',
          country: 'US',
          purposes: ['site-analytics', 'partner-ads', 'provide-service'],
          categories: ['user.device.cookie_id'],
          domains: ['cdn.tags.example', 'stats.tags.example'],
        }),
      );
    });
    assert.deepEqual(config.h, [
      ['ads.partner.example', ['partner-ads']],
      ['cdn.tags.example', ['partner-ads', 'site-analytics']],
      ['stats.tags.example', ['site-analytics', 'partner-ads']],
    ]);
    assert.deepEqual(
      config.u.map((p) => [p.k, p.g]),
      [
        ['site-analytics', false],
        ['partner-ads', true],
      ],
    );
  });

  test('the notice version changes with the policy version, the purposes, their modes and the texts; not otherwise', () => {
    const base = configOf().v;
    const changed = {
      'policy version': configOf((d) => d.setIn(['policy', 'version'], '9.9')),
      'a consent mode': configOf((d) =>
        d.setIn(['purposes', indexOf(d, 'purposes', 'site-analytics'), 'consent'], 'opt_in'),
      ),
      'a cookie': configOf((d) =>
        d.setIn(['purposes', indexOf(d, 'purposes', 'site-analytics'), 'cookies'], d.createNode(['_ga*'])),
      ),
      'a purpose offered': configOf((d) =>
        d.setIn([...bannerAt(d), 'purposes'], d.createNode(['site-analytics', 'marketing-email'])),
      ),
      'a text': configOf((d) => d.setIn([...bannerAt(d), 'banner', 'languages', 'de', 'accept_all'], 'Ja')),
    };
    for (const [what, config] of Object.entries(changed)) assert.notEqual(config.v, base, what);
    // What the visitor is not asked about: another purpose's description, the organization's address.
    const same = configOf((d) => {
      d.setIn(['purposes', indexOf(d, 'purposes', 'legal-compliance'), 'description'], 'Other words.');
      d.setIn(['organization', 'privacy_contact'], 'someone-else@example.com');
    });
    assert.equal(same.v, base);
  });
});
