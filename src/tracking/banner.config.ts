/**
 * The configuration /pledge.js is built with, made from the manifest in force: what the banner
 * asks (the `cookie_banner` choice's purposes that ask for a choice somewhere), what it holds back
 * (third-party hosts, per purpose), what it deletes (cookies), the Consent Mode signals, the
 * page-view beacon's purpose and the texts per language. Every byte of it ships in the script, so
 * it carries only what the script reads, in the contract's short keys (banner.contract.ts).
 */
import { createHash } from 'node:crypto';
import { durationDays } from '../manifest/duration.js';
import {
  consentModes,
  type Banner,
  type Choice,
  type Manifest,
  type Purpose,
} from '../manifest/manifest.schema.js';
import type { UseKeys } from '../vault/use-keys.js';
import type { BannerConfig, BannerPurpose, BannerTextsOut } from './banner.contract.js';
import { ConsentReceipts } from './consent-receipt.js';

/** Options of {@link bannerConfigOf}. */
export interface BannerConfigOptions {
  /** PLEDGE_PUBLIC_URL: where the script sends choices and beacons, and links the policy. */
  publicUrl: string;
}

/** The manifest's cookie banner: the first `cookie_banner` choice with a `banner:` block. */
export function bannerChoiceOf(manifest: Manifest): (Choice & { banner: Banner }) | undefined {
  return manifest.choices.find(
    (c): c is Choice & { banner: Banner } => c.kind === 'cookie_banner' && c.banner !== undefined,
  );
}

/**
 * The purposes a banner asks about, in the manifest's order: those it offers (`purposes: all`:
 * every purpose) that ask for a choice in some jurisdiction (not `required` everywhere). Purposes
 * it names that the manifest lacks are left out (`pledge check` reports them).
 */
export function askedPurposes(manifest: Manifest, choice: Choice): Purpose[] {
  const offered = choice.purposes === 'all' ? undefined : new Set(choice.purposes);
  return manifest.purposes.filter(
    (p) =>
      (offered === undefined || offered.has(p.key)) &&
      Object.values(consentModes(p)).some((m) => m !== 'required'),
  );
}

/**
 * The receipts of the manifest's banner (`keys`: `keyring.use('banner_receipts')`): good for as
 * long as a choice is (ask_again). `undefined` without a banner: no choice, no receipt.
 */
export function bannerReceiptsOf(manifest: Manifest, keys: UseKeys): ConsentReceipts | undefined {
  const choice = bannerChoiceOf(manifest);
  if (choice === undefined) return undefined;
  return new ConsentReceipts(keys, { maxAgeDays: askAgainDays(choice.banner) });
}

/** A banner's ask_again in whole days (what the script's cookie and the receipts live). */
export function askAgainDays(banner: Banner): number {
  return Math.max(1, Math.floor(durationDays(banner.ask_again)));
}

/** The banner's configuration, or `undefined` when the manifest has no cookie banner to show. */
export function bannerConfigOf(manifest: Manifest, options: BannerConfigOptions): BannerConfig | undefined {
  const choice = bannerChoiceOf(manifest);
  if (choice === undefined) return undefined;
  const asked = askedPurposes(manifest, choice);
  const askedKeys = new Set(asked.map((p) => p.key));
  const u: BannerPurpose[] = asked.map((p) => ({
    k: p.key,
    g: p.gpc,
    c: p.cookies ?? [],
    m: p.consent_mode ?? [],
  }));
  const h = hostsOf(manifest, asked, askedKeys);
  const b = beaconPurposeOf(manifest, askedKeys);
  const t: Record<string, BannerTextsOut> = {};
  for (const [language, texts] of Object.entries(choice.banner.languages)) {
    const { purposes: names, on_until_off, ...rest } = texts;
    const purposes: Record<string, [string, string]> = {};
    for (const p of asked) {
      const own = names[p.key];
      purposes[p.key] = own !== undefined ? [own.name, own.description] : [p.name, p.description];
    }
    t[language] = { ...rest, ...(on_until_off !== undefined ? { on_until_off } : {}), purposes };
  }
  // What the visitor agreed to: the policy, what each purpose asks where, what it sets and where it
  // loads from, and the words they read. A change of any of them is a new notice, asked again.
  const v = createHash('sha256')
    .update(
      JSON.stringify([
        manifest.policy.version,
        asked.map((p) => [p.key, consentModes(p), p.gpc, p.cookies ?? [], p.domains ?? []]),
        h,
        t,
      ]),
    )
    .digest('base64url')
    .slice(0, 12);
  const origin = options.publicUrl.replace(/\/+$/, '');
  return {
    v,
    o: origin,
    p: `${origin}/privacy`,
    n: choice.banner.cookie,
    d: askAgainDays(choice.banner),
    u,
    h,
    ...(b !== undefined ? { b } : {}),
    t,
  };
}

/**
 * Each third-party host with the purposes that must all be allowed before a request reaches it: a
 * purpose's own domains, and a recipient's for each of its purposes the banner asks about (a
 * recipient serving only purposes nobody is asked about is not held back). Hosts in the order
 * first declared.
 */
function hostsOf(
  manifest: Manifest,
  asked: readonly Purpose[],
  askedKeys: ReadonlySet<string>,
): Array<[string, string[]]> {
  const hosts = new Map<string, string[]>();
  const add = (host: string, purposes: readonly string[]) => {
    const list = hosts.get(host) ?? [];
    for (const p of purposes) if (!list.includes(p)) list.push(p);
    if (list.length > 0) hosts.set(host, list);
  };
  for (const p of asked) for (const host of p.domains ?? []) add(host, [p.key]);
  for (const r of manifest.recipients) {
    const purposes = r.purposes.filter((p) => askedKeys.has(p));
    for (const host of r.domains ?? []) add(host, purposes);
  }
  return [...hosts];
}

/**
 * The purpose the script's page-view beacon counts for: of the web system's web_beacon source, the
 * first purpose the web system serves (one the banner asks about first). None without a web system
 * serving such a source: the script then sends no beacon.
 */
function beaconPurposeOf(manifest: Manifest, askedKeys: ReadonlySet<string>): string | undefined {
  const web = manifest.systems.find((s) => s.web === true);
  if (web === undefined) return undefined;
  const source = manifest.sources.find((s) => s.kind === 'web_beacon' && web.sources.includes(s.key));
  if (source === undefined) return undefined;
  const served = source.purposes.filter((p) => web.purposes.includes(p));
  return served.find((p) => askedKeys.has(p)) ?? served[0];
}
