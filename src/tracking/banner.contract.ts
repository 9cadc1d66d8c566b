/**
 * What /pledge.js and the server say to each other. The browser script (src/tracking/client/)
 * imports these types only; the server's routes build and check the same shapes. Kept small: every
 * byte of BannerConfig is in the script a visitor downloads.
 */

/** How a choice was made in the banner; sent as proof of consent and kept sealed in the ledger. */
export const BANNER_CONTROLS = ['accept_all', 'reject_all', 'choose', 'withdraw', 'gpc'] as const;
export type BannerControl = (typeof BANNER_CONTROLS)[number];

/** A purpose the banner asks about, as the script needs it. */
export interface BannerPurpose {
  /** The purpose's key. */
  k: string;
  /** Covered by Global Privacy Control: off whenever the browser sends the signal, without asking. */
  g: boolean;
  /** Cookie names and "*" patterns it sets; deleted when it is withdrawn or refused. */
  c: string[];
  /** Google Consent Mode signals granted while it is allowed. */
  m: string[];
}

/** The configuration baked into /pledge.js for the manifest in force (one script per manifest). */
export interface BannerConfig {
  /**
   * The notice version: a hash of the policy version, the purposes asked about and the texts. A
   * stored choice made under another one is asked again.
   */
  v: string;
  /** Pledge's own origin, where the script sends choices and beacons (`https://pledge.example.com`). */
  o: string;
  /** The link to the published policy. */
  p: string;
  /** The consent cookie's name. */
  n: string;
  /** Ask again after this many days (at most 13 months). */
  d: number;
  /** The purposes asked about, in the manifest's order. */
  u: BannerPurpose[];
  /**
   * Third-party hosts and the purposes that must all be allowed before a request reaches them (a
   * purpose's own domains, and a recipient's for every purpose of it the banner asks about).
   */
  h: Array<[host: string, purposes: string[]]>;
  /** The purpose the built-in page-view beacon counts for; absent, the script sends no beacon. */
  b?: string;
  /** Texts per language; the first key is the fallback. */
  t: Record<string, BannerTextsOut>;
}

/** The texts of one language, as the script shows them. */
export interface BannerTextsOut {
  title: string;
  text: string;
  accept_all: string;
  reject_all: string;
  choose: string;
  save: string;
  dialog_title: string;
  gpc: string;
  policy_link: string;
  on_until_off?: string;
  /** Per purpose key: [name, description]. */
  purposes: Record<string, [string, string]>;
}

/** `GET /api/v1/banner/context` (never cached): what the server knows of this visitor. */
export interface BannerContext {
  /** From the configured CDN country header; null when unknown (then every mode is the strictest). */
  jurisdiction: string | null;
  /** Each asked purpose's consent mode where the visitor is. */
  modes: Record<string, 'required' | 'opt_out' | 'opt_in'>;
  /** The request carried `Sec-GPC: 1`. */
  gpc: boolean;
}

/** `POST /api/v1/banner/choices`: a choice made in the banner, with its proof. */
export interface BannerChoicesRequest {
  /** The random browser id in the consent cookie (16 to 128 of A-Z a-z 0-9 - _). */
  browser: string;
  /** The notice version (`BannerConfig.v`) the visitor saw. */
  notice: string;
  /** The language of the texts shown. */
  language: string;
  control: BannerControl;
  /** The browser said navigator.globalPrivacyControl (the server also reads Sec-GPC). */
  gpc: boolean;
  /** Every asked purpose: allowed or not. */
  choices: Record<string, boolean>;
}

/** The answer: the decisions as recorded, and a receipt that beacons carry to prove them. */
export interface BannerChoicesResponse {
  decisions: Record<string, boolean>;
  /** Signed by the server (browser id, decisions, jurisdiction, time); opaque to the script. */
  receipt: string;
}

/** `POST /api/v1/beacon` (text/plain holding this JSON, as navigator.sendBeacon sends it). */
export interface BeaconBody {
  /** The page's path, without query or fragment. */
  path: string;
  /** The referring page's host, when another site. */
  referrer?: string;
  /** An event's name; absent for a page view. */
  event?: string;
  /** The purpose counted for (default: the page-view purpose). */
  purpose?: string;
  /** The consent receipt from the cookie, when the visitor chose. */
  receipt?: string;
  /** The visitor cookie's id (pledge_vid), sent only while its purpose is allowed by a choice. */
  visitor?: string;
}
