/**
 * Beacon ingest: whether a page view or event may be counted, and what of it is kept. Nothing the
 * request says about itself is believed beyond what the manifest and the keys back:
 *
 * - it acts as the manifest's web system, so the purpose must be one that system serves and it is
 *   counted through the web_beacon source the system submits to (the system gate);
 * - only the fields the manifest declares for that source (and, for the visitor cookie's id, for a
 *   cookie source of the system) are kept; anything else is dropped before it is stored;
 * - a signed consent receipt (consent-receipt.ts) that allows the purpose counts it, with the
 *   visitor cookie's id when one is sent; a receipt that does not allow it counts nothing ("after
 *   a rejection, nothing is counted at all"); without a valid receipt the purpose's consent mode
 *   where the visitor is decides (unknown: the strictest): opt-out, and no GPC signal for a purpose
 *   GPC covers, is a cookieless count, opt-in is nothing;
 * - a cookieless count's visitor is HMAC-SHA256 under the day's salt of (truncated IP, user agent,
 *   site): no IP address and no cookie id is stored, and once the salt is deleted (after 48 hours,
 *   by the analytics jobs) the hash links to no one;
 * - known bots and requests without a user agent are not counted.
 *
 * Events are written by a group commit and each caller is answered after the commit that holds its
 * row, so an acknowledged beacon is never lost.
 */
import { randomBytes } from 'node:crypto';
import { isbot } from 'isbot';
import type { ManifestSource, SystemGate } from '../manifest/systems.gate.js';
import {
  consentModeFor,
  type Manifest,
  type Purpose,
  type Source,
  type System,
} from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { GroupCommit, type WriteOutcome } from '../platform/db/group-commit.js';
import { ForbiddenError, ValidationError } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import { truncateIp } from '../platform/ip.js';
import { askedPurposes, bannerChoiceOf } from './banner.config.js';
import type { BeaconEventRow, BeaconsRepository } from './beacons.repository.js';
import { BeaconCrypto, type BeaconCryptoOptions } from './beacons.crypto.js';
import type { BeaconFields, BeaconSeal } from './beacons.seal.js';
import type { ConsentReceipt } from './consent-receipt.js';

/** What checks consent receipts (ConsentReceipts of consent-receipt.ts). */
export interface ReceiptVerifier {
  verify(token: string, now: Date): ConsentReceipt | undefined;
  /** Whether a receipt verified earlier is still in force (not older than ask_again). */
  inForce(receipt: ConsentReceipt, now: Date): boolean;
}

/** A page's beacon, as the routes read it from the request. */
export interface WebBeaconInput {
  /** The purpose named by the beacon; absent: the page-view purpose. */
  purpose: string | undefined;
  path: string | undefined;
  referrer: string | undefined;
  event: string | undefined;
  /** The consent receipt the beacon carried. */
  receipt: string | undefined;
  /** The visitor cookie's id the beacon carried. */
  visitor: string | undefined;
  /**
   * The host of the listed site origin the page is on; "" when the request names none; `undefined`
   * when it names a site that is not listed (PLEDGE_SITE_ORIGINS), which counts nothing.
   */
  site: string | undefined;
  /** From the configured CDN header only (WebEndpoints.jurisdictionOf). */
  jurisdiction: string | undefined;
  /** The request carried `Sec-GPC: 1`. */
  gpc: boolean;
  userAgent: string | undefined;
  /** The client's address (request.ip): only ever used truncated, in the cookieless hash. */
  ip: string;
}

/** A marketing e-mail's open the caller has decided may be counted (the open pixel's handler). */
export interface MailOpenInput {
  purpose: string;
  campaignId: string;
  /** Hashed under the beacons key into the visitor; never stored as such. */
  subjectId: string;
  userAgent: string | undefined;
}

/** Why a beacon was not counted. */
export type NotCountedReason =
  /** A known bot's user agent, or none. */
  | 'bot'
  /** The visitor's receipt does not allow the purpose. */
  | 'refused'
  /** Opt-in where the visitor is (or unknown), and no receipt that allows it. */
  | 'opt_in_missing'
  /** The purpose is covered by GPC and the request sent the signal. */
  | 'gpc'
  /** The purpose is not declared on the beacon's channel. */
  | 'channel_not_declared'
  /** The page is on a site PLEDGE_SITE_ORIGINS does not list. */
  | 'site_not_listed';

/** What became of a beacon. */
export type BeaconOutcome =
  { counted: true; id: string; cookieless: boolean } | { counted: false; reason: NotCountedReason };

/** What {@link BeaconService} is given. */
export interface BeaconServiceDeps {
  db: Transactions;
  repo: BeaconsRepository;
  manifest: ManifestSource;
  systems: SystemGate;
  /** Checks the banner's consent receipts; absent (no banner), no receipt verifies. */
  receipts: ReceiptVerifier | undefined;
  seal: BeaconSeal;
  /** Where seals and hashes run (default: a worker thread for batches). */
  crypto?: BeaconCryptoOptions;
}

/** The beacon rules of one purpose of the web system, made once per manifest. */
interface PurposeRule {
  purpose: Purpose;
  /** The web_beacon source of the web system that serves it. */
  source: Source | undefined;
  path: boolean;
  referrer: boolean;
  event: boolean;
  /** The visitor cookie's id is a declared field (of the web_beacon source or a cookie source). */
  visitor: boolean;
  channels: ReadonlySet<string>;
  /** The banner asks about it, so a receipt says whether it is allowed. */
  asked: boolean;
}

interface Rules {
  of: Manifest;
  system: System | undefined;
  pageView: string | undefined;
  purposes: Map<string, PurposeRule>;
}

const COUNTED_COOKIELESS = (id: string): BeaconOutcome => ({ counted: true, id, cookieless: true });
const OK: WriteOutcome<void> = { ok: true, value: undefined };
const VISITOR_ID = /^[A-Za-z0-9_-]{16,128}$/;
/** How long a verified receipt is believed without verifying it again. */
const RECEIPT_RECHECK_MS = 60_000;

/** Counts beacons people allowed. */
export class BeaconService {
  readonly #deps: BeaconServiceDeps;
  readonly #writes: GroupCommit<BeaconEventRow, void>;
  readonly #crypto: BeaconCrypto;
  #rules: Rules | undefined;
  #salt: { day: string; salt: Promise<Buffer> } | undefined;
  /**
   * Receipts verified in the last minute: a visitor's receipt is the same on every page view for
   * months, and its HMAC was a fifth of a beacon's own work. Re-verified after RECEIPT_RECHECK_MS,
   * so a receipt of a retired key version stops counting within a minute; one past ask_again stops
   * at once (its age is checked on every use).
   */
  readonly #receipts = new BoundedCache<string, { receipt: ConsentReceipt | undefined; at: number }>(10_000);
  /** isbot's answer per user agent: a few hundred agents make most traffic, its regex is long. */
  readonly #bots = new BoundedCache<string, boolean>(2_000);

  constructor(deps: BeaconServiceDeps) {
    this.#deps = deps;
    this.#crypto = new BeaconCrypto(deps.seal, deps.crypto);
    this.#writes = new GroupCommit(deps.db, async (group, rows) => {
      await deps.repo.insertEvents(group, rows);
      return rows.map(() => OK);
    });
  }

  /**
   * Counts a page's beacon if the visitor allowed it; resolves after the commit that holds its row
   * (or at once when nothing is counted). Throws 400 `tracking.purpose_unknown` for a purpose the
   * manifest lacks, 403 `auth.purpose_not_allowed` for one the web system does not serve and 403
   * `tracking.beacon_source_missing` when no web_beacon source of it serves the purpose.
   */
  async recordWeb(ctx: Context, input: WebBeaconInput): Promise<BeaconOutcome> {
    const rules = this.#rulesNow();
    const key = input.purpose ?? rules.pageView;
    const rule = this.#ruleOrThrow(ctx, rules, key);
    if (this.#isBot(input.userAgent)) return { counted: false, reason: 'bot' };
    if (!rule.channels.has('web')) return { counted: false, reason: 'channel_not_declared' };
    const site = input.site;
    if (site === undefined) return { counted: false, reason: 'site_not_listed' };
    const purpose = rule.purpose;
    // A signal the browser sends now outweighs an older receipt: GPC purposes are never counted with it.
    if (purpose.gpc && input.gpc) return { counted: false, reason: 'gpc' };

    const now = ctx.clock.now();
    // A receipt speaks only of the purposes the banner asks about; of another it says nothing.
    const receipt = input.receipt === undefined || !rule.asked ? undefined : this.#verify(input.receipt, now);
    const mode = consentModeFor(purpose, input.jurisdiction);
    let visitorId: string | undefined;
    if (receipt !== undefined) {
      if (receipt.allowed.has(purpose.key)) {
        visitorId =
          rule.visitor && input.visitor !== undefined && VISITOR_ID.test(input.visitor)
            ? input.visitor
            : undefined;
      } else if (mode !== 'required') {
        return { counted: false, reason: 'refused' };
      }
    } else if (mode === 'opt_in') {
      // A receipt that does not verify (forged, expired, of a retired key) proves nothing: as none.
      return { counted: false, reason: 'opt_in_missing' };
    }

    const fields: BeaconFields = {};
    if (rule.path && input.path !== undefined) fields.path = input.path;
    if (rule.referrer && input.referrer !== undefined) fields.referrer = input.referrer;
    if (rule.event && input.event !== undefined) fields.event = input.event;
    const id = uuidv7();
    const day = now.toISOString().slice(0, 10);
    // Sealed and hashed with the other beacons of this turn, off the main thread (beacons.crypto.ts).
    const { sealed, visitor } = await this.#crypto.submit({
      id,
      fields,
      visitor:
        visitorId !== undefined
          ? { cookie: visitorId }
          : {
              salt: await this.#saltOf(ctx, day, now),
              material: cookielessMaterial(input.ip, input.userAgent ?? '', site),
            },
    });
    await this.#writes.submit({
      id,
      at: now,
      day,
      purpose: purpose.key,
      channel: 'web',
      source: rule.source.key,
      site,
      kind: input.event === undefined ? 'pageview' : 'event',
      sealed,
      visitor,
      cookieless: visitorId === undefined,
      campaignId: null,
    });
    return visitorId === undefined ? COUNTED_COOKIELESS(id) : { counted: true, id, cookieless: false };
  }

  /**
   * Counts a marketing e-mail's open, which the caller (the open pixel's handler) has already found
   * allowed for the person on the e-mail channel. Bots (mail scanners that say so) are not counted.
   * Resolves after the commit that holds its row. Throws as {@link recordWeb} for the purpose.
   */
  async recordMailOpen(ctx: Context, input: MailOpenInput): Promise<BeaconOutcome> {
    const rule = this.#ruleOrThrow(ctx, this.#rulesNow(), input.purpose);
    if (this.#isBot(input.userAgent)) return { counted: false, reason: 'bot' };
    if (!rule.channels.has('email')) return { counted: false, reason: 'channel_not_declared' };
    const now = ctx.clock.now();
    const id = uuidv7();
    await this.#writes.submit({
      id,
      at: now,
      day: now.toISOString().slice(0, 10),
      purpose: rule.purpose.key,
      channel: 'email',
      source: rule.source.key,
      site: '',
      kind: 'pageview',
      sealed: this.#deps.seal.seal(id, {}),
      visitor: this.#deps.seal.visitorHash(`subject:${input.subjectId}`),
      cookieless: false,
      campaignId: input.campaignId,
    });
    return { counted: true, id, cookieless: false };
  }

  /** Resolves once every beacon submitted so far is committed, and stops the crypto worker. */
  async drain(): Promise<void> {
    await this.#writes.drain();
    await this.#crypto.close();
  }

  #ruleOrThrow(ctx: Context, rules: Rules, key: string | undefined): PurposeRule & { source: Source } {
    if (key === undefined || !rules.of.purposes.some((p) => p.key === key)) {
      throw new ValidationError(
        'tracking.purpose_unknown',
        key === undefined
          ? 'the beacon names no purpose and the manifest has no page-view purpose (a web_beacon source of the web system); name one in "purpose"'
          : `the manifest declares no purpose "${key}"; a beacon counts for one of the web system's purposes`,
        { purposes: rules.system?.purposes ?? [] },
      );
    }
    // Throws 403 auth.purpose_not_allowed (or auth.system_unknown) as for any system's key.
    this.#deps.systems.requirePurpose(ctx, key);
    const rule = rules.purposes.get(key);
    if (rule?.source === undefined) {
      throw new ForbiddenError(
        'tracking.beacon_source_missing',
        `no web_beacon collection point of the web system serves purpose "${key}"; add one to the manifest's sources and to the web system's sources`,
        { purpose: key },
      );
    }
    this.#deps.systems.requireSource(ctx, rule.source.key);
    return rule as PurposeRule & { source: Source };
  }

  #verify(token: string, now: Date): ConsentReceipt | undefined {
    const receipts = this.#deps.receipts;
    if (receipts === undefined) return undefined;
    const held = this.#receipts.get(token);
    if (held !== undefined && now.getTime() - held.at < RECEIPT_RECHECK_MS && now.getTime() >= held.at)
      // Its signature is not checked again, but its age is: a receipt past ask_again stops at once.
      return held.receipt !== undefined && receipts.inForce(held.receipt, now) ? held.receipt : undefined;
    const receipt = receipts.verify(token, now);
    this.#receipts.set(token, { receipt, at: now.getTime() });
    return receipt;
  }

  #isBot(userAgent: string | undefined): boolean {
    if (userAgent === undefined || userAgent.trim() === '') return true;
    let bot = this.#bots.get(userAgent);
    if (bot === undefined) {
      bot = isbot(userAgent);
      // Long agents are rare and most often made up: not worth a place.
      if (userAgent.length <= 512) this.#bots.set(userAgent, bot);
    }
    return bot;
  }

  #rulesNow(): Rules {
    const manifest = this.#deps.manifest.manifest;
    if (this.#rules?.of !== manifest) this.#rules = rulesOf(manifest);
    return this.#rules;
  }

  /** Today's salt: the stored one, or a new one stored race-free (first instance wins). */
  #saltOf(ctx: Context, day: string, now: Date): Promise<Buffer> {
    if (this.#salt?.day !== day) {
      const salt = this.#deps.repo
        .saltOf(ctx, day, randomBytes(32).toString('base64'), now)
        .then((s) => Buffer.from(s, 'base64'));
      const held = { day, salt };
      this.#salt = held;
      // A failed read is not kept: the next beacon asks again.
      salt.catch(() => {
        if (this.#salt === held) this.#salt = undefined;
      });
    }
    return this.#salt.salt;
  }
}

/** A map of at most `capacity` entries that forgets everything when full: cheap, and enough here. */
class BoundedCache<K, V> {
  readonly #capacity: number;
  #map = new Map<K, V>();

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  set(key: K, value: V): void {
    if (this.#map.size >= this.#capacity) this.#map = new Map();
    this.#map.set(key, value);
  }
}

/** What a cookieless visitor hash is of (under the day's salt): truncated IP, user agent, site. */
function cookielessMaterial(ip: string, userAgent: string, site: string): string {
  return `${truncateIp(ip) ?? ''}\n${userAgent}\n${site}`;
}

function rulesOf(manifest: Manifest): Rules {
  const system = manifest.systems.find((s) => s.web === true);
  const purposes = new Map<string, PurposeRule>();
  const choice = bannerChoiceOf(manifest);
  const asked = new Set(choice === undefined ? [] : askedPurposes(manifest, choice).map((p) => p.key));
  if (system !== undefined) {
    const sources = manifest.sources.filter((s) => system.sources.includes(s.key));
    for (const purpose of manifest.purposes) {
      if (!system.purposes.includes(purpose.key)) continue;
      const serves = (s: Source) => s.purposes.includes(purpose.key);
      const source = sources.find((s) => s.kind === 'web_beacon' && serves(s));
      const declared = (name: string) => source?.fields?.[name] !== undefined;
      const cookieVisitor = sources.some(
        (s) => s.kind === 'cookie' && serves(s) && s.fields?.visitor !== undefined,
      );
      purposes.set(purpose.key, {
        purpose,
        source,
        path: declared('path'),
        referrer: declared('referrer'),
        event: declared('event'),
        visitor: declared('visitor') || cookieVisitor,
        channels: new Set(purpose.channels),
        asked: asked.has(purpose.key),
      });
    }
  }
  return { of: manifest, system, pageView: pageViewPurposeOf(manifest, system, asked), purposes };
}

/**
 * The purpose a beacon without one counts for, as /pledge.js's configuration names it
 * (banner.config.ts): of the web system's web_beacon source, the first purpose the system serves
 * that the banner asks about, else the first it serves.
 */
function pageViewPurposeOf(
  manifest: Manifest,
  system: System | undefined,
  asked: ReadonlySet<string>,
): string | undefined {
  if (system === undefined) return undefined;
  const source = manifest.sources.find((s) => s.kind === 'web_beacon' && system.sources.includes(s.key));
  if (source === undefined) return undefined;
  const served = source.purposes.filter((p) => system.purposes.includes(p));
  return served.find((p) => asked.has(p)) ?? served[0];
}
