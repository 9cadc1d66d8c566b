/**
 * Consent and communication choices: the ledger every choice is appended to, and `decide`, which
 * every gate asks. A change is appended to the ledger, projected, audited and queued for propagation
 * in one transaction; only then is it applied to the cache and announced to other instances.
 */
import type { AuditAppender } from '../audit/audit.service.js';
import type { Purpose } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import { CacheInvalidation } from '../platform/db/cache-invalidation.js';
import type { Transactions } from '../platform/db/db.js';
import { ValidationError } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import { ConsentCache, cacheKey, type CachedHolder } from './consent.cache.js';
import { EvidenceSeal, type ConsentEvidence } from './consent.evidence.js';
import { browserIdOrThrow, purposeList, validateChoices } from './consent.validator.js';
import {
  DecisionRules,
  GLOBAL_PURPOSE,
  choiceKey,
  type Decision,
  type HolderChoices,
} from './consent.decide.js';
import {
  browserHolder,
  subjectHolder,
  type ConsentEventRow,
  type ConsentRepository,
} from './consent.repository.js';

import { auditEntries, holderKey, subjectNotFound, toChoiceMap } from './consent.ledger.js';
import type {
  BatchDecision,
  ConsentChange,
  ConsentEventView,
  ConsentHolder,
  ConsentServiceDeps,
  ConsentSubjects,
  PropagateChanges,
  PurposeChoiceView,
  RecordChoiceInput,
} from './consent.types.js';

export * from './consent.types.js';

const NOTIFY_NAME = 'pledge_consent';
/** The largest batch `decideMany` takes (the mail pipeline asks for 10,000 at a time). */
export const MAX_DECISION_BATCH = 10_000;

/** Records choices and decides. */
export class ConsentService {
  readonly #db: Transactions;
  readonly #repo: ConsentRepository;
  readonly #links: ConsentServiceDeps['linkGenerations'];
  readonly #subjects: ConsentSubjects;
  readonly #audit: AuditAppender;
  readonly #database: ConsentServiceDeps['notifications'];
  readonly #manifest: ConsentServiceDeps['manifest'];
  readonly #rules: DecisionRules;
  readonly #cache: ConsentCache;
  readonly #evidence: EvidenceSeal;
  readonly #propagate: PropagateChanges | undefined;
  readonly #channel: string;
  readonly #invalidation: CacheInvalidation;

  constructor(deps: ConsentServiceDeps) {
    this.#db = deps.db;
    this.#repo = deps.repo;
    this.#links = deps.linkGenerations;
    this.#subjects = deps.subjects;
    this.#audit = deps.audit;
    this.#database = deps.notifications;
    this.#manifest = deps.manifest;
    this.#rules = new DecisionRules(deps.manifest.manifest);
    this.#evidence = new EvidenceSeal(deps.evidenceSecret);
    this.#propagate = deps.propagate;
    this.#channel = deps.notifications.channel(NOTIFY_NAME);
    // On PostgreSQL nothing is cached until the notification connection listens (start()).
    this.#cache = new ConsentCache({
      capacity: deps.cacheSize ?? 200_000,
      enabled: deps.notifications.dialect === 'sqlite',
    });
    this.#invalidation = new CacheInvalidation(deps.notifications, this.#channel, this.#cache);
  }

  /** The decision rules of the manifest in force. */
  get rules(): DecisionRules {
    return this.#rules;
  }

  /**
   * Starts hearing other instances' changes (PostgreSQL). Until it resolves, whenever the
   * connection is lost, and whenever it has not proven alive recently (docs/consent.md), decisions
   * are read from the database rather than the cache.
   */
  async start(): Promise<void> {
    await this.#invalidation.start();
  }

  /** Stops listening. */
  async stop(): Promise<void> {
    await this.#invalidation.stop();
  }

  // ---- decisions -----------------------------------------------------------------------------

  /**
   * Decides whether `purpose` (on `channel`) may use a subject's data. Throws
   * `consent.purpose_unknown` for an undeclared purpose and `consent.subject_not_found` for an
   * unknown or erased subject.
   */
  decide(ctx: Context, subjectId: string, purpose: string, channel?: string): Promise<Decision> {
    // Not async: the warm path (a cached person, a decision made before) is a map lookup, an array
    // index and one resolved promise; every other path goes through #decideCold.
    const cached = this.#cache.get(subjectId);
    if (cached !== undefined) {
      const slot = this.#rules.slotOf(purpose, channel);
      if (slot !== undefined) {
        return Promise.resolve(cached.decisions[slot] ?? this.#remember(cached, slot, purpose, channel));
      }
      // A declared purpose on a channel it does not use: decided (denied) without being kept.
      if (this.#rules.getPurpose(purpose) !== undefined) {
        return Promise.resolve(this.#rules.decide(cached, purpose, channel));
      }
    }
    return this.#decideCold(ctx, subjectId, purpose, channel);
  }

  /** Decides for a cached person and keeps the decision in its slot until their choices change. */
  #remember(cached: CachedHolder, slot: number, purpose: string, channel: string | undefined): Decision {
    const decision = this.#rules.decide(cached, purpose, channel);
    cached.decisions[slot] = decision;
    return decision;
  }

  /**
   * The use gate's decision: a purpose used on several channels may read the data when the person
   * allows it on one of them (a choice made for "marketing by e-mail" counts for marketing-email,
   * whose one channel is e-mail); each use on a channel asks its own decision (the mail pipeline
   * asks for "email" before every message).
   */
  async decideForUse(ctx: Context, subjectId: string, purpose: Purpose): Promise<Decision> {
    let denied: Decision | undefined;
    for (const channel of purpose.channels) {
      const d = await this.decide(ctx, subjectId, purpose.key, channel);
      if (d.allowed) return d;
      denied ??= d;
    }
    return denied ?? this.decide(ctx, subjectId, purpose.key);
  }

  async #decideCold(ctx: Context, subjectId: string, purpose: string, channel?: string): Promise<Decision> {
    this.#purposeOrThrow(purpose, 'purpose');
    const loaded = (await this.#loadSubjects(ctx, [subjectId])).get(subjectId);
    if (loaded === undefined) throw subjectNotFound(subjectId);
    return this.#rules.decide(loaded, purpose, channel);
  }

  /** The choices of a subject (cached or loaded), or `undefined` when unknown or erased. */
  async choicesOfSubject(ctx: Context, subjectId: string): Promise<HolderChoices | undefined> {
    return (
      // The cache is keyed by the subject id itself (cacheKey strips the ledger's "s:" prefix).
      this.#cache.get(subjectId) ?? (await this.#loadSubjects(ctx, [subjectId])).get(subjectId)
    );
  }

  /**
   * Decides for many subjects at once (up to {@link MAX_DECISION_BATCH}); unknown or erased subjects
   * are denied with reason `unknown_subject`. The answer is in the order of `subjectIds`.
   */
  async decideMany(
    ctx: Context,
    subjectIds: readonly string[],
    purpose: string,
    channel?: string,
  ): Promise<BatchDecision[]> {
    this.#purposeOrThrow(purpose, 'purpose');
    if (subjectIds.length > MAX_DECISION_BATCH) {
      throw new ValidationError(
        'consent.batch_too_large',
        `a batch holds at most ${MAX_DECISION_BATCH.toLocaleString('en-US')} subjects; got ${subjectIds.length.toLocaleString('en-US')}: split it`,
        { max: MAX_DECISION_BATCH },
      );
    }
    // One pass over the cache; only the people it does not hold are read (two queries per 1,000).
    const out = new Array<BatchDecision | undefined>(subjectIds.length);
    const missing: number[] = [];
    const slot = this.#rules.slotOf(purpose, channel);
    for (let i = 0; i < subjectIds.length; i++) {
      const cached = this.#cache.get(subjectIds[i]!);
      if (cached === undefined) missing.push(i);
      else if (slot === undefined) out[i] = this.#rules.decide(cached, purpose, channel);
      else out[i] = cached.decisions[slot] ?? this.#remember(cached, slot, purpose, channel);
    }
    if (missing.length > 0) {
      const loaded = await this.#loadSubjects(
        ctx,
        missing.map((i) => subjectIds[i]!),
      );
      for (const i of missing) {
        const holder = loaded.get(subjectIds[i]!);
        out[i] = holder === undefined ? UNKNOWN_SUBJECT : this.#rules.decide(holder, purpose, channel);
      }
    }
    return out as BatchDecision[];
  }

  /** Every purpose with the subject's or browser's choice and the decision, for pages and the API. */
  async purposeChoices(ctx: Context, holder: ConsentHolder): Promise<PurposeChoiceView[]> {
    const choices = await this.#holderChoicesOrThrow(ctx, holder);
    return this.#rules.purposes().map((purpose) => {
      const decision = this.#rules.decide(choices, purpose.key, undefined);
      return {
        purpose,
        choice: choices.choices.get(choiceKey(purpose.key, '')),
        decision,
        optional: decision.reason !== 'required' && decision.reason !== 'pledge',
        channels: purpose.channels.map((channel) => ({
          channel,
          choice: choices.choices.get(choiceKey(purpose.key, channel)),
          decision: this.#rules.decide(choices, purpose.key, channel),
        })),
      };
    });
  }

  /** Whether the holder has opted out of everything optional. */
  async globalOptOut(ctx: Context, holder: ConsentHolder): Promise<boolean> {
    const choices = await this.#holderChoicesOrThrow(ctx, holder);
    const g = choices.choices.get(choiceKey(GLOBAL_PURPOSE, ''));
    return g !== undefined && g.state !== 'granted';
  }

  /**
   * Whether each of many subjects has opted out of everything optional, in the order of
   * `subjectIds` (`undefined` for an unknown or erased subject): the cache first, the rest in one
   * load. The share gate asks it for a page of an export at once.
   */
  async globalOptOutMany(ctx: Context, subjectIds: readonly string[]): Promise<Array<boolean | undefined>> {
    const out = new Array<boolean | undefined>(subjectIds.length);
    const missing: number[] = [];
    const optedOut = (h: HolderChoices) => {
      const g = h.choices.get(choiceKey(GLOBAL_PURPOSE, ''));
      return g !== undefined && g.state !== 'granted';
    };
    subjectIds.forEach((id, i) => {
      const cached = this.#cache.get(id);
      if (cached === undefined) missing.push(i);
      else out[i] = optedOut(cached);
    });
    if (missing.length > 0) {
      const loaded = await this.#loadSubjects(
        ctx,
        missing.map((i) => subjectIds[i]!),
      );
      for (const i of missing) {
        const holder = loaded.get(subjectIds[i]!);
        out[i] = holder === undefined ? undefined : optedOut(holder);
      }
    }
    return out;
  }

  // ---- recording -----------------------------------------------------------------------------

  /**
   * Records choices in one transaction (all or nothing) and returns what changed. Every input is
   * checked first and every problem reported at once (`consent.choice_invalid`).
   */
  async record(ctx: Context, inputs: readonly RecordChoiceInput[]): Promise<ConsentChange[]> {
    validateChoices(this.#rules, inputs);
    return this.#appendAndApply(ctx, inputs, new Map());
  }

  /**
   * Records a Global Privacy Control signal: an opt-out of every purpose the manifest marks as
   * covered by GPC, for this subject or browser, unless it is already opted out by GPC (a browser
   * sends the signal with every request; the ledger records it once).
   */
  async recordGpc(
    ctx: Context,
    holder: ConsentHolder,
    options: { jurisdiction?: string | undefined; evidence?: ConsentEvidence | undefined } = {},
  ): Promise<ConsentChange[]> {
    const purposes = this.#rules.gpcPurposes();
    if (purposes.length === 0) return [];
    const choices = await this.#holderChoicesOrThrow(ctx, holder);
    const inputs: RecordChoiceInput[] = purposes
      .filter((p) => {
        const c = choices.choices.get(choiceKey(p, ''));
        return c === undefined || c.method !== 'gpc' || c.state === 'granted';
      })
      .map((purpose) => ({
        holder,
        purpose,
        state: 'denied',
        method: 'gpc',
        jurisdiction: options.jurisdiction,
        evidence: options.evidence,
      }));
    return inputs.length === 0 ? [] : this.record(ctx, inputs);
  }

  /**
   * Merges a browser's choices into a subject when the person signs up: each of the browser's latest
   * choices is appended to the subject's ledger (pointing at the browser event it came from) unless
   * the subject has a newer choice of their own for it.
   */
  async mergeBrowser(ctx: Context, browserId: string, subjectId: string): Promise<ConsentChange[]> {
    browserIdOrThrow(browserId, 'browser');
    const subject = (await this.#loadSubjects(ctx, [subjectId])).get(subjectId);
    if (subject === undefined) throw subjectNotFound(subjectId);
    const repo = this.#repo;
    const browserStates = await repo.statesOf(ctx, [browserHolder(browserId)]);
    const events = new Map((await repo.eventsOf(ctx, browserHolder(browserId))).map((e) => [e.id, e]));
    const inputs: RecordChoiceInput[] = [];
    const mergedFrom = new Map<number, string>();
    for (const s of browserStates) {
      const own = subject.choices.get(choiceKey(s.purpose, s.channel));
      if (own !== undefined && own.at.getTime() >= s.at.getTime()) continue;
      const source = events.get(s.eventId);
      mergedFrom.set(inputs.length, s.eventId);
      inputs.push({
        holder: { subjectId },
        purpose: s.purpose,
        channel: s.channel === '' ? undefined : s.channel,
        state: s.state,
        method: s.method,
        noticeVersion: source?.noticeVersion,
        jurisdiction: source?.jurisdiction,
        evidence:
          source?.evidence !== undefined ? this.#evidence.open(source.id, source.evidence) : undefined,
      });
    }
    if (inputs.length === 0) return [];
    return this.#appendAndApply(ctx, inputs, mergedFrom);
  }

  /** A holder's ledger, oldest first, with evidence opened (for proof of consent). */
  async history(ctx: Context, holder: ConsentHolder): Promise<ConsentEventView[]> {
    await this.#holderChoicesOrThrow(ctx, holder);
    const events = await this.#repo.eventsOf(ctx, holderKey(holder));
    return events.map((e) => ({
      id: e.id,
      purpose: e.purpose,
      channel: e.channel === '' ? undefined : e.channel,
      state: e.state,
      method: e.method,
      noticeVersion: e.noticeVersion,
      policyVersionId: e.policyVersionId,
      jurisdiction: e.jurisdiction,
      at: e.at,
      evidence: e.evidence !== undefined ? this.#evidence.open(e.id, e.evidence) : undefined,
      mergedFrom: e.mergedFrom,
    }));
  }

  /** Rebuilds the projection from the ledger (one transaction); returns how many events it replayed. */
  async rebuildProjection(ctx: Context): Promise<number> {
    return this.#db.transaction(ctx, async (trx) => {
      const repo = this.#repo;
      await repo.clearProjection(trx);
      let n = 0;
      for await (const page of repo.allEvents(trx)) {
        await repo.project(trx, page);
        n += page.length;
      }
      this.#db.afterCommit(trx, () => this.#cache.clear());
      return n;
    });
  }

  /**
   * Removes an erased subject's choices, inside the erasure's transaction (`ctx` is bound to it);
   * once it commits, this instance forgets the subject and the others are told.
   */
  async eraseSubject(ctx: Context, subjectId: string): Promise<number> {
    return this.#db.transaction(ctx, async (trx) => {
      const n = await this.#repo.eraseSubject(trx, subjectId);
      // Every preference link made before the erasure stops working with it.
      await this.#links.bump(trx, subjectId, trx.clock.now());
      if (this.#database.dialect === 'postgres')
        await this.#repo.notify(trx, this.#channel, [subjectHolder(subjectId)]);
      this.#db.afterCommit(trx, () => this.forget(subjectId));
      return n;
    });
  }

  /** A person's link generation: what a preference-center link must carry to work. */
  linkGenerationOf(ctx: Context, subjectId: string): Promise<number> {
    return this.#links.get(ctx, subjectId);
  }

  /**
   * "Sign out every link": raises the person's link generation, so every preference-center link
   * made before stops working (unsubscribe links are not affected: an opt-out must keep working).
   * Audited as `consent.links_revoked`; returns the new generation.
   */
  async signOutEveryLink(ctx: Context, subjectId: string): Promise<number> {
    return this.#db.transaction(ctx, async (trx) => {
      const generation = await this.#links.bump(trx, subjectId, trx.clock.now());
      await this.#audit.append(trx, [
        { action: 'consent.links_revoked', subjectId, details: { generation } },
      ]);
      return generation;
    });
  }

  /** Forgets what the cache holds of a subject (after erasure, or a change of jurisdiction). */
  forget(subjectId: string): void {
    this.#cache.evict([subjectHolder(subjectId)]);
  }

  // ---- internals -----------------------------------------------------------------------------

  async #appendAndApply(
    ctx: Context,
    inputs: readonly RecordChoiceInput[],
    mergedFrom: ReadonlyMap<number, string>,
  ): Promise<ConsentChange[]> {
    const at = ctx.clock.now();
    const rows: ConsentEventRow[] = inputs.map((input, i) => {
      const id = uuidv7();
      const evidence = this.#evidence.seal(id, input.evidence);
      return {
        id,
        holder: holderKey(input.holder),
        subjectId: 'subjectId' in input.holder ? input.holder.subjectId : undefined,
        purpose: input.purpose,
        channel: input.channel ?? '',
        state: input.state,
        method: input.method,
        noticeVersion: input.noticeVersion,
        policyVersionId: this.#manifest.versionId,
        jurisdiction: input.jurisdiction,
        at,
        evidence,
        mergedFrom: mergedFrom.get(i),
      };
    });
    const subjectIds = [...new Set(rows.flatMap((r) => (r.subjectId !== undefined ? [r.subjectId] : [])))];
    return this.#db.transaction(ctx, async (trx) => {
      const repo = this.#repo;
      const known = await this.#subjects.liveJurisdictions(trx, subjectIds);
      const unknown = subjectIds.find((id) => !known.has(id));
      if (unknown !== undefined) throw subjectNotFound(unknown);
      const holders = [...new Set(rows.map((r) => r.holder))];
      const before = new Map(
        (await repo.statesOf(trx, holders)).map((s) => [
          `${s.holder}\u0000${s.purpose}\u0000${s.channel}`,
          s.state,
        ]),
      );
      await repo.append(trx, rows);
      const result: ConsentChange[] = rows.map((r, i) => ({
        eventId: r.id,
        holder: inputs[i]!.holder,
        purpose: r.purpose,
        channel: r.channel === '' ? undefined : r.channel,
        state: r.state,
        method: r.method,
        previous: before.get(`${r.holder}\u0000${r.purpose}\u0000${r.channel}`) ?? 'none',
        at,
      }));
      await this.#audit.append(trx, auditEntries(result));
      if (this.#propagate) await this.#propagate(trx, result);
      if (this.#database.dialect === 'postgres') await repo.notify(trx, this.#channel, holders);
      // Applied to this instance's cache only once the change has committed (with the caller's
      // transaction, when this change is part of a larger one).
      this.#db.afterCommit(trx, () => this.#cache.apply(rows));
      return result;
    });
  }

  async #holderChoicesOrThrow(ctx: Context, holder: ConsentHolder): Promise<HolderChoices> {
    if ('subjectId' in holder) {
      const choices = await this.choicesOfSubject(ctx, holder.subjectId);
      if (choices === undefined) throw subjectNotFound(holder.subjectId);
      return choices;
    }
    browserIdOrThrow(holder.browserId, 'browser');
    const key = browserHolder(holder.browserId);
    const cached = this.#cache.get(cacheKey(key));
    if (cached !== undefined) return cached;
    const epoch = this.#cache.epoch();
    const states = await this.#repo.statesOf(ctx, [key]);
    const loaded: HolderChoices = { jurisdiction: undefined, choices: toChoiceMap(states) };
    this.#cache.store(cacheKey(key), loaded, epoch);
    return loaded;
  }

  /** Loads subjects' jurisdictions and choices, caching them; unknown or erased subjects are absent. */
  async #loadSubjects(ctx: Context, subjectIds: readonly string[]): Promise<Map<string, HolderChoices>> {
    const epoch = this.#cache.epoch();
    const [subjects, states] = await Promise.all([
      this.#subjects.liveJurisdictions(ctx, subjectIds),
      this.#repo.statesOf(ctx, subjectIds.map(subjectHolder)),
    ]);
    const byHolder = new Map<string, typeof states>();
    for (const s of states) {
      const list = byHolder.get(s.holder);
      if (list) list.push(s);
      else byHolder.set(s.holder, [s]);
    }
    const out = new Map<string, HolderChoices>();
    for (const [id, { jurisdiction }] of subjects) {
      const holder = subjectHolder(id);
      const loaded: HolderChoices = { jurisdiction, choices: toChoiceMap(byHolder.get(holder) ?? []) };
      out.set(id, loaded);
      this.#cache.store(id, loaded, epoch);
    }
    return out;
  }

  #purposeOrThrow(purpose: string, path: string): Purpose {
    const found = this.#rules.getPurpose(purpose);
    if (found === undefined) {
      throw new ValidationError(
        'consent.purpose_unknown',
        `${path}: "${purpose}" is not a purpose of the manifest; use one of ${purposeList(this.#rules)}`,
        { purpose },
      );
    }
    return found;
  }
}

const UNKNOWN_SUBJECT = Object.freeze({ allowed: false, reason: 'unknown_subject' }) as BatchDecision;
