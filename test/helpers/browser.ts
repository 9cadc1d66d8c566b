/**
 * Real headless Chromium for page tests, driven by playwright-core.
 *
 * The browser is Debian's /usr/bin/chromium when it is installed, else the headless Chromium
 * shipped inside the npm package @sparticuz/chromium (this machine reaches no browser download
 * site, and `npx playwright install` would need one). That package keeps the binary Brotli-packed;
 * it is unpacked once per version into a cache folder under the system temp directory.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type LaunchOptions } from 'playwright-core';

const execFileAsync = promisify(execFile);
const require = createRequire(import.meta.url);

/** Debian's Chromium (`apt-get install chromium`), preferred when present. */
export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/**
 * Flags for every launch. This machine has no network but the loopback and no GPU, and tests run
 * as root: without the background-networking flags Chromium keeps dialling Google's hosts and
 * filling the logs with refused connections.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-domain-reliability',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--no-default-browser-check',
  '--no-pings',
];

/**
 * Flags taken from @sparticuz/chromium's recommended `args`, for its build only. Left out on
 * purpose: `--single-process` (Playwright's new contexts and pages break under it),
 * `--disable-web-security` and `--allow-running-insecure-content` (page tests must see the same
 * security policy as a user's browser), and `--headless='shell'` (Playwright adds `--headless`).
 */
const SPARTICUZ_ARGS: readonly string[] = [
  '--disable-setuid-sandbox',
  '--no-zygote',
  '--font-render-hinting=none',
  '--disable-print-preview',
  '--use-angle=swiftshader',
];

/** Which Chromium the page tests run, and where. */
export interface ChromiumResult {
  executablePath: string;
  /** `env`: PLEDGE_CHROMIUM_PATH; `debian`: /usr/bin/chromium; `sparticuz`: the npm package's build. */
  source: 'env' | 'debian' | 'sparticuz';
}

let found: Promise<ChromiumResult> | undefined;

/**
 * The Chromium executable for page tests: `PLEDGE_CHROMIUM_PATH` when set, else Debian's
 * /usr/bin/chromium when present, else @sparticuz/chromium's binary, unpacked on first use.
 */
export function getChromium(): Promise<ChromiumResult> {
  found ??= findChromium();
  return found;
}

async function findChromium(): Promise<ChromiumResult> {
  const chosen = process.env.PLEDGE_CHROMIUM_PATH;
  if (chosen !== undefined && chosen !== '') {
    if (!existsSync(chosen)) throw new Error(`PLEDGE_CHROMIUM_PATH names ${chosen}, which does not exist`);
    return { executablePath: chosen, source: 'env' };
  }
  if (existsSync(DEBIAN_CHROMIUM)) return { executablePath: DEBIAN_CHROMIUM, source: 'debian' };
  return { executablePath: await unpackSparticuzChromium(), source: 'sparticuz' };
}

/**
 * Unpacks @sparticuz/chromium into `<tmp>/pledge-chromium-<version>/` and returns the binary's path.
 *
 * The package's own `executablePath()` unpacks into the temp directory itself and reuses any
 * `/tmp/chromium` it finds, even half-written by a concurrent test file or left by another version.
 * So it runs in a child process whose TMPDIR is a fresh staging folder, which is then renamed into
 * place: rename is atomic, so the cache folder either holds a complete browser or does not exist,
 * and when two test processes race, one rename wins and the other discards its copy.
 */
async function unpackSparticuzChromium(): Promise<string> {
  const entry = require.resolve('@sparticuz/chromium');
  const packageRoot = path.resolve(path.dirname(entry), '..', '..');
  const { version } = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  const cache = path.join(os.tmpdir(), `pledge-chromium-${version}`);
  const binary = path.join(cache, 'chromium');
  if (existsSync(binary)) return binary;

  const staging = await mkdtemp(`${cache}.staging-`);
  try {
    const script = `require(${JSON.stringify(entry)}).executablePath().then((p) => process.stdout.write(p))`;
    const { stdout } = await execFileAsync(process.execPath, ['-e', script], {
      env: { ...process.env, TMPDIR: staging },
    });
    if (stdout !== path.join(staging, 'chromium')) {
      throw new Error(
        `@sparticuz/chromium unpacked to ${stdout}, expected ${path.join(staging, 'chromium')}`,
      );
    }
    try {
      await rename(staging, cache);
    } catch (err) {
      // Another process renamed its copy first; use that one.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !existsSync(binary)) throw err;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return binary;
}

/** The launch options {@link launchBrowser} uses, for tests that need to add to them. */
export async function getLaunchOptions(): Promise<LaunchOptions> {
  const { executablePath, source } = await getChromium();
  return {
    executablePath,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(source === 'sparticuz' ? SPARTICUZ_ARGS : [])],
    // Chromium's own first start (fonts, profile) can take a few seconds on a loaded 2-core machine.
    timeout: 60_000,
  };
}

/**
 * Launches headless Chromium. The caller closes it (`await browser.close()`), typically in an
 * `after` hook; each test should use its own `browser.newContext()` so cookies never leak between
 * tests.
 */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch(await getLaunchOptions());
}
