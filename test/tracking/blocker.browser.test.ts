/**
 * /pledge.js's blocking engine (src/tracking/client/blocker.ts) in real Chromium: a page on
 * 127.0.0.1 loads the engine first and synchronously in <head>, and a second origin on loopback
 * (tags.localhost and other *.localhost names, test/helpers/third-party.ts) counts every request
 * that reaches it. The engine is bundled alone with a test shim that starts it with the page's
 * hosts and hands it to the test, which plays the banner's part by calling update().
 *
 * The shim also records, below the engine, every fetch, XHR send, beacon and loading attribute the
 * engine lets through, so the order of release is read where the engine decides it (the order of
 * arrival at a server also depends on the browser's network scheduling).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { ROOT } from '../helpers/cli.js';
import {
  startPageServer,
  startThirdParty,
  type PageServer,
  type ThirdParty,
} from '../helpers/third-party.js';

/** Starts the engine with the hosts its script tag names, below a recorder of what it lets out. */
const SHIM = `
import { startBlocking } from './blocker';
const log = (window.__log = []);
const rec = (k, u) => {
  try {
    const x = new URL(String(u).trim().split(/\\s/)[0], document.baseURI);
    if (x.hostname.endsWith('.localhost')) log.push(k + ' ' + x.hostname + x.pathname);
  } catch {}
};
const F = window.fetch;
window.fetch = function (i, o) { rec('fetch', i instanceof Request ? i.url : i); return F.call(this, i, o); };
const X = XMLHttpRequest.prototype, XO = X.open, XS = X.send;
X.open = function (m, u) { this.__u = u; return XO.apply(this, arguments); };
X.send = function (b) { rec('xhr', this.__u); return XS.call(this, b); };
const B = navigator.sendBeacon;
navigator.sendBeacon = function (u, d) { rec('beacon', u); return B.call(navigator, u, d); };
const SA = Element.prototype.setAttribute;
Element.prototype.setAttribute = function (n, v) {
  if (/^(src|href|srcset)$/i.test(n)) rec(this.tagName.toLowerCase(), v);
  return SA.call(this, n, v);
};
window.__blocker = startBlocking(JSON.parse(document.currentScript.getAttribute('data-hosts')));
`;

/** What a page reports: the scripts that ran, the frames that loaded, the engine's releases. */
interface PageState {
  ran: string[];
  frames: string[];
  log: string[];
}

/** The preload barrier docs/tracking.md recommends right after the script tag. */
const BARRIER = `<meta http-equiv="Content-Security-Policy" content="">`;

const STATE = `({ ran: window.__ran || [], frames: window.__frames || [], log: window.__log })`;

describe('the blocking engine in Chromium', () => {
  let browser: Browser;
  let pages: PageServer;
  let pageCount = 0;

  before(async () => {
    const bundle = await build({
      stdin: { contents: SHIM, resolveDir: path.join(ROOT, 'src/tracking/client'), loader: 'js' },
      bundle: true,
      minify: true,
      write: false,
      format: 'iife',
      target: 'es2020',
    });
    pages = await startPageServer({
      '/pledge.js': { body: bundle.outputFiles[0]!.text, type: 'text/javascript' },
      '/local.js': { body: `(window.__ran = window.__ran || []).push('local');`, type: 'text/javascript' },
      '/local.json': { body: '{"local":true}', type: 'application/json' },
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser.close();
    await pages.close();
  });

  /**
   * Opens a page whose <head> loads the engine with `hosts`, then `head`, and whose <body> is
   * `body` followed by a request to the undeclared other.localhost: once that request has arrived,
   * everything the page asked for before it has been asked for (or held).
   */
  async function open(
    tp: ThirdParty,
    hosts: Array<[string, string[]]>,
    html: { barrier?: boolean; head?: string; body: string },
  ): Promise<Page> {
    const name = `/page-${++pageCount}`;
    const sentinel = tp.url(`/j/sentinel${pageCount}`, 'other.localhost');
    pages.set(
      name,
      `<!doctype html><html><head><meta charset="utf-8">` +
        `<script src="/pledge.js" data-hosts='${JSON.stringify(hosts)}'></script>` +
        (html.barrier ? BARRIER : '') +
        `<script>addEventListener('message', (e) => (window.__frames = window.__frames || []).push(e.data.frame));</script>` +
        `${html.head ?? ''}</head><body>${html.body}` +
        `<script>fetch(${JSON.stringify(sentinel)})</script></body></html>`,
    );
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(pages.origin + name);
    await tp.waitForHits(1, (h) => h.pathname === `/j/sentinel${pageCount}`);
    return page;
  }

  /** The hits at declared hosts (every *.localhost name but other.localhost and notags.localhost). */
  const declaredHits = (tp: ThirdParty): string[] =>
    tp.hits
      .filter((h) => h.host !== 'other.localhost' && h.host !== 'notags.localhost')
      .map((h) => `${h.host}${h.pathname}`);

  const update = (page: Page, allowed: string[], decided: boolean): Promise<void> =>
    page.evaluate(
      ([a, d]) => {
        const w = globalThis as unknown as {
          __blocker: { update(f: (p: string) => boolean, d: boolean): void };
        };
        w.__blocker.update((p) => a.includes(p), d);
      },
      [allowed, decided] as const,
    );

  /** A script in the page that asks for one of each kind of thing, through every path a tag uses. */
  const everyKind = (tp: ThirdParty): string => {
    const u = (p: string): string => JSON.stringify(tp.url(p));
    return `<div id="box"></div><script>
      const s = document.createElement('script'); s.src = ${u('/s/d1.js')}; document.head.appendChild(s);
      new Image().src = ${u('/i/d2.gif')};
      document.getElementById('box').innerHTML = '<img id="d3" src=' + ${u('/i/d3.gif')} + '><iframe src=' + ${u('/f/d4.html')} + '></iframe>';
      const l = document.createElement('link'); l.setAttribute('rel', 'stylesheet'); l.setAttribute('href', ${u('/c/d5.css')}); document.head.append(l);
      const i = document.createElement('img'); i.id = 'd6'; i.srcset = ${u('/i/d6.gif')} + ' 2x'; document.body.appendChild(i);
      window.__fetch = fetch(${u('/j/d7')}).then((r) => r.json(), (e) => ({ error: e.message }));
      const x = new XMLHttpRequest(); x.open('POST', ${u('/j/d8')});
      window.__xhr = new Promise((r) => { x.onload = () => r(JSON.parse(x.responseText)); x.onerror = () => r({ error: 'error' }); });
      x.send('xhr body');
      window.__beacon = navigator.sendBeacon(${u('/j/d9')}, 'beacon body');
      const s2 = document.createElement('script'); s2.setAttribute('src', ${u('/s/d10.js')}); document.body.insertAdjacentElement('beforeend', s2);
      document.write('<scr', 'ipt src=' + ${u('/s/d11.js')} + '><', '/script>');
    </script>`;
  };

  test('nothing a script asks of a declared host reaches it before a choice, by any path', async () => {
    const tp = await startThirdParty();
    try {
      const page = await open(tp, [['tags.localhost', ['analytics']]], { body: everyKind(tp) });
      assert.deepEqual(declaredHits(tp), []);
      const state = await page.evaluate<PageState>(STATE);
      assert.deepEqual(state.ran, []);
      assert.deepEqual(state.frames, []);
      assert.equal(await page.evaluate('window.__beacon'), true, 'sendBeacon says it queued');
      // "Not decided yet" keeps holding.
      await update(page, [], false);
      assert.deepEqual(
        await page.evaluate(
          'document.getElementById("d3").complete && document.getElementById("d3").naturalWidth',
        ),
        0,
      );
      assert.deepEqual(declaredHits(tp), []);
      await page.context().close();
    } finally {
      await tp.close();
    }
  });

  test('allowing releases everything held, in the order it was held, and it works', async () => {
    const tp = await startThirdParty();
    try {
      const page = await open(tp, [['tags.localhost', ['analytics']]], { body: everyKind(tp) });
      await update(page, ['analytics'], true);
      const hits = await tp.waitForHits(11, (h) => h.host === 'tags.localhost');
      assert.deepEqual(hits.map((h) => h.pathname).sort(), [
        '/c/d5.css',
        '/f/d4.html',
        '/i/d2.gif',
        '/i/d3.gif',
        '/i/d6.gif',
        '/j/d7',
        '/j/d8',
        '/j/d9',
        '/s/d1.js',
        '/s/d10.js',
        '/s/d11.js',
      ]);
      assert.deepEqual(await page.evaluate('window.__fetch'), { name: 'd7', method: 'GET', body: '' });
      assert.deepEqual(await page.evaluate('window.__xhr'), { name: 'd8', method: 'POST', body: 'xhr body' });
      assert.equal(tp.hitsFor('/j/d9')[0]?.body, 'beacon body');
      await page.waitForFunction(
        `(window.__ran || []).length === 3 && (window.__frames || []).includes('d4')`,
      );
      await page.waitForFunction(
        `getComputedStyle(document.documentElement).getPropertyValue('--d5') === '1'`,
      );
      await page.waitForFunction(
        `document.getElementById('d3').naturalWidth === 1 && document.getElementById('d6').currentSrc.endsWith('/i/d6.gif')`,
      );
      const state = await page.evaluate<PageState>(STATE);
      const T = 'tags.localhost';
      // Everything but the scripts is released at once, in order; the scripts run one after
      // another, each after the one before it (in held order), so they come last here.
      assert.deepEqual(
        state.log.filter((l) => l.includes(T)),
        [
          `img ${T}/i/d2.gif`,
          `img ${T}/i/d3.gif`,
          `iframe ${T}/f/d4.html`,
          `link ${T}/c/d5.css`,
          `img ${T}/i/d6.gif`,
          `fetch ${T}/j/d7`,
          `xhr ${T}/j/d8`,
          `beacon ${T}/j/d9`,
          `script ${T}/s/d1.js`,
          `script ${T}/s/d10.js`,
          `script ${T}/s/d11.js`,
        ],
      );
      assert.deepEqual(state.ran, ['d1', 'd10', 'd11']);
      // Released once: a later choice sends nothing again.
      await update(page, ['analytics'], true);
      await page.evaluate(`fetch(${JSON.stringify(tp.url('/j/after'))})`);
      await tp.waitForHits(1, (h) => h.pathname === '/j/after');
      assert.equal(tp.hits.filter((h) => h.host === T).length, 12);
      await page.context().close();
    } finally {
      await tp.close();
    }
  });

  test('markup from outerHTML, insertAdjacentHTML and createContextualFragment is held too', async () => {
    const tp = await startThirdParty();
    try {
      const u = (p: string): string => JSON.stringify(tp.url(p));
      const page = await open(tp, [['tags.localhost', ['analytics']]], {
        body: `<div id="a"><span id="old"></span></div><script>
          document.getElementById('old').outerHTML = '<img id="m1" src=' + ${u('/i/m1.gif')} + '>';
          document.getElementById('a').insertAdjacentHTML('beforeend', '<iframe src=' + ${u('/f/m2.html')} + '></iframe>');
          const r = document.createRange(); r.selectNode(document.body);
          document.body.append(r.createContextualFragment('<script src=' + ${u('/s/m3.js')} + '></' + 'script><link rel="preconnect" href=' + ${u('/c/m4.css')} + '>'));
        </script>`,
      });
      assert.deepEqual(declaredHits(tp), []);
      assert.deepEqual((await page.evaluate<PageState>(STATE)).ran, []);
      await update(page, ['analytics'], true);
      await page.waitForFunction(
        `(window.__ran || []).includes('m3') && (window.__frames || []).includes('m2') && document.getElementById('m1').naturalWidth === 1`,
      );
      const log = (await page.evaluate<PageState>(STATE)).log.filter((l) => l.includes('tags.localhost'));
      assert.deepEqual(log, [
        'img tags.localhost/i/m1.gif',
        'iframe tags.localhost/f/m2.html',
        'link tags.localhost/c/m4.css',
        'script tags.localhost/s/m3.js',
      ]);
      await page.context().close();
    } finally {
      await tp.close();
    }
  });

  test('refusing drops the requests (fetch rejects, XHR fails, beacons vanish) and keeps elements inert until allowed', async () => {
    const tp = await startThirdParty();
    try {
      const page = await open(tp, [['tags.localhost', ['analytics']]], { body: everyKind(tp) });
      await update(page, [], true);
      assert.deepEqual(await page.evaluate('window.__fetch'), {
        error: 'blocked by pledge: tags.localhost needs analytics',
      });
      assert.deepEqual(await page.evaluate('window.__xhr'), { error: 'error' });
      // After the refusal, new requests fail at once; elements are held as before.
      assert.equal(
        await page.evaluate(
          `fetch(${JSON.stringify(tp.url('/j/late'))}).then(() => 'sent', (e) => e instanceof TypeError && e.message)`,
        ),
        'blocked by pledge: tags.localhost needs analytics',
      );
      await page.evaluate(`new Image().src = ${JSON.stringify(tp.url('/i/late.gif'))}`);
      await page.evaluate(`fetch(${JSON.stringify(tp.url('/j/sentinel-refused', 'other.localhost'))})`);
      await tp.waitForHits(1, (h) => h.pathname === '/j/sentinel-refused');
      assert.deepEqual(declaredHits(tp), []);
      assert.deepEqual((await page.evaluate<PageState>(STATE)).ran, []);

      // The person changes their mind: the held elements load; the dropped requests stay dropped.
      await update(page, ['analytics'], true);
      await page.waitForFunction(
        `(window.__ran || []).length === 3 && (window.__frames || []).includes('d4')`,
      );
      await tp.waitForHits(8, (h) => h.host === 'tags.localhost');
      await page.evaluate(`fetch(${JSON.stringify(tp.url('/j/sentinel-changed', 'other.localhost'))})`);
      await tp.waitForHits(1, (h) => h.pathname === '/j/sentinel-changed');
      assert.deepEqual(
        tp.hits
          .filter((h) => h.host === 'tags.localhost')
          .map((h) => h.pathname)
          .sort(),
        [
          '/c/d5.css',
          '/f/d4.html',
          '/i/d2.gif',
          '/i/d3.gif',
          '/i/d6.gif',
          '/i/late.gif',
          '/s/d1.js',
          '/s/d10.js',
          '/s/d11.js',
        ],
      );
      await page.context().close();
    } finally {
      await tp.close();
    }
  });

  test('a host that needs two purposes waits for both; each host is released when its own are allowed', async () => {
    const tp = await startThirdParty();
    try {
      const page = await open(
        tp,
        [
          ['tags.localhost', ['analytics']],
          ['ads.localhost', ['analytics', 'ads']],
        ],
        {
          body: `<script>
            fetch(${JSON.stringify(tp.url('/j/a1'))});
            fetch(${JSON.stringify(tp.url('/j/b1', 'ads.localhost'))});
            new Image().src = ${JSON.stringify(tp.url('/i/b2.gif', 'ads.localhost'))};
          </script>`,
        },
      );
      assert.deepEqual(declaredHits(tp), []);
      await update(page, ['analytics'], false);
      await tp.waitForHits(1, (h) => h.pathname === '/j/a1');
      await page.evaluate(`fetch(${JSON.stringify(tp.url('/j/sentinel-a', 'other.localhost'))})`);
      await tp.waitForHits(1, (h) => h.pathname === '/j/sentinel-a');
      assert.deepEqual(declaredHits(tp), ['tags.localhost/j/a1']);
      await update(page, ['analytics', 'ads'], true);
      await tp.waitForHits(2, (h) => h.host === 'ads.localhost');
      const log = (await page.evaluate<PageState>(STATE)).log.filter((l) => l.includes('ads.localhost'));
      assert.deepEqual(log, ['fetch ads.localhost/j/b1', 'img ads.localhost/i/b2.gif']);
      await page.context().close();
    } finally {
      await tp.close();
    }
  });

  test('tagged scripts and iframes run only once all their purposes are allowed, scripts in document order', async () => {
    const tp = await startThirdParty();
    try {
      const u = (p: string, h?: string): string => tp.url(p, h);
      const page = await open(tp, [['tags.localhost', ['analytics']]], {
        head: `<script type="text/plain" data-purpose="analytics" src="${u('/s/t1.js')}"></script>`,
        body: `
          <script type="text/plain" data-purpose="analytics">(window.__ran = window.__ran || []).push('i1')</script>
          <script type="text/plain" data-purpose="analytics ads" src="${u('/s/t2.js', 'other.localhost')}"></script>
          <script type="text/plain" data-purpose="analytics" data-type="text/javascript" src="${u('/s/t3.js', 'other.localhost')}" data-extra="kept"></script>
          <iframe data-purpose="analytics" data-src="${u('/f/t4.html')}"></iframe>
          <script>
            const t = document.createElement('script');
            t.type = 'text/plain';
            t.setAttribute('data-purpose', 'analytics');
            t.textContent = "(window.__ran = window.__ran || []).push('i5')";
            document.body.append(t);
          </script>`,
      });
      // The preload scanner skips a type it cannot run: nothing tagged is even fetched.
      assert.equal(tp.hits.filter((h) => !h.pathname.startsWith('/j/sentinel')).length, 0);
      assert.deepEqual((await page.evaluate<PageState>(STATE)).ran, []);

      await update(page, ['analytics'], false);
      await page.waitForFunction(
        `(window.__ran || []).length === 4 && (window.__frames || []).includes('t4')`,
      );
      assert.deepEqual((await page.evaluate<PageState>(STATE)).ran, ['t1', 'i1', 't3', 'i5']);
      assert.equal(
        await page.evaluate(
          `document.querySelector('script[data-extra]').type + ' ' + document.querySelector('script[data-extra]').src`,
        ),
        `text/javascript ${u('/s/t3.js', 'other.localhost')}`,
      );
      assert.deepEqual(tp.hitsFor('/s/t2.js', 'other.localhost'), []);

      await update(page, ['analytics', 'ads'], true);
      await page.waitForFunction(`(window.__ran || []).length === 5`);
      assert.deepEqual((await page.evaluate<PageState>(STATE)).ran, ['t1', 'i1', 't3', 'i5', 't2']);
      await page.context().close();
    } finally {
      await tp.close();
    }
  });

  test('an inline script tagged with the purpose of a held library runs after it, once allowed', async () => {
    const tp = await startThirdParty();
    try {
      const page = await open(tp, [['tags.localhost', ['analytics']]], {
        body:
          `<script src="${tp.url('/s/lib.js')}"></script>` +
          `<script type="text/plain" data-purpose="analytics">(window.__ran = window.__ran || []).push('init after ' + window.__ran.join())</script>`,
      });
      assert.deepEqual((await page.evaluate<PageState>(STATE)).ran, []);
      await update(page, ['analytics'], true);
      await page.waitForFunction(`(window.__ran || []).length === 2`);
      assert.deepEqual((await page.evaluate<PageState>(STATE)).ran, ['lib', 'init after lib']);
      await page.context().close();
    } finally {
      await tp.close();
    }
  });

  test('the page itself, relative URLs and undeclared hosts are never held; a host covers its subdomains only', async () => {
    const tp = await startThirdParty();
    try {
      const u = (p: string, h?: string): string => JSON.stringify(tp.url(p, h));
      const page = await open(tp, [['tags.localhost', ['analytics']]], {
        head: `<script src="/local.js"></script>`,
        body: `<script>
          window.__local = fetch('/local.json').then((r) => r.json());
          const s = document.createElement('script'); s.src = ${u('/s/o1.js', 'other.localhost')}; document.head.append(s);
          new Image().src = ${u('/i/o2.gif', 'notags.localhost')};
          fetch(${u('/j/c1', 'cdn.tags.localhost')});
          new Image().src = ${u('/i/c2.gif', 'deep.cdn.tags.localhost')};
        </script>`,
      });
      assert.deepEqual(await page.evaluate('window.__local'), { local: true });
      await page.waitForFunction(`(window.__ran || []).includes('o1')`);
      assert.deepEqual((await page.evaluate<PageState>(STATE)).ran, ['local', 'o1']);
      assert.equal(tp.hitsFor('/i/o2.gif', 'notags.localhost').length, 1);
      assert.deepEqual(declaredHits(tp), []);
      await update(page, ['analytics'], true);
      await tp.waitForHits(2, (h) => h.host.endsWith('cdn.tags.localhost'));
      assert.deepEqual(declaredHits(tp).sort(), [
        'cdn.tags.localhost/j/c1',
        'deep.cdn.tags.localhost/i/c2.gif',
      ]);
      await page.context().close();
    } finally {
      await tp.close();
    }
  });

  test('the measured limit: what the initial HTML names is fetched by the preload scanner, but nothing runs, applies or shows before consent', async (t) => {
    const tp = await startThirdParty();
    try {
      const u = (p: string): string => tp.url(p);
      const page = await open(tp, [['tags.localhost', ['analytics']]], {
        head: `<script src="${u('/s/p1.js')}"></script><link rel="stylesheet" href="${u('/c/p2.css')}"><script src="${u('/s/p3.js')}"></script>`,
        body: `<img id="p4" src="${u('/i/p4.gif')}"><iframe src="${u('/f/p5.html')}"></iframe>`,
      });
      await page.waitForLoadState('load');
      const early = declaredHits(tp);
      t.diagnostic(`fetched before consent: ${early.join(' ')}`);
      const T = 'tags.localhost';
      // The preload scanner reads the HTML ahead of the parser, before any script has run.
      for (const p of ['/s/p1.js', '/c/p2.css', '/s/p3.js', '/i/p4.gif']) assert.ok(early.includes(T + p), p);
      // A parser-inserted iframe's navigation starts as it is inserted, before the observer hears
      // of it: its request may be sent (the engine then takes the iframe out, and it never loads).
      assert.deepEqual(
        early.filter((h) => !/p[1-5]/.test(h)),
        [],
      );
      const state = await page.evaluate<PageState>(STATE);
      assert.deepEqual(state.ran, []);
      assert.deepEqual(state.frames, []);
      assert.equal(
        await page.evaluate(`getComputedStyle(document.documentElement).getPropertyValue('--p2')`),
        '',
      );
      assert.equal(await page.evaluate(`document.getElementById('p4').naturalWidth`), 0);

      await update(page, ['analytics'], true);
      await page.waitForFunction(
        `(window.__ran || []).length === 2 && (window.__frames || []).includes('p5')`,
      );
      await page.waitForFunction(
        `getComputedStyle(document.documentElement).getPropertyValue('--p2') === '1'`,
      );
      await page.waitForFunction(`document.getElementById('p4').naturalWidth === 1`);
      assert.deepEqual((await page.evaluate<PageState>(STATE)).ran, ['p1', 'p3']);
      await page.context().close();
    } finally {
      await tp.close();
    }
  });

  test('with the preload barrier after the script tag, scripts and images in the initial HTML are not even fetched before consent', async (t) => {
    const tp = await startThirdParty();
    try {
      const u = (p: string): string => tp.url(p);
      const page = await open(tp, [['tags.localhost', ['analytics']]], {
        barrier: true,
        head:
          `<script src="${u('/s/b1.js')}"></script><script async src="${u('/s/b2.js')}"></script>` +
          `<link rel="stylesheet" href="${u('/c/b3.css')}">`,
        body:
          `<img id="b4" src="${u('/i/b4.gif')}"><picture><source srcset="${u('/i/b5.gif')}"><img id="b5" src="/local.json"></picture>` +
          `<iframe src="${u('/f/b6.html')}"></iframe>`,
      });
      await page.waitForLoadState('load');
      const early = declaredHits(tp);
      t.diagnostic(`fetched before consent: ${early.join(' ') || 'nothing'}`);
      // Links and iframes start their request as the parser inserts them, before any observer can
      // act: those may still be sent (never applied or loaded); scripts and images are not.
      assert.deepEqual(
        early.filter((h) => !h.endsWith('/c/b3.css') && !h.endsWith('/f/b6.html')),
        [],
      );
      const state = await page.evaluate<PageState>(STATE);
      assert.deepEqual(state.ran, []);
      assert.deepEqual(state.frames, []);

      await update(page, ['analytics'], true);
      await page.waitForFunction(
        `(window.__ran || []).length === 2 && (window.__frames || []).includes('b6')`,
      );
      await page.waitForFunction(
        `getComputedStyle(document.documentElement).getPropertyValue('--b3') === '1'`,
      );
      await page.waitForFunction(`document.getElementById('b4').naturalWidth === 1`);
      await page.waitForFunction(`document.getElementById('b5').currentSrc.endsWith('/i/b5.gif')`);
      await page.context().close();
    } finally {
      await tp.close();
    }
  });
});
