/**
 * E-mail opens: a marketing e-mail carries the open pixel (`<img src="PUBLIC/b.gif?m=TOKEN">` at
 * the end of its HTML part) only when its recipient allowed the measuring purpose on the e-mail
 * channel, and an open counts only when, at the moment the pixel is fetched, they still do (they may
 * have withdrawn since the message was sent). The token (mail-open.tokens.ts) names the campaign
 * and the subject, never an address; the open is a beacon event on the `email` channel whose visitor
 * is the keyed hash of the subject id. A forged, cut or expired token gets the same image and counts
 * nothing.
 *
 * The measuring purpose is the one the web system serves on the `email` channel through a
 * web_beacon source (the example's site-analytics); a manifest without one sends no pixel.
 */
import type { ConsentService } from '../consent/consent.service.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import { escapeHtml } from '../platform/html.js';
import type { BeaconOutcome, BeaconService } from './beacons.service.js';
import type { MailOpenTokens } from './mail-open.tokens.js';

/** What the service uses. */
export interface MailOpensDeps {
  tokens: MailOpenTokens;
  consent: Pick<ConsentService, 'decide' | 'decideMany'>;
  beacons: Pick<BeaconService, 'recordMailOpen'>;
  manifest: { readonly manifest: Manifest };
  /** PLEDGE_PUBLIC_URL: where /b.gif is served. */
  publicUrl: string;
}

/** Why an open was not counted, besides the beacon's own reasons. */
export type MailOpenOutcome =
  BeaconOutcome | { counted: false; reason: 'token_invalid' | 'not_allowed' | 'unknown_subject' };

/** The pixels of marketing messages, and the opens they report. */
export class MailOpens {
  readonly #deps: MailOpensDeps;
  #purposes: { of: Manifest; keys: string[] } | undefined;

  constructor(deps: MailOpensDeps) {
    this.#deps = deps;
  }

  /** The purposes an open may be counted for in the manifest in force (usually one). */
  purposes(): string[] {
    const manifest = this.#deps.manifest.manifest;
    if (this.#purposes?.of !== manifest) this.#purposes = { of: manifest, keys: mailOpenPurposes(manifest) };
    return this.#purposes.keys;
  }

  /**
   * For each of `subjectIds` (recipients of a marketing message of `campaign`), the pixel's HTML
   * when they allow the measuring purpose on e-mail, else `undefined`: one batched decision. The
   * mail pipeline calls it (MessageExtras).
   */
  async htmlFor(
    ctx: Context,
    campaign: { id: string; kind: string },
    subjectIds: readonly string[],
  ): Promise<Array<string | undefined>> {
    const purpose = this.purposes()[0];
    if (campaign.kind !== 'marketing' || purpose === undefined || subjectIds.length === 0)
      return subjectIds.map(() => undefined);
    const decisions = await this.#deps.consent.decideMany(ctx, subjectIds, purpose, 'email');
    const now = ctx.clock.now();
    return subjectIds.map((subjectId, i) => {
      if (decisions[i]?.allowed !== true) return undefined;
      const token = this.#deps.tokens.create({ campaignId: campaign.id, subjectId, purpose }, now);
      return `<img src="${escapeHtml(`${this.#deps.publicUrl}/b.gif?m=${token}`)}" width="1" height="1" alt="">`;
    });
  }

  /**
   * Counts the open a pixel reports, when its token verifies and the person still allows the
   * purpose on e-mail now; resolves after the commit that holds the event (or at once when nothing
   * is counted). `ctx` acts for the web system. Never throws for a bad token.
   */
  async open(ctx: Context, token: unknown, userAgent: string | undefined): Promise<MailOpenOutcome> {
    const claims = this.#deps.tokens.verify(token, { now: ctx.clock.now(), purposes: this.purposes() });
    if (claims === undefined) return { counted: false, reason: 'token_invalid' };
    let allowed: boolean;
    try {
      allowed = (await this.#deps.consent.decide(ctx, claims.subjectId, claims.purpose, 'email')).allowed;
    } catch (err) {
      // An erased subject's pixel counts nothing, and tells nothing.
      if (err instanceof PledgeError && err.code === 'consent.subject_not_found')
        return { counted: false, reason: 'unknown_subject' };
      throw err;
    }
    if (!allowed) return { counted: false, reason: 'not_allowed' };
    return this.#deps.beacons.recordMailOpen(ctx, {
      purpose: claims.purpose,
      campaignId: claims.campaignId,
      subjectId: claims.subjectId,
      userAgent,
    });
  }
}

/**
 * The purposes an e-mail open may count for: those the web system serves, used on the `email`
 * channel, that a web_beacon source of the web system serves.
 */
export function mailOpenPurposes(manifest: Manifest): string[] {
  const system = manifest.systems.find((s) => s.web === true);
  if (system === undefined) return [];
  const beaconSources = manifest.sources.filter(
    (s) => s.kind === 'web_beacon' && system.sources.includes(s.key),
  );
  return manifest.purposes
    .filter(
      (p) =>
        system.purposes.includes(p.key) &&
        p.channels.includes('email') &&
        beaconSources.some((s) => s.purposes.includes(p.key)),
    )
    .map((p) => p.key);
}
