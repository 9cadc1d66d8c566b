/**
 * Identity verification of a request: a 6-digit code for each identifier the request will act on,
 * sent to that identifier (an e-mail address by mail, a phone number through the SMS adapter). A code
 * is kept only as its HMAC under the `request_codes` key, bound to its row; it expires after 10
 * minutes and allows 3 attempts, compared with timingSafeEqual. Codes sent are limited per address
 * and per client address. An identifier whose code cannot be sent, expires or fails is not acted on.
 */
import { createHmac, randomInt, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import type { UseKeys, VersionedKeys } from '../vault/use-keys.js';
import { deriveKey } from './requests.seal.js';
import type {
  VerificationRecord,
  VerificationRepository,
  VerificationStatus,
} from './verification.repository.js';

/** How long a code is good for. */
export const CODE_TTL_MS = 10 * 60_000;
/** Wrong answers a code allows before it is spent. */
export const CODE_ATTEMPTS = 3;
/** Codes one address (or phone number) may be sent per hour. */
export const CODES_PER_IDENTIFIER_HOUR = 5;
/** Codes sent per hour on behalf of one client address. */
export const CODES_PER_CLIENT_HOUR = 30;

const CODE_INFO = 'pledge request codes v1';
const HOUR_MS = 3_600_000;

/** An identifier to send a code to. */
export interface IdentifierToVerify {
  kind: 'email' | 'phone';
  /** The normalized value (the code goes there; it is not stored). */
  value: string;
  hash: string;
  /** False when nothing can carry a code to it (no SMS adapter). */
  sendable: boolean;
}

/** A code to send, returned once, never stored. */
export interface CodeToSend {
  kind: 'email' | 'phone';
  value: string;
  code: string;
}

/** The outcome of checking codes. */
export interface CheckResult {
  /** Each identifier's status after the check. */
  statuses: Array<{ kind: 'email' | 'phone'; status: VerificationStatus; attemptsLeft: number }>;
  /** True when every identifier is settled (verified, failed, expired or unsendable). */
  settled: boolean;
}

/** Issues and checks verification codes. */
export class VerificationService {
  readonly #repo: VerificationRepository;
  readonly #keys: VersionedKeys<KeyObject>;

  constructor(repo: VerificationRepository, codeKeys: UseKeys) {
    this.#repo = repo;
    this.#keys = codeKeys.derive((s) => deriveKey(s, CODE_INFO));
  }

  /**
   * Refuses (429 `requests.rate_limited`) when an identifier or the client had too many codes in
   * the last hour. Run it in the intake's transaction, before {@link issue}.
   */
  async checkRateLimits(
    ctx: Context,
    identifiers: readonly IdentifierToVerify[],
    ipHash: string,
    clientLimit = CODES_PER_CLIENT_HOUR,
  ): Promise<void> {
    const since = new Date(ctx.clock.now().getTime() - HOUR_MS);
    const byClient = await this.#repo.countSince(ctx, { ipHash }, since);
    let limited = byClient + identifiers.length > clientLimit;
    for (const id of identifiers) {
      if (limited) break;
      limited =
        (await this.#repo.countSince(ctx, { identifierHash: id.hash }, since)) >= CODES_PER_IDENTIFIER_HOUR;
    }
    if (limited) {
      throw new PledgeError(
        'requests.rate_limited',
        'too many verification codes were asked for this address or from this network in the last hour; try again in an hour',
        { status: 429, retryAfterSeconds: 3600 },
      );
    }
  }

  /** Stores a code's HMAC per identifier of `requestId`; returns the codes to send (once). */
  async issue(
    ctx: Context,
    requestId: string,
    identifiers: readonly IdentifierToVerify[],
    ipHash: string,
  ): Promise<CodeToSend[]> {
    const now = ctx.clock.now();
    const { version, key } = this.#keys.current;
    const rows: VerificationRecord[] = [];
    const codes: CodeToSend[] = [];
    for (const id of identifiers) {
      const rowId = uuidv7();
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      rows.push({
        id: rowId,
        requestId,
        kind: id.kind,
        identifierHash: id.hash,
        codeHmac: id.sendable ? codeHmac(key, rowId, code) : undefined,
        keyVersion: version,
        expiresAt: new Date(now.getTime() + CODE_TTL_MS),
        attempts: 0,
        status: id.sendable ? 'pending' : 'unsendable',
        createdAt: now,
        verifiedAt: undefined,
        ipHash,
      });
      if (id.sendable) codes.push({ kind: id.kind, value: id.value, code });
    }
    await this.#repo.insertMany(ctx, rows);
    return codes;
  }

  /**
   * Checks the codes given per kind (in the caller's transaction, rows locked): a right code verifies
   * its identifier, a wrong one spends an attempt (the third spends the code), an expired code is
   * spent whatever was typed. Kinds not answered are left as they are.
   */
  async check(
    ctx: Context,
    requestId: string,
    answers: Partial<Record<'email' | 'phone', string>>,
  ): Promise<CheckResult> {
    const now = ctx.clock.now();
    const rows = await this.#repo.ofRequest(ctx, requestId, { lock: true });
    const statuses: CheckResult['statuses'] = [];
    for (const row of rows) {
      let status = row.status;
      let attempts = row.attempts;
      const answer = answers[row.kind];
      if (status === 'pending' && now.getTime() >= row.expiresAt.getTime()) {
        status = 'expired';
        await this.#repo.settle(ctx, row.id, { attempts, status });
      } else if (status === 'pending' && answer !== undefined) {
        attempts += 1;
        const key = this.#keys.get(row.keyVersion);
        const ok =
          key !== undefined &&
          row.codeHmac !== undefined &&
          sameHmac(codeHmac(key, row.id, answer.trim()), row.codeHmac);
        status = ok ? 'verified' : attempts >= CODE_ATTEMPTS ? 'failed' : 'pending';
        await this.#repo.settle(ctx, row.id, { attempts, status, verifiedAt: ok ? now : undefined });
      }
      statuses.push({
        kind: row.kind,
        status,
        attemptsLeft: status === 'pending' ? CODE_ATTEMPTS - attempts : 0,
      });
    }
    return { statuses, settled: statuses.every((s) => s.status !== 'pending') };
  }

  /** A request's verifications, as they stand (expired codes counted as such at `now`). */
  async statusOf(ctx: Context, requestId: string): Promise<CheckResult['statuses']> {
    const now = ctx.clock.now();
    return (await this.#repo.ofRequest(ctx, requestId)).map((row) => {
      const expired = row.status === 'pending' && now.getTime() >= row.expiresAt.getTime();
      return {
        kind: row.kind,
        status: expired ? 'expired' : row.status,
        attemptsLeft: row.status === 'pending' && !expired ? CODE_ATTEMPTS - row.attempts : 0,
      };
    });
  }
}

function codeHmac(key: KeyObject, rowId: string, code: string): string {
  return createHmac('sha256', key).update(`${rowId}\u0000${code}`).digest('hex');
}

function sameHmac(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}
