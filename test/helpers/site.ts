/**
 * The manifest of the example site's browser tests (test/tracking/site*.test.ts): the example's,
 * plus what it lacks to show blocking by domain and GPC.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { PARTNER_ADS } from './manifests.js';
import { EXAMPLE_MANIFEST } from './vault.js';

/** The purpose the example lacks: targeted advertising, covered by GPC, its tags on tags.localhost. */
export const ADS = 'targeted-advertising';
/** Its name, as the banner's dialog shows it. */
export const ADS_NAME = 'Show you our ads on other sites';

interface YamlItem {
  get(k: string): unknown;
  set(k: string, v: unknown): void;
}

/**
 * The example manifest plus a targeted-advertising purpose (GPC, Consent Mode's ad signals, its
 * vendor's domain, its cookies), asked by the banner beside site-analytics; site-analytics also
 * names the example site's own analytics cookie; `version` is the policy version.
 */
export async function writeSiteManifest(dir: string, version: string): Promise<string> {
  const doc = parseDocument(await readFile(EXAMPLE_MANIFEST, 'utf8'));
  doc.setIn(['policy', 'version'], version);
  doc.addIn(
    ['purposes'],
    doc.createNode({
      // Declared as the tests' partner-ads purpose is (GPC, opt-out in the US), under its own key.
      ...PARTNER_ADS,
      key: ADS,
      name: ADS_NAME,
      description: 'Let our advertising partner use a cookie id to show you our ads on other sites.',
      cookies: ['_ads_*'],
      domains: ['tags.localhost'],
      consent_mode: ['ad_storage', 'ad_user_data', 'ad_personalization'],
    }),
  );
  const items = (list: string) => (doc.get(list) as { items: YamlItem[] }).items;
  const analytics = items('purposes').find((p) => p.get('key') === 'site-analytics')!;
  analytics.set('cookies', doc.createNode(['pledge_vid', '_example_*']));
  items('choices')
    .find((c) => c.get('kind') === 'cookie_banner')!
    .set('purposes', doc.createNode(['site-analytics', ADS]));
  items('systems')
    .find((s) => s.get('web') === true)!
    .set('purposes', doc.createNode(['site-analytics', ADS]));
  const file = path.join(dir, `pledge-${version}.yaml`);
  await writeFile(file, doc.toString());
  return file;
}
