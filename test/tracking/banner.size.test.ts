/**
 * The size budget of /pledge.js: the script a site loads for the example manifest, in one language
 * (JavaScript, CSS and configuration together, blocker included), is at most 6 KB gzip -9. This
 * test fails the build when a change goes over it.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { loadManifestFile } from '../../src/manifest/manifest.loader.js';
import type { BannerConfig } from '../../src/tracking/banner.contract.js';
import { bannerConfigOf } from '../../src/tracking/banner.config.js';
import {
  buildBannerScript,
  CONFIG_PLACEHOLDER,
  loadClient,
  PREBUILT_CLIENT,
} from '../../src/tracking/banner.bundle.js';
import { EXAMPLE_MANIFEST } from '../helpers/vault.js';

/** The budget of the issue: 0.39× vanilla-cookieconsent's 15.5 KB. */
const BUDGET_GZIP = 6 * 1024;

const gzip = (code: string) => gzipSync(code, { level: 9 }).length;
const brotli = (code: string) =>
  brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

async function exampleConfig(): Promise<BannerConfig> {
  const { manifest, problems } = await loadManifestFile(EXAMPLE_MANIFEST);
  assert.ok(manifest, JSON.stringify(problems));
  const config = bannerConfigOf(manifest, { publicUrl: 'https://pledge.example-online.test' });
  assert.ok(config, 'the example manifest has a cookie banner');
  return config;
}

describe('/pledge.js size', () => {
  test('the example in one language is at most 6 KB gzip, with its CSS, configuration and blocker', async (t) => {
    const config = await exampleConfig();
    const en: BannerConfig = { ...config, t: { en: config.t.en! } };
    const { code } = await buildBannerScript(en);
    const all = await buildBannerScript(config);
    t.diagnostic(
      `/pledge.js, example, en only: ${code.length} bytes, gzip -9 ${gzip(code)}, brotli 11 ${brotli(code)}; ` +
        `all ${Object.keys(config.t).length} languages: gzip -9 ${gzip(all.code)}, brotli 11 ${brotli(all.code)}`,
    );
    // What is measured is the whole script: the configuration's texts and the CSS are inside it.
    assert.ok(code.includes(JSON.stringify(en)), 'the configuration is inlined');
    assert.ok(code.includes('.pl-banner{'), 'the CSS is inlined');
    assert.ok(code.includes('startBlocking') || code.includes('MutationObserver'), 'the blocker is in it');
    assert.ok(gzip(code) <= BUDGET_GZIP, `gzip -9 ${gzip(code)} bytes, over the ${BUDGET_GZIP}-byte budget`);
    assert.ok(brotli(code) < gzip(code), `brotli ${brotli(code)} bytes`);
  });

  test('the hash names the content: another configuration, another hash; the same, the same', async () => {
    const config = await exampleConfig();
    const a = await buildBannerScript(config);
    const b = await buildBannerScript(config);
    const c = await buildBannerScript({ ...config, v: `${config.v}x` });
    assert.match(a.hash, /^[A-Za-z0-9_-]{16}$/);
    assert.equal(a.hash, b.hash);
    assert.equal(a.code, b.code);
    assert.notEqual(a.hash, c.hash);
  });

  test('texts are put in as written, "$" patterns included', async () => {
    const config = await exampleConfig();
    const title = "Cookies: $& $' $1 $$ </script>";
    const { code } = await buildBannerScript({ ...config, t: { en: { ...config.t.en!, title } } });
    assert.ok(code.includes(JSON.stringify(title)));
  });

  test('an installed package, without the client source, serves the copy npm run build wrote', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'pledge-package-'));
    try {
      const prebuilt = `(()=>{var c=${CONFIG_PLACEHOLDER};})();`;
      await mkdir(path.join(root, 'dist'));
      await writeFile(path.join(root, PREBUILT_CLIENT), prebuilt);
      assert.equal(await loadClient(root), prebuilt);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
