/**
 * Mail-open tokens: what the open pixel of a marketing e-mail carries (`/b.gif?m=TOKEN`). A token
 * names the campaign and the recipient (the subject id, never an address), and signs the purpose the
 * open would be counted for; `/b.gif` counts an open only for a token this server signed, so nobody
 * can count opens for people (or campaigns) they make up.
 *
 * Signed with HMAC-SHA256 under a key of its own, derived with HKDF from the keyring's `beacons`
 * use under the label `pledge mail open tokens vN` (the beacon seal and visitor hashes use other
 * labels of the same material): `pledge keys rotate --use beacons` adds a version, and tokens of
 * the versions the keyring still holds keep verifying until they expire.
 *
 * Layout (then lowercase base32 without padding, compact-tokens.ts, as the other tokens of mail):
 *
 *   format (1 byte) | key version (1) | sent, Unix hours (3, big-endian) | campaign id, the UUID's 16
 *   bytes | subject id, the UUID's 16 bytes | HMAC-SHA256 truncated to 13 bytes
 *
 * 50 bytes, 80 characters. The purpose is signed, not carried: the verifier tries each purpose an
 * open may be counted for (one or two).
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { CompactLayout, signedList, uuidBytes, uuidOf } from '../comms/compact-tokens.js';
import { UUID_PATTERN } from '../platform/ids.js';
import type { UseKeys } from '../vault/use-keys.js';

/**
 * How long after sending an open is counted: most opens come within days; an e-mail opened months
 * later says little about the campaign and the token need not be a forever-valid credential.
 */
export const MAIL_OPEN_WINDOW_DAYS = 90;
/** How far in the future a token's send time may be (clocks of several instances differ a little). */
const CLOCK_SKEW_HOURS = 1;

const FORMAT = 1;
const HOUR_MS = 3_600_000;
const MAC_BYTES = 13;
const PAYLOAD_BYTES = 1 + 1 + 3 + 16 + 16;
const LAYOUT = new CompactLayout(PAYLOAD_BYTES, MAC_BYTES);
/** The HKDF label of each version's key. */
const KEY_INFO = (version: number) => `pledge mail open tokens v${version}`;

/** What a verified token says. */
export interface MailOpenClaims {
  campaignId: string;
  subjectId: string;
  /** The purpose the open is counted for (signed). */
  purpose: string;
}

/** A verified token: its claims and when its message was made (to the hour). */
export interface MailOpenToken extends MailOpenClaims {
  sentAt: Date;
}

/** Makes and checks mail-open tokens. */
export class MailOpenTokens {
  readonly #current: { version: number; key: KeyObject | undefined };
  readonly #byVersion: ReadonlyMap<number, KeyObject>;

  /** `keys`: the keyring's `beacons` use (`keyring.use('beacons')`). */
  constructor(keys: UseKeys) {
    // Versions above 255 do not fit the token's key-version byte: they are left out.
    const versions = new Map(
      keys
        .versions()
        .filter((v) => v.version <= 0xff)
        .map((v) => [v.version, deriveKey(v.secret, v.version)]),
    );
    const version = keys.current().version;
    this.#current = { version, key: versions.get(version) };
    this.#byVersion = versions;
  }

  /** The token of a message of `campaignId` to `subjectId`, made at `now`. Throws a RangeError on bad ids. */
  create(claims: MailOpenClaims, now: Date): string {
    if (!UUID_PATTERN.test(claims.campaignId))
      throw new RangeError('a mail-open token needs a UUID campaign id');
    if (!UUID_PATTERN.test(claims.subjectId))
      throw new RangeError('a mail-open token needs a UUID subject id');
    if (claims.purpose.length === 0) throw new RangeError('a mail-open token needs a purpose');
    const { version, key } = this.#current;
    if (key === undefined) throw new RangeError(`no mail-open key of version ${version}`);
    const payload = Buffer.alloc(PAYLOAD_BYTES);
    payload.writeUInt8(FORMAT, 0);
    payload.writeUInt8(version, 1);
    payload.writeUIntBE(Math.floor(now.getTime() / HOUR_MS), 2, 3);
    uuidBytes(claims.campaignId).copy(payload, 5);
    uuidBytes(claims.subjectId).copy(payload, 21);
    return LAYOUT.spell(payload, mac(key, payload, claims.purpose));
  }

  /**
   * The claims of a token signed for one of `purposes` (compared in constant time) by a key version
   * the keyring holds, from its send time (less a little clock skew) until {@link
   * MAIL_OPEN_WINDOW_DAYS} after; `undefined` otherwise. Never throws.
   */
  verify(token: unknown, options: { now: Date; purposes: readonly string[] }): MailOpenToken | undefined {
    if (typeof token !== 'string') return undefined;
    const split = LAYOUT.split(token);
    if (split === undefined) return undefined;
    const { payload, given } = split;
    if (payload.readUInt8(0) !== FORMAT) return undefined;
    const key = this.#byVersion.get(payload.readUInt8(1));
    if (key === undefined) return undefined;
    const purpose = signedList(given, options.purposes, (p) => mac(key, payload, p));
    if (purpose === undefined) return undefined;
    const sentHours = payload.readUIntBE(2, 3);
    const nowHours = options.now.getTime() / HOUR_MS;
    if (nowHours < sentHours - CLOCK_SKEW_HOURS || nowHours >= sentHours + MAIL_OPEN_WINDOW_DAYS * 24) {
      return undefined;
    }
    return {
      campaignId: uuidOf(payload.subarray(5, 21)),
      subjectId: uuidOf(payload.subarray(21, 37)),
      purpose,
      sentAt: new Date(sentHours * HOUR_MS),
    };
  }
}

function deriveKey(secret: Buffer, version: number): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), KEY_INFO(version), 32)));
}

function mac(key: KeyObject, payload: Buffer, purpose: string): Buffer {
  const p = Buffer.from(purpose, 'utf8');
  return createHmac('sha256', key)
    .update(payload)
    .update(Buffer.from([p.length & 0xff, p.length >> 8]))
    .update(p)
    .digest()
    .subarray(0, MAC_BYTES);
}
