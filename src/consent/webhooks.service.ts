/**
 * Propagation of choices to the systems the manifest lists (`webhooks:`), as signed webhooks, so a
 * downstream tool stops within a minute of a person saying stop.
 *
 * Durable outbox: {@link WebhookService.enqueue} inserts one delivery per event and webhook in the
 * transaction of the change itself, so a change is never lost and never announced if it rolled
 * back. A dispatcher inside `serve` then claims due deliveries (on PostgreSQL with FOR UPDATE SKIP
 * LOCKED and a lease, so instances never send one delivery at the same time), POSTs them signed
 * (webhooks.signature.ts), and retries failures with exponential backoff until they are delivered or
 * have failed too many times. The table is also the delivery log (`pledge webhooks deliveries`).
 *
 * Delivery is at least once: a receiver that answers after Pledge gave up waiting, or an instance
 * that dies between the receiver's answer and the commit, means the event comes again with the same
 * Pledge-Event-Id, on which receivers de-duplicate.
 */
import type { Kysely } from 'kysely';
import type { Manifest, Webhook, WebhookEvent } from '../manifest/manifest.schema.js';
import { systemClock, type Clock } from '../platform/clock.js';
import type { Context } from '../platform/context.js';
import type { Tables } from '../platform/db/tables.js';
import { NotFoundError, ValidationError } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import { GLOBAL_PURPOSE } from './consent.decide.js';
import type { ConsentChange } from './consent.service.js';
import {
  WebhookDeliveriesRepository,
  type AttemptOutcome,
  type ClaimedDelivery,
  type Delivery,
  type DeliveryStatus,
  type NewDelivery,
} from './webhooks.repository.js';
import { deriveWebhookSecret, signWebhookPayload } from './webhooks.signature.js';

/** Where the dispatcher reports; Fastify's (pino) logger fits. */
export interface WebhookLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** When failed attempts are retried. */
export interface WebhookRetryOptions {
  /** The delay after the first failed attempt; it doubles after each further one (default 10 s). */
  baseDelayMs: number;
  /** The longest delay between two attempts (default 1 hour). */
  maxDelayMs: number;
  /** Attempts before a delivery is marked failed (default 15, about 7.5 hours in all). */
  maxAttempts: number;
  /** Up to this fraction is added to each delay at random, so receivers are not hit in waves (0.2). */
  jitter: number;
}

/** The default retry schedule. */
export const DEFAULT_RETRY: Readonly<WebhookRetryOptions> = Object.freeze({
  baseDelayMs: 10_000,
  maxDelayMs: 3_600_000,
  maxAttempts: 15,
  jitter: 0.2,
});

/** What the webhook service uses. */
export interface WebhookServiceDeps {
  db: Kysely<Tables>;
  manifest: Manifest;
  /** The secret webhook signing keys are derived from (the keyring's index key). */
  signingSecret: Buffer;
  log: WebhookLogger;
  /** Time for scheduling and signing (default: the wall clock); tests pass a fixed clock. */
  clock?: Clock;
  retry?: Partial<WebhookRetryOptions>;
  /** How long a receiver has to answer (default 10 s). */
  timeoutMs?: number;
  /**
   * How often the dispatcher looks for due deliveries (default 1 s): this picks up retries and rows
   * other instances queued; changes queued by this instance are sent at once.
   */
  pollIntervalMs?: number;
  /** Deliveries claimed and attempted at a time (default 20). */
  batchSize?: number;
  /** Random numbers in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
}

/** What one {@link WebhookService.runOnce} did. */
export interface DispatchResult {
  claimed: number;
  delivered: number;
  /** Failed attempts that will be retried. */
  retried: number;
  /** Deliveries given up on (too many attempts, or their webhook left the manifest). */
  failed: number;
}

/** Filters of {@link WebhookService.listDeliveries}. */
export interface ListDeliveriesOptions {
  status?: DeliveryStatus | undefined;
  webhook?: string | undefined;
  /** The id of the last delivery of the previous page. */
  before?: string | undefined;
  /** At most this many, newest first (1 to 500, default 50). */
  limit?: number | undefined;
}

/** The body of a delivery (`Content-Type: application/json`). */
export interface WebhookPayload {
  /** The event's id, also in Pledge-Event-Id: the same for every attempt and every webhook. */
  id: string;
  type: WebhookEvent;
  /** When the event happened (ISO 8601). */
  at: string;
  data: ConsentChangedData | SubjectErasedData;
}

/** `data` of a consent.changed event. */
export interface ConsentChangedData {
  subjectId: string;
  /** A purpose key, or "*" for the person's opt-out of everything optional. */
  purpose: string;
  channel: string | null;
  state: string;
  previous: string;
  method: string;
}

/** `data` of a subject.erased event. */
export interface SubjectErasedData {
  subjectId: string;
}

/** The largest page of the delivery log. */
export { MAX_DELIVERIES_PAGE } from './webhooks.constants.js';
import { MAX_DELIVERIES_PAGE } from './webhooks.constants.js';

/**
 * After this instance queues a change, looks at these delays (ms) before the regular poll: the rows
 * become visible only when the caller's transaction commits, which on a busy PostgreSQL may take a
 * moment longer than the first look.
 */
const WAKE_DELAYS_MS = [20, 50, 100, 200, 400];
const MAX_STATUS_LENGTH = 200;

/** Queues consent changes for delivery and delivers them. */
export class WebhookService {
  readonly #db: Kysely<Tables>;
  readonly #webhooks: ReadonlyMap<string, Webhook>;
  readonly #secrets = new Map<string, string>();
  readonly #signingSecret: Buffer;
  readonly #log: WebhookLogger;
  readonly #clock: Clock;
  readonly #retry: WebhookRetryOptions;
  readonly #timeoutMs: number;
  readonly #pollIntervalMs: number;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #random: () => number;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #again = false;
  #burst: number[] = [];

  constructor(deps: WebhookServiceDeps) {
    this.#db = deps.db;
    this.#webhooks = new Map(deps.manifest.webhooks.map((w) => [w.key, w]));
    this.#signingSecret = deps.signingSecret;
    this.#log = deps.log;
    this.#clock = deps.clock ?? systemClock;
    this.#retry = { ...DEFAULT_RETRY, ...deps.retry };
    this.#timeoutMs = deps.timeoutMs ?? 10_000;
    this.#pollIntervalMs = deps.pollIntervalMs ?? 1000;
    this.#batchSize = deps.batchSize ?? 20;
    // Longer than any attempt can take, so a claim is never taken over while its request is in flight.
    this.#leaseMs = Math.max(60_000, this.#timeoutMs * 3);
    this.#random = deps.random ?? Math.random;
  }

  /** The secret a webhook's receiver verifies signatures with (`pledge webhooks secret KEY`). */
  secretOf(key: string): string {
    if (!this.#webhooks.has(key)) throw webhookNotFound(key, [...this.#webhooks.keys()]);
    let secret = this.#secrets.get(key);
    if (secret === undefined) {
      secret = deriveWebhookSecret(this.#signingSecret, key);
      this.#secrets.set(key, secret);
    }
    return secret;
  }

  // ---- queueing (inside the caller's transaction) ----------------------------------------------

  /**
   * Queues deliveries for changes, inside the change's transaction (`db` is that transaction): one
   * per change and webhook that receives `consent.changed` for the change's purpose (a global
   * opt-out, "*", goes to all of them). Browser choices are not sent: a downstream system knows
   * people, not browsers, and a browser's choices reach it as the subject's when the person signs up.
   */
  async enqueue(db: Kysely<Tables>, _ctx: Context, changes: readonly ConsentChange[]): Promise<void> {
    const hooks = this.#subscribers('consent.changed');
    if (hooks.length === 0) return;
    const now = this.#clock.now();
    const deliveries: NewDelivery[] = [];
    for (const change of changes) {
      if (!('subjectId' in change.holder)) continue;
      const targets = hooks.filter((w) => receivesPurpose(w, change.purpose));
      if (targets.length === 0) continue;
      const data: ConsentChangedData = {
        subjectId: change.holder.subjectId,
        purpose: change.purpose,
        channel: change.channel ?? null,
        state: change.state,
        previous: change.previous,
        method: change.method,
      };
      const payload = serialize({ id: change.eventId, type: 'consent.changed', at: change.at, data });
      for (const w of targets)
        deliveries.push(newDelivery(w, change.eventId, 'consent.changed', payload, now));
    }
    await this.#insert(db, deliveries);
  }

  /**
   * Queues a `subject.erased` event for the webhooks that receive it, inside the erasure's
   * transaction (`db` is that transaction). The payload names the subject by id only.
   */
  async enqueueErasure(db: Kysely<Tables>, ctx: Context, subjectId: string): Promise<void> {
    const hooks = this.#subscribers('subject.erased');
    if (hooks.length === 0) return;
    const now = this.#clock.now();
    const eventId = uuidv7();
    const data: SubjectErasedData = { subjectId };
    const payload = serialize({ id: eventId, type: 'subject.erased', at: ctx.clock.now(), data });
    await this.#insert(
      db,
      hooks.map((w) => newDelivery(w, eventId, 'subject.erased', payload, now)),
    );
  }

  // ---- the dispatcher ---------------------------------------------------------------------------

  /**
   * Starts delivering: at once, then every poll interval, and shortly after this instance queues a
   * change. Does nothing when already started.
   */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#arm(0);
  }

  /** Stops delivering; resolves once the attempts in flight have finished and been recorded. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#inFlight) await this.#inFlight;
  }

  /**
   * Claims the deliveries that are due and attempts each once (in parallel), recording every
   * outcome. The dispatcher calls it in a loop; tests call it directly with an injected clock.
   * A database error propagates; an unreachable receiver is an outcome, not an error.
   */
  async runOnce(): Promise<DispatchResult> {
    const now = this.#clock.now();
    const leaseUntil = new Date(now.getTime() + this.#leaseMs);
    const claimed = await this.#db
      .transaction()
      .execute((trx) => new WebhookDeliveriesRepository(trx).claimDue(now, leaseUntil, this.#batchSize));
    const result: DispatchResult = { claimed: claimed.length, delivered: 0, retried: 0, failed: 0 };
    const outcomes = await Promise.all(claimed.map((d) => this.#attempt(d)));
    for (const o of outcomes) {
      if (o === 'delivered') result.delivered++;
      else if (o === 'pending') result.retried++;
      else if (o === 'failed') result.failed++;
    }
    return result;
  }

  // ---- the log ----------------------------------------------------------------------------------

  /** The delivery log, newest first. Throws `webhooks.limit_invalid` for a limit out of range. */
  async listDeliveries(_ctx: Context, options: ListDeliveriesOptions = {}): Promise<Delivery[]> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DELIVERIES_PAGE) {
      throw new ValidationError(
        'webhooks.limit_invalid',
        `limit must be a whole number from 1 to ${MAX_DELIVERIES_PAGE}, got ${limit}`,
        { limit },
      );
    }
    return new WebhookDeliveriesRepository(this.#db).list({ ...options, limit });
  }

  /** One delivery; throws `webhooks.delivery_not_found`. */
  async getDeliveryOrThrow(_ctx: Context, id: string): Promise<Delivery> {
    const found = await new WebhookDeliveriesRepository(this.#db).get(id);
    if (found === undefined) {
      throw new NotFoundError('webhooks.delivery_not_found', `there is no webhook delivery "${id}"`, { id });
    }
    return found;
  }

  /**
   * Puts failed deliveries back in the queue with a fresh set of attempts (after the receiver is
   * fixed); returns how many were failed and are now pending.
   */
  async redeliver(_ctx: Context, ids: readonly string[]): Promise<number> {
    const n = await new WebhookDeliveriesRepository(this.#db).requeueFailed(ids, this.#clock.now());
    if (n > 0) this.#wake();
    return n;
  }

  // ---- internals --------------------------------------------------------------------------------

  #subscribers(event: WebhookEvent): Webhook[] {
    return [...this.#webhooks.values()].filter((w) => w.events.includes(event));
  }

  async #insert(db: Kysely<Tables>, deliveries: readonly NewDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await new WebhookDeliveriesRepository(db).insertMany(deliveries);
    // The rows become visible when the caller's transaction commits, a moment from now; if the wake
    // comes too early, the next poll finds them.
    this.#wake();
  }

  async #attempt(claim: ClaimedDelivery): Promise<DeliveryStatus | 'lost'> {
    const repo = new WebhookDeliveriesRepository(this.#db);
    const webhook = this.#webhooks.get(claim.webhook);
    if (webhook === undefined) {
      await repo.abandon(claim, this.#clock.now(), 'the webhook is no longer in the manifest');
      this.#log.error(
        { delivery: claim.id, webhook: claim.webhook },
        'webhook delivery abandoned: its webhook is no longer in the manifest',
      );
      return 'failed';
    }
    const { ok, lastStatus } = await this.#post(webhook, claim);
    const at = this.#clock.now();
    const attempts = claim.attempts + 1;
    let outcome: AttemptOutcome;
    if (ok) outcome = { status: 'delivered', at, lastStatus };
    else if (attempts >= this.#retry.maxAttempts) outcome = { status: 'failed', at, lastStatus };
    else
      outcome = {
        status: 'pending',
        at,
        lastStatus,
        nextAttemptAt: new Date(at.getTime() + this.retryDelayMs(attempts)),
      };
    const recorded = await repo.recordAttempt(claim, outcome);
    const fields = { delivery: claim.id, webhook: claim.webhook, attempt: attempts, status: lastStatus };
    if (!recorded) {
      this.#log.warn(fields, 'webhook delivery was taken over by another dispatcher (its lease ran out)');
      return 'lost';
    }
    if (outcome.status === 'failed')
      this.#log.error(fields, `webhook delivery failed after ${attempts} attempts; it will not be retried`);
    else if (outcome.status === 'pending')
      this.#log.warn(
        { ...fields, nextAttemptAt: outcome.nextAttemptAt.toISOString() },
        'webhook delivery attempt failed; it will be retried',
      );
    return outcome.status;
  }

  /**
   * The delay before the attempt after `attempts` failed ones: base × 2^(attempts−1), plus up to
   * `jitter` of it at random, at most the maximum delay.
   */
  retryDelayMs(attempts: number): number {
    const { baseDelayMs, maxDelayMs, jitter } = this.#retry;
    const exponential = baseDelayMs * 2 ** Math.min(attempts - 1, 40);
    return Math.min(maxDelayMs, Math.round(exponential * (1 + jitter * this.#random())));
  }

  async #post(webhook: Webhook, claim: ClaimedDelivery): Promise<{ ok: boolean; lastStatus: string }> {
    const signature = signWebhookPayload({
      secret: this.secretOf(webhook.key),
      body: claim.payload,
      at: this.#clock.now(),
    });
    try {
      const response = await fetch(webhook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Pledge-Webhooks/1',
          'pledge-signature': signature,
          'pledge-event-id': claim.eventId,
          'pledge-delivery-id': claim.id,
        },
        body: claim.payload,
        // A redirect is not followed: the manifest names where choices may go, and only there.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      // The body is never read (nor stored): a receiver's answer might hold anything.
      await response.body?.cancel().catch(() => undefined);
      const ok = response.status >= 200 && response.status < 300;
      const redirect = response.status >= 300 && response.status < 400 ? ' (redirects are not followed)' : '';
      return { ok, lastStatus: `HTTP ${response.status}${redirect}` };
    } catch (err) {
      return { ok: false, lastStatus: this.#describeError(err) };
    }
  }

  #describeError(err: unknown): string {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
      return `no answer within ${this.#timeoutMs / 1000} s`;
    const cause =
      err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
    const code = typeof cause?.code === 'string' ? cause.code : undefined;
    const message = err instanceof Error ? err.message : String(err);
    const text = code !== undefined ? `${message} (${code})` : message;
    return text.slice(0, MAX_STATUS_LENGTH);
  }

  #wake(): void {
    if (!this.#running) return;
    this.#burst = WAKE_DELAYS_MS.slice(1);
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#arm(WAKE_DELAYS_MS[0] ?? 0);
  }

  #arm(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#inFlight = this.#drain().finally(() => {
        this.#inFlight = undefined;
        if (!this.#running) return;
        const again = this.#again;
        this.#again = false;
        this.#arm(again ? (WAKE_DELAYS_MS[0] ?? 0) : (this.#burst.shift() ?? this.#pollIntervalMs));
      });
    }, delayMs);
    // The timer never keeps a process alive on its own; stop() is what ends the dispatcher.
    this.#timer.unref();
  }

  /** Runs batches until one comes back short (nothing more is due) or the service stops. */
  async #drain(): Promise<void> {
    try {
      let result: DispatchResult;
      do result = await this.runOnce();
      while (this.#running && result.claimed === this.#batchSize);
    } catch (err) {
      // A database that is restarting must not take the server down; the next poll tries again.
      this.#log.error({ err }, 'webhook dispatch failed; retrying at the next poll');
    }
  }
}

function receivesPurpose(webhook: Webhook, purpose: string): boolean {
  return purpose === GLOBAL_PURPOSE || webhook.purposes === 'all' || webhook.purposes.includes(purpose);
}

function serialize(p: { id: string; type: WebhookEvent; at: Date; data: WebhookPayload['data'] }): string {
  const payload: WebhookPayload = { id: p.id, type: p.type, at: p.at.toISOString(), data: p.data };
  return JSON.stringify(payload);
}

function newDelivery(
  webhook: Webhook,
  eventId: string,
  eventType: WebhookEvent,
  payload: string,
  now: Date,
): NewDelivery {
  return { id: uuidv7(), webhook: webhook.key, eventId, eventType, payload, createdAt: now, dueAt: now };
}

function webhookNotFound(key: string, known: readonly string[]): NotFoundError {
  return new NotFoundError(
    'webhooks.webhook_not_found',
    `the manifest declares no webhook "${key}"; ${known.length > 0 ? `its webhooks are ${known.map((k) => `"${k}"`).join(', ')}` : 'it declares none (add one under webhooks:)'}`,
    { key },
  );
}
