/**
 * Google Consent Mode v2: tags that read it (gtag.js, Google Tag Manager) see every signal denied
 * until the visitor allows the purposes the manifest maps to it.
 */
import type { BannerPurpose } from '../banner.contract.js';

/** The signals Google's tags require; denied by default even when no purpose maps to them. */
const REQUIRED = ['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization'];

// gtag.js reads each command as an Arguments object, not an array: the standard snippet's body.
function gtag(..._: unknown[]): void {
  const w = window as Window & { dataLayer?: unknown[] };
  // eslint-disable-next-line prefer-rest-params
  (w.dataLayer = w.dataLayer || []).push(arguments);
}

/** A signal is granted when every purpose mapped to it is allowed. */
function signals(purposes: BannerPurpose[], allowed: (purpose: string) => boolean): Record<string, string> {
  const granted: Record<string, boolean> = {};
  for (const p of purposes) for (const s of p.m) granted[s] = granted[s] !== false && allowed(p.k);
  const out: Record<string, string> = {};
  for (const s of REQUIRED) out[s] = 'denied';
  for (const s in granted) out[s] = granted[s] ? 'granted' : 'denied';
  return out;
}

/** The default, set before any tag runs: everything denied; tags wait half a second for an update. */
export function consentDefault(purposes: BannerPurpose[]): void {
  gtag('consent', 'default', { ...signals(purposes, () => false), wait_for_update: 500 });
}

/** Tells the tags what the visitor allows now. */
export function consentUpdate(purposes: BannerPurpose[], allowed: (purpose: string) => boolean): void {
  gtag('consent', 'update', signals(purposes, allowed));
}
