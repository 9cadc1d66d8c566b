/**
 * Propagation of choices to the systems the manifest lists (`webhooks:`), as signed webhooks, so a
 * downstream tool stops within a minute of a person saying stop.
 *
 * Durable outbox: {@link WebhookService.enqueue} logs one delivery per event and webhook, and
 * enqueues one `webhooks.deliver` job for it, in the transaction of the change itself, so a change is
 * never lost and never announced if it rolled back. The platform's job queue then runs each delivery
 * (claimed with a lease, so instances never send one delivery at the same time), which POSTs it
 * signed (webhooks.signature.ts); failures are retried by the queue with exponential backoff and
 * jitter until delivered or out of attempts. Each attempt's outcome is written to the delivery log
 * (`pledge webhooks deliveries`) in the transaction that settles its job.
 *
 * Delivery is at least once: a receiver that answers after Pledge gave up waiting, or an instance
 * that dies between the receiver's answer and the commit, means the event comes again with the same
 * Pledge-Event-Id, on which receivers de-duplicate.
 */
import type { Manifest, Webhook, WebhookEvent } from '../manifest/manifest.schema.js';
import { systemClock, type Clock } from '../platform/clock.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { NotFoundError, pageLimitOrThrow } from '../platform/errors.js';
import { uuidv7 } from '../platform/ids.js';
import {
  jobDead,
  jobDone,
  jobRetry,
  retryDelayMs,
  type JobHandlerResult,
} from '../platform/jobs/jobs.definition.js';
import type { JobQueue, JobType } from '../platform/jobs/jobs.service.js';
import { GLOBAL_PURPOSE } from './consent.decide.js';
import type { ConsentChange } from './consent.service.js';
import type {
  Delivery,
  DeliveryStatus,
  NewDelivery,
  WebhookDeliveriesRepository,
} from './webhooks.repository.js';
import { deriveWebhookSecret, signWebhookPayload } from './webhooks.signature.js';
import { UseKeys } from '../vault/use-keys.js';

/** The job type that delivers one logged delivery. */
export const DELIVER_JOB = 'webhooks.deliver';

/** A delivery job's payload: the delivery's id (its log row holds the rest). */
interface DeliverPayload {
  deliveryId: string;
}

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
  /** Transactions of the main database. */
  db: Transactions;
  repo: WebhookDeliveriesRepository;
  /** The platform's job queue: deliveries are its jobs. */
  jobs: JobQueue;
  manifest: Manifest;
  /**
   * What webhook secrets are derived from: the keyring's `webhooks` key of every version
   * (`keyring.use('webhooks')`), deliveries signed with the newest; or one secret, then version 1.
   */
  signingSecret: Buffer | UseKeys;
  log: WebhookLogger;
  /** Time for scheduling and signing (default: the wall clock); tests pass a fixed clock. */
  clock?: Clock;
  retry?: Partial<WebhookRetryOptions>;
  /** How long a receiver has to answer (default 10 s). */
  timeoutMs?: number;
  /** Deliveries attempted at once by this process (default 20). */
  concurrency?: number;
  /** Random numbers in [0, 1) for {@link WebhookService.retryDelayMs} (the queue has its own). */
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
  data: ConsentChangedData | SubjectErasedData | RequestStalledData | RequestTaskData | RequestDueData;
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

/** `data` of a request.stalled event: a data-subject request with no progress, for staff. */
export interface RequestStalledData {
  requestId: string;
  /** Where the request stands (running, waiting ...). */
  status: string;
  /** When it last moved (ISO 8601). */
  since: string;
}

/** `data` of a request.due event: a data-subject request due soon or overdue on one deadline, for staff. */
export interface RequestDueData {
  requestId: string;
  /** `due_soon` or `overdue`. */
  status: string;
  /** `confirm`, `answer` or `extended_answer`. */
  deadline: string;
  /** When that deadline falls (ISO 8601). */
  due: string;
}

/**
 * `data` of a request.task event: a step of a data-subject request for the receiving system to do
 * (collect, erase, apply in its own store), completed by its callback
 * (`POST /api/v1/requests/:requestId/complete` with `{ "step": stepId }`). Ids only: the system
 * finds the person by the subject id.
 */
export interface RequestTaskData {
  requestId: string;
  stepId: string;
  /** collect, erase, apply ... */
  step: string;
  /** access, export, erasure ... */
  type: string;
  /** The subject, when the request matched one. */
  subjectId: string | null;
  /** When the task is due (ISO 8601). */
  dueAt: string;
}

/** The largest page of the delivery log. */
export { MAX_DELIVERIES_PAGE } from './webhooks.constants.js';
import { MAX_DELIVERIES_PAGE } from './webhooks.constants.js';

const MAX_STATUS_LENGTH = 200;

/** Queues consent changes for delivery and delivers them. */
export class WebhookService {
  readonly #db: Transactions;
  readonly #repo: WebhookDeliveriesRepository;
  readonly #jobs: JobQueue;
  readonly #deliver: JobType<DeliverPayload>;
  readonly #webhooks: ReadonlyMap<string, Webhook>;
  readonly #secrets = new Map<string, string>();
  readonly #signingKeys: UseKeys;
  readonly #log: WebhookLogger;
  readonly #clock: Clock;
  readonly #retry: WebhookRetryOptions;
  readonly #timeoutMs: number;
  readonly #random: () => number;

  constructor(deps: WebhookServiceDeps) {
    this.#db = deps.db;
    this.#repo = deps.repo;
    this.#jobs = deps.jobs;
    this.#webhooks = new Map(deps.manifest.webhooks.map((w) => [w.key, w]));
    this.#signingKeys =
      deps.signingSecret instanceof UseKeys
        ? deps.signingSecret
        : new UseKeys('webhooks', [{ version: 1, secret: deps.signingSecret, createdAt: undefined }]);
    this.#log = deps.log;
    this.#clock = deps.clock ?? systemClock;
    this.#retry = { ...DEFAULT_RETRY, ...deps.retry };
    this.#timeoutMs = deps.timeoutMs ?? 10_000;
    this.#random = deps.random ?? Math.random;
    this.#deliver = deps.jobs.define<DeliverPayload>({
      type: DELIVER_JOB,
      retry: this.#retry,
      // Longer than any attempt can take, so a delivery is never taken over while its request is
      // in flight; the receiver's own timeout ends an attempt long before the queue's.
      leaseMs: Math.max(60_000, this.#timeoutMs * 3),
      timeoutMs: this.#timeoutMs * 2,
      concurrency: deps.concurrency ?? 20,
      handle: (ctx, job, signal) => this.#attempt(ctx, job.payload.deliveryId, job.attempt, signal),
    });
  }

  /** The webhooks key version deliveries are signed with now (the newest). */
  get keyVersion(): number {
    return this.#signingKeys.current().version;
  }

  /**
   * The secret a webhook's receiver verifies signatures with (`pledge webhooks secret KEY`): of the
   * newest key version, or of `version`. Throws `webhooks.key_version_unknown` for a version the
   * keyring does not hold.
   */
  secretOf(key: string, version = this.keyVersion): string {
    if (!this.#webhooks.has(key)) throw webhookNotFound(key, [...this.#webhooks.keys()]);
    const cacheKey = `${version}:${key}`;
    let secret = this.#secrets.get(cacheKey);
    if (secret === undefined) {
      const material = this.#signingKeys.secret(version);
      if (material === undefined) {
        throw new NotFoundError(
          'webhooks.key_version_unknown',
          `the keyring holds no webhooks key version ${version}; it holds ${this.#signingKeys
            .versions()
            .map((v) => v.version)
            .join(', ')}`,
        );
      }
      secret = deriveWebhookSecret(material, key);
      this.#secrets.set(cacheKey, secret);
    }
    return secret;
  }

  // ---- queueing (inside the caller's transaction) ----------------------------------------------

  /**
   * Queues deliveries for changes, inside the change's transaction (`ctx` is bound to it): one per
   * change and webhook that receives `consent.changed` for the change's purpose (a global opt-out,
   * "*", goes to all of them). Browser choices are not sent: a downstream system knows people, not
   * browsers, and a browser's choices reach it as the subject's when the person signs up.
   */
  async enqueue(ctx: Context, changes: readonly ConsentChange[]): Promise<void> {
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
    await this.#insert(ctx, deliveries, now);
  }

  /**
   * Queues a `subject.erased` event for the webhooks that receive it, inside the erasure's
   * transaction (`ctx` is bound to it). The payload names the subject by id only.
   */
  async enqueueErasure(ctx: Context, subjectId: string): Promise<void> {
    const hooks = this.#subscribers('subject.erased');
    if (hooks.length === 0) return;
    const now = this.#clock.now();
    const eventId = uuidv7();
    const data: SubjectErasedData = { subjectId };
    const payload = serialize({ id: eventId, type: 'subject.erased', at: ctx.clock.now(), data });
    await this.#insert(
      ctx,
      hooks.map((w) => newDelivery(w, eventId, 'subject.erased', payload, now)),
      now,
    );
  }

  /**
   * Queues a `request.stalled` event for the webhooks that receive it, inside the transaction that
   * flags the request (`ctx` is bound to it). The payload names the request by id only.
   */
  async enqueueRequestStalled(ctx: Context, data: RequestStalledData): Promise<void> {
    const hooks = this.#subscribers('request.stalled');
    if (hooks.length === 0) return;
    const now = this.#clock.now();
    const eventId = uuidv7();
    const payload = serialize({ id: eventId, type: 'request.stalled', at: ctx.clock.now(), data });
    await this.#insert(
      ctx,
      hooks.map((w) => newDelivery(w, eventId, 'request.stalled', payload, now)),
      now,
    );
  }

  /**
   * Queues a `request.due` event for the webhooks that receive it, inside the transaction that
   * records the notice (`ctx` is bound to it): once per request, deadline and state. Ids and dates only.
   */
  async enqueueRequestDue(ctx: Context, data: RequestDueData): Promise<void> {
    const hooks = this.#subscribers('request.due');
    if (hooks.length === 0) return;
    const now = this.#clock.now();
    const eventId = uuidv7();
    const payload = serialize({ id: eventId, type: 'request.due', at: ctx.clock.now(), data });
    await this.#insert(
      ctx,
      hooks.map((w) => newDelivery(w, eventId, 'request.due', payload, now)),
      now,
    );
  }

  /**
   * Queues a `request.task` event to the webhooks of `system` that receive it; returns how many
   * were queued (0: the system has none, and the task cannot reach it).
   */
  async enqueueRequestTask(ctx: Context, system: string, data: RequestTaskData): Promise<number> {
    const hooks = this.#subscribers('request.task').filter((w) => w.system === system);
    if (hooks.length === 0) return 0;
    const now = this.#clock.now();
    // One event per step run: a re-run after a lost lease sends the same event id again.
    const eventId = data.stepId;
    const payload = serialize({ id: eventId, type: 'request.task', at: ctx.clock.now(), data });
    await this.#insert(
      ctx,
      hooks.map((w) => newDelivery(w, eventId, 'request.task', payload, now)),
      now,
    );
    return hooks.length;
  }

  // ---- delivering ---------------------------------------------------------------------------------

  /**
   * Runs the deliveries that are due, once each (in parallel), recording every outcome: what the
   * job queue's worker does inside `serve`. Tests call it with an injected clock. A database error
   * propagates; an unreachable receiver is an outcome, not an error.
   */
  async runOnce(): Promise<DispatchResult> {
    const r = await this.#jobs.runDue({ types: [DELIVER_JOB] });
    return { claimed: r.claimed, delivered: r.done, retried: r.retried, failed: r.dead };
  }

  // ---- the log ----------------------------------------------------------------------------------

  /** The delivery log, newest first. Throws `webhooks.limit_invalid` for a limit out of range. */
  async listDeliveries(ctx: Context, options: ListDeliveriesOptions = {}): Promise<Delivery[]> {
    const limit = pageLimitOrThrow('webhooks.limit_invalid', options.limit, MAX_DELIVERIES_PAGE, 50);
    return this.#repo.list(ctx, { ...options, limit });
  }

  /** One delivery; throws `webhooks.delivery_not_found`. */
  async getDeliveryOrThrow(ctx: Context, id: string): Promise<Delivery> {
    const found = await this.#repo.get(ctx, id);
    if (found === undefined) {
      throw new NotFoundError('webhooks.delivery_not_found', `there is no webhook delivery "${id}"`, { id });
    }
    return found;
  }

  /**
   * Puts failed deliveries back in the queue with a fresh set of attempts (after the receiver is
   * fixed), their jobs with them, in one transaction; returns how many were failed and are now
   * pending.
   */
  redeliver(ctx: Context, ids: readonly string[]): Promise<number> {
    return redeliverFailed(ctx, { db: this.#db, repo: this.#repo, jobs: this.#jobs }, ids);
  }

  /**
   * The delay before the attempt after `attempts` failed ones: base × 2^(attempts−1), plus up to
   * `jitter` of it at random, at most the maximum delay (the queue's schedule for deliveries).
   */
  retryDelayMs(attempts: number): number {
    return retryDelayMs(this.#retry, attempts, this.#random);
  }

  // ---- internals --------------------------------------------------------------------------------

  #subscribers(event: WebhookEvent): Webhook[] {
    return [...this.#webhooks.values()].filter((w) => w.events.includes(event));
  }

  async #insert(ctx: Context, deliveries: readonly NewDelivery[], now: Date): Promise<void> {
    if (deliveries.length === 0) return;
    await this.#db.transaction(ctx, async (trx) => {
      const added = await this.#repo.insertMany(trx, deliveries);
      // The delivery's id is the job's key: one job per delivery, however often it is queued.
      await this.#deliver.enqueueMany(
        trx,
        added.map((deliveryId) => ({ payload: { deliveryId }, key: deliveryId, runAt: now })),
      );
    });
  }

  /** One attempt of a delivery, as a job: POSTs it and says how the log records the outcome. */
  async #attempt(
    ctx: Context,
    deliveryId: string,
    attempt: number,
    signal: AbortSignal,
  ): Promise<JobHandlerResult> {
    const delivery = await this.#repo.get(ctx, deliveryId);
    // Delivered already (an attempt whose job outcome was lost), or no longer in the log.
    if (delivery === undefined || delivery.status !== 'pending') return jobDone();
    const webhook = this.#webhooks.get(delivery.webhook);
    if (webhook === undefined) {
      const reason = 'the webhook is no longer in the manifest';
      this.#log.error(
        { delivery: delivery.id, webhook: delivery.webhook },
        'webhook delivery abandoned: its webhook is no longer in the manifest',
      );
      return jobDead(reason, (trx) => this.#repo.abandon(trx, delivery.id, this.#clock.now(), reason));
    }
    const { ok, lastStatus } = await this.#post(webhook, delivery, signal);
    const at = this.#clock.now();
    const fields = { delivery: delivery.id, webhook: delivery.webhook, attempt, status: lastStatus };
    if (ok) {
      return jobDone((trx) =>
        this.#repo.recordAttempt(trx, delivery.id, {
          status: 'delivered',
          at,
          lastStatus,
          attempts: attempt,
        }),
      );
    }
    return jobRetry(lastStatus, {
      record: async (trx, final) => {
        if (final.state === 'pending') {
          this.#log.warn(
            { ...fields, nextAttemptAt: final.runAt.toISOString() },
            'webhook delivery attempt failed; it will be retried',
          );
          await this.#repo.recordAttempt(trx, delivery.id, {
            status: 'pending',
            at,
            lastStatus,
            attempts: attempt,
            nextAttemptAt: final.runAt,
          });
        } else {
          this.#log.error(
            fields,
            `webhook delivery failed after ${attempt} attempts; it will not be retried`,
          );
          await this.#repo.recordAttempt(trx, delivery.id, {
            status: 'failed',
            at,
            lastStatus,
            attempts: attempt,
          });
        }
      },
    });
  }

  async #post(
    webhook: Webhook,
    delivery: Delivery,
    signal: AbortSignal,
  ): Promise<{ ok: boolean; lastStatus: string }> {
    // Signed with the newest key version, which the header names (`k=`).
    const signature = signWebhookPayload({
      secret: this.secretOf(webhook.key),
      keyVersion: this.keyVersion,
      body: delivery.payload,
      at: this.#clock.now(),
    });
    try {
      const response = await fetch(webhook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Pledge-Webhooks/1',
          'pledge-signature': signature,
          'pledge-event-id': delivery.eventId,
          'pledge-delivery-id': delivery.id,
        },
        body: delivery.payload,
        // A redirect is not followed: the manifest names where choices may go, and only there.
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]),
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
}

/**
 * Puts failed deliveries back in the queue with a fresh set of attempts, their jobs with them, in
 * one transaction; returns how many were failed. What `redeliver` does, for the CLI, which has no
 * manifest to build the whole service from.
 */
export async function redeliverFailed(
  ctx: Context,
  deps: Pick<WebhookServiceDeps, 'db' | 'repo'> & { jobs: Pick<JobQueue, 'retryDeadByKeys'> },
  ids: readonly string[],
): Promise<number> {
  return deps.db.transaction(ctx, async (trx) => {
    const moved = await deps.repo.requeueFailed(trx, ids, ctx.clock.now());
    await deps.jobs.retryDeadByKeys(trx, DELIVER_JOB, moved);
    return moved.length;
  });
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
