/**
 * Sharing among the companies of the group is a declared flow rendered in the policy: each
 * affiliate, what it receives for which purpose (pair by pair when declared so), and the transfer
 * mechanism of one abroad.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadManifestFile } from '../../src/manifest/manifest.loader.js';
import { renderPolicyMarkdown } from '../../src/manifest/manifest.renderer.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

describe('the policy on sharing among the group', () => {
  test('lists both group companies, pair by pair, with the UK transfer mechanism', async () => {
    const loaded = await loadManifestFile(EXAMPLE_MANIFEST);
    assert.ok(loaded.manifest);
    const md = renderPolicyMarkdown(loaded.manifest);
    const group = md.slice(md.indexOf('### Companies of our group'), md.indexOf('### Authorities'));
    assert.match(group, /We share some of your information among the companies of our group/);
    assert.match(
      group,
      /\*\*Companies of the Example Systems group\.\*\*.*your name and e-mail address for “Tell you about products, partners, opportunities and events”/,
    );
    // The parent receives no account data for marketing, and the policy does not say it does.
    assert.doesNotMatch(
      group,
      /account information and product usage, for “Provide the services you request”, “Tell you/,
    );
    assert.match(
      group,
      /\*\*Example Systems UK Ltd\.\*\*.*They are in the United Kingdom; transfers to them are covered by the Standard Contractual Clauses\./,
    );
  });
});
