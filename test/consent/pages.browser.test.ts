/**
 * The pages for people in real Chromium against a real server on 127.0.0.1: a person opens the
 * preference center from a link, moves a switch with the keyboard alone, saves and reads what
 * changed, with JavaScript off; every page has a language, a label for every control, loads its
 * styles under the server's Content-Security-Policy, and passes axe-core (contrast included) in
 * light and dark mode.
 */
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createApp, type App } from '../../src/app.js';
import { createLinkToken, deriveLinkTokenKey, type LinkTokenClaims } from '../../src/consent/link-tokens.js';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/platform/context.js';
import { openKeystore } from '../../src/vault/keystore.js';
import { launchBrowser } from '../helpers/browser.js';
import { openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { EXAMPLE_MANIFEST, randomEmail } from '../helpers/vault.js';

const require = createRequire(import.meta.url);
const ctx = createContext({ kind: 'cli', id: 'test' });
const MARKETING = 'Tell you about products, partners, opportunities and events';

/** What axe reports (the tests compile without the DOM types, so results come back as data). */
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[]; failureSummary?: string }>;
}

/** A description of the focused element: its id, else its text. */
const FOCUSED = `(() => {
  const el = document.activeElement;
  return el === null || el === document.body ? '(none)' : el.id || el.textContent.trim();
})()`;

/** The visible controls of the page that have no label a screen reader would announce. */
const UNLABELLED = `(() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter((el) => el.tagName === 'BUTTON' ? el.textContent.trim() === '' : el.labels === null || el.labels.length === 0 || el.labels[0].textContent.trim() === '')
  .map((el) => el.outerHTML))()`;

describe('pages for people in Chromium', () => {
  let database: TestDatabase;
  let dataDir: string;
  let app: App;
  let base: string;
  let browser: Browser;
  let axeSource: string;
  let logs = '';

  before(async () => {
    database = await openTestDatabase('sqlite');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-pages-browser-'));
    const keystore = await openKeystore({ dataDir });
    const logStream = new PassThrough();
    logStream.on('data', (d: Buffer) => (logs += d.toString('utf8')));
    const config = {
      ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'info' }, { manifest: EXAMPLE_MANIFEST }),
      retentionIntervalSeconds: 0,
    };
    app = await createApp(config, { database, keystore, logStream });
    const closeApp = app.close.bind(app);
    app.close = async () => {
      await closeApp();
      await keystore.close();
    };
    base = await app.http.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchBrowser();
    axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  });
  after(async () => {
    await browser.close();
    await app.close();
    await database.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  const link = (claims: LinkTokenClaims) =>
    createLinkToken(deriveLinkTokenKey(app.keyring.indexKey), claims, { now: new Date() });
  const newSubject = async (jurisdiction = 'US') =>
    (
      await app.vault.createSubject(ctx, {
        kind: 'customer',
        jurisdiction,
        identifiers: { email: randomEmail() },
      })
    ).id;

  /** A page that records what the browser refused or failed to load. */
  async function openPage(context: BrowserContext): Promise<{ page: Page; problems: string[] }> {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
    return { page, problems };
  }

  test('a person saves a choice with the keyboard alone, without JavaScript, and reads what changed', async () => {
    const subjectId = await newSubject('US');
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const { page, problems } = await openPage(context);
      const res = await page.goto(`${base}/preferences?t=${link({ scope: 'preferences', subjectId })}`);
      assert.equal(res?.status(), 200);
      assert.equal(await page.getAttribute('html', 'lang'), 'en');
      assert.equal(await page.locator('h1').textContent(), 'Your privacy center');
      assert.equal(await page.isChecked('#purpose-marketing-email'), true);

      // Tab walks the page in reading order: skip link, site, each switch, the global opt-out, Save.
      const order: string[] = [];
      for (let i = 0; i < 7; i++) {
        await page.keyboard.press('Tab');
        order.push(await page.evaluate<string>(FOCUSED));
      }
      assert.deepEqual(order, [
        'Skip to the content',
        'Example Online',
        'purpose-marketing-email',
        'purpose-improve-products',
        'purpose-site-analytics',
        'global-opt-out',
        'Save my choices',
      ]);

      // Back to the marketing switch, turn it off with Space, then on to Save and press Enter.
      for (let i = 0; i < 4; i++) await page.keyboard.press('Shift+Tab');
      assert.equal(await page.evaluate<string>(FOCUSED), 'purpose-marketing-email');
      await page.keyboard.press('Space');
      assert.equal(await page.isChecked('#purpose-marketing-email'), false);
      for (let i = 0; i < 4; i++) await page.keyboard.press('Tab');
      assert.equal(await page.evaluate<string>(FOCUSED), 'Save my choices');
      await Promise.all([page.waitForURL(`${base}/preferences`), page.keyboard.press('Enter')]);

      assert.equal(await page.locator('h1').textContent(), 'Your choices are saved');
      const changes = await page.locator('main li').allTextContents();
      assert.deepEqual(changes, [`${MARKETING}: now off`]);
      assert.deepEqual(await app.consent.decide(ctx, subjectId, 'marketing-email', 'email'), {
        allowed: false,
        reason: 'withdrawn',
      });

      // Back in the preference center the switch shows off.
      await page.getByRole('link', { name: 'Back to your privacy choices' }).click();
      assert.equal(await page.isChecked('#purpose-marketing-email'), false);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('unsubscribing from a mail link takes one button, without JavaScript', async () => {
    const subjectId = await newSubject('US');
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const { page, problems } = await openPage(context);
      await page.goto(
        `${base}/unsubscribe?t=${link({ scope: 'unsubscribe', subjectId, purpose: 'marketing-email', channel: 'email' })}`,
      );
      assert.equal(await app.consent.history(ctx, { subjectId }).then((h) => h.length), 0);
      await page.getByRole('button', { name: 'Unsubscribe' }).click();
      assert.equal(await page.locator('h1').textContent(), 'You are unsubscribed');
      assert.deepEqual(await app.consent.decide(ctx, subjectId, 'marketing-email', 'email'), {
        allowed: false,
        reason: 'withdrawn',
      });
      await page.getByRole('link', { name: 'your privacy choices' }).click();
      assert.equal(await page.locator('h1').textContent(), 'Your privacy center');
      assert.equal(await page.isChecked('#purpose-marketing-email'), false);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('every page: a language, a label for every control, styles under the CSP, and no axe violations', async () => {
    const subjectId = await newSubject('US');
    const pages: Array<{ name: string; reach: (page: Page) => Promise<unknown> }> = [
      {
        name: 'preference center',
        reach: (page) => page.goto(`${base}/preferences?t=${link({ scope: 'preferences', subjectId })}`),
      },
      {
        name: 'choices saved',
        reach: async (page) => {
          await page.goto(`${base}/preferences?t=${link({ scope: 'preferences', subjectId })}`);
          await page.click('#global-opt-out');
          await page.getByRole('button', { name: 'Save my choices' }).click();
        },
      },
      {
        name: 'unsubscribe confirmation',
        reach: (page) =>
          page.goto(
            `${base}/unsubscribe?t=${link({ scope: 'unsubscribe', subjectId, purpose: 'marketing-email', channel: 'email' })}`,
          ),
      },
      { name: 'e-mail form', reach: (page) => page.goto(`${base}/unsubscribe`) },
      {
        name: 'link sent',
        reach: async (page) => {
          await page.goto(`${base}/unsubscribe`);
          await page.getByLabel('Your e-mail address').fill(randomEmail());
          await page.getByRole('button', { name: 'E-mail me a link' }).click();
        },
      },
      {
        name: 'not an e-mail address',
        reach: async (page) => {
          await page.goto(`${base}/unsubscribe`);
          // The browser's own check would stop "@"-less text; this is what a server sees past it.
          await page.getByLabel('Your e-mail address').fill('name@example');
          await page.getByRole('button', { name: 'E-mail me a link' }).click();
        },
      },
      { name: 'bad link', reach: (page) => page.goto(`${base}/preferences?t=not-a-link`) },
    ];
    for (const colorScheme of ['light', 'dark'] as const) {
      const context = await browser.newContext({ colorScheme });
      try {
        for (const { name, reach } of pages) {
          const { page, problems } = await openPage(context);
          await reach(page);
          const where = `${name} (${colorScheme})`;
          assert.equal(await page.getAttribute('html', 'lang'), 'en', where);
          assert.deepEqual(await page.evaluate<string[]>(UNLABELLED), [], `${where}: unlabelled controls`);
          // The stylesheets loaded despite default-src 'none': the page uses the policy's font size.
          assert.equal(
            await page.evaluate<string>(`getComputedStyle(document.body).fontSize`),
            '17px',
            where,
          );
          // axe cannot be added as a <script> (the CSP forbids it), so its source is evaluated.
          await page.evaluate(axeSource);
          const result = await page.evaluate<{ violations: AxeViolation[]; passes: string[] }>(
            `axe.run(document, { resultTypes: ['violations'] }).then((r) => ({
              violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) })),
              passes: r.passes.map((p) => p.id),
            }))`,
          );
          assert.deepEqual(result.violations, [], `${where}: ${JSON.stringify(result.violations, null, 2)}`);
          // The checks that matter here ran and passed (not merely found nothing to check).
          for (const rule of ['color-contrast', 'html-has-lang', 'document-title', 'landmark-one-main']) {
            assert.ok(result.passes.includes(rule), `${where}: axe rule ${rule} passed`);
          }
          // Chromium reports the 400 and 403 pages themselves as failed loads; nothing else may fail.
          const refusedPage = /^Failed to load resource: the server responded with a status of 40[03]/;
          assert.deepEqual(
            problems.filter(
              (p) => !(name === 'not an e-mail address' || name === 'bad link') || !refusedPage.test(p),
            ),
            [],
            where,
          );
          await page.close();
        }
      } finally {
        await context.close();
      }
    }
    assert.ok(!/@example\.test/.test(logs), 'no address in the logs');
  });
});
