/**
 * The banner's cost to a site's visitors, beside the peers', each measured from its npm package in
 * the same run:
 * - Script size: gzip -9 and brotli 11 (node:zlib) of what a site loads. Pledge: what
 *   `GET /pledge.js` answers for the example manifest with its banner texts in one language (JS,
 *   CSS and configuration in one file), and in its three; vanilla-cookieconsent 3.1 (its UMD JS
 *   and its CSS); Klaro 0.7 (klaro.js, CSS inside); c15t's headless core (the `c15t` package's ESM build bundled with its dependencies by
 *   esbuild for the browser, minified: the whole package, and what a site that imports only
 *   getOrCreateConsentRuntime ships); Plausible's tracker (@plausible-analytics/tracker: umami's npm
 *   package is the whole Next.js application, with no tracker to load on its own).
 * - Main-thread time in Chromium: the same bare page with Pledge's banner, with
 *   vanilla-cookieconsent's (a one-category banner, as Pledge's example asks one purpose) and with
 *   none, loaded interleaved in fresh browser contexts; after the banner is visible and two frames
 *   have been drawn (visible to a person: not transparent nor hidden, its entrance animation over),
 *   and at least MEASURE_WINDOW_MS after navigation for every page alike, CDP `Performance.getMetrics` gives the page's TaskDuration (every task of the
 *   renderer's main thread: parsing, script, style, layout, paint) and ScriptDuration. Each banner's own
 *   cost: the median over rounds of its page less the bare page of the same round. Target: Pledge at most ×0.5 of
 *   vanilla-cookieconsent's.
 *
 * Alone: `node --import tsx bench/banner.bench.ts [--quick]`; in the report: `npm run bench -- --only banner`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { parseDocument } from 'yaml';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { createApp } from '../src/app.js';
import { loadManifestFile } from '../src/manifest/manifest.loader.js';
import { loadConfig } from '../src/platform/config.js';
import { buildBannerScript } from '../src/tracking/banner.bundle.js';
import { bannerConfigOf } from '../src/tracking/banner.config.js';
import type { BannerConfig, BannerContext } from '../src/tracking/banner.contract.js';
import { launchBrowser } from '../test/helpers/browser.js';
import {
  BenchFailure,
  formatMs,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  ROOT,
  runAlone,
  summarize,
  type BenchResult,
} from './lib.js';

/** How many loads of each page. */
export interface BannerBenchOptions {
  /** Timed loads of each page, interleaved. */
  loads: number;
  /** Untimed loads of each page first (the browser's caches, V8's code cache). */
  warmup: number;
}

/** The figures of `npm run bench`. */
export const BANNER_BENCH_DEFAULTS: BannerBenchOptions = { loads: 20, warmup: 3 };
/** `--quick`: a few, to try the harness. */
export const BANNER_BENCH_QUICK: BannerBenchOptions = { loads: 4, warmup: 1 };

/** The main-thread target: Pledge's banner at most this times vanilla-cookieconsent's. */
const MAIN_THREAD_TARGET = 0.5;

const MODULES = path.join(ROOT, 'node_modules');

const gzip = (b: Uint8Array | string) => gzipSync(b, { level: 9 }).length;
const brotli = (b: Uint8Array | string) =>
  brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

function versionOf(pkg: string): string {
  return (JSON.parse(readFileSync(path.join(MODULES, pkg, 'package.json'), 'utf8')) as { version: string })
    .version;
}

/** The example's banner configuration, in English only, with choices sent to `origin`. */
async function exampleConfig(origin: string): Promise<BannerConfig> {
  const { manifest, problems } = await loadManifestFile(
    path.join(ROOT, 'examples/example-online/pledge.yaml'),
  );
  if (manifest === undefined) throw new BenchFailure(`the example manifest: ${JSON.stringify(problems)}`);
  const config = bannerConfigOf(manifest, { publicUrl: origin });
  if (config === undefined) throw new BenchFailure('the example manifest has no cookie banner');
  return { ...config, t: { en: config.t.en! } };
}

/**
 * What `GET /pledge.js` answers for the example manifest, its banner texts cut to `languages`
 * (all when absent): a real app on a throwaway data directory, asked in memory.
 */
async function servedScript(languages: readonly string[] | undefined): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-banner-'));
  try {
    const doc = parseDocument(readFileSync(path.join(ROOT, 'examples/example-online/pledge.yaml'), 'utf8'));
    if (languages !== undefined) {
      const choices = (doc.get('choices') as { items: Array<{ get(k: string): unknown }> }).items;
      const i = choices.findIndex((c) => c.get('kind') === 'cookie_banner');
      const texts = doc.getIn(['choices', i, 'banner', 'languages']) as {
        items: Array<{ key: { value: string } }>;
      };
      for (const lang of texts.items.map((x) => x.key.value)) {
        if (!languages.includes(lang)) doc.deleteIn(['choices', i, 'banner', 'languages', lang]);
      }
    }
    const manifest = path.join(dir, 'pledge.yaml');
    writeFileSync(manifest, doc.toString());
    const config = {
      ...loadConfig({ PLEDGE_DATA_DIR: dir, PLEDGE_LOG_LEVEL: 'silent' }, { manifest }),
      retentionIntervalSeconds: 0,
    };
    const app = await createApp(config);
    try {
      const res = await app.http.inject({ method: 'GET', url: '/pledge.js' });
      if (res.statusCode !== 200)
        throw new BenchFailure(`GET /pledge.js answered ${res.statusCode}: ${res.body}`);
      return res.body;
    } finally {
      await app.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** c15t bundled for the browser as a site's build would: `entry` imports from the package. */
async function bundleC15t(entry: string): Promise<Uint8Array> {
  const out = await esbuild.build({
    stdin: { contents: entry, resolveDir: ROOT, loader: 'js' },
    bundle: true,
    write: false,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    legalComments: 'none',
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.contents;
}

interface SizeRow {
  name: string;
  what: string;
  files: Array<Uint8Array | string>;
}

async function measureSizes(): Promise<{ markdown: string }> {
  const file = (p: string) => readFileSync(path.join(MODULES, p));
  const [pledgeEn, pledgeAll] = [await servedScript(['en']), await servedScript(undefined)];
  const rows: SizeRow[] = [
    {
      name: 'Pledge /pledge.js',
      what: 'GET /pledge.js: JS + CSS + the example configuration, en only',
      files: [pledgeEn],
    },
    {
      name: 'Pledge /pledge.js, 3 languages',
      what: "the same, with the example's en, de and fr texts",
      files: [pledgeAll],
    },
    {
      name: `vanilla-cookieconsent ${versionOf('vanilla-cookieconsent')}`,
      what: 'dist/cookieconsent.umd.js + dist/cookieconsent.css',
      files: [
        file('vanilla-cookieconsent/dist/cookieconsent.umd.js'),
        file('vanilla-cookieconsent/dist/cookieconsent.css'),
      ],
    },
    {
      name: `Klaro ${versionOf('klaro')}`,
      what: 'dist/klaro.js (CSS inside)',
      files: [file('klaro/dist/klaro.js')],
    },
    {
      name: `c15t ${versionOf('c15t')} headless core`,
      what: 'dist/index.js + dependencies, esbuild-bundled and minified, whole package',
      files: [await bundleC15t("export * from 'c15t';")],
    },
    {
      name: `c15t ${versionOf('c15t')}, runtime only`,
      what: 'the same, importing getOrCreateConsentRuntime alone',
      files: [
        await bundleC15t(
          "import { getOrCreateConsentRuntime } from 'c15t'; window.c15t = getOrCreateConsentRuntime;",
        ),
      ],
    },
    {
      name: `Plausible tracker ${versionOf('@plausible-analytics/tracker')}`,
      what: '@plausible-analytics/tracker plausible.js (no consent)',
      files: [file('@plausible-analytics/tracker/plausible.js')],
    },
  ];
  const measured = rows.map((r) => ({
    ...r,
    raw: r.files.reduce((s, f) => s + (typeof f === 'string' ? Buffer.byteLength(f) : f.length), 0),
    gz: r.files.reduce((s, f) => s + gzip(f), 0),
    br: r.files.reduce((s, f) => s + brotli(f), 0),
  }));
  const pledgeGzip = measured[0]!.gz;
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  const table = formatTable(
    ['script', 'what a site loads', 'minified', 'gzip -9', 'brotli 11', 'Pledge ÷ it (gzip)'],
    measured.map((m) => [m.name, m.what, kb(m.raw), kb(m.gz), kb(m.br), formatRatio(pledgeGzip, m.gz)]),
  );
  return {
    markdown: [
      table,
      '',
      'Each file compressed on its own (a site serves them as separate files), KB = 1024 bytes; measured from node_modules in this run.',
    ].join('\n'),
  };
}

/** The bare page every variant shares: a heading and two paragraphs. */
function page(head: string, tail = ''): string {
  return `<!doctype html><html lang="en"><head>${head}<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Bench</title></head><body><main><h1>Meetings from anywhere</h1><p>Example Online makes online meeting, webinar and remote support products.</p><p>This page stands for any page of a site.</p></main>${tail}</body></html>`;
}

/**
 * vanilla-cookieconsent configured as Pledge's example asks: one optional category, three buttons.
 * `hideFromBots: false`: it would otherwise show nothing to a headless (webdriver) browser.
 */
const CC_RUN = `CookieConsent.run({
  hideFromBots: false,
  categories: { necessary: { enabled: true, readOnly: true }, analytics: {} },
  language: { default: 'en', translations: { en: {
    consentModal: { title: 'Cookies and web beacons', description: 'We use cookies and web beacons to count visits and see how our sites are used, but only if you agree. You can change your mind at any time.', acceptAllBtn: 'Accept all', acceptNecessaryBtn: 'Reject all', showPreferencesBtn: 'Choose', footer: '<a href="/privacy">Privacy policy</a>' },
    preferencesModal: { title: 'Your choices', acceptAllBtn: 'Accept all', acceptNecessaryBtn: 'Reject all', savePreferencesBtn: 'Save my choices', sections: [
      { title: 'Measure how our sites are used', description: 'Count visits and interactions with our sites, with cookies and web beacons.', linkedCategory: 'analytics' }
    ] }
  } } }
});`;

interface Variant {
  name: string;
  path: string;
  /** What is visible once the banner is shown; absent for the bare page. */
  banner?: string;
}

export const VARIANTS: Variant[] = [
  { name: 'bare page', path: '/bare.html' },
  { name: 'Pledge', path: '/pledge.html', banner: '.pl-banner' },
  { name: 'vanilla-cookieconsent', path: '/cc.html', banner: '#cc-main .cm' },
];

/**
 * Every page is measured over the same window from its navigation (and longer only if its banner is
 * not shown and settled by then): the renderer's own background work after a load (timers, idle
 * tasks, garbage collection) then counts alike for the bare page and for each banner, instead of more
 * for the page whose banner comes later.
 */
export const MEASURE_WINDOW_MS = 1000;

/** What Performance.getMetrics gives that the report shows: main-thread time, and three parts of it. */
const METRICS = ['task', 'script', 'layout', 'style'] as const;
type Metric = (typeof METRICS)[number];

/** A static server for the three pages and their scripts (and the banner's context, for Pledge). */
export async function startBenchSite(
  build: (config: BannerConfig) => Promise<{ code: string }> = buildBannerScript,
): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const pledge = (await build(await exampleConfig(origin))).code;
  // The answer /api/v1/banner/context gives a visitor in Germany: opt-in, so the banner shows.
  const context: BannerContext = { jurisdiction: 'DE', modes: { 'site-analytics': 'opt_in' }, gpc: false };
  const files: Record<string, [type: string, body: string | Buffer]> = {
    '/bare.html': ['text/html', page('')],
    '/pledge.html': ['text/html', page('<script src="/pledge.js"></script>')],
    '/cc.html': [
      'text/html',
      page(
        '<link rel="stylesheet" href="/cc/cookieconsent.css">',
        `<script src="/cc/cookieconsent.umd.js"></script><script>${CC_RUN}</script>`,
      ),
    ],
    '/pledge.js': ['text/javascript', pledge],
    '/api/v1/banner/context': ['application/json', JSON.stringify(context)],
    '/cc/cookieconsent.css': [
      'text/css',
      readFileSync(path.join(MODULES, 'vanilla-cookieconsent/dist/cookieconsent.css')),
    ],
    '/cc/cookieconsent.umd.js': [
      'text/javascript',
      readFileSync(path.join(MODULES, 'vanilla-cookieconsent/dist/cookieconsent.umd.js')),
    ],
  };
  server.on('request', (req, res) => {
    const f = files[new URL(req.url ?? '/', origin).pathname];
    if (f === undefined) {
      res.writeHead(404).end();
      return;
    }
    // Scripts cacheable as a CDN would serve them; pages and the context not.
    const cache = f[0] === 'text/html' || f[0] === 'application/json' ? 'no-store' : 'public, max-age=3600';
    res.writeHead(200, { 'content-type': `${f[0]}; charset=utf-8`, 'cache-control': cache }).end(f[1]);
  });
  return {
    origin,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One load: main-thread task and script time (ms) until the banner is drawn. */
export async function loadOnce(
  browser: Browser,
  url: string,
  variant: Variant,
  windowMs = MEASURE_WINDOW_MS,
): Promise<Record<Metric, number>> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const p: Page = await context.newPage();
    const cdp: CDPSession = await context.newCDPSession(p);
    await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
    await p.goto(url, { waitUntil: 'load' });
    // Polled in the page's own world, the same way for every variant: Playwright's waitForSelector
    // would inject its selector engine into the page, whose compilation is main-thread time too.
    await p.evaluate(
      `new Promise((resolve) => {
        const check = () => {
          const el = document.querySelector(${JSON.stringify(variant.banner ?? 'main')});
          // Visible to a person: shown, not transparent nor hidden (vanilla-cookieconsent's box is
          // in the page at opacity 0 and visibility hidden until a timer 100 ms later starts its
          // transition), and its entrance animation or transition over.
          if (el && el.checkVisibility({ opacityProperty: true, visibilityProperty: true }))
            Promise.all(el.getAnimations({ subtree: true }).map((a) => a.finished)).then(() =>
              requestAnimationFrame(() =>
                requestAnimationFrame(() => setTimeout(resolve, Math.max(0, ${windowMs} - performance.now()))),
              ),
            );
          // Polled by a timer, not by requestAnimationFrame: a frame asked for each poll would be
          // main-thread work of the bench's own, more of it for the page whose banner comes later.
          else setTimeout(check, 10);
        };
        check();
      })`,
    );
    const { metrics } = await cdp.send('Performance.getMetrics');
    const get = (name: string) => metrics.find((m) => m.name === name)?.value ?? Number.NaN;
    return {
      task: get('TaskDuration') * 1000,
      script: get('ScriptDuration') * 1000,
      layout: get('LayoutDuration') * 1000,
      style: get('RecalcStyleDuration') * 1000,
    };
  } finally {
    await context.close();
  }
}

async function measureMainThread(
  options: BannerBenchOptions,
): Promise<{ markdown: string; pledge: number; cc: number }> {
  const site = await startBenchSite();
  const browser = await launchBrowser();
  try {
    const samples = new Map<string, Record<Metric, number[]>>(
      VARIANTS.map((v) => [v.name, { task: [], script: [], layout: [], style: [] }]),
    );
    for (let i = 0; i < options.warmup + options.loads; i++) {
      // Interleaved, and the order turned each round, so that neither drift nor order favours one.
      const order = VARIANTS.map((_, j) => VARIANTS[(i + j) % VARIANTS.length]!);
      for (const v of order) {
        const r = await loadOnce(browser, `${site.origin}${v.path}`, v);
        if (i < options.warmup) continue;
        for (const m of METRICS) samples.get(v.name)![m].push(r[m]);
      }
    }
    const median = (name: string, m: Metric) => summarize(samples.get(name)![m]).median;
    // A banner's own time: per round, its page less the bare page of the same round (loaded moments
    // apart, so the load of the machine at that moment cancels out), and the median of those.
    const own = (name: string, m: Metric) =>
      summarize(samples.get(name)![m].map((x, i) => x - samples.get('bare page')![m][i]!)).median;
    const pledge = own('Pledge', 'task');
    const cc = own('vanilla-cookieconsent', 'task');
    const rows = VARIANTS.map((v) => [
      v.name,
      `${formatMs(median(v.name, 'task'))} (p95 ${formatMs(summarize(samples.get(v.name)!.task).p95)})`,
      ...(v.banner === undefined ? ['', '', '', ''] : METRICS.map((m) => formatMs(own(v.name, m)))),
    ]);
    const table = formatTable(
      ['page', 'TaskDuration median', "banner's own: task", 'script', 'layout', 'style'],
      rows,
    );
    const target = {
      label: `Pledge ≤ ×${MAIN_THREAD_TARGET} of vanilla-cookieconsent`,
      met: pledge <= MAIN_THREAD_TARGET * cc,
    };
    return {
      markdown: [
        table,
        '',
        `Pledge's banner ÷ vanilla-cookieconsent's (own task time, medians): ${formatRatio(pledge, cc)}: ${formatTarget(target)}.`,
        '',
        `${options.loads} loads of each page (after ${options.warmup} untimed), interleaved, each in a fresh browser context (no cookie, so the banner shows) at 1280×800; ` +
          "the time is CDP Performance.getMetrics' TaskDuration (the CPU time of every task of the page's main thread, as thread ticks: parsing, script, style, layout, paint), " +
          `with its ScriptDuration, LayoutDuration and RecalcStyleDuration parts, read once the banner is visible to a person (not transparent, not hidden: checkVisibility with opacity and visibility) and its entrance animation or transition over, and two frames drawn, and at least ${MEASURE_WINDOW_MS} ms after navigation for every page alike (polled by a 10 ms timer in the page itself, the same for every page);` +
          "a banner's own time is the median over the rounds of its page's time less the bare page's in the same round. The scripts come from one local static server; Pledge's context answer (a visitor in Germany) too.",
      ].join('\n'),
      pledge,
      cc,
    };
  } finally {
    await browser.close();
    await site.close();
  }
}

/** Runs both parts. */
export async function runBannerBench(options: BannerBenchOptions): Promise<BenchResult> {
  const sizes = await measureSizes();
  const main = await measureMainThread(options);
  const missed: string[] = [];
  if (main.pledge > MAIN_THREAD_TARGET * main.cc) {
    missed.push(
      `banner main-thread time: Pledge ${formatMs(main.pledge)} vs vanilla-cookieconsent ${formatMs(main.cc)} (${formatRatio(main.pledge, main.cc)}; target ≤ ×${MAIN_THREAD_TARGET})`,
    );
  }
  return {
    title: 'The banner: script size and main-thread time',
    markdown: [
      '### Script size',
      '',
      sizes.markdown,
      '',
      '### Main-thread time in Chromium',
      '',
      main.markdown,
    ].join('\n'),
    missed,
  };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runBannerBench(quick ? BANNER_BENCH_QUICK : BANNER_BENCH_DEFAULTS));
}
