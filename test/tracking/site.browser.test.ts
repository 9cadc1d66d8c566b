/**
 * The test site (examples/site/) in real Chromium, end to end: the site on one origin
 * (http://localhost:P1), a real Pledge server on another (http://127.0.0.1:P2, its
 * PLEDGE_SITE_ORIGINS naming the site, its PLEDGE_COUNTRY_HEADER the header a test sets to place the
 * visitor), and a tag vendor on a third (http://tags.localhost:P3, counting every request it
 * receives). The manifest is the example's plus what it lacks: a targeted-advertising purpose
 * covered by GPC whose tags load from tags.localhost, and a banner that asks it beside
 * site-analytics.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, BrowserContextOptions, Page, Request } from 'playwright-core';
import { createApp, type App } from '../../src/app.js';
import { renderExampleSitePage } from '../../src/cli/example-site.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { BeaconsRepository, type BeaconEventRow } from '../../src/tracking/beacons.repository.js';
import { openKeystore } from '../../src/vault/keystore.js';
import { launchBrowser } from '../helpers/browser.js';
import { openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { getFreePort } from '../helpers/net.js';
import {
  startPageServer,
  startThirdParty,
  type PageServer,
  type ThirdParty,
} from '../helpers/third-party.js';
import { ADS, ADS_NAME, writeSiteManifest } from '../helpers/site.js';

const require = createRequire(import.meta.url);
const ctx = createContext({ kind: 'cli', id: 'test' });

const ANALYTICS_NAME = 'Measure how our sites are used';
const CONSENT_COOKIE = 'pledge_consent';
/** The header the test's "CDN" puts the visitor's country in. */
const COUNTRY_HEADER = 'cf-ipcountry';

/** What axe reports (the tests compile without the DOM types). */
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

describe('the example site in Chromium against a real Pledge server', () => {
  let database: TestDatabase;
  let dataDir: string;
  let app: App;
  let pledge: string;
  let pledgePort: number;
  let site: PageServer;
  /** The site's origin as the browser names it: localhost, another site than Pledge's 127.0.0.1. */
  let siteOrigin: string;
  let tags: ThirdParty;
  let browser: Browser;
  let axeSource: string;
  let userAgent: string;
  let manifestV1: string;
  let manifestV2: string;
  /** The end of what Pledge logged (warnings and errors), for failure messages. */
  let logs = '';

  async function startPledge(manifest: string): Promise<void> {
    const keystore = await openKeystore({ dataDir });
    const config = {
      ...loadConfig(
        {
          PLEDGE_DATA_DIR: dataDir,
          PLEDGE_LOG_LEVEL: 'warn',
          PLEDGE_PUBLIC_URL: pledge,
          PLEDGE_SITE_ORIGINS: siteOrigin,
          PLEDGE_COUNTRY_HEADER: COUNTRY_HEADER,
        },
        { manifest },
      ),
      retentionIntervalSeconds: 0,
    };
    const logStream = new PassThrough();
    logStream.on('data', (d: Buffer) => (logs = (logs + d.toString('utf8')).slice(-20_000)));
    app = await createApp(config, { database, keystore, logStream });
    const closeApp = app.close.bind(app);
    app.close = async () => {
      await closeApp();
      await keystore.close();
    };
    await app.http.listen({ port: pledgePort, host: '127.0.0.1' });
  }

  before(async () => {
    database = await openTestDatabase('sqlite');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-site-browser-'));
    tags = await startThirdParty();
    site = await startPageServer();
    siteOrigin = site.origin.replace('127.0.0.1', 'localhost');
    pledgePort = await getFreePort();
    pledge = `http://127.0.0.1:${pledgePort}`;
    const origins = { pledge, tags: tags.origin, video: tags.url('', 'video.localhost') };
    site.set('/', renderExampleSitePage('index.html', origins));
    site.set('/pricing.html', renderExampleSitePage('pricing.html', origins));
    manifestV1 = await writeSiteManifest(dataDir, '2012-09-07');
    manifestV2 = await writeSiteManifest(dataDir, '2026-12-01');
    await startPledge(manifestV1);
    browser = await launchBrowser();
    // A person's browser, not a headless one: Pledge counts no beacon from a "HeadlessChrome".
    const probe = await browser.newPage();
    userAgent = (await probe.evaluate<string>('navigator.userAgent')).replace('HeadlessChrome', 'Chrome');
    await probe.close();
    axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await site?.close();
    await tags?.close();
    await database?.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** What a visitor's browser did on the site: the page, its failures, its requests to Pledge. */
  interface Visit {
    context: BrowserContext;
    page: Page;
    problems: string[];
    /** Every request the page made, in the order the browser issued them. */
    requests: Request[];
  }

  /**
   * A fresh browser (no cookie) in `country` (sent to Pledge in the CDN header), with `options`
   * (locale, colour scheme, GPC ...). The header is added by a route on Pledge's origin only, as a
   * CDN in front of Pledge would add it: an extra header on the page's own fetches would make them
   * preflighted.
   */
  async function visit(
    country: string,
    options: BrowserContextOptions & { gpc?: boolean } = {},
  ): Promise<Visit> {
    const { gpc, ...contextOptions } = options;
    const context = await browser.newContext({
      locale: 'en-US',
      userAgent,
      ...contextOptions,
      ...(gpc ? { extraHTTPHeaders: { 'Sec-GPC': '1' } } : {}),
    });
    if (gpc) {
      await context.addInitScript(
        'Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true })',
      );
    }
    await context.route(`${pledge}/**`, (route) =>
      route.continue({ headers: { ...route.request().headers(), [COUNTRY_HEADER]: country } }),
    );
    const page = await context.newPage();
    const problems: string[] = [];
    const requests: Request[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('request', (r) => requests.push(r));
    return { context, page, problems, requests };
  }

  /** Opens the site's home page and waits for the banner. */
  async function openHome(v: Visit): Promise<void> {
    const script = v.page.waitForResponse(`${pledge}/pledge.js`);
    await v.page.goto(`${siteOrigin}/`);
    const res = await script;
    assert.equal(res.status(), 200);
    await v.page.locator('.pl-banner').waitFor();
  }

  const banner = (v: Visit) => v.page.locator('.pl-banner');
  const ran = (v: Visit) => v.page.evaluate<string[]>('window.__ran || []');
  const cookieNames = async (v: Visit) => (await v.context.cookies(siteOrigin)).map((c) => c.name).sort();
  const hitsSince = (seq: number, host = tags.host) =>
    tags.hits.filter((h) => h.seq >= seq && h.host === host);

  /**
   * Waits until every request the vendor would have got by now has arrived: a request made after
   * them (to an undeclared host of the same server, which nothing holds) has made its round trip.
   */
  async function settleVendor(v: Visit): Promise<void> {
    const url = tags.url(`/j/sentinel-${Math.random().toString(36).slice(2)}`, 'sentinel.localhost');
    await v.page.evaluate(`fetch(${JSON.stringify(url)}).then((r) => r.text())`);
  }

  /** Clicks a banner button and waits for Pledge to record the choice. */
  async function choose(v: Visit, name: string | RegExp): Promise<void> {
    const recorded = v.page.waitForResponse(
      (r) => r.url() === `${pledge}/api/v1/banner/choices` && r.request().method() === 'POST',
    );
    await banner(v).getByRole('button', { name }).click();
    const res = await recorded;
    assert.equal(res.status(), 201, `the choice was recorded: ${await res.text()}\n${logs}`);
  }

  /** The beacon events Pledge stored today, oldest first (their ids are time-ordered). */
  async function beaconRows(): Promise<BeaconEventRow[]> {
    const day = new Date().toISOString().slice(0, 10);
    return new BeaconsRepository(database.db).eventsOfDay(ctx, day, { limit: 10_000 });
  }
  const beaconCount = async () => (await beaconRows()).length;

  const beaconRequests = (v: Visit) =>
    v.requests.filter(
      (r) => r.url().startsWith(`${pledge}/api/v1/beacon`) || r.url().startsWith(`${pledge}/b.gif`),
    );

  test('the banner shows on the first visit; /pledge.js loads cross-origin, with CORP cross-origin', async () => {
    const v = await visit('DE');
    try {
      const script = v.page.waitForResponse(`${pledge}/pledge.js`);
      await v.page.goto(`${siteOrigin}/`);
      const res = await script;
      assert.equal(res.status(), 200);
      assert.equal((await res.allHeaders())['cross-origin-resource-policy'], 'cross-origin');
      await banner(v).waitFor();
      assert.equal(await banner(v).getByRole('heading').textContent(), 'Cookies and web beacons');
      const buttons = await banner(v).getByRole('button').allTextContents();
      assert.deepEqual(buttons, ['Accept all', 'Reject all', 'Choose']);
      // Equal weight and prominence: the three buttons look alike.
      const looks = await v.page.evaluate<string[]>(
        `[...document.querySelectorAll('.pl-banner button')].map((e) => { const s = getComputedStyle(e); return [s.backgroundColor, s.color, s.fontSize, s.fontWeight, s.borderStyle].join(' '); })`,
      );
      assert.equal(new Set(looks).size, 1, looks.join(' | '));
      // Before any choice: the Consent Mode consumer read the default, every signal denied.
      assert.match((await v.page.locator('#consent-mode').textContent()) ?? '', /"ad_storage":"denied"/);
      assert.match(
        (await v.page.locator('#consent-mode').textContent()) ?? '',
        /"analytics_storage":"denied"/,
      );
      assert.deepEqual(await ran(v), []);
      assert.deepEqual(v.problems, []);
    } finally {
      await v.context.close();
    }
  });

  test('Reject all: no non-essential cookie, no beacon, and nothing reaches the vendor, on this page or the next', async () => {
    const beaconsBefore = await beaconCount();
    const from = tags.hits.length;
    const v = await visit('DE');
    try {
      await openHome(v);
      await choose(v, 'Reject all');
      await v.page
        .locator('#consent-mode')
        .filter({ hasText: /^update:/ })
        .waitFor();
      assert.equal(await banner(v).count(), 0, 'the banner is gone');
      await settleVendor(v);
      // The next page: the refusal holds, without asking.
      await v.page.getByRole('link', { name: 'Pricing' }).click();
      await v.page.waitForURL(`${siteOrigin}/pricing.html`);
      await v.page.waitForLoadState('load');
      assert.equal(await banner(v).count(), 0);
      await settleVendor(v);

      assert.deepEqual(await cookieNames(v), [CONSENT_COOKIE], 'only the consent cookie');
      assert.deepEqual(await ran(v), [], 'no tag ran');
      assert.deepEqual(
        hitsSince(from).map((h) => h.path),
        [],
        'no request reached the declared vendor',
      );
      assert.deepEqual(
        hitsSince(from, 'video.localhost').map((h) => h.path),
        [],
        'the tagged iframe never loaded',
      );
      assert.deepEqual(
        beaconRequests(v).map((r) => r.url()),
        [],
        'no beacon was sent',
      );
      assert.equal(await beaconCount(), beaconsBefore, 'no beacon was stored');
      assert.deepEqual(v.problems, []);
    } finally {
      await v.context.close();
    }
  });

  test('Accept all: the tagged script runs, the held requests are released in order, the page view is recorded', async () => {
    const beaconsBefore = await beaconCount();
    const from = tags.hits.length;
    const v = await visit('DE');
    try {
      await openHome(v);
      await settleVendor(v);
      assert.deepEqual(
        hitsSince(from).map((h) => h.path),
        [],
        'nothing reached the vendor before the choice',
      );
      const firstHeld = v.requests.length;

      const beacon = v.page.waitForResponse((r) => r.url() === `${pledge}/api/v1/beacon`);
      await choose(v, 'Accept all');
      assert.equal((await beacon).status(), 204);
      await v.page.waitForFunction(
        '(window.__ran || []).includes("ads-config") && (window.__ran || []).includes("fetch-collect")',
      );
      await v.page
        .frameLocator('iframe[title="Vendor widget"]')
        .locator('title')
        .waitFor({ state: 'attached' });
      await v.page
        .frameLocator('iframe[title="Product video"]')
        .locator('title')
        .waitFor({ state: 'attached' });

      assert.ok((await ran(v)).includes('tagged-analytics'), 'the tagged script ran');
      assert.ok((await cookieNames(v)).includes('_example_analytics'), 'and set its cookie');
      // Released in the order they were held: the library ran before its configuration, though
      // it answered 200 ms later; and every held request went out, after the choice (the image
      // written in the HTML too: the preload barrier kept the preload scanner from it).
      assert.deepEqual(
        (await ran(v)).filter((x) => x.startsWith('ads')),
        ['ads', 'ads-config'],
      );
      const released = v.requests
        .slice(firstHeld)
        .filter((r) => new URL(r.url()).hostname === tags.host)
        .map((r) => new URL(r.url()).pathname)
        .sort();
      assert.deepEqual(released, [
        '/f/widget.html',
        '/i/banner-ad.gif',
        '/i/pixel.gif',
        '/j/collect',
        '/s/ads-config.js',
        '/s/ads.js',
      ]);
      await tags.waitForHits(6, (h) => h.seq >= from && h.host === tags.host);
      assert.equal(hitsSince(from, 'video.localhost').length, 1, 'the tagged iframe loaded once');
      // Consent Mode told the tags.
      const consentMode = (await v.page.locator('#consent-mode').textContent()) ?? '';
      assert.match(consentMode, /^update:/);
      for (const signal of ['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization']) {
        assert.match(consentMode, new RegExp(`"${signal}":"granted"`));
      }
      assert.equal(await beaconCount(), beaconsBefore + 1, 'the page view was stored');
      assert.equal((await beaconRows()).at(-1)?.cookieless, false, 'with the visitor cookie of the choice');
      assert.deepEqual(v.problems, []);
    } finally {
      await v.context.close();
    }
  });

  test('Choose: one purpose allowed, the other still held', async () => {
    const from = tags.hits.length;
    const v = await visit('DE');
    try {
      await openHome(v);
      await banner(v).getByRole('button', { name: 'Choose' }).click();
      const dialog = v.page.getByRole('dialog', { name: 'Your choices' });
      await dialog.waitFor();
      assert.equal(await dialog.getByRole('checkbox', { name: ANALYTICS_NAME }).isChecked(), false);
      assert.equal(await dialog.getByRole('checkbox', { name: ADS_NAME }).isChecked(), false);
      await dialog.getByRole('checkbox', { name: ANALYTICS_NAME }).check();
      const recorded = v.page.waitForResponse(`${pledge}/api/v1/banner/choices`);
      await dialog.getByRole('button', { name: 'Save my choices' }).click();
      assert.equal((await recorded).status(), 201);
      await v.page.waitForFunction('(window.__ran || []).includes("tagged-analytics")');
      await v.page
        .frameLocator('iframe[title="Product video"]')
        .locator('title')
        .waitFor({ state: 'attached' });
      await settleVendor(v);

      assert.deepEqual(await v.page.evaluate('Pledge.decisions()'), { 'site-analytics': true, [ADS]: false });
      assert.deepEqual(await ran(v), ['tagged-analytics'], 'the advertising tag did not run');
      assert.deepEqual(
        hitsSince(from).map((h) => h.path),
        [],
        'nothing reached the advertising vendor',
      );
      const consentMode = (await v.page.locator('#consent-mode').textContent()) ?? '';
      assert.match(consentMode, /"analytics_storage":"granted"/);
      assert.match(consentMode, /"ad_storage":"denied"/);
      assert.deepEqual(v.problems, []);
    } finally {
      await v.context.close();
    }
  });

  test('GPC (the Sec-GPC header and navigator.globalPrivacyControl): the advertising tag never runs, even after Accept all', async () => {
    const from = tags.hits.length;
    // In the US, where targeted advertising would be on until turned off.
    const v = await visit('US', { gpc: true });
    try {
      await openHome(v);
      await banner(v).getByRole('button', { name: 'Choose' }).click();
      const dialog = v.page.getByRole('dialog', { name: 'Your choices' });
      const ads = dialog.getByRole('checkbox', { name: ADS_NAME });
      assert.equal(await ads.isChecked(), false);
      assert.equal(await ads.isDisabled(), true);
      assert.match(
        (await dialog
          .locator('li')
          .filter({ has: v.page.getByRole('checkbox', { name: ADS_NAME }) })
          .textContent()) ?? '',
        /Global Privacy Control/,
        'the dialog says why',
      );
      await dialog.getByRole('button', { name: 'Accept all' }).click();
      await v.page.waitForFunction('(window.__ran || []).includes("tagged-analytics")');
      await settleVendor(v);
      await v.page.reload();
      await v.page.waitForFunction('(window.__ran || []).includes("tagged-analytics")');
      await settleVendor(v);

      assert.ok(!(await ran(v)).includes('ads'), 'the advertising script never ran');
      assert.deepEqual(
        hitsSince(from).map((h) => h.path),
        [],
        'nothing reached the advertising vendor',
      );
      assert.equal((await v.page.evaluate<Record<string, boolean>>('Pledge.decisions()'))[ADS], false);
      assert.deepEqual(v.problems, []);
    } finally {
      await v.context.close();
    }
  });

  test("reopening from the page's link and withdrawing deletes the purpose's cookies", async () => {
    const v = await visit('DE');
    try {
      await openHome(v);
      const beacon = v.page.waitForResponse((r) => r.url() === `${pledge}/api/v1/beacon`);
      await choose(v, 'Accept all');
      await beacon;
      await v.page.waitForFunction('(window.__ran || []).includes("tagged-analytics")');
      const before = await cookieNames(v);
      assert.ok(before.includes('_example_analytics'), before.join());
      assert.ok(before.includes('pledge_vid'), before.join());

      await v.page.getByRole('link', { name: 'Cookie settings' }).click();
      const dialog = v.page.getByRole('dialog', { name: 'Your choices' });
      await dialog.waitFor();
      assert.equal(await dialog.getByRole('checkbox', { name: ANALYTICS_NAME }).isChecked(), true);
      await dialog.getByRole('checkbox', { name: ANALYTICS_NAME }).uncheck();
      const recorded = v.page.waitForResponse(`${pledge}/api/v1/banner/choices`);
      await dialog.getByRole('button', { name: 'Save my choices' }).click();
      const res = await recorded;
      assert.equal(res.status(), 201);
      assert.equal(
        (JSON.parse(res.request().postData() ?? '{}') as { control?: string }).control,
        'withdraw',
      );

      const after = await cookieNames(v);
      assert.ok(!after.includes('_example_analytics'), `the tag's cookie is gone: ${after.join()}`);
      assert.ok(!after.includes('pledge_vid'), `the visitor cookie is gone: ${after.join()}`);
      assert.ok(after.includes(CONSENT_COOKIE));
      assert.deepEqual(v.problems, []);
    } finally {
      await v.context.close();
    }
  });

  test('a new policy version shows the banner again to a visitor who chose', async () => {
    const v = await visit('DE');
    let later: Visit | undefined;
    try {
      await openHome(v);
      await choose(v, 'Reject all');
      await v.page.reload();
      await v.page.waitForLoadState('load');
      await v.page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
      assert.equal(await banner(v).count(), 0, 'not asked again under the same policy');

      await app.close();
      await startPledge(manifestV2);
      // The visitor comes back later: the same cookies, /pledge.js no longer in the browser's cache
      // (it is kept five minutes).
      later = await visit('DE', { storageState: await v.context.storageState() });
      assert.ok((await cookieNames(later)).includes(CONSENT_COOKIE), 'the old choice is still stored');
      await openHome(later);
      assert.equal(await banner(later).getByRole('heading').textContent(), 'Cookies and web beacons');
      assert.deepEqual(later.problems, []);
    } finally {
      await v.context.close();
      await later?.context.close();
      await app.close();
      await startPledge(manifestV1);
    }
  });

  test('the EU visitor is asked to opt in, the US visitor sees the purposes on until turned off', async () => {
    const eu = await visit('DE');
    const us = await visit('US');
    try {
      const beaconsBefore = await beaconCount();
      // Where it is opt-out, the page view is counted before any choice.
      const usBeacon = us.page.waitForResponse((r) => r.url() === `${pledge}/api/v1/beacon`);
      for (const v of [eu, us]) {
        await openHome(v);
        await banner(v).getByRole('button', { name: 'Choose' }).click();
        await v.page.getByRole('dialog', { name: 'Your choices' }).waitFor();
      }
      const boxes = async (v: Visit) => {
        const dialog = v.page.getByRole('dialog', { name: 'Your choices' });
        return [
          await dialog.getByRole('checkbox', { name: ANALYTICS_NAME }).isChecked(),
          await dialog.getByRole('checkbox', { name: ADS_NAME }).isChecked(),
        ];
      };
      assert.deepEqual(await boxes(eu), [false, false], 'opt-in: off until chosen');
      assert.deepEqual(await boxes(us), [true, true], 'opt-out: on');
      assert.match(
        (await us.page.getByRole('dialog').textContent()) ?? '',
        /On unless you turn it off\./,
        'and it says how to turn them off',
      );
      assert.deepEqual(await ran(eu), []);
      assert.ok((await ran(us)).includes('tagged-analytics'), 'opt-out: the tag runs before a choice');
      assert.equal((await usBeacon).status(), 204);
      assert.deepEqual(beaconRequests(eu), [], 'opt-in: no beacon before a choice');
      assert.equal(await beaconCount(), beaconsBefore + 1, "the US visitor's page view, and no other");
      // Counted without a cookie: the visitor cookie comes only with an explicit choice.
      assert.ok(!(await cookieNames(us)).includes('pledge_vid'));
      assert.equal((await beaconRows()).at(-1)?.cookieless, true);
    } finally {
      await eu.context.close();
      await us.context.close();
    }
  });

  for (const [locale, title, accept] of [
    ['de-DE', 'Cookies und Web-Beacons', 'Alle akzeptieren'],
    ['fr-FR', 'Cookies et balises web', 'Tout accepter'],
  ] as const) {
    test(`browser language ${locale}: the banner speaks it`, async () => {
      const v = await visit('DE', { locale });
      try {
        await openHome(v);
        assert.equal(await banner(v).getByRole('heading').textContent(), title);
        assert.equal(await banner(v).getAttribute('lang'), locale.slice(0, 2));
        assert.ok((await banner(v).getByRole('button').allTextContents()).includes(accept));
      } finally {
        await v.context.close();
      }
    });
  }

  for (const colorScheme of ['light', 'dark'] as const) {
    test(`axe finds no serious or critical violation in the banner and the dialog (${colorScheme})`, async () => {
      const v = await visit('DE', { colorScheme });
      try {
        await openHome(v);
        await v.page.addScriptTag({ content: axeSource });
        const check = async (selector: string) => {
          const violations = await v.page.evaluate<AxeViolation[]>(
            `axe.run({ include: [${JSON.stringify(selector)}] }).then((r) => r.violations)`,
          );
          const serious = violations.filter((x) => x.impact === 'serious' || x.impact === 'critical');
          assert.deepEqual(
            serious.map((x) => `${x.id}: ${x.help} (${x.nodes.map((n) => n.target.join(' ')).join(', ')})`),
            [],
            `${selector} in ${colorScheme}`,
          );
        };
        await check('.pl-banner');
        await banner(v).getByRole('button', { name: 'Choose' }).click();
        await v.page.getByRole('dialog', { name: 'Your choices' }).waitFor();
        await check('dialog');
      } finally {
        await v.context.close();
      }
    });
  }

  test('the choices POST is accepted from the listed site origin only', async () => {
    const listed = await visit('DE');
    // The same pages under the site server's other name: an origin Pledge does not list.
    const unlisted = await visit('DE');
    try {
      await openHome(listed);
      const recorded = listed.page.waitForResponse(`${pledge}/api/v1/banner/choices`);
      await banner(listed).getByRole('button', { name: 'Reject all' }).click();
      const res = await recorded;
      assert.equal(res.status(), 201);
      assert.equal((await res.allHeaders())['access-control-allow-origin'], siteOrigin);

      const failed = unlisted.page.waitForEvent('requestfailed', (r) => r.url().includes('/api/v1/banner/'));
      await unlisted.page.goto(`${site.origin}/`);
      // The context GET is refused by CORS first: the banner cannot learn where the visitor is.
      const refused = await failed;
      assert.match(refused.failure()?.errorText ?? '', /net::ERR_FAILED/);
    } finally {
      await listed.context.close();
      await unlisted.context.close();
    }
  });
});
