/**
 * The beacon endpoints over HTTP, on every engine: a page view or event is counted only when the
 * visitor allowed it (a signed receipt that says so, or an opt-out purpose where they are, without
 * a GPC signal for a purpose it covers), only the fields the manifest declares are kept, nothing
 * personal rests in plaintext (no IP address, no cookie id, no path), bots and bad input count
 * nothing and never get a 500, and the pixel is always an image.
 */
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { parseDocument } from 'yaml';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { PIXEL } from '../../src/tracking/beacons.routes.js';
import { BeaconSeal } from '../../src/tracking/beacons.seal.js';
import type { BeaconEventsTable } from '../../src/tracking/beacons.tables.js';
import { ConsentReceipts } from '../../src/tracking/consent-receipt.js';
import { DIALECTS, type TestDialect } from '../helpers/databases.js';
import { PARTNER_ADS, writeManifestWithPurposes } from '../helpers/manifests.js';
import { DESKTOP_CHROME_UA, EXAMPLE_SITE } from '../helpers/tracking.js';
import { openTestStores, type TestStores } from '../helpers/vault.js';

const SITE = EXAMPLE_SITE;
const OTHER = 'https://evil.example';
/** Pledge's own origin: its pages (the example site) count as a listed site. */
const PUBLIC_URL = 'https://pledge.example-online.test';
const BROWSER_UA = DESKTOP_CHROME_UA;
const IP = '203.0.113.77';
const VISITOR = 'vid_0123456789abcdefXYZ';
const BROWSER = 'browser_0123456789abcdef';
const cli = createContext({ kind: 'cli', id: 'test' });

/**
 * The example manifest plus partner-ads (covered by GPC, opt-out in the US) that the web system
 * serves through a web_beacon source of its own declaring only `path`, and the banner asks about.
 */
async function writeTestManifest(options: { bannerAsksAds?: boolean } = {}): Promise<string> {
  const file = await writeManifestWithPurposes([
    { ...PARTNER_ADS, categories: ['user.device.cookie_id', 'user.behavior.browsing_history'] },
  ]);
  const doc = parseDocument(await readFile(file, 'utf8'));
  doc.addIn(
    ['sources'],
    doc.createNode({
      key: 'ad-beacons',
      name: 'Ad beacons',
      kind: 'web_beacon',
      categories: ['user.behavior.browsing_history'],
      purposes: ['partner-ads'],
      voluntary: false,
      retention: 'P13M',
      fields: { path: { category: 'user.behavior.browsing_history', required: true } },
    }),
  );
  const systems = doc.get('systems') as { items: Array<{ get(k: string): unknown }> };
  const website = systems.items.find((s) => s.get('key') === 'website') as unknown as {
    get(k: string): { add(v: unknown): void };
  };
  website.get('purposes').add('partner-ads');
  website.get('sources').add('ad-beacons');
  // The banner asks about it too, so a receipt speaks of it.
  if (options.bannerAsksAds === false) {
    await writeFile(file, doc.toString());
    return file;
  }
  const choices = doc.get('choices') as { items: Array<{ get(k: string): unknown }> };
  const banner = choices.items.find((c) => c.get('kind') === 'cookie_banner') as unknown as {
    get(k: string): { add(v: unknown): void };
  };
  banner.get('purposes').add('partner-ads');
  await writeFile(file, doc.toString());
  return file;
}

/** A row of beacon_events as the tests read it back. */
type BeaconRow = BeaconEventsTable;

async function openApp(
  dialect: TestDialect,
  manifestFile: string,
  env: Record<string, string> = {},
): Promise<{ app: App; stores: TestStores }> {
  const stores = await openTestStores(dialect, 'pledge-beacons-');
  const config = {
    ...loadConfig(
      {
        PLEDGE_DATA_DIR: stores.dataDir,
        PLEDGE_LOG_LEVEL: 'silent',
        PLEDGE_SITE_ORIGINS: `${SITE},https://blog.example-online.test`,
        PLEDGE_COUNTRY_HEADER: 'cf-ipcountry',
        PLEDGE_PUBLIC_URL: PUBLIC_URL,
        PLEDGE_RATE_LIMIT: '100000',
        ...env,
      },
      { manifest: manifestFile },
    ),
    retentionIntervalSeconds: 0,
  };
  const app = await createApp(config, { database: stores.database, keystore: stores.keystore });
  return { app, stores };
}

for (const dialect of DIALECTS) {
  describe(`beacon ingest on ${dialect}`, () => {
    let manifestFile: string;
    let app: App;
    let stores: TestStores;
    let receipts: ConsentReceipts;
    let seal: BeaconSeal;

    before(async () => {
      manifestFile = await writeTestManifest();
      ({ app, stores } = await openApp(dialect, manifestFile));
      receipts = new ConsentReceipts(app.keyring.use('banner_receipts'), { maxAgeDays: 395 });
      seal = new BeaconSeal(app.keyring.use('beacons'));
    });
    after(async () => {
      await app.close();
      await stores.cleanup();
      await rm(path.dirname(manifestFile), { recursive: true, force: true });
    });

    const rows = async (): Promise<BeaconRow[]> =>
      await stores.database.tables.selectFrom('beacon_events').selectAll().orderBy('id').execute();
    const receipt = (allowed: string[], jurisdiction = 'DE') =>
      receipts.issue({ browser: BROWSER, allowed, jurisdiction, issuedAt: new Date() });
    /** Sends a beacon; returns the rows it added. */
    const beacon = async (
      body: unknown,
      options: { country?: string; headers?: Record<string, string>; contentType?: string } = {},
    ) => {
      const before = (await rows()).length;
      const res = await app.http.inject({
        method: 'POST',
        url: '/api/v1/beacon',
        remoteAddress: IP,
        headers: {
          'content-type': options.contentType ?? 'text/plain;charset=UTF-8',
          origin: SITE,
          'user-agent': BROWSER_UA,
          ...(options.country !== undefined ? { 'cf-ipcountry': options.country } : {}),
          ...options.headers,
        },
        payload: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { res, added: (await rows()).slice(before) };
    };
    const pixel = async (query: string, headers: Record<string, string> = {}) => {
      const before = (await rows()).length;
      const res = await app.http.inject({
        method: 'GET',
        url: `/b.gif${query}`,
        remoteAddress: IP,
        headers: { 'user-agent': BROWSER_UA, referer: `${SITE}/pricing`, ...headers },
      });
      return { res, added: (await rows()).slice(before) };
    };

    test('a receipt that allows the purpose counts it, with the cookie id hashed and the fields sealed', async () => {
      const { res, added } = await beacon(
        {
          path: '/pricing?coupon=ada@example.com#top',
          referrer: 'https://news.example.org/story/1',
          event: 'signup_click',
          receipt: receipt(['site-analytics']),
          visitor: VISITOR,
        },
        { country: 'DE' },
      );
      assert.equal(res.statusCode, 204, res.body);
      assert.equal(res.headers['access-control-allow-origin'], SITE);
      assert.equal(added.length, 1);
      const row = added[0]!;
      assert.equal(row.purpose, 'site-analytics');
      assert.equal(row.channel, 'web');
      assert.equal(row.source, 'web-beacons');
      assert.equal(row.site, 'www.example-online.test');
      assert.equal(row.kind, 'event');
      assert.equal(row.cookieless, 0);
      assert.equal(row.campaign_id, null);
      assert.match(row.visitor, /^[0-9a-f]{64}$/);
      assert.equal(row.visitor, seal.visitorHash(VISITOR));
      assert.doesNotMatch(JSON.stringify(row), /pricing|news\.example|signup_click|vid_0123/);
      // The query (which may hold an address) is cut before anything is kept.
      assert.deepEqual(seal.open(row.id, row.sealed), {
        path: '/pricing',
        referrer: 'news.example.org',
        event: 'signup_click',
      });
      // The same cookie, the same visitor.
      const again = await beacon(
        { path: '/docs', receipt: receipt(['site-analytics']), visitor: VISITOR },
        { country: 'DE' },
      );
      assert.equal(again.added[0]?.visitor, row.visitor);
      assert.equal(again.added[0]?.kind, 'pageview');
    });

    test('a receipt that refuses counts nothing, even where the purpose is opt-out', async () => {
      for (const country of ['DE', 'US']) {
        const { res, added } = await beacon(
          { path: '/refused', receipt: receipt([], country), visitor: VISITOR },
          { country },
        );
        assert.equal(res.statusCode, 204, res.body);
        assert.deepEqual(added, [], `nothing counted after a rejection in ${country}`);
      }
    });

    test('a forged receipt proves nothing: in the EU nothing is counted, in the US only cookieless', async () => {
      const real = receipt([]);
      // The same receipt claiming a yes it never got.
      const parts = real.split('.');
      parts[5] = 'site-analytics';
      const forged = parts.join('.');
      assert.notEqual(forged, real);
      const eu = await beacon({ path: '/forged', receipt: forged, visitor: VISITOR }, { country: 'FR' });
      assert.equal(eu.res.statusCode, 204);
      assert.deepEqual(eu.added, []);
      const us = await beacon({ path: '/forged', receipt: forged, visitor: VISITOR }, { country: 'US' });
      assert.equal(us.added.length, 1);
      assert.equal(us.added[0]?.cookieless, 1);
      assert.notEqual(us.added[0]?.visitor, seal.visitorHash(VISITOR));
    });

    test('without a receipt: opt-in (or an unknown country) counts nothing', async () => {
      for (const country of ['DE', undefined, 'XX']) {
        const { res, added } = await beacon({ path: '/no-receipt', visitor: VISITOR }, { country });
        assert.equal(res.statusCode, 204, res.body);
        assert.deepEqual(added, [], `nothing counted for ${String(country)}`);
      }
    });

    test('without a receipt in the US: a cookieless count, the IP nowhere in the database', async () => {
      const { res, added } = await beacon({ path: '/us-page', visitor: VISITOR }, { country: 'US' });
      assert.equal(res.statusCode, 204, res.body);
      assert.equal(added.length, 1);
      const row = added[0]!;
      assert.equal(row.cookieless, 1);
      assert.match(row.visitor, /^[0-9a-f]{64}$/);
      // The cookie id is not used without a choice that allows it.
      assert.notEqual(row.visitor, seal.visitorHash(VISITOR));
      // Same network, browser and site, same day: the same cookieless visitor; another browser, another.
      const again = await beacon({ path: '/us-other' }, { country: 'US' });
      assert.equal(again.added[0]?.visitor, row.visitor);
      const other = await beacon(
        { path: '/us-other' },
        { country: 'US', headers: { 'user-agent': `${BROWSER_UA} Edg/131.0` } },
      );
      assert.notEqual(other.added[0]?.visitor, row.visitor);
      const salts = await stores.database.tables.selectFrom('beacon_salts').selectAll().execute();
      assert.equal(salts.length, 1);
      assert.equal(Buffer.from(salts[0]!.salt, 'base64').length, 32);
    });

    test('Sec-GPC: 1 stops a purpose GPC covers, and only such a purpose', async () => {
      const gpc = { 'sec-gpc': '1' };
      const ads = await beacon({ path: '/ads', purpose: 'partner-ads' }, { country: 'US', headers: gpc });
      assert.equal(ads.res.statusCode, 204);
      assert.deepEqual(ads.added, []);
      // Even a receipt that allowed it earlier does not outweigh the signal sent now.
      const withReceipt = await beacon(
        { path: '/ads', purpose: 'partner-ads', receipt: receipt(['partner-ads'], 'US') },
        { country: 'US', headers: gpc },
      );
      assert.deepEqual(withReceipt.added, []);
      const noSignal = await beacon({ path: '/ads', purpose: 'partner-ads' }, { country: 'US' });
      assert.equal(noSignal.added.length, 1);
      const analytics = await beacon({ path: '/gpc-analytics' }, { country: 'US', headers: gpc });
      assert.equal(analytics.added.length, 1, 'site-analytics is not covered by GPC');
    });

    test('only the fields the manifest declares are kept; anything else is dropped unseen', async () => {
      // ad-beacons declares only `path`, and no source of partner-ads declares the visitor cookie.
      const { added } = await beacon(
        {
          path: '/ad-landing',
          purpose: 'partner-ads',
          referrer: 'partner.example',
          event: 'ad_click',
          receipt: receipt(['partner-ads'], 'US'),
          visitor: VISITOR,
          email: 'ada@example.com',
          ip: '198.51.100.9',
        },
        { country: 'US' },
      );
      assert.equal(added.length, 1);
      const row = added[0]!;
      assert.equal(row.source, 'ad-beacons');
      assert.deepEqual(seal.open(row.id, row.sealed), { path: '/ad-landing' });
      assert.equal(row.cookieless, 1, 'no declared visitor field: a cookieless count');
      assert.doesNotMatch(JSON.stringify(await rows()), /ada@example|198\.51\.100/);
    });

    test('bots and requests without a user agent count nothing', async () => {
      for (const ua of [
        'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
        'curl/8.5.0',
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36',
        '',
      ]) {
        const { res, added } = await beacon(
          { path: '/bot', receipt: receipt(['site-analytics'], 'US') },
          { country: 'US', headers: { 'user-agent': ua } },
        );
        assert.equal(res.statusCode, 204, ua);
        assert.deepEqual(added, [], `not counted: ${ua || '(no user agent)'}`);
        const img = await pixel('?p=/bot', { 'cf-ipcountry': 'US', 'user-agent': ua });
        assert.deepEqual(img.res.rawPayload, PIXEL);
        assert.deepEqual(img.added, []);
      }
    });

    test('malformed and oversized bodies: 4xx in the one error shape, nothing stored, never 500', async () => {
      const cases: Array<[string, string, number, string]> = [
        ['text/plain', 'not json', 400, 'request.invalid_json'],
        ['text/plain', '', 400, 'request.invalid_json'],
        ['text/plain', '[1,2]', 400, 'request.invalid'],
        ['text/plain', '"x"', 400, 'request.invalid'],
        ['text/plain', '{"__proto__":{"path":"/x"}}', 400, 'request.invalid_json'],
        ['text/plain', '{"referrer":"a.example"}', 400, 'request.invalid'],
        ['text/plain', '{"path":"no-slash"}', 400, 'request.invalid'],
        ['text/plain', '{"path":42}', 400, 'request.invalid'],
        ['text/plain', JSON.stringify({ path: '/x', event: '<script>' }), 400, 'request.invalid'],
        ['application/json', '{"path":', 400, 'request.invalid_json'],
        ['text/plain', JSON.stringify({ path: `/${'a'.repeat(5000)}` }), 413, 'request.too_large'],
        ['application/json', JSON.stringify({ path: `/${'a'.repeat(5000)}` }), 413, 'request.too_large'],
        ['application/xml', '<beacon/>', 415, 'request.unsupported_media_type'],
      ];
      for (const [contentType, payload, status, code] of cases) {
        const { res, added } = await beacon(payload, { contentType, country: 'US' });
        const where = `${contentType} ${payload.slice(0, 40)}`;
        assert.equal(res.statusCode, status, `${where}: ${res.body}`);
        assert.equal(res.json<{ error: { code: string } }>().error.code, code, where);
        assert.deepEqual(added, [], where);
      }
    });

    test('a purpose the web system does not serve is refused; an unknown one is a 400', async () => {
      const served = await beacon({ path: '/x', purpose: 'marketing-email' }, { country: 'US' });
      assert.equal(served.res.statusCode, 403, served.res.body);
      assert.equal(served.res.json<{ error: { code: string } }>().error.code, 'auth.purpose_not_allowed');
      const unknown = await beacon({ path: '/x', purpose: 'no-such-purpose' }, { country: 'US' });
      assert.equal(unknown.res.statusCode, 400, unknown.res.body);
      assert.equal(unknown.res.json<{ error: { code: string } }>().error.code, 'tracking.purpose_unknown');
      assert.deepEqual([...served.added, ...unknown.added], []);
      // The pixel says nothing either way: the image, nothing counted.
      const img = await pixel('?p=/x&e=y', { 'cf-ipcountry': 'DE' });
      assert.deepEqual(img.res.rawPayload, PIXEL);
    });

    test('text/plain is taken here and nowhere else: another JSON route answers 415', async () => {
      const { res, added } = await beacon({ path: '/plain' }, { country: 'US', contentType: 'text/plain' });
      assert.equal(res.statusCode, 204);
      assert.equal(added.length, 1);
      const json = await beacon({ path: '/json' }, { country: 'US', contentType: 'application/json' });
      assert.equal(json.res.statusCode, 204);
      assert.equal(json.added.length, 1);
      const key = (
        await app.apiKeys.createKey(cli, { name: 'plain', system: 'web-app', scopes: ['consent:write'] })
      ).key;
      const other = await app.http.inject({
        method: 'POST',
        url: '/api/v1/consent',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'text/plain' },
        payload: '{}',
      });
      assert.equal(other.statusCode, 415, other.body);
      assert.equal(other.json<{ error: { code: string } }>().error.code, 'request.unsupported_media_type');
    });

    test('CORS: a listed site origin may call from a page, another may not and counts nothing', async () => {
      const preflight = (origin: string) =>
        app.http.inject({
          method: 'OPTIONS',
          url: '/api/v1/beacon',
          headers: {
            origin,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type',
          },
        });
      const ok = await preflight(SITE);
      assert.equal(ok.statusCode, 204, ok.body);
      assert.equal(ok.headers['access-control-allow-origin'], SITE);
      assert.match(String(ok.headers['access-control-allow-methods']), /POST/);
      const refused = await preflight(OTHER);
      assert.ok(refused.statusCode >= 400 && refused.statusCode < 500, refused.body);
      assert.equal(refused.headers['access-control-allow-origin'], undefined);
      // sendBeacon's text/plain needs no preflight: the server itself refuses to count for another site.
      const { res, added } = await beacon(
        { path: '/elsewhere' },
        { country: 'US', headers: { origin: OTHER } },
      );
      assert.equal(res.statusCode, 204);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.deepEqual(added, []);
      const own = await beacon(
        { path: '/example-site/' },
        { country: 'US', headers: { origin: PUBLIC_URL } },
      );
      assert.equal(own.added[0]?.site, 'pledge.example-online.test', "Pledge's own pages count");
      const img = await pixel('?p=/elsewhere', { 'cf-ipcountry': 'US', referer: `${OTHER}/page` });
      assert.deepEqual(img.res.rawPayload, PIXEL);
      assert.deepEqual(img.added, []);
    });

    test('/b.gif: always a 1×1 GIF, uncached and embeddable cross-origin; counts as POST would', async () => {
      const us = await pixel('?p=%2Fpricing%3Fref%3Dmail&r=news.example.org&e=view', {
        'cf-ipcountry': 'US',
      });
      assert.equal(us.res.statusCode, 200);
      assert.equal(us.res.headers['content-type'], 'image/gif');
      assert.equal(us.res.headers['cache-control'], 'no-store');
      assert.equal(us.res.headers['cross-origin-resource-policy'], 'cross-origin');
      assert.deepEqual(us.res.rawPayload, PIXEL);
      assert.equal(us.added.length, 1);
      const row = us.added[0]!;
      assert.equal(row.cookieless, 1);
      assert.equal(row.site, 'www.example-online.test');
      assert.deepEqual(seal.open(row.id, row.sealed), {
        path: '/pricing',
        referrer: 'news.example.org',
        event: 'view',
      });
      // Where the purpose is opt-in, a pixel (which carries no choice) counts nothing; a token that is
      // not one counts no open: an image all the same.
      for (const [query, country] of [
        ['?p=/eu', 'DE'],
        ['?m=not-a-token', 'US'],
      ] as const) {
        const img = await pixel(query, { 'cf-ipcountry': country });
        assert.equal(img.res.headers['content-type'], 'image/gif', query);
        assert.deepEqual(img.res.rawPayload, PIXEL, query);
        assert.deepEqual(img.added, [], query);
      }
      // What is not a path or an event name is dropped; the view still counts, the image still shows.
      for (const query of ['?p=%ZZ', '?p=no-slash&e=%3Cscript%3E', `?p=/${'a'.repeat(5000)}`]) {
        const img = await pixel(query, { 'cf-ipcountry': 'US' });
        assert.deepEqual(img.res.rawPayload, PIXEL, query);
        assert.equal(img.added.length, 1, query);
        assert.deepEqual(seal.open(img.added[0]!.id, img.added[0]!.sealed), {}, query);
        assert.equal(img.added[0]!.kind, 'pageview', query);
      }
      // HEAD asks about the image and counts nothing.
      const head = await app.http.inject({
        method: 'HEAD',
        url: '/b.gif?p=/head',
        headers: { 'user-agent': BROWSER_UA, 'cf-ipcountry': 'US' },
      });
      assert.equal(head.statusCode, 200);
      assert.equal(head.headers['content-type'], 'image/gif');
      assert.equal((await rows()).filter((r) => seal.open(r.id, r.sealed).path === '/head').length, 0);
    });

    test('many beacons at once: each answered after the commit that holds it, none lost', async () => {
      const before = (await rows()).length;
      const answers = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          app.http.inject({
            method: 'POST',
            url: '/api/v1/beacon',
            remoteAddress: `198.51.100.${i}`,
            headers: {
              'content-type': 'text/plain',
              origin: SITE,
              'user-agent': BROWSER_UA,
              'cf-ipcountry': 'US',
            },
            payload: JSON.stringify({ path: `/burst/${i}` }),
          }),
        ),
      );
      assert.deepEqual(new Set(answers.map((a) => a.statusCode)), new Set([204]));
      assert.equal((await rows()).length, before + 60);
    });

    test('an e-mail open, once its handler allowed it, is an email-channel event of a hashed person', async () => {
      const ctx = createContext({ kind: 'anonymous' }, { system: 'website' });
      const subjectId = '0190a4d2-0000-7000-8000-000000000001';
      const outcome = await app.beacons.recordMailOpen(ctx, {
        purpose: 'site-analytics',
        campaignId: 'camp-1',
        subjectId,
        userAgent: BROWSER_UA,
      });
      assert.equal(outcome.counted, true);
      const row = (await rows()).find((r) => r.channel === 'email')!;
      assert.equal(row.campaign_id, 'camp-1');
      assert.equal(row.cookieless, 0);
      assert.doesNotMatch(JSON.stringify(row), new RegExp(subjectId));
    });

    test('rate limits apply to both endpoints', async () => {
      for (const res of [
        (await beacon({ path: '/limited' }, { country: 'US' })).res,
        (await pixel('?p=/limited')).res,
      ])
        assert.equal(res.headers['x-ratelimit-limit'], '100000', res.headers['content-type'] as string);
    });

    test('nothing personal at rest: no IP address or cookie id anywhere, no path in a raw event', async () => {
      // Never stored in any form: the client's address (truncated or not), the cookie id, what the
      // manifest does not declare.
      const never = ['203.0.113', '198.51.100', VISITOR, 'ada@example'];
      // Declared fields: sealed in the raw events (the daily aggregates count declared paths by name).
      const sealed = ['/pricing', '/us-page', 'signup_click', 'news.example.org'];
      const tables = await everyRow(stores);
      const dump = JSON.stringify(tables);
      assert.ok(dump.includes('web-beacons'), 'the beacon rows are among those searched');
      for (const needle of never) assert.ok(!dump.includes(needle), `no ${needle} in the tables`);
      const raw = JSON.stringify(
        tables.filter(([name]) => name === 'beacon_events' || name === 'beacon_salts'),
      );
      for (const needle of sealed)
        assert.ok(!raw.includes(needle), `no plaintext ${needle} in beacon_events`);
      if (dialect === 'sqlite') {
        const files = await databaseFiles(stores);
        assert.ok(files.length > 0);
        for (const file of files) {
          const bytes = await readFile(file);
          for (const needle of never)
            assert.equal(bytes.indexOf(Buffer.from(needle)), -1, `no ${needle} in ${path.basename(file)}`);
        }
      }
    });
  });

  describe(`beacon rate limit on ${dialect}`, () => {
    let manifestFile: string;
    let app: App;
    let stores: TestStores;

    before(async () => {
      manifestFile = await writeTestManifest();
      ({ app, stores } = await openApp(dialect, manifestFile, { PLEDGE_RATE_LIMIT: '3' }));
    });
    after(async () => {
      await app.close();
      await stores.cleanup();
      await rm(path.dirname(manifestFile), { recursive: true, force: true });
    });

    test('a flood from one client is cut off; the pixel is still an image', async () => {
      const send = () =>
        app.http.inject({
          method: 'POST',
          url: '/api/v1/beacon',
          remoteAddress: IP,
          headers: { 'content-type': 'text/plain', 'user-agent': BROWSER_UA, 'cf-ipcountry': 'US' },
          payload: JSON.stringify({ path: '/flood' }),
        });
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await send()).statusCode);
      assert.deepEqual(statuses, [204, 204, 204, 429, 429]);
      const pixels = [];
      for (let i = 0; i < 5; i++) {
        pixels.push(
          await app.http.inject({
            method: 'GET',
            url: '/b.gif?p=/flood',
            // Another client: the limit counts each client's requests to every route together.
            remoteAddress: '192.0.2.10',
            headers: { 'user-agent': BROWSER_UA, 'cf-ipcountry': 'US' },
          }),
        );
      }
      assert.deepEqual(
        pixels.map((p) => p.statusCode),
        [200, 200, 200, 429, 429],
      );
      for (const p of pixels) assert.deepEqual(p.rawPayload, PIXEL);
      const counted = await stores.database.tables.selectFrom('beacon_events').select('id').execute();
      assert.equal(counted.length, 6);
    });
  });
  describe(`beacons without a web system on ${dialect}`, () => {
    let dir: string;
    let app: App;
    let stores: TestStores;

    before(async () => {
      // The example without `web: true` on its website system (nor the banner, which needs one):
      // the beacon endpoints act as no one.
      const source = await writeTestManifest();
      dir = path.dirname(source);
      const doc = parseDocument(await readFile(source, 'utf8'));
      const systems = doc.get('systems') as {
        items: Array<{ get(k: string): unknown; delete(k: string): void }>;
      };
      for (const system of systems.items) system.delete('web');
      const choices = doc.get('choices') as { items: Array<{ get(k: string): unknown }> };
      const banner = choices.items.findIndex((c) => c.get('kind') === 'cookie_banner');
      doc.deleteIn(['choices', banner]);
      await writeFile(source, doc.toString());
      ({ app, stores } = await openApp(dialect, source));
    });
    after(async () => {
      await app.close();
      await stores.cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    test('POST is refused with auth.web_system_missing, the pixel is an image, nothing is stored', async () => {
      const res = await app.http.inject({
        method: 'POST',
        url: '/api/v1/beacon',
        headers: { 'content-type': 'text/plain', 'user-agent': BROWSER_UA, 'cf-ipcountry': 'US' },
        payload: JSON.stringify({ path: '/nobody' }),
      });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'auth.web_system_missing');
      const img = await app.http.inject({
        method: 'GET',
        url: '/b.gif?p=/nobody',
        headers: { 'user-agent': BROWSER_UA, 'cf-ipcountry': 'US' },
      });
      assert.equal(img.statusCode, 200);
      assert.deepEqual(img.rawPayload, PIXEL);
      const rows = await stores.database.tables.selectFrom('beacon_events').select('id').execute();
      assert.deepEqual(rows, []);
    });
  });
  describe(`a receipt and a purpose the banner does not ask about on ${dialect}`, () => {
    let manifestFile: string;
    let app: App;
    let stores: TestStores;

    before(async () => {
      manifestFile = await writeTestManifest({ bannerAsksAds: false });
      ({ app, stores } = await openApp(dialect, manifestFile));
    });
    after(async () => {
      await app.close();
      await stores.cleanup();
      await rm(path.dirname(manifestFile), { recursive: true, force: true });
    });

    test('the receipt says nothing of it: the consent mode where the visitor is decides', async () => {
      const receipts = new ConsentReceipts(app.keyring.use('banner_receipts'), { maxAgeDays: 395 });
      const issue = (allowed: string[]) =>
        receipts.issue({ browser: BROWSER, allowed, jurisdiction: 'US', issuedAt: new Date() });
      const send = (receipt: string, country: string) =>
        app.http.inject({
          method: 'POST',
          url: '/api/v1/beacon',
          remoteAddress: IP,
          headers: {
            'content-type': 'text/plain',
            origin: SITE,
            'user-agent': BROWSER_UA,
            'cf-ipcountry': country,
          },
          payload: JSON.stringify({ path: '/ads', purpose: 'partner-ads', receipt, visitor: VISITOR }),
        });
      const count = async () =>
        (await stores.database.tables.selectFrom('beacon_events').selectAll().execute()) as BeaconRow[];
      // A refusal of what the banner asked is not a refusal of this: opt-out in the US, counted.
      assert.equal((await send(issue([]), 'US')).statusCode, 204);
      assert.equal((await count()).length, 1);
      // A receipt claiming it (the banner never asks) is no consent: opt-in in the EU, nothing.
      assert.equal((await send(issue(['partner-ads']), 'DE')).statusCode, 204);
      const rows = await count();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.cookieless, 1);
    });
  });
}

/** Every row of every table of the main database, for looking for what must not be there. */
async function everyRow(stores: TestStores): Promise<Array<[string, unknown[]]>> {
  const db = stores.database.kysely;
  const out: Array<[string, unknown[]]> = [];
  const tables = await db.introspection.getTables();
  for (const t of tables) {
    // On PostgreSQL, the test's own schema (the key store has another).
    if (stores.database.schema !== undefined && t.schema !== stores.database.schema) continue;
    const rows = await sql`select * from ${sql.table(t.name)}`.execute(db);
    out.push([t.name, rows.rows]);
  }
  return out;
}

/** The SQLite files of the main database (the file and its WAL). */
async function databaseFiles(stores: TestStores): Promise<string[]> {
  const list = await sql<{ file: string }>`pragma database_list`.execute(stores.database.kysely);
  const main = list.rows.find((r) => r.file !== '')?.file;
  if (main === undefined) return [];
  const dir = path.dirname(main);
  return (await readdir(dir)).filter((f) => f.startsWith(path.basename(main))).map((f) => path.join(dir, f));
}
