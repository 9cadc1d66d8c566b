/**
 * /pledge.js: loaded first and synchronously in a page's head. It starts holding the declared
 * third-party requests before anything else, sets the Consent Mode default, applies a stored choice
 * at once, and otherwise asks the server where the visitor is and shows the banner.
 */
import type {
  BannerChoicesRequest,
  BannerChoicesResponse,
  BannerConfig,
  BannerContext,
  BannerControl,
  BeaconBody,
} from '../banner.contract.js';
import { hideBanner, openDialog, showBanner, type DialogRow } from './banner.js';
import { startBlocking } from './blocker.js';
import { consentDefault, consentUpdate } from './consent-mode.js';
import { deleteCookies, getCookie, randomId, setCookie, type StoredChoice } from './cookies.js';
import { pickLanguage } from './i18n.js';

/** The manifest's banner configuration, put in by banner.bundle.ts for each manifest. */
declare const __PLEDGE_CONFIG__: BannerConfig;

const config = __PLEDGE_CONFIG__;
// First: from here on, nothing declared reaches the network until its purpose is allowed.
const blocker = startBlocking(config.h);
consentDefault(config.u);

/** The page-view counter's visitor cookie (a purpose that declares it may have it set). */
const VISITOR_COOKIE = 'pledge_vid';
const lang = pickLanguage(Object.keys(config.t));
const texts = config.t[lang]!;
const navigatorGpc =
  (navigator as Navigator & { globalPrivacyControl?: boolean }).globalPrivacyControl === true;

/** What is allowed now; every purpose counts as refused until the stored choice or the server says. */
let allowed: Record<string, boolean> = {};
for (const { k } of config.u) allowed[k] = false;
let context: BannerContext | undefined;
let contextLoad: Promise<void> | undefined;
let counted = false;
/** Made at the first choice: a page that asks nothing needs none. */
let browserId: string | undefined;
let stored = readChoice();

function readChoice(): StoredChoice | undefined {
  try {
    const raw = getCookie(config.n);
    // No cookie: ask, without the cost of JSON.parse('') throwing on every first visit.
    if (!raw) return undefined;
    const choice = JSON.parse(raw) as StoredChoice;
    if (/^[\w-]{16,128}$/.test(choice.b)) browserId = choice.b;
    if (choice.v === config.v && Date.now() / 1000 - choice.t < config.d * 86400) return choice;
  } catch {
    // No cookie, or not one of ours: ask.
  }
  return undefined;
}

function writeChoice(choice: StoredChoice): void {
  setCookie(config.n, JSON.stringify(choice), config.d);
}

const gpc = () => navigatorGpc || context?.gpc === true;
const mode = (purpose: string) => context?.modes[purpose] ?? 'opt_in';
/** Off whatever was chosen: covered by GPC while the browser sends it. */
const gpcLocked = (purpose: string) => gpc() && config.u.some((p) => p.k === purpose && p.g);

/** The context is asked only when needed; an unreachable server means the strictest modes. */
function loadContext(): Promise<void> {
  contextLoad ??= fetch(`${config.o}/api/v1/banner/context`, { credentials: 'omit' })
    .then((r) => r.json() as Promise<BannerContext>)
    .then(
      (c) => void (context = c),
      () => void (context = { jurisdiction: null, modes: {}, gpc: false }),
    );
  return contextLoad;
}

function settle(decisions: Record<string, boolean>, decided: boolean): void {
  allowed = {};
  for (const { k } of config.u) allowed[k] = decisions[k] === true && !gpcLocked(k);
  blocker.update((purpose) => allowed[purpose] === true, decided);
  consentUpdate(config.u, (purpose) => allowed[purpose] === true);
  for (const { k, c } of config.u) if (!allowed[k]) deleteCookies(c);
  dispatchEvent(
    new CustomEvent('pledge:consent', {
      detail: {
        decisions: { ...allowed },
        jurisdiction: context?.jurisdiction ?? stored?.j ?? null,
        gpc: gpc(),
      },
    }),
  );
}

/**
 * A page view (no `event`) or an event, only while the beacon's purpose is allowed: after a
 * refusal nothing is sent. Returns whether it was sent.
 */
function beacon(event?: string): boolean {
  const purpose = config.b;
  if (purpose === undefined || !allowed[purpose]) return false;
  const body: BeaconBody = { path: location.pathname };
  if (event) body.event = event;
  const referrer = document.referrer && new URL(document.referrer).host;
  if (referrer && referrer !== location.host) body.referrer = referrer;
  if (stored?.r) body.receipt = stored.r;
  // The visitor cookie only on an explicit choice: an opt-out default is counted without cookies.
  if (stored?.d[purpose] && config.u.some((p) => p.k === purpose && p.c.includes(VISITOR_COOKIE))) {
    let visitor = getCookie(VISITOR_COOKIE);
    if (!visitor) setCookie(VISITOR_COOKIE, (visitor = randomId()), config.d);
    body.visitor = visitor;
  }
  return navigator.sendBeacon(`${config.o}/api/v1/beacon`, JSON.stringify(body));
}

/** The page view of this load, once, as soon as its purpose is allowed. */
function count(): void {
  counted ||= beacon();
}

/** Sends the proof of a choice; a failure never reaches the page, and is retried on the next load. */
function send(choice: StoredChoice, retry: boolean): Promise<void> {
  const body: BannerChoicesRequest = {
    browser: choice.b,
    notice: choice.v,
    language: choice.l,
    control: choice.c,
    gpc: choice.g,
    choices: choice.d,
  };
  return fetch(`${config.o}/api/v1/banner/choices`, {
    method: 'POST',
    keepalive: true,
    credentials: 'omit',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
    .then((r) => (r.ok ? (r.json() as Promise<BannerChoicesResponse>) : Promise.reject(new Error())))
    .then(
      ({ decisions, receipt }) => {
        if (stored !== choice) return;
        Object.assign(choice, { d: { ...choice.d, ...decisions }, r: receipt, s: 1 });
        writeChoice(choice);
        settle(choice.d, true);
      },
      () => {
        if (retry && stored === choice) writeChoice({ ...choice, s: 1 });
      },
    );
}

function decide(control: BannerControl, chosen: Record<string, boolean> = {}): void {
  const decisions: Record<string, boolean> = {};
  for (const { k } of config.u) {
    decisions[k] =
      mode(k) === 'required' ||
      (!gpcLocked(k) && (control === 'accept_all' || (control !== 'reject_all' && chosen[k] === true)));
  }
  // Turning off in the dialog what was allowed before is a withdrawal.
  const previous = stored;
  if (control === 'choose' && previous && config.u.some(({ k }) => previous.d[k] && !decisions[k]))
    control = 'withdraw';
  const choice: StoredChoice = {
    v: config.v,
    b: (browserId ??= randomId()),
    t: Math.floor(Date.now() / 1000),
    d: decisions,
    j: context?.jurisdiction ?? null,
    g: gpc(),
    c: control,
    l: lang,
    s: 0,
  };
  stored = choice;
  writeChoice(choice);
  hideBanner();
  settle(decisions, true);
  void send(choice, false).then(count);
}

function open(): void {
  void loadContext().then(() => {
    const rows: DialogRow[] = config.u
      .filter(({ k }) => mode(k) !== 'required')
      .map(({ k }) => ({
        k,
        on: allowed[k] === true,
        locked: gpcLocked(k),
        note: gpcLocked(k) ? texts.gpc : mode(k) === 'opt_out' ? texts.on_until_off : undefined,
      }));
    whenReady(() => openDialog(texts, lang, config.p, rows, decide));
  });
}

function whenReady(fn: () => void): void {
  if (document.body) fn();
  else addEventListener('DOMContentLoaded', fn);
}

if (stored && navigatorGpc && config.u.some(({ k, g }) => g && stored!.d[k])) {
  // GPC appeared since the choice: what it covers is refused, and the ledger is told (control gpc).
  decide('gpc', stored.d);
} else if (stored) {
  settle(stored.d, true);
  count();
  if (stored.s === 0) void send(stored, true);
} else {
  void loadContext().then(() => {
    const defaults: Record<string, boolean> = {};
    for (const { k } of config.u) defaults[k] = mode(k) !== 'opt_in';
    const asked = config.u.filter(({ k }) => mode(k) !== 'required' && !gpcLocked(k));
    if (asked.length > 0) {
      settle(defaults, false);
      count();
      whenReady(() => showBanner(texts, lang, config.p, decide, open));
    } else if (config.u.some(({ k }) => gpcLocked(k))) {
      decide('gpc');
    } else {
      settle(defaults, true);
      count();
    }
  });
}

/** The page's handle: reopen the choices, read what is allowed now, count an event. */
(window as Window & { Pledge?: unknown }).Pledge = {
  open,
  decisions: () => ({ ...allowed }),
  event: (name: string) => beacon(name),
};
document.addEventListener('click', (e) => {
  if ((e.target as Element).closest?.('[data-pledge-open]')) {
    e.preventDefault();
    open();
  }
});
