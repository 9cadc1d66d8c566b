/**
 * `pledge serve` as an operator runs it: a real process on 127.0.0.1, checked configuration, a
 * graceful stop; and `/privacy` as a reader sees it, in real Chromium.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { childEnv, ROOT, runPledge } from '../helpers/cli.js';

/** The part of the browser's window the page checks use (the tests compile without the DOM types). */
interface BrowserWindow {
  getComputedStyle(el: unknown): { maxWidth: string };
}

const ENTRY = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));

/** Starts `pledge serve` on a free port and resolves with its base URL once it logs that it serves. */
async function startServer(
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcessWithoutNullStreams; base: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', ENTRY, 'serve', '--port', '0', '--host', '127.0.0.1'],
    {
      cwd: ROOT,
      env: childEnv(env),
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const lines = createInterface({ input: child.stdout });
  const base = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
    lines.on('line', (line) => {
      let entry: { msg?: string; url?: string };
      try {
        entry = JSON.parse(line) as { msg?: string; url?: string };
      } catch {
        return;
      }
      if (entry.msg === 'pledge is serving' && entry.url) resolve(entry.url);
    });
  });
  return { child, base };
}

describe('pledge serve', () => {
  let server: { child: ChildProcessWithoutNullStreams; base: string };
  let browser: Browser;

  before(async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'pledge-serve-'));
    server = await startServer({ PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '' });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser.close();
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  });

  test('answers /healthz on a real socket, on the embedded SQLite database', async () => {
    const res = await fetch(`${server.base}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', database: 'sqlite', policyVersion: '2012-09-07' });
  });

  test('/privacy in Chromium: the policy with its sections, styled, with no errors and no script', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
    const res = await page.goto(`${server.base}/privacy`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    const headings = await page.locator('h2').allTextContents();
    for (const h of [
      'Introduction',
      'Information We Collect',
      'How We Use Your Information',
      'How We Share Your Information',
      'Communication Choices',
    ]) {
      assert.ok(
        headings.some((t) => t.includes(h)),
        `section "${h}" is shown (got ${headings.join(' | ')})`,
      );
    }
    assert.equal(await page.locator('h1').count(), 1);
    assert.ok(
      await page
        .getByText('We do not sell, trade, or rent your personal information to third parties.')
        .first()
        .isVisible(),
    );
    // The stylesheet is allowed by the Content-Security-Policy and applied.
    const maxWidth = await page
      .locator('main')
      .evaluate((el) => (globalThis as unknown as BrowserWindow).getComputedStyle(el).maxWidth);
    assert.notEqual(maxWidth, 'none', 'the policy stylesheet is applied');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('the privacy contact is a working mailto link', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.base}/privacy`);
    const href = await page.locator('a[href^="mailto:"]').first().getAttribute('href');
    assert.equal(href, 'mailto:privacy@example-online.test');
    await context.close();
  });

  test('SIGTERM stops it cleanly', async () => {
    const exited = new Promise<number | null>((resolve) =>
      server.child.once('exit', (code) => resolve(code)),
    );
    server.child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});

describe('pledge serve with a bad configuration', () => {
  test('lists every problem at once and exits 1 without starting', async () => {
    const r = await runPledge(['serve'], {
      env: { PORT: 'eighty', DATABASE_URL: 'mysql://db', PLEDGE_LOG_LEVEL: 'loud' },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /3 problem/);
    assert.match(r.stderr, /PORT/);
    assert.match(r.stderr, /DATABASE_URL/);
    assert.match(r.stderr, /PLEDGE_LOG_LEVEL/);
  });

  test('refuses a manifest it cannot read, naming it', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'pledge-serve-'));
    const r = await runPledge(['serve', '--manifest', 'nope.yaml', '--port', '0'], {
      env: { PLEDGE_DATA_DIR: dataDir, DATABASE_URL: '' },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.yaml/);
  });
});
