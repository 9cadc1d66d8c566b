/**
 * The suppression list: addresses that must never receive marketing again, for one list or all:
 * opt-outs, hard bounces, complaints, and addresses that soft-bounced too often. Kept as keyed
 * hashes (the vault's blind index), so the list holds no address, and so an address re-imported
 * later as a new subject is still suppressed: the hash is of the address, not of the subject.
 */
import type { AuditAppender } from '../audit/audit.service.js';
import type { ConsentChange } from '../consent/consent.service.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { identifierHash, normalizeIdentifier } from '../vault/identifiers.js';
import type { SuppressionRepository } from './suppression.repository.js';

/** Why an address is suppressed. */
export const SUPPRESSION_REASONS = [
  'unsubscribe',
  'hard_bounce',
  'complaint',
  'soft_bounces',
  'manual',
] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

/** The list that stands for every marketing list. */
export const ALL_LISTS = '*';

/** What the suppression service uses. */
export interface SuppressionServiceDeps {
  /** Transactions of the main database. */
  db: Transactions;
  repo: SuppressionRepository;
  audit: AuditAppender;
  /** The vault's answer to "which e-mail hashes does this subject have" (it reads no vault table). */
  subjects: SuppressionSubjects;
  /** The vault's index key (the blind index the hashes are made with). */
  indexKey: Buffer;
  /** Soft bounces of one address before it is suppressed. */
  softBounceLimit: number;
}

/** What the suppression list needs of the vault: a subject's e-mail blind-index hashes. */
export interface SuppressionSubjects {
  emailHashesOf(ctx: Context, subjectId: string): Promise<string[]>;
}

/** Checks and adds suppressions. */
export class SuppressionService {
  readonly #db: Transactions;
  readonly #repo: SuppressionRepository;
  readonly #audit: AuditAppender;
  readonly #subjects: SuppressionSubjects;
  readonly #indexKey: Buffer;
  readonly #softBounceLimit: number;

  constructor(deps: SuppressionServiceDeps) {
    this.#db = deps.db;
    this.#repo = deps.repo;
    this.#audit = deps.audit;
    this.#subjects = deps.subjects;
    this.#indexKey = deps.indexKey;
    this.#softBounceLimit = deps.softBounceLimit;
  }

  /** The keyed hash of an address, or `undefined` when it is not an e-mail address. */
  hashAddress(address: string): string | undefined {
    const normalized = normalizeIdentifier('email', address);
    return normalized === undefined ? undefined : identifierHash(this.#indexKey, 'email', normalized);
  }

  /**
   * Whether `address` is one of the subject's e-mail addresses (by its blind-index hash): a bounce
   * or complaint that answers a message to this subject is applied only to the subject's own.
   */
  async isAddressOf(ctx: Context, subjectId: string, address: string): Promise<boolean> {
    const hash = this.hashAddress(address);
    if (hash === undefined) return false;
    return (await this.#subjects.emailHashesOf(ctx, subjectId)).includes(hash);
  }

  /** Whether marketing of `list` (a purpose key) to `address` is suppressed. Unparsable addresses are. */
  async isSuppressed(ctx: Context, address: string, list: string): Promise<boolean> {
    return (await this.suppressedAmong(ctx, [address], list)).has(address);
  }

  /** The addresses among `addresses` that are suppressed for `list` (unparsable ones included). */
  async suppressedAmong(ctx: Context, addresses: readonly string[], list: string): Promise<Set<string>> {
    const byHash = new Map<string, string[]>();
    const out = new Set<string>();
    for (const a of addresses) {
      const h = this.hashAddress(a);
      if (h === undefined) {
        out.add(a);
        continue;
      }
      const same = byHash.get(h);
      if (same) same.push(a);
      else byHash.set(h, [a]);
    }
    const hit = await this.#repo.suppressedAmong(ctx, [...byHash.keys()], list);
    for (const h of hit) for (const a of byHash.get(h) ?? []) out.add(a);
    return out;
  }

  /**
   * Suppresses an address for `list` ("*": every list), audited, in `ctx`'s transaction (or one of
   * its own); returns false when it already was.
   */
  async suppress(
    ctx: Context,
    input: { address: string; reason: SuppressionReason; list?: string; subjectId?: string },
  ): Promise<boolean> {
    const hash = this.hashAddress(input.address);
    if (hash === undefined) return false;
    return this.#db.transaction(ctx, (trx) =>
      this.#suppressHash(trx, hash, input.reason, input.list ?? ALL_LISTS, input.subjectId),
    );
  }

  /**
   * Suppresses every e-mail address of a subject for `list` ("*": every list), audited, without the
   * addresses: the subject's blind-index hashes are the suppression list's hashes, so they are
   * copied as they are (an unsubscribe link names the subject, not the address). Returns how many
   * suppressions were added (0 when all already were, or the subject has no address left). Runs in
   * `ctx`'s transaction, or one of its own.
   */
  async suppressSubject(
    ctx: Context,
    subjectId: string,
    reason: SuppressionReason,
    list: string = ALL_LISTS,
  ): Promise<number> {
    return this.#db.transaction(ctx, async (trx) => {
      let added = 0;
      for (const hash of await this.#subjects.emailHashesOf(trx, subjectId)) {
        if (await this.#suppressHash(trx, hash, reason, list, subjectId)) added++;
      }
      return added;
    });
  }

  /**
   * After a consent change commits with it (inside its transaction, which `ctx` is bound to):
   * every list a subject granted again, on e-mail or as a whole, has their own opt-out of it lifted.
   */
  async liftOptOutsOnConsent(ctx: Context, changes: readonly ConsentChange[]): Promise<void> {
    for (const change of changes) {
      const email = change.channel === undefined || change.channel === 'email';
      if (change.state === 'granted' && email && 'subjectId' in change.holder) {
        await this.liftOptOut(ctx, change.holder.subjectId, change.purpose);
      }
    }
  }

  /**
   * Lifts a subject's own opt-out of a list when they give consent for it again (the preference
   * center, the API): an `unsubscribe` suppression of their addresses for that list is removed,
   * audited. Bounces, complaints and opt-outs of every list stay: those are not theirs to undo by a
   * switch, and an address re-imported under a new subject stays suppressed (the hash is the
   * address's). Call it inside the consent change's transaction (`ctx` bound to it).
   */
  async liftOptOut(ctx: Context, subjectId: string, list: string): Promise<number> {
    return this.#db.transaction(ctx, async (trx) => {
      const hashes = await this.#subjects.emailHashesOf(trx, subjectId);
      const lifted = await this.#repo.deleteFor(trx, hashes, list, 'unsubscribe');
      if (lifted > 0) {
        await this.#audit.append(trx, [
          { action: 'mail.unsuppress', subjectId, details: { list, reason: 'consent_given', lifted } },
        ]);
      }
      return lifted;
    });
  }

  /**
   * Counts a soft bounce; at the limit the address is suppressed for every list. Returns whether
   * this bounce suppressed it.
   */
  async softBounce(ctx: Context, address: string): Promise<boolean> {
    const hash = this.hashAddress(address);
    if (hash === undefined) return false;
    return this.#db.transaction(ctx, async (trx) => {
      const count = await this.#repo.countSoftBounce(trx, hash, ctx.clock.now());
      if (count < this.#softBounceLimit) return false;
      return this.#suppressHash(trx, hash, 'soft_bounces', ALL_LISTS, undefined);
    });
  }

  /** Every suppression of an address (for support: "why does this person get nothing?"). */
  async suppressionsOf(
    ctx: Context,
    address: string,
  ): Promise<Array<{ list: string; reason: string; createdAt: Date }>> {
    const hash = this.hashAddress(address);
    if (hash === undefined) return [];
    return (await this.#repo.listFor(ctx, hash)).map(({ list, reason, createdAt }) => ({
      list,
      reason,
      createdAt,
    }));
  }

  async #suppressHash(
    ctx: Context,
    hash: string,
    reason: SuppressionReason,
    list: string,
    subjectId: string | undefined,
  ): Promise<boolean> {
    const added = await this.#repo.insert(ctx, {
      addressHash: hash,
      list,
      reason,
      createdAt: ctx.clock.now(),
    });
    if (added) {
      await this.#audit.append(ctx, [
        {
          action: 'mail.suppress',
          ...(subjectId !== undefined ? { subjectId } : {}),
          details: { list, reason },
        },
      ]);
    }
    return added;
  }
}
