/**
 * `pledge serve --example-site`, as the README tells a developer to try it: the CLI (from the
 * sources) serves examples/site/ under /example-site/ with its own /pledge.js and the vendor
 * stand-ins on tags.localhost and video.localhost; in Chromium the banner shows, nothing of the
 * declared vendor runs before a choice, and Accept all runs it. Without the flag there is no such page.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { childEnv, ROOT } from '../helpers/cli.js';
import { getFreePort } from '../helpers/net.js';
import { writeSiteManifest } from '../helpers/site.js';

const ENTRY = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));

/** Starts `pledge serve` from the sources with `args`; resolves once it says it serves. */
async function serve(args: string[], env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'serve', ...args], {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: string) => {
      out += d;
      if (out.includes('pledge is serving')) {
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve();
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`pledge serve exited (${code}) before serving:\n${stderr}`)),
    );
  });
  return child;
}

/** Every server started here, killed after the file whatever happened. */
const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe('pledge serve --example-site', () => {
  let dataDir: string;
  let port: number;
  let origin: string;
  let server: ChildProcess | undefined;
  let browser: Browser;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-example-site-'));
    port = await getFreePort();
    // localhost, as a developer opens it; tags.localhost and video.localhost reach the same server.
    origin = `http://localhost:${port}`;
    env = {
      PLEDGE_DATA_DIR: dataDir,
      PLEDGE_MANIFEST: await writeSiteManifest(dataDir, '2012-09-07'),
      PLEDGE_PUBLIC_URL: origin,
      // info: the line that says it serves is an info line.
      PLEDGE_LOG_LEVEL: 'info',
    };
    server = await serve(['--port', String(port), '--host', '127.0.0.1', '--example-site'], env);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stop(server);
    await rm(dataDir, { recursive: true, force: true });
  });

  test('the site and its vendors are served, the banner holds the vendor until Accept all', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      const res = await page.goto(`${origin}/example-site/`);
      assert.equal(res?.status(), 200);
      // The company's page, not Pledge's: its inline scripts may run.
      assert.equal((await res.allHeaders())['content-security-policy'], undefined);
      await page.locator('.pl-banner').waitFor();
      assert.deepEqual(await page.evaluate('window.__ran || []'), []);

      await page.getByRole('button', { name: 'Accept all' }).click();
      await page.waitForFunction(
        ['tagged-analytics', 'ads', 'ads-config', 'fetch-collect']
          .map((x) => `(window.__ran || []).includes("${x}")`)
          .join(' && '),
      );
      await page.frameLocator('iframe[title="Vendor widget"]').getByText('widget, loaded').waitFor();
      await page.frameLocator('iframe[title="Product video"]').getByText('video, loaded').waitFor();

      // The second page keeps the choice.
      await page.getByRole('link', { name: 'Pricing' }).click();
      await page.waitForFunction('(window.__ran || []).includes("tagged-analytics")');
      assert.equal(await page.locator('.pl-banner').count(), 0);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('without the flag, /example-site/ is not served', async () => {
    await stop(server);
    server = await serve(['--port', String(port), '--host', '127.0.0.1'], env);
    const res = await fetch(`http://127.0.0.1:${port}/example-site/`);
    assert.equal(res.status, 404);
  });
});
