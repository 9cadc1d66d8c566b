/**
 * Collection points: the only way personal data enters Pledge from a form or a product. Each
 * request is checked against the collection point the manifest declares (closed world: an
 * undeclared field is refused, or for product events dropped and reported), card numbers go to the
 * card processor and never further, IP addresses are truncated unless a purpose needs them whole,
 * and everything one request brings in is written by one `Vault.write`: one transaction, so a
 * refused request leaves nothing behind.
 */
import type { PassThroughGate } from '../share/share.types.js';
import { randomUUID } from 'node:crypto';
import { describeDuration } from '../manifest/duration.js';
import type { Manifest, SourceKind } from '../manifest/manifest.schema.js';
import { SystemGate } from '../manifest/systems.gate.js';
import { coversCategory, Taxonomy } from '../manifest/taxonomy.js';
import type { Decision } from '../consent/consent.decide.js';
import type { Context } from '../platform/context.js';
import {
  ConfigError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PledgeError,
  ValidationError,
} from '../platform/errors.js';
import type { IdentifierKind } from '../vault/identifiers.js';
import type { Subject } from '../vault/subjects.repository.js';
import type { FieldInput, Identifiers, Vault } from '../vault/vault.service.js';
import {
  TestCardProcessor,
  type CardDetails,
  type CardProcessor,
  type CardTokenResult,
} from './card-processor.js';
import { compileSource, type SourcePlan } from './collect.plan.js';
import type { SubjectReference } from './collect.fields.js';
import { identifierTaken, identifyingFields } from './collect.identity.js';
import { collectProblemsError } from './collect.problems.js';
import {
  assertEventBatchSize,
  type DroppedField,
  type ValidatedCollect,
  validateCollectBody,
  validateEventsBody,
} from './collect.validator.js';
import { findCardNumbers, maskCardNumbers } from './pan.js';

export type { SubjectReference } from './collect.fields.js';
export type { DroppedField } from './collect.validator.js';

/** The categories under which what the card processor returns is kept. */
export const CARD_TOKEN_CATEGORIES = {
  token: 'user.financial.payment_card.token',
  brand: 'user.financial.payment_card.brand',
  lastFour: 'user.financial.payment_card.last_four',
  expiry: 'user.financial.payment_card.expiry',
} as const;

/** The body of `POST /api/v1/collect/:source` (checked at run time whatever its static type). */
export interface CollectBody {
  /** Who the data is about; registration and trial sign-up may omit it and match or create by e-mail. */
  subject?: SubjectReference;
  /** Where the person is, for a new subject's consent defaults: "US", "DE", "EU"... */
  jurisdiction?: string;
  /** The collection point's fields, by name. */
  data: Record<string, unknown>;
}

/** What a collection stored. */
export interface CollectResult {
  subject: { id: string; created: boolean };
  record: { id: string };
  /** For a card passed to the processor: what was kept of it. */
  card?: { token: string; brand: string; lastFour: string; expiry: string };
}

/** The body of `POST /api/v1/collect/:source/events`. */
export interface CollectEventsBody {
  subject: SubjectReference;
  /** Up to 1,000 events, each an object of the collection point's fields. */
  events: Array<Record<string, unknown>>;
}

/** What an event batch stored, and which undeclared fields were dropped. */
export interface CollectEventsResult {
  accepted: number;
  records: string[];
  dropped: DroppedField[];
}

/** A collection point as a form shows it where data is collected. */
export interface SourceDefinition {
  key: string;
  name: string;
  kind: SourceKind;
  voluntary: boolean;
  description: string | undefined;
  fields: Array<{
    name: string;
    category: string;
    categoryName: string;
    required: boolean;
    description: string | undefined;
    /** Set for fields passed straight to a recipient and never stored. */
    passedTo: { key: string; name: string } | undefined;
  }>;
  purposes: Array<{ key: string; name: string; description: string }>;
  retention: { period: string; text: string };
  notice: string | undefined;
  privacyPolicy: { url: string; version: string; effective: string };
}

/** What the collection service uses. */
export interface CollectServiceDeps {
  vault: Vault;
  manifest: Manifest;
  /**
   * Card processor adapters by recipient key. Every recipient a source passes card numbers to
   * needs one; absent, each gets a {@link TestCardProcessor}.
   */
  processors?: Readonly<Record<string, CardProcessor>>;
  /** People's choices; absent, collection follows the manifest alone (no one has opted out). */
  consent?: CollectConsent;
  /** Holds each system to its collection points; defaults to a gate over `manifest`. */
  systems?: Pick<SystemGate, 'requireSource'>;
  /**
   * The share gate: a card handed to its processor is a disclosure, checked and recorded there;
   * absent (unit tests of collection alone), cards go to the processor unchecked by it.
   */
  share?: CollectShare;
  /**
   * Recognizes identifiers of people erased before (src/rights/tombstones.ts): the kinds that match.
   * A person who comes back is collected again as a new subject (erasure does not forbid signing up
   * anew), and the new subject's first log entry is flagged `previouslyErased`.
   */
  erased?: { recognize(ctx: Context, identifiers: Identifiers): Promise<string[]> };
}

/** What the collect gate asks of the share gate (the card's hand-over to the card processor). */
export type CollectShare = PassThroughGate;

/** What the collect gate asks of the consent service. */
export interface CollectConsent {
  decide(ctx: Context, subjectId: string, purpose: string): Promise<Decision>;
  globalOptOut(ctx: Context, holder: { subjectId: string }): Promise<boolean>;
}

/** Where the published policy lives; collection notices link to it. */
export const PRIVACY_POLICY_PATH = '/privacy';

/** Receives personal data at the manifest's collection points. */
export class CollectService {
  readonly #vault: Vault;
  readonly #manifest: Manifest;
  readonly #plans: ReadonlyMap<string, SourcePlan>;
  readonly #processors: Readonly<Record<string, CardProcessor>>;
  readonly #taxonomy: Taxonomy;
  readonly #consent: CollectConsent | undefined;
  readonly #systems: Pick<SystemGate, 'requireSource'>;
  readonly #share: CollectShare | undefined;
  readonly #erased: CollectServiceDeps['erased'];

  /** Compiles every source; throws `config.invalid` listing every card recipient without a processor. */
  constructor(deps: CollectServiceDeps) {
    this.#vault = deps.vault;
    this.#manifest = deps.manifest;
    this.#consent = deps.consent;
    this.#share = deps.share;
    this.#erased = deps.erased;
    this.#systems = deps.systems ?? new SystemGate({ manifest: deps.manifest });
    this.#taxonomy = new Taxonomy(deps.manifest.categories);
    this.#plans = new Map(deps.manifest.sources.map((s) => [s.key, compileSource(deps.manifest, s)]));
    const recipients = [...this.#plans.values()].flatMap((p) => (p.cardRecipient ? [p.cardRecipient] : []));
    this.#processors =
      deps.processors ?? Object.fromEntries(recipients.map((r) => [r, new TestCardProcessor()]));
    const problems: string[] = [];
    for (const plan of this.#plans.values()) {
      if (plan.cardRecipient === undefined) continue;
      if (!Object.hasOwn(this.#processors, plan.cardRecipient)) {
        problems.push(
          `source "${plan.source.key}" passes card numbers to "${plan.cardRecipient}", which has no card processor adapter; pass one as processors["${plan.cardRecipient}"]`,
        );
      }
      for (const category of Object.values(CARD_TOKEN_CATEGORIES)) {
        if (!plan.source.categories.some((c) => coversCategory(c, category))) {
          problems.push(
            `source "${plan.source.key}" passes card numbers to a processor but does not declare "${category}", under which what the processor returns is kept; add it to the source's categories`,
          );
        }
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);
  }

  /** True when the card processor of every recipient is the built-in test processor. */
  get usesTestProcessor(): boolean {
    const all = Object.values(this.#processors);
    return all.length > 0 && all.every((p) => p instanceof TestCardProcessor);
  }

  /**
   * Collects one submission at a collection point: validates it against the manifest (every problem
   * reported at once, nothing stored), finds or (for registration and trial sign-up) creates the
   * subject, passes a card to its processor, and stores the rest as one record. Resolves after the
   * commit. Throws PledgeErrors only: 404 `collect.source_unknown` / `vault.subject_not_found`,
   * 422 with the first problem's code (e.g. `collect.field_undeclared`, `collect.card_number_refused`).
   */
  async collect(ctx: Context, sourceKey: string, body: CollectBody): Promise<CollectResult> {
    const plan = this.#planOrThrow(sourceKey);
    this.#systems.requireSource(ctx, plan.source.key);
    const { problems, value } = validateCollectBody(plan, body, { now: ctx.clock.now() });
    if (!value) throw collectProblemsError(plan.source.key, problems);

    // Checked here only when a card is about to go to the processor; otherwise the vault checks the
    // subject in the write's own transaction, one query for a whole group commit.
    const subject = await this.#resolveSubject(
      ctx,
      plan,
      value.subject,
      value.identifiers,
      value.card !== undefined,
      identifyingFields(plan, value.fields).length > 0 || value.card !== undefined,
    );
    if (subject) await this.#gateOrThrow(ctx, plan, subject.id);
    const fields: Record<string, FieldInput> = { ...value.fields };
    let card: CardTokenResult | undefined;
    if (value.card) {
      // The card is a disclosure to its processor: the share gate checks the flow (and the
      // processor's standing) before it leaves, and records the hand-over once it has.
      const grant = await this.#share?.authorizePassThrough(ctx, {
        recipient: value.card.recipient,
        purpose: this.#cardPurpose(plan, value.card.recipient),
        fields: cardFieldsOf(plan, value.card.details),
      });
      card = await this.#tokenize(ctx, plan, value.card);
      if (grant)
        await this.#share?.recordPassThrough(ctx, [grant.entryFor(subject?.id, { source: plan.source.key })]);
      fields.card_token = { category: CARD_TOKEN_CATEGORIES.token, value: card.token };
      fields.card_brand = { category: CARD_TOKEN_CATEGORIES.brand, value: card.brand };
      fields.card_last_four = { category: CARD_TOKEN_CATEGORIES.lastFour, value: card.lastFour };
      const expiryField = value.card.expiryField ?? 'card_expiry';
      fields[expiryField] = {
        category: plan.fields.get(expiryField)?.category ?? CARD_TOKEN_CATEGORIES.expiry,
        value: card.expiry,
      };
    }

    const { subjectId, created, recordId } = await this.#write(ctx, plan, subject, value, fields);
    return {
      subject: { id: subjectId, created },
      record: { id: recordId },
      ...(card
        ? { card: { token: card.token, brand: card.brand, lastFour: card.lastFour, expiry: card.expiry } }
        : {}),
    };
  }

  /**
   * Collects a batch of up to 1,000 product-use events for one subject, in one transaction.
   * Undeclared fields are dropped and reported, not stored; IP addresses are truncated unless a
   * purpose of the source needs them whole. Throws 413 `collect.batch_too_large` above the limit.
   */
  async collectEvents(
    ctx: Context,
    sourceKey: string,
    body: CollectEventsBody,
  ): Promise<CollectEventsResult> {
    const plan = this.#planOrThrow(sourceKey);
    this.#systems.requireSource(ctx, plan.source.key);
    if (plan.source.kind !== 'product_use') {
      throw new ValidationError(
        'collect.events_unsupported',
        `the collection point "${plan.source.key}" is a ${plan.source.kind.replace('_', ' ')}, not a product-use source; send its data to POST /api/v1/collect/${plan.source.key}`,
        { source: plan.source.key, kind: plan.source.kind },
        422,
      );
    }
    assertEventBatchSize(body, plan.source.key);
    const { problems, value } = validateEventsBody(plan, body, { now: ctx.clock.now() });
    if (!value) throw collectProblemsError(plan.source.key, problems);
    const subject = await this.#resolveSubject(ctx, plan, value.subject, value.identifiers, false, false);
    if (!subject) throw this.#subjectMissing(plan);
    await this.#gateOrThrow(ctx, plan, subject.id);
    const records = await this.#vault.write(
      ctx,
      value.events.map((fields) => ({ subjectId: subject.id, source: plan.source.key, fields })),
    );
    return { accepted: records.length, records, dropped: value.dropped };
  }

  /** A collection point's definition: what a form shows where the data is collected. Changes nothing. */
  describeSource(_ctx: Context, sourceKey: string): SourceDefinition {
    const plan = this.#planOrThrow(sourceKey);
    const s = plan.source;
    const policy = this.#manifest.policy;
    return {
      key: s.key,
      name: s.name,
      kind: s.kind,
      voluntary: s.voluntary,
      description: s.description,
      fields: Object.entries(s.fields ?? {}).map(([name, f]) => {
        const passedTo = plan.fields.get(name)?.passThrough?.recipient;
        const recipient = this.#manifest.recipients.find((r) => r.key === passedTo);
        return {
          name,
          category: f.category,
          categoryName: this.#taxonomy.get(f.category)?.name ?? f.category,
          required: f.required,
          description: f.description,
          passedTo: passedTo === undefined ? undefined : { key: passedTo, name: recipient?.name ?? passedTo },
        };
      }),
      purposes: s.purposes.flatMap((k) => {
        const p = this.#manifest.purposes.find((x) => x.key === k);
        return p ? [{ key: p.key, name: p.name, description: p.description }] : [];
      }),
      retention: { period: s.retention, text: `up to ${describeDuration(s.retention)}` },
      notice: s.notice,
      privacyPolicy: { url: PRIVACY_POLICY_PATH, version: policy.version, effective: policy.effective },
    };
  }

  /** The keys of every collection point. */
  listSources(_ctx: Context): string[] {
    return [...this.#plans.keys()];
  }

  // ---- internals -----------------------------------------------------------------------------

  #planOrThrow(sourceKey: string): SourcePlan {
    const plan = typeof sourceKey === 'string' ? this.#plans.get(sourceKey) : undefined;
    if (plan) return plan;
    // The key comes from a URL; it is shown masked and cut, since a client could put anything there.
    const shown = maskCardNumbers(String(sourceKey).slice(0, 100));
    throw new NotFoundError(
      'collect.source_unknown',
      `the manifest declares no collection point "${shown}"`,
      {
        source: shown,
        sources: [...this.#plans.keys()],
      },
    );
  }

  #subjectMissing(plan: SourcePlan): PledgeError {
    return new ValidationError(
      'collect.subject_missing',
      `name the subject this data is about: "subject": { "id": "<uuid>" } or { "email": "..." }`,
      { source: plan.source.key, path: 'subject' },
      422,
    );
  }

  /**
   * The collect gate, for a person already known: refuses (403, nothing stored) when every purpose
   * of the collection point is denied to them, and, once they have opted out of "the collection, use
   * and distribution" of their information, any voluntary collection. Data needed for the service
   * they asked for (a required purpose) still comes in.
   */
  async #gateOrThrow(ctx: Context, plan: SourcePlan, subjectId: string): Promise<void> {
    const consent = this.#consent;
    if (consent === undefined) return;
    let decisions: Array<{ purpose: string; decision: Decision }>;
    let optedOut: boolean;
    try {
      decisions = await Promise.all(
        plan.source.purposes.map(async (purpose) => ({
          purpose,
          decision: await consent.decide(ctx, subjectId, purpose),
        })),
      );
      optedOut = await consent.globalOptOut(ctx, { subjectId });
    } catch (err) {
      if (err instanceof PledgeError && err.code === 'consent.subject_not_found') {
        throw new NotFoundError(
          'vault.subject_not_found',
          'there is no subject with this id (or it was erased)',
          {
            subjectId,
          },
        );
      }
      throw err;
    }
    const required = decisions.some((d) => d.decision.reason === 'required');
    if (optedOut && (plan.source.voluntary || !required)) {
      throw new ForbiddenError(
        'collect.opted_out',
        `this person opted out of the collection, use and distribution of their information; "${plan.source.key}" collects nothing needed for the service they asked for, so it takes nothing from them`,
        { source: plan.source.key },
      );
    }
    if (!decisions.some((d) => d.decision.allowed)) {
      throw new ForbiddenError(
        'collect.not_allowed',
        `no purpose of "${plan.source.key}" may use this person's data: ${decisions.map((d) => `${d.purpose} (${d.decision.reason})`).join(', ')}`,
        {
          source: plan.source.key,
          decisions: decisions.map((d) => ({ purpose: d.purpose, reason: d.decision.reason })),
        },
      );
    }
  }

  /**
   * The subject a request names: by id, else by any identifier. `undefined` only for sources that
   * create subjects, when nobody matches. A subject named by id is looked up only when `verify`:
   * otherwise the write that follows fails with the same 404 (`vault.subject_not_found`) when it
   * does not exist or was erased. One found by an identifier takes no identifying data
   * (`identifying`) and no new identifier (collect.identity.ts).
   */
  async #resolveSubject(
    ctx: Context,
    plan: SourcePlan,
    ref: SubjectReference | undefined,
    identifiers: Identifiers,
    verify: boolean,
    identifying: boolean,
  ): Promise<Pick<Subject, 'id'> | undefined> {
    if (ref?.id !== undefined) return verify ? this.#vault.getSubjectOrThrow(ctx, ref.id) : { id: ref.id };
    if (Object.keys(identifiers).length > 0) {
      const found = await this.#vault.matchSubject(ctx, identifiers);
      if (found) await this.#attachableOrThrow(ctx, plan, found, identifiers, identifying);
      if (found || plan.createsSubject) return found;
      throw new NotFoundError(
        'vault.subject_not_found',
        `no subject has the identifiers given; "${plan.source.key}" does not create subjects, so register the person first`,
        { source: plan.source.key, path: 'subject' },
      );
    }
    if (plan.createsSubject) return undefined;
    throw this.#subjectMissing(plan);
  }

  /** Refuses (409, see collect.identity.ts) what a request may not add to a subject it found by identifier. */
  async #attachableOrThrow(
    ctx: Context,
    plan: SourcePlan,
    found: Pick<Subject, 'id'>,
    identifiers: Identifiers,
    identifying: boolean,
  ): Promise<void> {
    const kinds = Object.keys(identifiers);
    if (plan.createsSubject !== undefined)
      throw identifierTaken(
        plan.source.key,
        kinds,
        `a ${plan.source.kind.replace('_', ' ')} never joins an existing person by an identifier`,
      );
    if (identifying)
      throw identifierTaken(plan.source.key, kinds, 'this request would add identifying data to them');
    for (const [kind, value] of Object.entries(identifiers)) {
      const owner =
        value === undefined
          ? undefined
          : await this.#vault.findSubjectByIdentifier(ctx, kind as IdentifierKind, value);
      if (owner?.id !== found.id)
        throw identifierTaken(
          plan.source.key,
          kinds,
          `the ${kind.replace('_', ' ')} is not theirs yet (a new identifier joins only by subject id)`,
        );
    }
  }

  /** The purpose a card goes to its processor for: the first of the source's the recipient is declared for. */
  #cardPurpose(plan: SourcePlan, recipientKey: string): string {
    const recipient = this.#manifest.recipients.find((r) => r.key === recipientKey);
    const declared = (p: string) =>
      recipient?.declarations !== undefined
        ? recipient.declarations.some((d) => d.purpose === p)
        : (recipient?.purposes.includes(p) ?? false);
    return plan.source.purposes.find(declared) ?? plan.source.purposes[0] ?? '';
  }

  async #tokenize(
    ctx: Context,
    plan: SourcePlan,
    card: NonNullable<ValidatedCollect['card']>,
  ): Promise<CardTokenResult> {
    const processor = this.#processors[card.recipient];
    const unavailable = () =>
      new PledgeError(
        'collect.processor_unavailable',
        `the card processor "${card.recipient}" could not take the card; nothing was stored, try again later`,
        { status: 502, expose: true, details: { source: plan.source.key, recipient: card.recipient } },
      );
    if (!processor) throw unavailable();
    let result: CardTokenResult;
    try {
      result = await processor.tokenize(ctx, card.details);
    } catch (err) {
      // A processor's refusal is the client's to see; anything else may quote the card, so it is
      // neither shown nor chained as a cause (the error handler would log the cause's message).
      if (err instanceof PledgeError && err.status < 500) throw err;
      throw unavailable();
    }
    const texts = [result.token, result.brand, result.expiry];
    const wellFormed =
      texts.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 200) &&
      typeof result.lastFour === 'string' &&
      /^\d{4}$/.test(result.lastFour) &&
      // Defence in depth: an adapter that echoed the number back would otherwise have it stored.
      texts.every((t) => findCardNumbers(t).length === 0);
    if (!wellFormed) throw unavailable();
    return result;
  }

  async #write(
    ctx: Context,
    plan: SourcePlan,
    subject: Pick<Subject, 'id'> | undefined,
    value: ValidatedCollect,
    fields: Record<string, FieldInput>,
  ): Promise<{ subjectId: string; created: boolean; recordId: string }> {
    const recordFor = (subjectId: string) => [{ subjectId, source: plan.source.key, fields }];
    const first = (ids: string[]) => {
      const id = ids[0];
      if (id === undefined) throw new PledgeError('collect.internal', 'the vault stored no record');
      return id;
    };
    const taken = (err: unknown): never => {
      if (err instanceof ConflictError && err.code === 'vault.identifier_taken')
        throw identifierTaken(
          plan.source.key,
          Object.keys(value.identifiers),
          'it is held by another person',
        );
      throw err;
    };
    if (subject) {
      // Named by id, the person may bring new identifiers (a phone, an account id): they join them.
      const attach = value.subject?.id !== undefined && Object.keys(value.identifiers).length > 0;
      try {
        const ids = await this.#vault.write(
          ctx,
          recordFor(subject.id),
          attach ? { attachTo: subject.id, identifiers: value.identifiers } : undefined,
        );
        return { subjectId: subject.id, created: false, recordId: first(ids) };
      } catch (err) {
        return taken(err);
      }
    }
    const kind = plan.createsSubject;
    if (kind === undefined) throw this.#subjectMissing(plan);
    const id = randomUUID();
    const previouslyErased =
      this.#erased !== undefined && (await this.#erased.recognize(ctx, value.identifiers)).length > 0;
    try {
      const ids = await this.#vault.write(ctx, recordFor(id), {
        id,
        kind,
        jurisdiction: value.jurisdiction,
        identifiers: value.identifiers,
        ...(previouslyErased ? { previouslyErased } : {}),
      });
      return { subjectId: id, created: true, recordId: first(ids) };
    } catch (err) {
      // A concurrent request with the same identifier committed first: as if it had been on file.
      return taken(err);
    }
  }
}

/** The fields of a card that go to the processor, as the share gate checks them: name and category. */
function cardFieldsOf(plan: SourcePlan, details: CardDetails): Array<{ name: string; category: string }> {
  const out: Array<{ name: string; category: string }> = [];
  for (const f of plan.fields.values()) {
    const part =
      f.passThrough?.card === 'number'
        ? details.number
        : f.passThrough?.card === 'security_code'
          ? details.securityCode
          : f.feedsCard === 'expiry'
            ? details.expiry
            : f.feedsCard === 'holder_name'
              ? details.holderName
              : undefined;
    if (part !== undefined) out.push({ name: f.name, category: f.category });
  }
  return out;
}
