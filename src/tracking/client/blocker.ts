/**
 * The blocking engine of /pledge.js: holds back what would reach a declared third-party host, and
 * tagged scripts and iframes, until their purposes are allowed, then releases them in the order they
 * were held.
 *
 * It must run before anything it guards, so /pledge.js is loaded first and synchronously in <head>
 * and calls {@link startBlocking} at once. Three doors are watched:
 * - the parser: a MutationObserver, whose callback runs at the microtask checkpoint the parser
 *   performs before it prepares a script, so a script's src is taken away before it is fetched or
 *   run;
 * - other scripts: the `src`/`href`/`srcset` setters and setAttribute of the element types that
 *   fetch; the insertion methods (appendChild ...), which check what they insert before it is in;
 *   and the markup paths (innerHTML, insertAdjacentHTML, createContextualFragment, document.write,
 *   whose scripts run before any observer hears of them), whose markup is made inert before it is
 *   parsed;
 * - fetch, XMLHttpRequest and navigator.sendBeacon, wrapped.
 * A held element keeps no attribute that loads (its value waits in the queue), so nothing it holds
 * can load by itself later. No script can reach what the browser fetches from the initial HTML
 * before it runs (the preload scanner) or as the parser inserts a link or an iframe: docs/tracking.md
 * says what is guaranteed, measured, and the preload barrier that narrows it.
 *
 * Written for size (every byte is in the script a visitor downloads): short names, no classes.
 */

/* eslint-disable @typescript-eslint/unbound-method -- the engine keeps the browser's own methods
   and calls them on their objects with .call, which is what this rule warns about. */

/** What main.ts tells the engine on every choice. */
export interface Blocker {
  /**
   * `allowed` answers per purpose. With `decided` false (no choice yet) what is not allowed stays
   * held; with `decided` true the held requests (fetch, XHR, beacons) whose purposes are refused are
   * dropped. Held elements are never dropped: they wait, inert, and load if allowed later.
   */
  update(allowed: (purpose: string) => boolean, decided: boolean): void;
}

/** One held thing: its purposes, how to release it, how to drop it (absent: it waits forever). */
interface Held {
  p: string[];
  go: () => void;
  no?: () => void;
}

type Fn = (...a: unknown[]) => unknown;

/** The attributes through which each element type starts a fetch. */
const ATTRS: Record<string, string[]> = {
  SCRIPT: ['src'],
  IFRAME: ['src'],
  IMG: ['src', 'srcset'],
  SOURCE: ['src', 'srcset'],
  LINK: ['href'],
};
const SEL = 'script,iframe,img,source,link';

/**
 * Starts holding at once: `hosts` are [host, purposes] pairs (a host covers its subdomains; every
 * purpose of every matching pair must be allowed). Call once, before any other script runs.
 */
export function startBlocking(hosts: Array<[string, string[]]>): Blocker {
  const D = document;
  const E = Element.prototype;
  const N = Node.prototype;
  const SA = E.setAttribute;
  const RA = E.removeAttribute;
  const R = E.replaceWith;
  const IH = Object.getOwnPropertyDescriptor(E, 'innerHTML')!;
  const P = 'data-pledge-';
  let ok: (p: string) => boolean = () => false;
  let final = false;
  let q: Held[] = [];
  /** Scripts released one after another, each after the previous external one loaded. */
  let chain: Promise<unknown> = Promise.resolve();
  const seen = new WeakSet<Element>();

  /** The purposes a URL needs that are not allowed yet; undefined when it may go. */
  const need = (u: unknown): string[] | undefined => {
    let x: URL;
    try {
      x = new URL(String(u), D.baseURI);
    } catch {
      return;
    }
    if (x.origin === location.origin) return;
    const h = x.hostname;
    const p = hosts.filter(([d]) => h === d || h.endsWith('.' + d)).flatMap(([, ps]) => ps);
    return p.length && !p.every((k) => ok(k)) ? p : undefined;
  };
  /** Releases now, drops now (decided and refused, droppable) or queues. */
  const hold = (h: Held): void => {
    if (h.p.every((k) => ok(k))) h.go();
    else if (final && h.no) h.no();
    else q.push(h);
  };
  /** Runs a script release on the chain, so scripts run in the order they were held. */
  const run = (f: () => HTMLScriptElement): void => {
    chain = chain.then(
      () =>
        new Promise((r) => {
          const s = f();
          if (s.isConnected && s.src && !s.async) {
            s.addEventListener('load', r);
            s.addEventListener('error', r);
          } else r(0);
        }),
    );
  };
  /** What attribute `a` of value `v` needs (a srcset names several URLs: any of them). */
  const needs = (a: string, v: string): string[] =>
    (a === 'srcset' ? v.split(',').map((s) => s.trim().split(/\s/)[0]) : [v]).flatMap((u) => need(u) ?? []);
  /** Whether setting `a` to `v` on `e` is held (then it has been queued and must not be set). */
  const held = (e: Element, a: string, v: string): boolean => {
    if (!ATTRS[e.tagName]?.includes(a)) return false;
    const ps = needs(a, v);
    if (!ps.length) return false;
    const s = e.tagName === 'SCRIPT' && (e as HTMLScriptElement);
    const go = (): void => SA.call(e, a, v);
    hold({
      p: ps,
      go: s
        ? () =>
            run(() => {
              // A script left without src was never started (not even a parser-inserted one), so
              // setting src now starts it; async false keeps the held order among released scripts,
              // unless the script asked for async.
              if (!s.hasAttribute('async')) s.async = false;
              go();
              return s;
            })
        : go,
    });
    return true;
  };
  /** A new script like `e` (its type left out for a tagged one), which runs when inserted. */
  const copy = (e: Element, tagged?: 1): HTMLScriptElement => {
    const s = D.createElement('script');
    for (const { name, value } of e.attributes)
      if (!tagged || (name !== 'type' && name !== 'data-type')) s.setAttribute(name, value);
    s.text = e.textContent ?? '';
    return s;
  };
  /** Takes the loading attributes off `e` (and holds tagged elements) as it enters the page. */
  const check = (e: Element): void => {
    const t = e.tagName;
    // Most elements fetch nothing: they cost a lookup (this runs for every element of the page).
    if (!ATTRS[t]) return;
    const pu = e.getAttribute('data-purpose');
    if (pu !== null && !seen.has(e)) {
      const p = pu.trim().split(/\s+/);
      const src = e.getAttribute('data-src');
      if (t === 'SCRIPT' && (e as HTMLScriptElement).type === 'text/plain') {
        seen.add(e);
        hold({
          p,
          go: () =>
            run(() => {
              const s = copy(e, 1);
              const dt = e.getAttribute('data-type');
              if (dt) s.setAttribute('type', dt);
              if (!e.hasAttribute('async')) s.async = false;
              e.replaceWith(s);
              return s;
            }),
        });
        return;
      }
      if (t === 'IFRAME' && src !== null) {
        seen.add(e);
        hold({ p, go: () => e.setAttribute('src', src) });
        return;
      }
    }
    for (const a of ATTRS[t]) {
      // Markup made inert by inert() comes with its loading attribute renamed.
      const w = e.getAttribute(P + a);
      if (w !== null) {
        RA.call(e, P + a);
        if (!held(e, a, w)) SA.call(e, a, w);
      }
      const v = e.getAttribute(a);
      if (v === null || !needs(a, v).length) continue;
      if ((t === 'IFRAME' || t === 'LINK') && e.isConnected) {
        // A connected iframe's navigation, or a link's request and stylesheet, has begun: only
        // taking the element out of the page stops it (and removes the sheet).
        const c = e.cloneNode() as Element;
        RA.call(c, a);
        held(c, a, v);
        R.call(e, c);
      } else if (held(e, a, v)) RA.call(e, a);
    }
  };
  /**
   * Markup with its loading attributes that would reach a held host renamed (data-pledge-src ...),
   * so that nothing in it starts loading while it is parsed; check() then holds them. Unchanged
   * when nothing in it is held.
   */
  const inert = (h: unknown): unknown => {
    const t = D.createElement('template');
    IH.set!.call(t, h);
    let x = 0;
    t.content.querySelectorAll(SEL).forEach((e) => {
      for (const a of ATTRS[e.tagName]!) {
        const v = e.getAttribute(a);
        if (v !== null && needs(a, v).length) {
          x = 1;
          SA.call(e, P + a, v);
          RA.call(e, a);
        }
      }
    });
    // Unchanged, it is passed on as given (a TrustedHTML stays one).
    return x ? IH.get!.call(t) : h;
  };
  const sweep = (n: unknown): void => {
    if (n instanceof Element) {
      check(n);
      // A leaf (most of what the parser adds, one at a time) has nothing below it to look for.
      if (!n.firstElementChild) return;
    }
    (n as Partial<ParentNode> | null)?.querySelectorAll?.(SEL).forEach(check);
  };

  // Scripts: the setters and setAttribute.
  for (const t in ATTRS) {
    const pr = Object.getPrototypeOf(D.createElement(t)) as object;
    for (const a of ATTRS[t]!) {
      const d = Object.getOwnPropertyDescriptor(pr, a)!;
      Object.defineProperty(pr, a, {
        ...d,
        set(this: Element, v: unknown) {
          if (!held(this, a, String(v))) d.set!.call(this, v);
        },
      });
    }
  }
  E.setAttribute = function (this: Element, n: string, v: string) {
    if (!held(this, String(n).toLowerCase(), String(v))) SA.call(this, n, v);
  };
  // Insertion paths: sweep the nodes before they are inserted (a script starts on insertion).
  const wrap = (o: object, ms: string[]): void => {
    for (const m of ms) {
      const r = o as Record<string, Fn>;
      const f = r[m]!;
      r[m] = function (this: Node, ...a: unknown[]) {
        a.forEach(sweep);
        return f.apply(this, a);
      };
    }
  };
  wrap(N, ['appendChild', 'insertBefore', 'replaceChild']);
  wrap(E, ['append', 'prepend', 'before', 'after', 'replaceWith', 'insertAdjacentElement']);
  // Markup: an image or iframe in it starts loading as it is parsed, and document.write runs its
  // scripts before any observer hears of them, so the markup is made inert first.
  // i: which argument is the markup (2: all of them, joined, as document.write takes it).
  const html = (o: object, m: string, i: number): void => {
    const r = o as Record<string, Fn>;
    const f = r[m]!;
    r[m] = function (this: Node, ...a: unknown[]) {
      // document.write('<scr', 'ipt src=...>') splits its markup: it is made inert whole.
      if (a.length > 1 && i > 1) a = [a.join('')];
      a[i % 2] = inert(a[i % 2]);
      const x = f.apply(this, a);
      // Chromium never starts a script made by createContextualFragment whose src is set after it
      // is inserted, as a held one's is on release: such scripts become ordinary ones.
      if (x instanceof DocumentFragment) x.querySelectorAll('script').forEach((e) => R.call(e, copy(e)));
      // Held now, in the order asked, rather than when the observer hears of them.
      sweep(x);
      sweep(this.parentNode ?? this);
      return x;
    };
  };
  html(E, 'insertAdjacentHTML', 1);
  html(Range.prototype, 'createContextualFragment', 0);
  // On Document.prototype rather than on the document: an own property of the document object costs
  // more to add at start-up, and `this` is the document either way.
  html(Document.prototype, 'write', 2);
  html(Document.prototype, 'writeln', 2);
  for (const a of ['innerHTML', 'outerHTML']) {
    const d = Object.getOwnPropertyDescriptor(E, a)!;
    Object.defineProperty(E, a, {
      ...d,
      set(this: Element, v: unknown) {
        const p = this.parentNode;
        d.set!.call(this, inert(v));
        sweep(a < 'o' ? this : p);
      },
    });
  }
  // The parser (and what the markup paths inserted, renamed: held as they come in).
  new MutationObserver((rs) => rs.forEach((r) => r.addedNodes.forEach(sweep))).observe(D, {
    childList: true,
    subtree: true,
  });
  sweep(D);

  // Requests.
  const F = window.fetch;
  window.fetch = function (i: RequestInfo | URL, o?: RequestInit) {
    const u = i instanceof Request ? i.url : i;
    const p = need(u);
    if (!p) return F.call(window, i, o);
    return new Promise<Response>((res, rej) =>
      hold({
        p,
        go: () => res(F.call(window, i, o)),
        no: () =>
          rej(
            new TypeError(
              `blocked by pledge: ${new URL(String(u), D.baseURI).hostname} needs ${p.join(' ')}`,
            ),
          ),
      }),
    );
  };
  const X = XMLHttpRequest.prototype;
  const XO = X.open as Fn;
  const XS = X.send;
  const xu = new WeakMap<XMLHttpRequest, unknown>();
  (X as { open: Fn }).open = function (this: XMLHttpRequest, ...a: unknown[]) {
    xu.set(this, a[1]);
    XO.apply(this, a);
  };
  X.send = function (this: XMLHttpRequest, b?: Document | XMLHttpRequestBodyInit | null) {
    const p = need(xu.get(this));
    if (!p) return XS.call(this, b);
    hold({
      p,
      go: () => XS.call(this, b),
      no: () =>
        setTimeout(() => ['error', 'loadend'].forEach((t) => this.dispatchEvent(new ProgressEvent(t)))),
    });
  };
  const nav = navigator;
  const B = nav.sendBeacon;
  if (B)
    nav.sendBeacon = (u, d) => {
      const p = need(u);
      if (!p) return B.call(nav, u, d);
      hold({ p, go: () => B.call(nav, u, d), no: () => 0 });
      return true;
    };

  return {
    update(allowed, decided) {
      ok = allowed;
      final = decided;
      const all = q;
      q = [];
      all.forEach(hold);
    },
  };
}
