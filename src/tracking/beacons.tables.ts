/**
 * The beacons' tables: raw beacon events and the daily salts of cookieless counts.
 * Timestamps are ISO-8601 text (`Date.prototype.toISOString()`, which sorts as text), days are
 * `YYYY-MM-DD` (UTC), booleans are integers 0/1, in both engines. Only this capability's
 * repositories read these types.
 */

/**
 * One page view or event a visitor allowed to be counted. Nothing personal in plaintext: the path,
 * referrer and event name are sealed (AES-256-GCM under the `beacons` key, bound to the row's id),
 * and the visitor is a keyed hash, never a cookie id or an IP address.
 */
export interface BeaconEventsTable {
  /** UUIDv7: the order events were recorded in. */
  id: string;
  at: string;
  /** The UTC day of `at` (`YYYY-MM-DD`): what the daily roll-up groups by. */
  day: string;
  /** The purpose counted for (the manifest's key). */
  purpose: string;
  /** "web" (a page's beacon or pixel) or "email" (a marketing e-mail's open pixel). */
  channel: string;
  /** The web_beacon collection point it came through. */
  source: string;
  /** The host of the site the page was on (one of PLEDGE_SITE_ORIGINS), or "" when unknown. */
  site: string;
  /** "pageview" or "event": countable without opening the seal. */
  kind: string;
  /**
   * `k<version>:<base64>`: JSON `{ path?, referrer?, event? }` of the fields the manifest declares,
   * sealed with AES-256-GCM under the `beacons` key of that version (beacons.seal.ts).
   */
  sealed: string;
  /**
   * Hex HMAC-SHA256: of the visitor cookie's id under the `beacons` key, or, for a cookieless count,
   * of (truncated IP, user agent, site) under the day's salt.
   */
  visitor: string;
  /** 1 for a cookieless count (the visitor hash is of that day's salt only), 0 otherwise. */
  cookieless: number;
  /** The campaign of an e-mail open; null for the web. */
  campaign_id: string | null;
}

/**
 * The salt of each day's cookieless visitor hashes: 32 random bytes, made on demand by the first
 * beacon of the day and deleted after 48 hours, after which no one can link a hash to a visitor.
 */
export interface BeaconSaltsTable {
  /** `YYYY-MM-DD` (UTC). */
  day: string;
  /** 32 random bytes, base64. */
  salt: string;
  created_at: string;
}

/** The beacons capability's tables. */
export interface BeaconTables {
  beacon_events: BeaconEventsTable;
  beacon_salts: BeaconSaltsTable;
}
