/**
 * Global Privacy Control, on every engine: a `Sec-GPC: 1` request or the banner's report records an
 * opt-out of the purposes the manifest marks as covered by GPC, once, for a subject or a browser, and
 * a browser's signal follows the person who signs up on it.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS } from '../helpers/databases.js';
import { PARTNER_ADS, TEST_SYSTEM, writeManifestWithPurposes } from '../helpers/manifests.js';
import { openTestStores, type TestStores } from '../helpers/vault.js';

const cli = createContext({ kind: 'cli', id: 'test' });

for (const dialect of DIALECTS) {
  describe(`Global Privacy Control on ${dialect}`, () => {
    let app: App;
    let stores: TestStores;
    let manifestFile: string;
    let key: string;

    before(async () => {
      manifestFile = await writeManifestWithPurposes([PARTNER_ADS]);
      stores = await openTestStores(dialect, 'pledge-gpc-');
      const config = {
        ...loadConfig(
          { PLEDGE_DATA_DIR: stores.dataDir, PLEDGE_LOG_LEVEL: 'silent' },
          { manifest: manifestFile },
        ),
        retentionIntervalSeconds: 0,
      };
      app = await createApp(config, { database: stores.database, keystore: stores.keystore });
      key = (
        await app.apiKeys.createKey(cli, {
          name: 'gpc',
          system: TEST_SYSTEM,
          scopes: ['consent:read', 'consent:write'],
        })
      ).key;
    });
    after(async () => {
      await app.close();
      await stores.cleanup();
      await rm(path.dirname(manifestFile), { recursive: true, force: true });
    });

    const decide = async (subject: string, purpose: string) => {
      const res = await app.http.inject({
        method: 'POST',
        url: '/api/v1/decisions',
        headers: { authorization: `Bearer ${key}` },
        payload: { subject, purpose },
      });
      return res.json<{ decision: { allowed: boolean; reason: string } }>().decision;
    };

    test('Sec-GPC: 1 opts a subject out of the GPC purposes only, and is recorded once', async () => {
      const us = (await app.vault.createSubject(cli, { kind: 'customer', jurisdiction: 'US' })).id;
      assert.equal((await decide(us, 'partner-ads')).reason, 'opt_out_default');
      const send = () =>
        app.http.inject({
          method: 'POST',
          url: '/api/v1/consent',
          headers: { authorization: `Bearer ${key}`, 'sec-gpc': '1' },
          payload: { subject: us, choices: [] },
        });
      const first = await send();
      assert.equal(first.statusCode, 201, first.body);
      assert.deepEqual(
        first
          .json<{ changes: Array<{ purpose: string; state: string; method: string }> }>()
          .changes.map((c) => [c.purpose, c.state, c.method]),
        [['partner-ads', 'denied', 'gpc']],
      );
      assert.deepEqual(await decide(us, 'partner-ads'), {
        subject: us,
        purpose: 'partner-ads',
        channel: null,
        allowed: false,
        reason: 'gpc',
      });
      assert.equal(
        (await decide(us, 'site-analytics')).reason,
        'opt_out_default',
        'analytics is not covered by GPC',
      );
      const second = await send();
      assert.deepEqual(
        second.json<{ changes: unknown[] }>().changes,
        [],
        'a signal already obeyed is not recorded again',
      );
    });

    test("the banner's report for a browser follows the person who signs up on it", async () => {
      const browser = `gpc-browser-${Math.random().toString(36).slice(2, 12)}`;
      const res = await app.http.inject({
        method: 'POST',
        url: '/consent/gpc',
        headers: { 'user-agent': 'Banner-Test/1.0' },
        payload: { browser, gpc: true },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json<{ recorded: number }>().recorded, 1);
      const again = await app.http.inject({
        method: 'POST',
        url: '/consent/gpc',
        headers: { 'sec-gpc': '1' },
        payload: { browser },
      });
      assert.equal(again.json<{ recorded: number }>().recorded, 0);
      const missing = await app.http.inject({ method: 'POST', url: '/consent/gpc', payload: { browser } });
      assert.equal(missing.statusCode, 400);
      assert.equal(missing.json<{ error: { code: string } }>().error.code, 'consent.gpc_missing');

      const us = (await app.vault.createSubject(cli, { kind: 'customer', jurisdiction: 'US' })).id;
      const merge = await app.http.inject({
        method: 'POST',
        url: '/api/v1/consent/merge',
        headers: { authorization: `Bearer ${key}` },
        payload: { browser, subject: us },
      });
      assert.equal(merge.json<{ merged: number }>().merged, 1);
      assert.equal((await decide(us, 'partner-ads')).reason, 'gpc');
    });
  });
}
