/**
 * The share gate and acknowledgements together, on both engines: a server started with a material
 * change to what the e-mail provider receives refuses every disclosure to it with
 * `share.recipient_paused` (and nothing leaves or is recorded as disclosed) until its
 * acknowledgement of the new version is recorded; then the same request discloses.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDocument } from 'yaml';
import type { App } from '../../src/app.js';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS } from '../helpers/databases.js';
import { exampleWithTestSystem } from '../helpers/manifests.js';
import { openShareApp, type ShareTestApp } from './share-app.js';

for (const dialect of DIALECTS) {
  describe(`a paused processor at the share gate (${dialect})`, () => {
    let t: ShareTestApp;
    let changed: App;

    before(async () => {
      t = await openShareApp(dialect);
    });
    after(async () => {
      await t.cleanup();
    });

    const disclose = (app: App, subject: string) =>
      app.http.inject({
        method: 'POST',
        url: '/api/v1/disclosures',
        headers: { authorization: `Bearer ${t.shareKey}` },
        payload: {
          recipient: 'email-delivery',
          purpose: 'provide-service',
          subjects: [subject],
          fields: ['email'],
        },
      });

    test('refused while paused, disclosed once the new version is acknowledged', async () => {
      const ada = await t.register();
      const first = await disclose(t.app, ada.id);
      assert.equal(first.statusCode, 200, first.body);

      // The e-mail provider moves to Canada: a material change to what it receives.
      const doc = parseDocument(await readFile(exampleWithTestSystem(), 'utf8'));
      const list = (doc.toJS() as { recipients: Array<{ key: string }> }).recipients;
      doc.setIn(['recipients', list.findIndex((r) => r.key === 'email-delivery'), 'country'], 'CA');
      doc.setIn(['policy', 'version'], '2026-05-01');
      const file = path.join(t.dataDir, 'pledge-v2.yaml');
      await writeFile(file, doc.toString({ lineWidth: 0 }));
      changed = await t.sibling({ manifestPath: file });

      const refused = await disclose(changed, ada.id);
      assert.notEqual(refused.statusCode, 200, refused.body);
      const error = refused.json<{ error: { code: string; message: string } }>().error;
      assert.equal(error.code, 'share.recipient_paused', refused.body);
      assert.match(error.message, /--version 2026-05-01/);
      assert.ok(!refused.body.includes(ada.email), 'nothing left');
      assert.equal(
        (await t.entries(ada.id, 'share.disclose')).length,
        1,
        'only the first disclosure is recorded',
      );

      // Another processor, untouched, still receives.
      const card = await changed.acknowledgements.standingOf(
        createContext({ kind: 'anonymous' }),
        'card-processor',
      );
      assert.equal(card.ok, true);

      await changed.acknowledgements.acknowledge(createContext({ kind: 'cli', id: 'ops' }), {
        recipient: 'email-delivery',
        version: '2026-05-01',
        by: 'Ada Lovelace',
        method: 'cli',
      });
      const allowed = await disclose(changed, ada.id);
      assert.equal(allowed.statusCode, 200, allowed.body);
      assert.ok(allowed.body.includes(ada.email));
      assert.equal((await t.entries(ada.id, 'share.disclose')).length, 2);
    });
  });
}
