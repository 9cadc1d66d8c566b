/**
 * The banner and the choices dialog of /pledge.js in real Chromium: what a visitor sees and does.
 * The built script (banner.bundle.ts, for the example manifest's configuration plus a purpose
 * covered by GPC) is served from a small loopback server that stands in for Pledge's banner
 * endpoints: it answers the context a test sets, records the choices and beacons it receives and
 * answers each choice with a receipt. The end-to-end tests against the real server are elsewhere
 * (test/tracking/*.e2e.*); these cover the UI and what the script stores and sends.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';
import { loadManifestFile } from '../../src/manifest/manifest.loader.js';
import type {
  BannerChoicesRequest,
  BannerConfig,
  BannerContext,
  BeaconBody,
} from '../../src/tracking/banner.contract.js';
import { bannerConfigOf } from '../../src/tracking/banner.config.js';
import { buildBannerScript } from '../../src/tracking/banner.bundle.js';
import { launchBrowser } from '../helpers/browser.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

const require = createRequire(import.meta.url);

/** A purpose covered by GPC (the example has none), with its cookies and Consent Mode signals. */
const ADS = 'partner-ads';
const ADS_TEXTS: Record<string, [string, string]> = {
  en: ['Show you our ads on partner sites', 'Use a cookie id to show you our ads on other sites.'],
  de: [
    'Unsere Werbung auf Partnerseiten zeigen',
    'Mit einer Cookie-ID unsere Werbung auf anderen Seiten zeigen.',
  ],
  fr: [
    'Vous montrer nos annonces ailleurs',
    "Utiliser un identifiant de cookie pour nos annonces sur d'autres sites.",
  ],
};

const EU: BannerContext = {
  jurisdiction: 'EU',
  modes: { 'site-analytics': 'opt_in', [ADS]: 'opt_in' },
  gpc: false,
};
const US: BannerContext = {
  jurisdiction: 'US',
  modes: { 'site-analytics': 'opt_out', [ADS]: 'opt_out' },
  gpc: false,
};

/** What axe reports (the tests compile without the DOM types, so results come back as data). */
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/** What the fake Pledge server received. */
interface Received {
  context: number;
  choices: BannerChoicesRequest[];
  beacons: Array<{ body: BeaconBody; contentType: string | undefined }>;
}

/** Recorded in the page before /pledge.js runs: its events and beacons, synchronously. */
const INIT = `
  window.__events = [];
  addEventListener('pledge:consent', (e) => window.__events.push(e.detail));
  window.__beacons = [];
  const send = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, body) => (window.__beacons.push(String(url)), send(url, body));
`;
const GPC_INIT = `Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true });`;

/** A description of the focused element: inside the dialog or not, and its text or type. */
const FOCUSED = `(() => {
  const el = document.activeElement;
  if (el === null || el === document.body) return '(none)';
  const where = el.closest('dialog') ? 'dialog' : el.closest('.pl-banner') ? 'banner' : 'page';
  return where + ':' + (el.tagName === 'INPUT' ? 'checkbox' : el.textContent.trim());
})()`;

/** How each element `selector` finds looks: its type, class, size, colours and font. */
const looks = (selector: string) => `[...document.querySelectorAll(${JSON.stringify(selector)})].map((el) => {
  const s = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  return [el.tagName, el.className, Math.round(r.width), Math.round(r.height), s.backgroundColor, s.color,
    s.fontSize, s.fontWeight, s.borderWidth].join(' ');
})`;

describe('the banner and choices dialog in Chromium', () => {
  let server: http.Server;
  let origin: string;
  let browser: Browser;
  let axeSource: string;
  /** Scripts by name: `full` (example + GPC purpose), `gpc-only` (just the GPC purpose). */
  const scripts = new Map<string, string>();
  let config: BannerConfig;
  let answerContext: (headers: http.IncomingHttpHeaders) => BannerContext = () => EU;
  /** When set, the context is answered only once it resolves. */
  let contextGate: Promise<void> | undefined;
  let failChoices = false;
  let received: Received = { context: 0, choices: [], beacons: [] };
  const arrivals = new EventEmitter();

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void serve(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const { manifest } = await loadManifestFile(EXAMPLE_MANIFEST);
    assert.ok(manifest);
    const example = bannerConfigOf(manifest, { publicUrl: origin });
    assert.ok(example);
    const ads = { k: ADS, g: true, c: ['ads_*'], m: ['ad_storage', 'ad_user_data', 'ad_personalization'] };
    const withAds = (t: BannerConfig['t']) =>
      Object.fromEntries(
        Object.entries(t).map(([lang, texts]) => [
          lang,
          { ...texts, purposes: { ...texts.purposes, [ADS]: ADS_TEXTS[lang]! } },
        ]),
      );
    config = { ...example, u: [...example.u, ads], t: withAds(example.t) };
    scripts.set('full', (await buildBannerScript(config)).code);
    scripts.set('gpc-only', (await buildBannerScript({ ...config, u: [ads], b: undefined })).code);
    browser = await launchBrowser();
    axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  });
  after(async () => {
    await browser.close();
    await new Promise((resolve) => server.close(resolve));
  });

  async function serve(req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(value));
    };
    if (url.pathname === '/page') {
      const script = url.searchParams.get('script') ?? 'full';
      // ?nonce=: the page allows scripts from itself and styles only by that nonce.
      const nonce = url.searchParams.get('nonce');
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        ...(nonce === null
          ? {}
          : { 'content-security-policy': `default-src 'self'; style-src 'nonce-${nonce}'` }),
      });
      res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <script src="/pledge.js?script=${script}"${nonce === null ? '' : ` nonce="${nonce}"`}></script>
        <title>A page of the site</title></head>
        <body><main><h1>A page of the site</h1>
        <p><a href="#" id="settings" data-pledge-open>Cookie settings</a></p></main></body></html>`);
    } else if (url.pathname === '/pledge.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      res.end(scripts.get(url.searchParams.get('script') ?? 'full'));
    } else if (url.pathname === '/api/v1/banner/context') {
      received.context++;
      arrivals.emit('change');
      if (req.headers.cookie !== undefined) throw new Error('the context request carried cookies');
      await contextGate;
      json(200, answerContext(req.headers));
    } else if (url.pathname === '/api/v1/banner/choices' && req.method === 'POST') {
      const choice = JSON.parse(body) as BannerChoicesRequest;
      received.choices.push(choice);
      arrivals.emit('change');
      if (failChoices) json(500, { error: { code: 'test.down', message: 'down' } });
      else json(200, { decisions: choice.choices, receipt: `receipt-${received.choices.length}` });
    } else if (url.pathname === '/api/v1/beacon' && req.method === 'POST') {
      received.beacons.push({
        body: JSON.parse(body) as BeaconBody,
        contentType: req.headers['content-type'],
      });
      arrivals.emit('change');
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  }

  /** Resolves once `ready` says so about what the server received. */
  function until(ready: (r: Received) => boolean): Promise<void> {
    if (ready(received)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!ready(received)) return;
        arrivals.off('change', check);
        resolve();
      };
      arrivals.on('change', check);
    });
  }

  interface Visit {
    context: BrowserContext;
    page: Page;
    /** Uncaught errors and console errors of the page. */
    problems: string[];
  }

  /** A fresh browser profile with the recorders installed, at the test page. */
  async function visit(
    options: BrowserContextOptions & { gpc?: boolean; script?: string; nonce?: string; wait?: boolean } = {},
  ): Promise<Visit> {
    const { gpc, script, nonce, wait = true, ...contextOptions } = options;
    received = { context: 0, choices: [], beacons: [] };
    const context = await browser.newContext(contextOptions);
    await context.addInitScript(INIT + (gpc === true ? GPC_INIT : ''));
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    const query = new URLSearchParams({ ...(script && { script }), ...(nonce && { nonce }) }).toString();
    await page.goto(`${origin}/page${query === '' ? '' : `?${query}`}`);
    if (wait) await banner(page).waitFor();
    return { context, page, problems };
  }

  const banner = (page: Page) => page.getByRole('region', { name: /cookie|balises/i });
  const dialog = (page: Page) => page.getByRole('dialog');
  const events = (page: Page) =>
    page.evaluate<Array<{ decisions: Record<string, boolean>; jurisdiction: string | null; gpc: boolean }>>(
      'window.__events',
    );
  const decisions = (page: Page) => page.evaluate<Record<string, boolean>>('Pledge.decisions()');

  /** The consent cookie, decoded. */
  async function storedChoice(context: BrowserContext): Promise<Record<string, unknown> | undefined> {
    const cookie = (await context.cookies()).find((c) => c.name === config.n);
    return cookie === undefined
      ? undefined
      : (JSON.parse(decodeURIComponent(cookie.value)) as Record<string, unknown>);
  }

  async function axe(page: Page, where: string): Promise<void> {
    await page.evaluate(axeSource);
    const { violations, passes } = await page.evaluate<{ violations: AxeViolation[]; passes: string[] }>(
      `axe.run(document, { resultTypes: ['violations'] }).then((r) => ({
        violations: r.violations.map((v) => ({
          id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })),
        passes: r.passes.map((p) => p.id),
      }))`,
    );
    const grave = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(grave, [], `${where}: ${JSON.stringify(grave, null, 2)}`);
    // The checks that matter here ran and passed (not merely found nothing to check).
    for (const rule of ['color-contrast', 'button-name', 'link-name']) {
      assert.ok(passes.includes(rule), `${where}: axe rule ${rule} passed`);
    }
  }

  test('first visit: Consent Mode denied first, nothing allowed until the server answers, then the banner', async () => {
    let release!: () => void;
    contextGate = new Promise((resolve) => (release = resolve));
    const { context, page, problems } = await visit({ wait: false });
    try {
      await page.waitForLoadState('load');
      await until((r) => r.context === 1);
      // The server has not answered: every purpose is refused, no banner yet, no event.
      assert.deepEqual(await decisions(page), { 'site-analytics': false, [ADS]: false });
      assert.equal(await page.locator('.pl-banner').count(), 0);
      assert.deepEqual(await events(page), []);
      const layer = await page.evaluate<unknown[][]>('window.dataLayer.map((a) => [...a])');
      assert.deepEqual(layer[0], [
        'consent',
        'default',
        {
          ad_storage: 'denied',
          analytics_storage: 'denied',
          ad_user_data: 'denied',
          ad_personalization: 'denied',
          wait_for_update: 500,
        },
      ]);
      release();
      await banner(page).waitFor();
      assert.equal(await banner(page).getAttribute('lang'), 'en');
      assert.equal(await page.getByRole('heading', { name: 'Cookies and web beacons' }).count(), 1);
      assert.equal(
        await page.getByRole('link', { name: 'Privacy policy' }).getAttribute('href'),
        `${origin}/privacy`,
      );
      // The three choices: the same element, the same class, the same size and look.
      const buttons = banner(page).getByRole('button');
      assert.deepEqual(await buttons.allTextContents(), ['Accept all', 'Reject all', 'Choose']);
      const look = await page.evaluate<string[]>(looks('.pl-banner button'));
      assert.equal(look.length, 3);
      assert.equal(new Set(look).size, 1, look.join('\n'));
      assert.deepEqual(await events(page), [
        { decisions: { 'site-analytics': false, [ADS]: false }, jurisdiction: 'EU', gpc: false },
      ]);
      assert.deepEqual(problems, []);
    } finally {
      contextGate = undefined;
      release();
      await context.close();
    }
  });

  test('Accept all: stored in the cookie, proof sent, Consent Mode granted, the page view counted; the next page asks nothing', async () => {
    const { context, page, problems } = await visit();
    try {
      await page.context().addCookies([{ name: 'ads_one', value: '1', url: origin }]);
      await banner(page).getByRole('button', { name: 'Accept all' }).click();
      await until((r) => r.choices.length === 1 && r.beacons.length === 1);
      assert.equal(await page.locator('.pl-banner').count(), 0);
      const [choice] = received.choices;
      assert.ok(choice);
      assert.match(choice.browser, /^[A-Za-z0-9_-]{22}$/);
      assert.deepEqual(
        { ...choice, browser: '' },
        {
          browser: '',
          notice: config.v,
          language: 'en',
          control: 'accept_all',
          gpc: false,
          choices: { 'site-analytics': true, [ADS]: true },
        },
      );
      // The page view carries the receipt the choice got, and the visitor cookie now set.
      await page.waitForFunction(`document.cookie.includes('receipt-1')`);
      const cookies = await context.cookies();
      const vid = cookies.find((c) => c.name === 'pledge_vid');
      assert.ok(vid, 'the visitor cookie is set after an explicit choice');
      assert.equal(vid.path, '/');
      assert.equal(vid.sameSite, 'Lax');
      const [beacon] = received.beacons;
      assert.deepEqual(beacon, {
        body: { path: '/page', receipt: 'receipt-1', visitor: vid.value },
        contentType: 'text/plain;charset=UTF-8',
      });
      const stored = await storedChoice(context);
      assert.deepEqual(
        { ...stored, t: 0 },
        {
          v: config.v,
          b: choice.browser,
          t: 0,
          d: { 'site-analytics': true, [ADS]: true },
          j: 'EU',
          g: false,
          c: 'accept_all',
          l: 'en',
          s: 1,
          r: 'receipt-1',
        },
      );
      const consent = cookies.find((c) => c.name === config.n);
      assert.ok(consent);
      // Kept for the configured number of days (ask_again: P13M), on the whole site.
      const days = (consent.expires - Date.now() / 1000) / 86400;
      assert.ok(Math.abs(days - config.d) < 1, `${days} days`);
      assert.equal(consent.path, '/');
      const layer = await page.evaluate<unknown[][]>('window.dataLayer.map((a) => [...a])');
      assert.deepEqual(layer.at(-1), [
        'consent',
        'update',
        {
          ad_storage: 'granted',
          analytics_storage: 'granted',
          ad_user_data: 'granted',
          ad_personalization: 'granted',
        },
      ]);
      assert.deepEqual((await events(page)).at(-1), {
        decisions: { 'site-analytics': true, [ADS]: true },
        jurisdiction: 'EU',
        gpc: false,
      });
      assert.ok(
        cookies.some((c) => c.name === 'ads_one'),
        'an allowed purpose keeps its cookies',
      );
      // An event the page counts goes the same way, with its name.
      assert.equal(await page.evaluate<boolean>(`Pledge.event('signup-started')`), true);
      await until((r) => r.beacons.length === 2);
      assert.deepEqual(received.beacons[1]?.body, {
        path: '/page',
        event: 'signup-started',
        receipt: 'receipt-1',
        visitor: vid.value,
      });

      // The next page: the stored choice applies at once, no question, no context asked for.
      received = { context: 0, choices: [], beacons: [] };
      await page.reload();
      await until((r) => r.beacons.length === 1);
      assert.deepEqual(await page.evaluate('window.__events[0]'), {
        decisions: { 'site-analytics': true, [ADS]: true },
        jurisdiction: 'EU',
        gpc: false,
      });
      assert.equal(await page.locator('.pl-banner').count(), 0);
      assert.equal(received.context, 0);
      assert.deepEqual(received.choices, []);
      assert.deepEqual(received.beacons[0]?.body, {
        path: '/page',
        receipt: 'receipt-1',
        visitor: vid.value,
      });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test("Reject all: no visitor cookie, no page view, the purposes' cookies deleted, Consent Mode denied", async () => {
    const { context, page, problems } = await visit();
    try {
      // Cookies a tag set before (on the host and on the parent domain a tag might use) go.
      await context.addCookies([
        { name: 'ads_one', value: '1', url: origin },
        { name: 'ads_two', value: '2', url: origin },
        { name: 'pledge_vid', value: 'old', url: origin },
        { name: 'kept', value: '1', url: origin },
      ]);
      await banner(page).getByRole('button', { name: 'Reject all' }).click();
      await until((r) => r.choices.length === 1);
      await page.waitForFunction(`document.cookie.includes('receipt-1')`);
      assert.equal(received.choices[0]?.control, 'reject_all');
      assert.deepEqual(received.choices[0]?.choices, { 'site-analytics': false, [ADS]: false });
      const names = (await context.cookies()).map((c) => c.name).sort();
      assert.deepEqual(names, ['kept', config.n].sort());
      assert.equal(await page.evaluate<boolean>(`Pledge.event('signup-started')`), false);
      assert.deepEqual(await page.evaluate('window.__beacons'), []);
      const layer = await page.evaluate<unknown[][]>('window.dataLayer.map((a) => [...a])');
      assert.deepEqual(layer.at(-1), [
        'consent',
        'update',
        {
          ad_storage: 'denied',
          analytics_storage: 'denied',
          ad_user_data: 'denied',
          ad_personalization: 'denied',
        },
      ]);
      await page.reload();
      await page.waitForLoadState('load');
      assert.equal(await page.locator('.pl-banner').count(), 0);
      assert.deepEqual(await decisions(page), { 'site-analytics': false, [ADS]: false });
      assert.deepEqual(await page.evaluate('window.__beacons'), []);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('the keyboard alone: Choose opens a labelled modal dialog that keeps focus, Escape closes it undecided and focus goes back', async () => {
    const { context, page, problems } = await visit();
    try {
      // The banner is first in the page: Tab reaches its link, then its three buttons.
      const order: string[] = [];
      for (let i = 0; i < 4; i++) {
        await page.keyboard.press('Tab');
        order.push(await page.evaluate<string>(FOCUSED));
      }
      assert.deepEqual(order, [
        'banner:Privacy policy',
        'banner:Accept all',
        'banner:Reject all',
        'banner:Choose',
      ]);
      // Focus is visible: an outline of at least 2 px.
      assert.ok(
        (await page.evaluate<number>('parseFloat(getComputedStyle(document.activeElement).outlineWidth)')) >=
          2,
      );
      await page.keyboard.press('Enter');
      const choices = page.getByRole('dialog', { name: 'Your choices' });
      await choices.waitFor();
      assert.equal(await choices.getAttribute('aria-modal'), 'true');
      assert.equal(await choices.getAttribute('lang'), 'en');
      assert.match(await page.evaluate<string>(FOCUSED), /^dialog:/);
      // Each switch is labelled by its purpose's name and described by its description.
      const analytics = choices.getByRole('checkbox', { name: 'Measure how our sites are used' });
      assert.equal(await analytics.isChecked(), false);
      assert.equal(await choices.getByRole('checkbox', { name: ADS_TEXTS.en![0] }).isChecked(), false);
      assert.equal(
        await page.evaluate<string>(
          `document.getElementById(document.querySelector('dialog input').getAttribute('aria-describedby')).textContent`,
        ),
        'Count visits and interactions with our sites, with cookies and web beacons.',
      );
      // Twelve Tabs forward and back never leave the dialog.
      for (const key of ['Tab', 'Shift+Tab']) {
        for (let i = 0; i < 12; i++) {
          await page.keyboard.press(key);
          assert.match(await page.evaluate<string>(FOCUSED), /^dialog:/, `${key} ${i}`);
        }
      }
      // Escape: closed, nothing decided, the banner still there and focus back on Choose.
      await page.keyboard.press('Escape');
      await choices.waitFor({ state: 'detached' });
      assert.equal(await page.evaluate<string>(FOCUSED), 'banner:Choose');
      assert.equal(await banner(page).count(), 1);
      assert.equal(await storedChoice(context), undefined);
      assert.equal(received.choices.length, 0, 'no choice sent');

      // Choose one purpose with the keyboard: Space on the first switch, then Save.
      await page.keyboard.press('Enter');
      await choices.waitFor();
      await analytics.focus();
      await page.keyboard.press('Space');
      assert.equal(await analytics.isChecked(), true);
      await choices.getByRole('button', { name: 'Save my choices' }).focus();
      await page.keyboard.press('Enter');
      await until((r) => r.choices.length === 1);
      assert.equal(received.choices[0]?.control, 'choose');
      assert.deepEqual(received.choices[0]?.choices, { 'site-analytics': true, [ADS]: false });
      // The dialog leaves the page on its close event, a task after the choice is sent.
      await page.waitForFunction(`document.querySelector('.pl-banner, dialog') === null`);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('reopening from a data-pledge-open link and Pledge.open(); withdrawing is one switch and Save, and deletes the cookies', async () => {
    const { context, page, problems } = await visit();
    try {
      await banner(page).getByRole('button', { name: 'Accept all' }).click();
      await until((r) => r.choices.length === 1 && r.beacons.length === 1);
      await page.waitForFunction(`document.cookie.includes('receipt-1')`);
      await context.addCookies([{ name: 'ads_x', value: '1', url: origin }]);
      assert.ok((await context.cookies()).some((c) => c.name === 'pledge_vid'));

      await page.locator('#settings').focus();
      await page.keyboard.press('Enter');
      const choices = page.getByRole('dialog', { name: 'Your choices' });
      await choices.waitFor();
      assert.equal(
        await choices.getByRole('checkbox', { name: 'Measure how our sites are used' }).isChecked(),
        true,
      );
      await choices.getByRole('checkbox', { name: 'Measure how our sites are used' }).uncheck();
      await choices.getByRole('checkbox', { name: ADS_TEXTS.en![0] }).uncheck();
      await choices.getByRole('button', { name: 'Save my choices' }).click();
      await until((r) => r.choices.length === 2);
      assert.equal(received.choices[1]?.control, 'withdraw');
      assert.equal(received.choices[1]?.browser, received.choices[0]?.browser, 'the same browser id');
      assert.deepEqual(received.choices[1]?.choices, { 'site-analytics': false, [ADS]: false });
      assert.equal(await page.evaluate<string>(FOCUSED), 'page:Cookie settings', 'focus back on the link');
      const names = (await context.cookies()).map((c) => c.name);
      assert.deepEqual(names, [config.n], 'the visitor cookie and the ads_* cookies are gone');
      assert.deepEqual((await events(page)).at(-1)?.decisions, { 'site-analytics': false, [ADS]: false });

      // Pledge.open() reopens it too, showing what is now chosen; a second call opens no second one.
      await page.evaluate('Pledge.open()');
      await choices.waitFor();
      // (open() runs in microtasks of the evaluation, done before evaluate answers.)
      await page.evaluate('Pledge.open()');
      assert.equal(await page.locator('dialog').count(), 1);
      assert.equal(
        await choices.getByRole('checkbox', { name: 'Measure how our sites are used' }).isChecked(),
        false,
      );
      await page.keyboard.press('Escape');
      await choices.waitFor({ state: 'detached' });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('a new notice version or a choice older than ask_again asks again, with the same browser id', async () => {
    const { context, page } = await visit();
    try {
      await banner(page).getByRole('button', { name: 'Reject all' }).click();
      await until((r) => r.choices.length === 1);
      await page.waitForFunction(`document.cookie.includes('receipt-1')`);
      const stored = (await storedChoice(context))!;
      for (const changed of [
        { v: 'another-notice' },
        { t: Math.floor(Date.now() / 1000) - (config.d + 1) * 86400 },
      ]) {
        await context.addCookies([
          {
            name: config.n,
            value: encodeURIComponent(JSON.stringify({ ...stored, ...changed })),
            url: origin,
          },
        ]);
        await page.reload();
        await banner(page).waitFor();
        await banner(page).getByRole('button', { name: 'Accept all' }).click();
        await until((r) => r.choices.length === 2);
        // The answer is stored before the cookie is changed again (else it would overwrite it).
        await page.waitForFunction(`document.cookie.includes('receipt-2')`);
        assert.equal(received.choices[1]?.browser, stored.b);
        received.choices.pop();
      }
    } finally {
      await context.close();
    }
  });

  test('a lost proof does not break the page and is sent again once on the next page', async () => {
    failChoices = true;
    const { context, page, problems } = await visit();
    try {
      await banner(page).getByRole('button', { name: 'Accept all' }).click();
      await until((r) => r.choices.length === 1);
      // Still counted (without a receipt), and the choice holds on this page.
      await until((r) => r.beacons.length === 1);
      assert.equal(received.beacons[0]?.body.receipt, undefined);
      assert.deepEqual(await decisions(page), { 'site-analytics': true, [ADS]: true });
      assert.equal((await storedChoice(context))?.s, 0);
      failChoices = false;
      received.choices = [];
      await page.reload();
      await until((r) => r.choices.length === 1);
      assert.equal(received.choices[0]?.control, 'accept_all');
      await page.waitForFunction(`document.cookie.includes('receipt-1')`);
      assert.equal((await storedChoice(context))?.s, 1);
      // The 500 Chromium logs for the failed POST is the only problem the page saw.
      assert.deepEqual(
        problems.filter((p) => !/status of 500/.test(p)),
        [],
      );
    } finally {
      failChoices = false;
      await context.close();
    }
  });

  test('opt-out where the visitor is: on until turned off, said in the dialog, counted without a cookie', async () => {
    answerContext = () => US;
    const { context, page, problems } = await visit();
    try {
      assert.deepEqual(await decisions(page), { 'site-analytics': true, [ADS]: true });
      await until((r) => r.beacons.length === 1);
      assert.deepEqual(received.beacons[0]?.body, { path: '/page' });
      assert.equal((await context.cookies()).length, 0, 'no cookie before a choice');
      await banner(page).getByRole('button', { name: 'Choose' }).click();
      const choices = page.getByRole('dialog', { name: 'Your choices' });
      await choices.waitFor();
      assert.equal(
        await choices.getByRole('checkbox', { name: 'Measure how our sites are used' }).isChecked(),
        true,
      );
      assert.equal(await choices.getByText('On unless you turn it off.').count(), 2);
      await choices.getByRole('checkbox', { name: ADS_TEXTS.en![0] }).uncheck();
      await choices.getByRole('button', { name: 'Save my choices' }).click();
      await until((r) => r.choices.length === 1);
      assert.deepEqual(received.choices[0]?.choices, { 'site-analytics': true, [ADS]: false });
      assert.equal((await events(page)).at(-1)?.jurisdiction, 'US');
      assert.deepEqual(problems, []);
    } finally {
      answerContext = () => EU;
      await context.close();
    }
  });

  test('a purpose required where the visitor is is neither asked nor held', async () => {
    answerContext = () => ({ ...EU, modes: { ...EU.modes, [ADS]: 'required' } });
    const { context, page } = await visit();
    try {
      assert.deepEqual(await decisions(page), { 'site-analytics': false, [ADS]: true });
      await banner(page).getByRole('button', { name: 'Choose' }).click();
      const choices = page.getByRole('dialog', { name: 'Your choices' });
      await choices.waitFor();
      assert.deepEqual(await choices.getByRole('checkbox').count(), 1);
    } finally {
      answerContext = () => EU;
      await context.close();
    }
  });

  for (const [name, options] of [
    ['navigator.globalPrivacyControl', { gpc: true }],
    ['the Sec-GPC header', { extraHTTPHeaders: { 'Sec-GPC': '1' } }],
  ] as const) {
    test(`GPC from ${name}: its purposes are off without asking, the dialog says why, the proof says gpc`, async () => {
      answerContext = (headers) => ({ ...EU, gpc: headers['sec-gpc'] === '1' });
      const { context, page, problems } = await visit(options);
      try {
        await banner(page).getByRole('button', { name: 'Choose' }).click();
        const choices = page.getByRole('dialog', { name: 'Your choices' });
        await choices.waitFor();
        const ads = choices.getByRole('checkbox', { name: ADS_TEXTS.en![0] });
        assert.equal(await ads.isChecked(), false);
        assert.equal(await ads.isDisabled(), true);
        assert.equal(await choices.getByText(config.t.en!.gpc).count(), 1);
        await choices.getByRole('button', { name: 'Accept all' }).click();
        await until((r) => r.choices.length === 1);
        assert.deepEqual(received.choices[0]?.choices, { 'site-analytics': true, [ADS]: false });
        assert.equal(received.choices[0]?.gpc, true);
        assert.equal(received.choices[0]?.control, 'accept_all');
        assert.deepEqual((await events(page)).at(-1), {
          decisions: { 'site-analytics': true, [ADS]: false },
          jurisdiction: 'EU',
          gpc: true,
        });
        assert.deepEqual(problems, []);
      } finally {
        answerContext = () => EU;
        await context.close();
      }
    });
  }

  test('GPC sent after a choice that allowed its purposes: refused on the next page, and the ledger told (control gpc)', async () => {
    const { context, page } = await visit();
    try {
      await banner(page).getByRole('button', { name: 'Accept all' }).click();
      await until((r) => r.choices.length === 1);
      await page.waitForFunction(`document.cookie.includes('receipt-1')`);
      await context.addInitScript(GPC_INIT);
      await page.reload();
      await until((r) => r.choices.length === 2);
      assert.deepEqual(
        { ...received.choices[1], browser: received.choices[0]?.browser },
        {
          browser: received.choices[0]?.browser,
          notice: config.v,
          language: 'en',
          control: 'gpc',
          gpc: true,
          choices: { 'site-analytics': true, [ADS]: false },
        },
      );
      assert.equal(await page.locator('.pl-banner').count(), 0);
      assert.deepEqual(await decisions(page), { 'site-analytics': true, [ADS]: false });
    } finally {
      await context.close();
    }
  });

  test('GPC and nothing else to ask: no banner, the refusal recorded as a GPC choice', async () => {
    const { context, page } = await visit({ gpc: true, script: 'gpc-only', wait: false });
    try {
      await until((r) => r.choices.length === 1);
      assert.deepEqual(received.choices[0], {
        browser: received.choices[0]?.browser,
        notice: config.v,
        language: 'en',
        control: 'gpc',
        gpc: true,
        choices: { [ADS]: false },
      });
      assert.equal(await page.locator('.pl-banner').count(), 0);
    } finally {
      await context.close();
    }
  });

  for (const [locale, title, lang] of [
    ['de-DE', 'Cookies und Web-Beacons', 'de'],
    ['fr-CA', 'Cookies et balises web', 'fr'],
    ['es-ES', 'Cookies and web beacons', 'en'],
  ] as const) {
    test(`browser language ${locale}: the banner in ${lang}`, async () => {
      const { context, page } = await visit({ locale });
      try {
        assert.equal(await banner(page).getAttribute('lang'), lang);
        assert.equal(await banner(page).getByRole('heading').textContent(), title);
        await banner(page).getByRole('button').nth(2).click();
        await dialog(page).waitFor();
        assert.equal(await dialog(page).getAttribute('lang'), lang);
        assert.equal(
          await dialog(page)
            .getByRole('checkbox')
            .first()
            .getAttribute('aria-describedby')
            .then((id) => page.locator(`#${id}`).textContent()),
          config.t[lang]!.purposes['site-analytics']![1],
        );
        await dialog(page).getByRole('button').nth(1).click();
        await until((r) => r.choices.length === 1);
        assert.equal(received.choices[0]?.language, lang);
      } finally {
        await context.close();
      }
    });
  }

  test("a page that allows styles by nonce only: the banner's styles carry the nonce of /pledge.js's tag", async () => {
    const { context, page, problems } = await visit({ nonce: 'n0nce-of-this-page' });
    try {
      assert.equal(
        await page.evaluate<string>(`getComputedStyle(document.querySelector('.pl-banner')).position`),
        'fixed',
      );
      assert.deepEqual(problems, [], 'no CSP violation');
    } finally {
      await context.close();
    }
  });

  test('nothing moves: the banner appears without animation, with or without a reduced-motion preference', async () => {
    for (const reducedMotion of ['reduce', 'no-preference'] as const) {
      const { context, page } = await visit({ reducedMotion });
      try {
        assert.equal(
          await page.evaluate<string>(`getComputedStyle(document.querySelector('.pl-banner')).animationName`),
          'none',
        );
        assert.equal(
          await page.evaluate<number>(`document.getAnimations().length`),
          0,
          'no animation or transition runs on the page',
        );
      } finally {
        await context.close();
      }
    }
  });

  test('320 px wide: the banner and the dialog fit, nothing scrolls sideways, the buttons stack', async () => {
    const { context, page } = await visit({ viewport: { width: 320, height: 640 } });
    try {
      const fits = `(() => { const r = document.querySelector(SEL).getBoundingClientRect();
        return r.left >= 0 && r.right <= 320 && document.documentElement.scrollWidth <= 320; })()`;
      assert.equal(await page.evaluate<boolean>(fits.replace('SEL', `'.pl-banner'`)), true);
      const look = await page.evaluate<string[]>(looks('.pl-banner button'));
      assert.equal(new Set(look).size, 1, look.join('\n'));
      const tops = await page.evaluate<number[]>(
        `[...document.querySelectorAll('.pl-banner button')].map((b) => b.getBoundingClientRect().top)`,
      );
      assert.ok(tops[0]! < tops[1]! && tops[1]! < tops[2]!, 'one button a row');
      await banner(page).getByRole('button', { name: 'Choose' }).click();
      await dialog(page).waitFor();
      assert.equal(await page.evaluate<boolean>(fits.replace('SEL', `'dialog'`)), true);
      // Every button of the dialog is reachable on screen (scrolling the dialog, not the page).
      await dialog(page).getByRole('button', { name: 'Save my choices' }).scrollIntoViewIfNeeded();
      assert.equal(await dialog(page).getByRole('button', { name: 'Save my choices' }).isVisible(), true);
    } finally {
      await context.close();
    }
  });

  test('both colour schemes: dark follows the system, and axe finds nothing serious in the banner or the dialog', async () => {
    for (const [colorScheme, background] of [
      ['light', 'rgb(255, 255, 255)'],
      ['dark', 'rgb(30, 30, 30)'],
    ] as const) {
      const { context, page } = await visit({ colorScheme });
      try {
        assert.equal(
          await page.evaluate<string>(
            `getComputedStyle(document.querySelector('.pl-banner')).backgroundColor`,
          ),
          background,
        );
        await axe(page, `banner (${colorScheme})`);
        await banner(page).getByRole('button', { name: 'Choose' }).click();
        await dialog(page).waitFor();
        assert.equal(
          await page.evaluate<string>(`getComputedStyle(document.querySelector('dialog')).backgroundColor`),
          background,
        );
        await axe(page, `dialog (${colorScheme})`);
      } finally {
        await context.close();
      }
    }
  });
});
