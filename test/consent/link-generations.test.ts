/**
 * Preference-center links can be revoked, on every engine: "sign out every link" and erasure raise
 * the person's link generation, after which a link made before is refused with the page that
 * e-mails a fresh one; unsubscribe links and mailto tokens made before keep working.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApp, type App } from '../../src/app.js';
import { createMailtoToken, verifyMailtoToken } from '../../src/comms/mailto-tokens.js';
import { createLinkToken, deriveLinkTokenKeys, type LinkTokenClaims } from '../../src/consent/link-tokens.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { DIALECTS, type TestDatabase } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, openTestStores, randomEmail } from '../helpers/vault.js';

const ctx = createContext({ kind: 'cli', id: 'test' });

/** A token as Pledge mails it today (generation 0 unless given). */
function tokenFor(app: App, claims: LinkTokenClaims, generation = 0): string {
  return createLinkToken(deriveLinkTokenKeys(app.keyring.use('links')), claims, {
    now: new Date(),
    generation,
  });
}

/** The hidden fields of the form posting to `action`, as a browser would submit them. */
function formFields(page: string, action: string): URLSearchParams {
  const start = page.indexOf(`<form method="post" action="${action}">`);
  assert.ok(start >= 0, `the page has a form posting to ${action}`);
  const form = page.slice(start, page.indexOf('</form>', start));
  const params = new URLSearchParams();
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    params.append(m[1] ?? '', (m[2] ?? '').replace(/&amp;/g, '&'));
  }
  return params;
}

function text(page: string): string {
  return page
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;/g, "'")
    .replace(/\s+/g, ' ')
    .trim();
}

for (const dialect of DIALECTS) {
  describe(`link generations on ${dialect}`, () => {
    let app: App;
    let database: TestDatabase;
    let closeStores: () => Promise<void>;

    before(async () => {
      const stores = await openTestStores(dialect, 'pledge-links-');
      database = stores.database;
      closeStores = stores.cleanup;
      const config = {
        ...loadConfig(
          { PLEDGE_DATA_DIR: stores.dataDir, PLEDGE_LOG_LEVEL: 'silent' },
          { manifest: EXAMPLE_MANIFEST },
        ),
        retentionIntervalSeconds: 0,
      };
      app = await createApp(config, { database, keystore: stores.keystore });
    });
    after(async () => {
      await app.close();
      await closeStores();
    });

    const newSubject = async () =>
      (
        await app.vault.createSubject(ctx, {
          kind: 'customer',
          jurisdiction: 'US',
          identifiers: { email: randomEmail() },
        })
      ).id;

    const open = (url: string) => app.http.inject({ method: 'GET', url });

    test('"sign out every link" ends every preference link made before; unsubscribe links keep working', async () => {
      const subjectId = await newSubject();
      const preferences = tokenFor(app, { scope: 'preferences', subjectId });
      const other = tokenFor(app, { scope: 'preferences', subjectId });
      const unsubscribe = tokenFor(app, {
        scope: 'unsubscribe',
        subjectId,
        purpose: 'marketing-email',
        channel: 'email',
      });
      const mailto = createMailtoToken(
        deriveLinkTokenKeys(app.keyring.use('links')),
        { subjectId, purpose: 'marketing-email' },
        { now: new Date() },
      );

      const page = await open(`/preferences?t=${preferences}`);
      assert.equal(page.statusCode, 200);
      assert.ok(text(page.body).includes('Sign out every link'));
      const cookie = page.cookies.find((c) => c.name === 'pledge_csrf');
      assert.ok(cookie);
      const signedOut = await app.http.inject({
        method: 'POST',
        url: '/preferences/sign-out',
        payload: formFields(page.body, '/preferences/sign-out').toString(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          cookie: `${cookie.name}=${cookie.value}`,
        },
      });
      assert.equal(signedOut.statusCode, 200);
      assert.ok(text(signedOut.body).includes('Every link to your privacy choices is signed out'));

      for (const token of [preferences, other]) {
        const refused = await open(`/preferences?t=${token}`);
        assert.equal(refused.statusCode, 403);
        assert.ok(text(refused.body).includes('every link to your privacy choices was signed out'));
        // The page offers a fresh link by e-mail.
        assert.ok(refused.body.includes('<form method="post" action="/unsubscribe/email">'));
      }

      const stillWorks = await open(`/unsubscribe?t=${unsubscribe}`);
      assert.equal(stillWorks.statusCode, 200);
      assert.ok(text(stillWorks.body).includes('Unsubscribe'));
      const mailtoChecked = verifyMailtoToken(deriveLinkTokenKeys(app.keyring.use('links')), mailto, {
        now: new Date(),
        purposes: ['marketing-email'],
      });
      assert.equal(mailtoChecked.ok, true);

      // A link of the new generation works.
      const generation = await app.consent.linkGenerationOf(ctx, subjectId);
      assert.equal(generation, 1);
      assert.equal(
        (await open(`/preferences?t=${tokenFor(app, { scope: 'preferences', subjectId }, 1)}`)).statusCode,
        200,
      );

      const audit = (await app.audit.listBySubject(ctx, subjectId)).filter(
        (e) => e.action === 'consent.links_revoked',
      );
      assert.equal(audit.length, 1);
    });

    test('the link the unsubscribe page offers is of the current generation', async () => {
      const subjectId = await newSubject();
      await app.consent.signOutEveryLink(ctx, subjectId);
      await app.consent.signOutEveryLink(ctx, subjectId);
      const unsubscribe = tokenFor(app, {
        scope: 'unsubscribe',
        subjectId,
        purpose: 'marketing-email',
        channel: 'email',
      });
      const page = await open(`/unsubscribe?t=${unsubscribe}`);
      const cookie = page.cookies.find((c) => c.name === 'pledge_csrf');
      assert.ok(cookie);
      const done = await app.http.inject({
        method: 'POST',
        url: '/unsubscribe',
        payload: formFields(page.body, '/unsubscribe').toString(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          cookie: `${cookie.name}=${cookie.value}`,
        },
      });
      assert.equal(done.statusCode, 200);
      const href = /href="(\/preferences\?t=[^"]+)"/.exec(done.body)?.[1];
      assert.ok(href);
      assert.equal((await open(href)).statusCode, 200);
    });

    test('erasure signs out every preference link of the person', async () => {
      const subjectId = await newSubject();
      const preferences = tokenFor(app, { scope: 'preferences', subjectId });
      assert.equal((await open(`/preferences?t=${preferences}`)).statusCode, 200);
      await app.vault.erase(ctx, subjectId);
      const refused = await open(`/preferences?t=${preferences}`);
      assert.equal(refused.statusCode, 403);
      assert.ok(text(refused.body).includes('signed out (or your data was erased)'));
      assert.equal(await app.consent.linkGenerationOf(ctx, subjectId), 1);
    });
  });
}
