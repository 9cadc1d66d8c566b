/**
 * What comes back from sent mail, whichever way it arrives (the RFC 8058 one-click POST, a mail to
 * the mailto unsubscribe address, a bounce or complaint report over SMTP or the webhook): one
 * service turns it into consent withdrawals and suppressions, so every path obeys the same rules.
 *
 * - An unsubscribe (one-click or mailto) withdraws the token's purpose on its channel (e-mail) and
 *   suppresses the subject's addresses for that list.
 * - A hard bounce suppresses the address for every list; soft bounces count toward the limit.
 * - A complaint suppresses the address (and the subject's addresses, when the report names the
 *   subject) for every list, and withdraws consent to the list when it can tell which list it was.
 *
 * Each step is idempotent: a report or a POST delivered twice changes nothing the second time.
 *
 * A report that comes by mail, from anyone who can reach the port, is applied only when it answers
 * a message Pledge sent: its VERP return path or the quoted Message-ID carries a return token
 * (return-tokens.ts) signed for that subject and list, within the token's window; and only to that
 * subject's own addresses and that list. Anything else is dropped and counted. The webhook's
 * reports are vouched for by its API key and applied as they come.
 */
import { choiceKey } from '../consent/consent.decide.js';
import type { ConsentEvidence, ConsentService } from '../consent/consent.service.js';
import {
  verifyLinkToken,
  type LinkTokenKeys,
  type LinkTokenProblem,
  type VerifyLinkTokenResult,
} from '../consent/link-tokens.js';
import { asLinkHolder, type Context } from '../platform/context.js';
import type { UseKeys } from '../vault/use-keys.js';
import type { Vault } from '../vault/vault.service.js';
import { parseMailReport, unsubscribeTokenIn, type BounceKind, type MailReport } from './bounces.js';
import { verifyMailtoToken } from './mailto-tokens.js';
import {
  returnTokenInMessageId,
  returnTokenKeysOf,
  verifyReturnToken,
  type ReturnToken,
  type ReturnTokenKeys,
  type ReturnTokenProblem,
} from './return-tokens.js';
import { ALL_LISTS, type SuppressionService } from './suppression.service.js';

/** What the service uses. */
export interface MailEventsServiceDeps {
  consent: ConsentService;
  suppression: SuppressionService;
  vault: Pick<Vault, 'findSubjectByIdentifier'>;
  /** The links keys link tokens are signed with (`deriveLinkTokenKeys(keyring.use('links'))`). */
  linkKey: LinkTokenKeys;
  /** The secret return tokens are derived from (the same as the mail pipeline's). */
  returnTokenSecret: Buffer | UseKeys;
  /** The domain of Pledge's mail addresses: a List-Id `<purpose.DOMAIN>` names a list. */
  mailDomain: string;
}

/** What an unsubscribe did, or why its token was refused. */
export type UnsubscribeResult =
  | {
      ok: true;
      /** Whether this call recorded the withdrawal (false: it was already withdrawn, or the subject is gone). */
      withdrawn: boolean;
      /** Suppressions this call added. */
      suppressed: number;
      purpose: string;
      channel: string | undefined;
    }
  | { ok: false; problem: LinkTokenProblem };

/** What one event did. */
export type MailEventOutcome =
  /** A new suppression (hard bounce, complaint, the soft bounce that reached the limit). */
  | 'suppressed'
  /** The address was suppressed before; nothing changed. */
  | 'already_suppressed'
  /** A soft bounce counted, below the limit. */
  | 'counted'
  /** Nothing to do: no usable address, not a bounce, not a complaint. */
  | 'ignored';

/** The result of one event. */
export interface MailEventResult {
  type: 'bounce' | 'complaint';
  outcome: MailEventOutcome;
  /** For a complaint: whether consent to the list was withdrawn by it. */
  withdrawn?: boolean;
}

/** A bounce reported by the sending service. */
export interface BounceEvent {
  address: string;
  kind: BounceKind;
}

/** A complaint; `token` is the unverified token from the original message's List-Unsubscribe. */
export interface ComplaintEvent {
  address?: string | undefined;
  /** The list (a purpose key) the complaint is about, when known. */
  list?: string | undefined;
  token?: string | undefined;
}

/** Why a report by mail was not applied: it carried no valid return token, or named someone else. */
export type ReportDropReason = 'no_token' | ReturnTokenProblem | 'not_recipient';

/** What a raw report was and what it did. */
export interface ReportResult {
  report: MailReport['type'];
  results: MailEventResult[];
  /** Events of the report not applied because it did not prove it answers Pledge's mail. */
  dropped: number;
  /** Why (the first reason) when some were dropped. */
  dropReason?: ReportDropReason | undefined;
}

/** Options of {@link MailEventsService.report}. */
export interface ReportOptions {
  /**
   * Apply the report only when it answers a message Pledge sent (a valid return token), and only to
   * that message's subject and list: set for mail from the inbound listener. The webhook, whose
   * caller holds an API key, leaves it off.
   */
  requireReturnToken?: boolean;
  /** The tokens of the VERP return paths (`bounces+TOKEN@`) the report was delivered to. */
  returnPathTokens?: readonly string[];
}

/** Applies what comes back from sent mail. */
export class MailEventsService {
  readonly #consent: ConsentService;
  readonly #suppression: SuppressionService;
  readonly #vault: MailEventsServiceDeps['vault'];
  readonly #linkKey: LinkTokenKeys;
  readonly #returnKeys: ReturnTokenKeys;
  readonly #mailDomain: string;
  readonly #listIdSuffix: string;
  #lists: string[] | undefined;

  constructor(deps: MailEventsServiceDeps) {
    this.#consent = deps.consent;
    this.#suppression = deps.suppression;
    this.#vault = deps.vault;
    this.#linkKey = deps.linkKey;
    this.#returnKeys = returnTokenKeysOf(deps.returnTokenSecret);
    this.#mailDomain = deps.mailDomain.toLowerCase();
    this.#listIdSuffix = `.${deps.mailDomain.toLowerCase()}`;
  }

  /**
   * What an unsubscribe token is for (to show it on the confirmation page), or why it is refused.
   * Changes nothing.
   */
  describeUnsubscribe(
    ctx: Context,
    rawToken: string,
  ):
    | { ok: true; purpose: string; purposeName: string; channel: string | undefined }
    | { ok: false; problem: LinkTokenProblem } {
    const verified = this.#verifyUnsubscribe(rawToken, ctx.clock.now());
    if (!verified.ok) return verified;
    const token = verified.token;
    if (token.scope !== 'unsubscribe') return { ok: false, problem: 'wrong_scope' };
    const purpose = this.#consent.rules.getPurpose(token.purpose);
    return {
      ok: true,
      purpose: token.purpose,
      purposeName: purpose?.name ?? token.purpose,
      channel: token.channel ?? (purpose?.channels.includes('email') ? 'email' : undefined),
    };
  }

  /**
   * Unsubscribes by a signed link token (RFC 8058 one-click, or the mailto address): withdraws the
   * token's purpose on its channel (e-mail when the token names none and the purpose has it), then
   * suppresses the subject's addresses for that list, each only if not done before. Answers after
   * both have committed. A refused token changes nothing. A subject erased since the mail was sent
   * has nothing left to withdraw or suppress; that is still a success.
   */
  async unsubscribe(
    caller: Context,
    rawToken: string,
    options: { evidence?: ConsentEvidence | undefined } = {},
  ): Promise<UnsubscribeResult> {
    const verified = this.#verifyUnsubscribe(rawToken, caller.clock.now());
    if (!verified.ok) return verified;
    const token = verified.token;
    if (token.scope !== 'unsubscribe') return { ok: false, problem: 'wrong_scope' };
    // Whoever holds the link (or the address) acts for its subject: the audit says whose link it was,
    // unless an authenticated caller (an API key forwarding provider events) is known.
    const ctx =
      caller.actor.kind === 'anonymous' ? asLinkHolder(caller, token.subjectId, 'unsubscribe') : caller;
    const purpose = this.#consent.rules.getPurpose(token.purpose);
    const channel = token.channel ?? (purpose?.channels.includes('email') ? 'email' : undefined);
    const withdrawn =
      purpose !== undefined &&
      (await this.#withdraw(ctx, token.subjectId, purpose.key, channel, 'one_click', options.evidence));
    // Right after the withdrawal, not in its transaction (the consent service owns that one). If the
    // process dies in between, the sender gets no 200 and retries; the retry finds the withdrawal
    // made and adds the suppression.
    const suppressed = await this.#suppression.suppressSubject(
      ctx,
      token.subjectId,
      'unsubscribe',
      token.purpose,
    );
    return { ok: true, withdrawn, suppressed, purpose: token.purpose, channel };
  }

  /**
   * Checks an unsubscribe token of either spelling: the compact one of the mailto address (tried
   * against every list a person can be mailed for) or a link token (one-click URL, unsubscribe page,
   * and mailto addresses of mail sent before the compact form).
   */
  #verifyUnsubscribe(rawToken: string, now: Date): VerifyLinkTokenResult {
    const compact = verifyMailtoToken(this.#linkKey, rawToken, { now, purposes: this.#mailLists() });
    if (compact.ok || compact.problem !== 'malformed') return compact;
    return verifyLinkToken(this.#linkKey, rawToken, { now, scope: 'unsubscribe' });
  }

  /** The purposes mailed on the e-mail channel: the lists a mailto token can name. */
  #mailLists(): string[] {
    return (this.#lists ??= this.#consent.rules
      .purposes()
      .filter((p) => p.channels.includes('email'))
      .map((p) => p.key));
  }

  /** Applies a bounce: hard suppresses the address for every list, soft counts toward the limit. */
  async bounce(ctx: Context, event: BounceEvent): Promise<MailEventResult> {
    if (this.#suppression.hashAddress(event.address) === undefined)
      return { type: 'bounce', outcome: 'ignored' };
    switch (event.kind) {
      case 'hard': {
        const added = await this.#suppression.suppress(ctx, {
          address: event.address,
          reason: 'hard_bounce',
        });
        return { type: 'bounce', outcome: added ? 'suppressed' : 'already_suppressed' };
      }
      case 'soft': {
        const added = await this.#suppression.softBounce(ctx, event.address);
        return { type: 'bounce', outcome: added ? 'suppressed' : 'counted' };
      }
    }
  }

  /**
   * Applies a complaint: suppresses the address, and the addresses of the subject a valid token
   * names, for every list; withdraws consent to the list (method `complaint`) when the subject and
   * the list are known (from the token, or from the address and the `list` given).
   */
  async complaint(ctx: Context, event: ComplaintEvent): Promise<MailEventResult> {
    let subjectId: string | undefined;
    let list = event.list;
    if (event.token !== undefined) {
      // A complaint may come long after the mail; an expired link still names its subject.
      const verified = this.#verifyUnsubscribe(event.token, new Date(0));
      if (verified.ok && verified.token.scope === 'unsubscribe') {
        subjectId = verified.token.subjectId;
        list ??= verified.token.purpose;
      }
    }
    const address =
      event.address !== undefined && this.#suppression.hashAddress(event.address) !== undefined
        ? event.address
        : undefined;
    if (subjectId === undefined && address !== undefined && list !== undefined) {
      subjectId = (await this.#vault.findSubjectByIdentifier(ctx, 'email', address))?.id;
    }
    if (address === undefined && subjectId === undefined) return { type: 'complaint', outcome: 'ignored' };

    let added = 0;
    if (address !== undefined) {
      if (await this.#suppression.suppress(ctx, { address, reason: 'complaint', list: ALL_LISTS })) added++;
    }
    if (subjectId !== undefined) {
      added += await this.#suppression.suppressSubject(ctx, subjectId, 'complaint', ALL_LISTS);
    }
    const withdrawn =
      subjectId !== undefined &&
      list !== undefined &&
      (await this.#withdrawForComplaint(ctx, subjectId, list));
    return { type: 'complaint', outcome: added > 0 ? 'suppressed' : 'already_suppressed', withdrawn };
  }

  /**
   * Parses a raw report (a DSN or an ARF complaint report) and applies it: each failed or delayed
   * recipient of a DSN is a bounce, each recipient of a complaint a complaint. With
   * `requireReturnToken`, only what a valid return token vouches for (see {@link ReportOptions}).
   */
  async report(ctx: Context, raw: Buffer | string, options: ReportOptions = {}): Promise<ReportResult> {
    const report = await parseMailReport(raw);
    if (options.requireReturnToken === true) return this.#reportSigned(ctx, report, options);
    const results: MailEventResult[] = [];
    switch (report.type) {
      case 'delivery_status':
        for (const r of report.recipients) {
          if (r.kind === undefined || r.address === undefined)
            results.push({ type: 'bounce', outcome: 'ignored' });
          else results.push(await this.bounce(ctx, { address: r.address, kind: r.kind }));
        }
        break;
      case 'feedback': {
        if (!report.complaint) {
          results.push({ type: 'complaint', outcome: 'ignored' });
          break;
        }
        const token = unsubscribeTokenIn(report.original?.listUnsubscribe);
        const list = this.#listOf(report.original?.listId);
        const addresses: Array<string | undefined> =
          report.addresses.length > 0 ? report.addresses : [undefined];
        for (const address of addresses) results.push(await this.complaint(ctx, { address, list, token }));
        break;
      }
      case 'not_a_report':
        break;
    }
    return { report: report.type, results, dropped: 0 };
  }

  /** Applies a report by mail only as far as a valid return token vouches for it. */
  async #reportSigned(ctx: Context, report: MailReport, options: ReportOptions): Promise<ReportResult> {
    if (report.type === 'not_a_report') return { report: report.type, results: [], dropped: 0 };
    const verified = this.#returnTokenOf(ctx, report, options.returnPathTokens ?? []);
    if (!verified.ok) {
      const dropped =
        report.type === 'delivery_status'
          ? report.recipients.filter((r) => r.kind !== undefined).length
          : report.complaint
            ? 1
            : 0;
      return { report: report.type, results: [], dropped, dropReason: verified.problem };
    }
    const { subjectId, list } = verified.token;
    const results: MailEventResult[] = [];
    let dropped = 0;
    switch (report.type) {
      case 'delivery_status':
        for (const r of report.recipients) {
          if (r.kind === undefined || r.address === undefined) {
            results.push({ type: 'bounce', outcome: 'ignored' });
          } else if (!(await this.#suppression.isAddressOf(ctx, subjectId, r.address))) {
            // Signed for someone else: a genuine message's token cannot make another address bounce.
            dropped++;
          } else {
            results.push(await this.bounce(ctx, { address: r.address, kind: r.kind }));
          }
        }
        break;
      case 'feedback': {
        if (!report.complaint) {
          results.push({ type: 'complaint', outcome: 'ignored' });
          break;
        }
        // The subject and the list are the token's; of the addresses the report names (redacted by
        // many providers), only the subject's own are suppressed by address.
        const own: string[] = [];
        for (const a of report.addresses) {
          if (await this.#suppression.isAddressOf(ctx, subjectId, a)) own.push(a);
        }
        results.push(await this.#complaintOf(ctx, subjectId, list, own));
        break;
      }
    }
    return {
      report: report.type,
      results,
      dropped,
      ...(dropped > 0 ? { dropReason: 'not_recipient' as const } : {}),
    };
  }

  /** The first valid return token of a report: its return paths', else its quoted Message-ID's. */
  #returnTokenOf(
    ctx: Context,
    report: Exclude<MailReport, { type: 'not_a_report' }>,
    returnPathTokens: readonly string[],
  ): { ok: true; token: ReturnToken } | { ok: false; problem: ReportDropReason } {
    const fromMessageId = returnTokenInMessageId(report.original?.messageId, this.#mailDomain);
    const candidates = [...returnPathTokens, ...(fromMessageId === undefined ? [] : [fromMessageId])];
    let problem: ReportDropReason = 'no_token';
    const lists = this.#consent.rules.purposes().map((p) => p.key);
    for (const candidate of candidates) {
      const verified = verifyReturnToken(this.#returnKeys, candidate, { now: ctx.clock.now(), lists });
      if (verified.ok) return verified;
      problem = verified.problem;
    }
    return { ok: false, problem };
  }

  /** A complaint about a message to a known subject of a known list, with the addresses that are theirs. */
  async #complaintOf(
    ctx: Context,
    subjectId: string,
    list: string,
    addresses: readonly string[],
  ): Promise<MailEventResult> {
    let added = 0;
    for (const address of addresses) {
      if (await this.#suppression.suppress(ctx, { address, reason: 'complaint', list: ALL_LISTS, subjectId }))
        added++;
    }
    added += await this.#suppression.suppressSubject(ctx, subjectId, 'complaint', ALL_LISTS);
    const withdrawn = await this.#withdrawForComplaint(ctx, subjectId, list);
    return { type: 'complaint', outcome: added > 0 ? 'suppressed' : 'already_suppressed', withdrawn };
  }

  /** The purpose a List-Id `<purpose.MAILDOMAIN>` names, when the manifest has it. */
  #listOf(listId: string | undefined): string | undefined {
    if (listId === undefined || !listId.endsWith(this.#listIdSuffix)) return undefined;
    const key = listId.slice(0, -this.#listIdSuffix.length);
    return this.#consent.rules.getPurpose(key)?.key;
  }

  /** Withdraws `purpose` on `channel` unless it already is; false when nothing was recorded. */
  /** A complaint withdraws its list, on e-mail when the purpose has that channel. */
  async #withdrawForComplaint(ctx: Context, subjectId: string, list: string): Promise<boolean> {
    const purpose = this.#consent.rules.getPurpose(list);
    if (purpose === undefined) return false;
    const channel = purpose.channels.includes('email') ? 'email' : undefined;
    return this.#withdraw(ctx, subjectId, purpose.key, channel, 'complaint', undefined);
  }

  async #withdraw(
    ctx: Context,
    subjectId: string,
    purpose: string,
    channel: string | undefined,
    method: 'one_click' | 'complaint',
    evidence: ConsentEvidence | undefined,
  ): Promise<boolean> {
    const choices = await this.#consent.choicesOfSubject(ctx, subjectId);
    if (choices === undefined) return false;
    const current = choices.choices.get(choiceKey(purpose, channel ?? ''));
    if (current !== undefined && current.state !== 'granted') return false;
    await this.#consent.record(ctx, [
      { holder: { subjectId }, purpose, channel, state: 'withdrawn', method, evidence },
    ]);
    return true;
  }
}
