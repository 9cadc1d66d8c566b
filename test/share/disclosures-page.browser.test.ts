/**
 * "Who got my data" in real Chromium against a real server on 127.0.0.1, JavaScript off: the person
 * goes from the choices page to the disclosures page by its link and back, reads the table, and
 * downloads a proof that verifies; the page passes axe-core (contrast included) in light and dark
 * mode under the server's Content-Security-Policy.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { verifyProofFiles } from '../../src/audit/log.proof-verify.js';
import { createLinkToken, deriveLinkTokenKeys } from '../../src/consent/link-tokens.js';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext } from '../../src/platform/context.js';
import { launchBrowser } from '../helpers/browser.js';
import { exampleWithTestSystem, TEST_SYSTEM } from '../helpers/manifests.js';
import { openLegalApp, type LegalTestApp } from './legal-app.js';

const require = createRequire(import.meta.url);

interface AxeViolation {
  id: string;
  nodes: Array<{ target: string[] }>;
}

describe('who got my data in Chromium', () => {
  let t: LegalTestApp;
  let base: string;
  let browser: Browser;
  let axeSource: string;
  let token: string;

  before(async () => {
    t = await openLegalApp('sqlite', { manifestPath: exampleWithTestSystem() });
    base = await t.app.http.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchBrowser();
    axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
    const cli = createContext({ kind: 'cli', id: 'test' });
    const system = createContext({ kind: 'system', id: TEST_SYSTEM, key: 'test' });
    const ada = await t.register();
    const grant = await t.app.share.authorizePassThrough(system, {
      recipient: 'card-processor',
      purpose: 'provide-service',
      fields: [{ name: 'card_number', category: 'user.financial.payment_card.number' }],
    });
    await t.app.share.recordPassThrough(system, [grant.entryFor(ada.subjectId, { source: 'checkout' })]);
    await t.app.share.disclose(system, {
      recipient: 'group-companies',
      purpose: 'marketing-email',
      subjects: [ada.subjectId],
      fields: ['email'],
    });
    // A checkpoint now (the integrator signs one when ten seconds have passed on its clock).
    await t.app.log.integrateNow(
      createContext({ kind: 'cli', id: 'test' }, { clock: fixedClock(new Date(Date.now() + 60_000)) }),
    );
    token = createLinkToken(
      deriveLinkTokenKeys(t.app.keyring.use('links')),
      { scope: 'preferences', subjectId: ada.subjectId },
      { now: new Date(), generation: await t.app.consent.linkGenerationOf(cli, ada.subjectId) },
    );
  });
  after(async () => {
    await browser.close();
    await t.cleanup();
  });

  test('from the choices to who got my data and back, with JavaScript off; the proof downloads and verifies', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false, acceptDownloads: true });
    try {
      const page = await context.newPage();
      await page.goto(`${base}/preferences?t=${token}`);
      assert.equal(await page.locator('h1').textContent(), 'Your privacy center');
      await page.getByRole('link', { name: 'who got your data' }).click();
      assert.match(page.url(), /\/preferences\/disclosures\?t=/);
      assert.equal(await page.getByRole('table').count(), 1);
      const headers = await page.getByRole('columnheader').allTextContents();
      assert.deepEqual(headers, [
        'When',
        'Who received it',
        'What for',
        'Which of your information',
        'Proof',
      ]);
      const recipients = await page.getByRole('rowheader').allTextContents();
      assert.equal(recipients.length, 2);
      assert.match(recipients[0] ?? '', /Companies of the Example Systems group/);
      assert.match(recipients[1] ?? '', /Card processor/);
      assert.equal(await page.locator('tbody time[datetime]').count(), 2);

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'Download the proof' }).first().click(),
      ]);
      assert.match(download.suggestedFilename(), /^pledge-proof-\d+\.json$/);
      const file = await download.path();
      const proof = await readFile(file, 'utf8');
      const checked = verifyProofFiles({
        proof,
        checkpoints: [(JSON.parse(proof) as { checkpoint: string }).checkpoint],
        key: t.app.log.verifierKey,
      });
      assert.equal(checked.ok, true, checked.message);

      await page.getByRole('link', { name: 'Your privacy choices' }).click();
      assert.ok(await page.getByRole('button', { name: 'Save my choices' }).isVisible());
    } finally {
      await context.close();
    }
  });

  test('the page passes axe-core in light and dark mode, under the CSP', async () => {
    for (const colorScheme of ['light', 'dark'] as const) {
      const context = await browser.newContext({ colorScheme });
      try {
        const page = await context.newPage();
        const problems: string[] = [];
        page.on('console', (m) => {
          if (m.type() === 'error') problems.push(m.text());
        });
        await page.goto(`${base}/preferences/disclosures?t=${token}`);
        assert.equal(await page.getAttribute('html', 'lang'), 'en');
        assert.equal(await page.evaluate<string>(`getComputedStyle(document.body).fontSize`), '17px');
        await page.evaluate(axeSource);
        const result = await page.evaluate<{ violations: AxeViolation[]; passes: string[] }>(
          `axe.run(document, { resultTypes: ['violations'] }).then((r) => ({
            violations: r.violations.map((v) => ({ id: v.id, nodes: v.nodes.map((n) => ({ target: n.target })) })),
            passes: r.passes.map((p) => p.id),
          }))`,
        );
        assert.deepEqual(result.violations, [], `${colorScheme}: ${JSON.stringify(result.violations)}`);
        for (const rule of ['color-contrast', 'document-title', 'landmark-one-main', 'th-has-data-cells'])
          assert.ok(result.passes.includes(rule), `${colorScheme}: axe rule ${rule} passed`);
        assert.deepEqual(problems, [], colorScheme);
      } finally {
        await context.close();
      }
    }
  });
});
