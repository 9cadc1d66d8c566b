/**
 * First-party cookies: the consent cookie that holds a visitor's choice, the page-view counter's
 * visitor id, and the deletion of a refused purpose's cookies.
 */
import type { BannerControl } from '../banner.contract.js';

/** What the consent cookie holds (JSON, URI-encoded; docs/tracking.md describes it). */
export interface StoredChoice {
  /** The notice version the choice was made under. */
  v: string;
  /** The random browser id, kept across choices so the ledger links them. */
  b: string;
  /** When it was made, in seconds since 1970. */
  t: number;
  /** Every asked purpose: allowed or not. */
  d: Record<string, boolean>;
  /** The jurisdiction the server named, for the `pledge:consent` event of later pages. */
  j: string | null;
  /** The GPC signal at the time. */
  g: boolean;
  c: BannerControl;
  /** The language of the texts shown. */
  l: string;
  /** The server's receipt, once the proof was recorded. */
  r?: string;
  /** 0 while the proof is still to be sent (retried once on the next page), 1 after. */
  s: 0 | 1;
}

/**
 * The page's cookie string. Reading document.cookie is a synchronous round trip to the browser's
 * cookie store (0.3-1.5 ms at a page's start), so it is read once per task and kept until our next
 * write or the next microtask checkpoint (before any other script can have set a cookie).
 */
let jar: string | undefined;

function cookies(): string[] {
  if (jar === undefined) queueMicrotask(() => (jar = undefined));
  return (jar ??= document.cookie).split('; ');
}

function write(cookie: string): void {
  document.cookie = cookie;
  jar = undefined;
}

/** The value of a cookie of this page, decoded. */
export function getCookie(name: string): string | undefined {
  for (const pair of cookies()) {
    const i = pair.indexOf('=');
    if (pair.slice(0, i) === name) return decodeURIComponent(pair.slice(i + 1));
  }
  return undefined;
}

/** Sets a first-party cookie for the whole site, for `days` days. */
export function setCookie(name: string, value: string, days: number): void {
  write(
    `${name}=${encodeURIComponent(value)};path=/;max-age=${Math.round(days * 86400)};SameSite=Lax${
      location.protocol === 'https:' ? ';Secure' : ''
    }`,
  );
}

/** 16 random bytes, base64url (22 characters): browser and visitor ids. */
export function randomId(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))))
    .slice(0, 22)
    .replace(/\+/g, '-')
    .replace(/\//g, '_');
}

/**
 * Deletes the cookies whose names match `patterns` (names, or "*" patterns such as "_ga_*"). A page
 * cannot read a cookie's domain, and a tag may have set it for the host or any parent domain, so
 * each is expired on the host itself and on every parent domain, at path "/".
 */
export function deleteCookies(patterns: string[]): void {
  const labels = location.hostname.split('.');
  const re = new RegExp(
    `^(${patterns.map((p) => p.replace(/[$+.^|]/g, '\\$&').replace(/\*/g, '.*')).join('|')})$`,
  );
  // One read for all the patterns, and nothing written when no cookie matches.
  for (const pair of cookies()) {
    const name = pair.split('=')[0]!;
    if (!patterns.length || !re.test(name)) continue;
    for (let i = 0; i < labels.length; i++) {
      // i = 0 is the host-only cookie; the last label alone (a TLD) is never a cookie domain.
      write(`${name}=;path=/;max-age=0${i > 0 ? `;domain=${labels.slice(i - 1).join('.')}` : ''}`);
    }
  }
}
