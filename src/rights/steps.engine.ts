/**
 * Durable execution of requests on the platform job queue. A request is a plan of steps; each step
 * is one job, enqueued in the same transaction that records the previous step's completion, under an
 * idempotency key (`request-step:<step id>:<run>`), so a crash anywhere resumes where it stopped and
 * a finished step is never run again (its row says done, and its handler returns at once). A step
 * whose job was re-queued after its worker's lease expired is flagged on the step and the request.
 * Executors are found in a registry by step name (and store): the connectors' and executors' code
 * plugs in there; Pledge's own bookkeeping steps and the manual task are built in.
 */
import type { AuditAppender } from '../audit/audit.service.js';
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import { uuidv7 } from '../platform/ids.js';
import { jobDone, jobRetry, type JobHandlerResult } from '../platform/jobs/jobs.definition.js';
import type { JobQueue, JobType } from '../platform/jobs/jobs.service.js';
import type { RequestRecord, RequestsRepository, RequestType } from './requests.repository.js';
import type { StepRecord, StepsRepository } from './steps.repository.js';

/** The job that runs one step. */
export const STEP_JOB = 'requests.step';
/** The purpose every request's log entry is for. */
export const REQUESTS_PURPOSE = 'legal-compliance';

/** What an executor answers. */
export type StepResult =
  /** Finished: `summary` holds counts and names (never data) for the queue and the log. */
  | { outcome: 'done'; summary?: Record<string, unknown> | undefined }
  /** A task for staff or another system, completed later (`completeTask`), due at `dueAt`. */
  | { outcome: 'waiting'; dueAt: Date; summary?: Record<string, unknown> | undefined }
  /** Failed; retried by the job policy, then kept failed with this error for a person to retry. */
  | { outcome: 'failed'; error: string };

/** What an executor is given besides the request and step. */
export interface StepRunContext {
  ctx: Context;
  signal: AbortSignal;
}

/** Runs one kind of step (collect from a store, erase in one, assemble, deliver ...). */
export interface StepExecutor {
  run(run: StepRunContext, request: RequestRecord, step: StepRecord): Promise<StepResult>;
}

/** Executors by step name, optionally per store (`erase` for `billing-db`). */
export class StepRegistry {
  readonly #executors = new Map<string, StepExecutor>();
  readonly #fallback: StepExecutor;

  /** `fallback` runs a step no executor is registered for (the manual task: staff confirm it). */
  constructor(fallback: StepExecutor) {
    this.#fallback = fallback;
  }

  /** Registers `executor` for steps called `name` (in `store` only, when given). */
  register(name: string, executor: StepExecutor, store?: string): void {
    this.#executors.set(store === undefined ? name : `${name}:${store}`, executor);
  }

  /** The executor of a step: its store's, else its name's, else the fallback. */
  find(name: string, store: string): StepExecutor {
    return this.#executors.get(`${name}:${store}`) ?? this.#executors.get(name) ?? this.#fallback;
  }
}

/** Finished at once: a step that only records (a confirmation the other steps' results make). */
export const bookkeepingExecutor: StepExecutor = {
  run: () => Promise.resolve({ outcome: 'done' }),
};

/** A task staff do by hand and confirm (`pledge requests complete`), due within `dueInMs`. */
export function manualTaskExecutor(dueInMs: number): StepExecutor {
  return {
    run: ({ ctx }) =>
      Promise.resolve({
        outcome: 'waiting',
        dueAt: new Date(ctx.clock.now().getTime() + dueInMs),
        summary: { task: 'manual' },
      }),
  };
}

/** Delivers a task to a system's webhook (the webhook outbox); answers how many webhooks took it. */
export type TaskDelivery = (
  ctx: Context,
  system: string,
  task: {
    requestId: string;
    stepId: string;
    step: string;
    type: string;
    subjectId: string | null;
    dueAt: string;
  },
) => Promise<number>;

/**
 * A task sent to the system the step's store names, through its webhook, and completed by the
 * system's callback (`POST /api/v1/requests/:id/complete`), due within `dueInMs`: for systems
 * without a database Pledge can reach (the support desk, the marketing tool).
 */
export function webhookTaskExecutor(deliver: TaskDelivery, dueInMs: number): StepExecutor {
  return {
    run: async ({ ctx }, request, step) => {
      const dueAt = new Date(ctx.clock.now().getTime() + dueInMs);
      const sent = await deliver(ctx, step.store, {
        requestId: request.id,
        stepId: step.id,
        step: step.name,
        type: request.type,
        subjectId: request.subjectId ?? null,
        dueAt: dueAt.toISOString(),
      });
      if (sent === 0)
        return { outcome: 'failed', error: `system "${step.store}" has no webhook receiving request.task` };
      return { outcome: 'waiting', dueAt, summary: { task: 'webhook', system: step.store } };
    },
  };
}

/** The steps of a request of `type`, over the stores it reaches. */
export function planOf(type: RequestType, stores: readonly string[]): Array<{ name: string; store: string }> {
  const per = (name: string) => stores.map((store) => ({ name, store }));
  switch (type) {
    case 'access':
    case 'export':
      return [
        { name: 'verify', store: '' },
        ...per('collect'),
        { name: 'assemble', store: '' },
        { name: 'deliver', store: '' },
      ];
    case 'erasure':
      return [
        { name: 'verify', store: '' },
        ...per('erase'),
        { name: 'notify', store: '' },
        { name: 'confirm', store: '' },
      ];
    case 'rectification':
    case 'restriction':
    case 'objection':
      return [{ name: 'verify', store: '' }, ...per('apply'), { name: 'confirm', store: '' }];
    case 'inquiry':
      return [
        { name: 'verify', store: '' },
        { name: 'answer', store: '' },
      ];
  }
}

/** What the engine uses. */
export interface StepEngineDeps {
  db: Transactions;
  requests: RequestsRepository;
  steps: StepsRepository;
  audit: AuditAppender;
  jobs: Pick<JobQueue, 'define'>;
  registry: StepRegistry;
  /** Attempts of a step before it is kept failed (default 5). */
  maxAttempts?: number | undefined;
}

interface StepPayload {
  stepId: string;
}

/** Runs requests' steps as jobs, and records each change in the log. */
export class StepEngine {
  readonly #deps: StepEngineDeps;
  readonly #job: JobType<StepPayload>;

  constructor(deps: StepEngineDeps) {
    this.#deps = deps;
    this.#job = deps.jobs.define<StepPayload>({
      type: STEP_JOB,
      retry: { maxAttempts: deps.maxAttempts ?? 5, baseDelayMs: 30_000, maxDelayMs: 3_600_000 },
      leaseMs: 60_000,
      // The executors are idempotent by contract (collect reads, erase deletes what is there): a
      // step whose worker died runs again, and is flagged.
      rerunAfterLeaseLoss: true,
      handle: (ctx, job, signal) => this.#run(ctx, job.payload.stepId, signal),
    });
  }

  /** Builds a request's plan (in the intake's transaction); the first step waits for verification. */
  plan(requestId: string, type: RequestType, stores: readonly string[]): StepRecord[] {
    return planOf(type, stores).map((s, position) => ({
      id: uuidv7(),
      requestId,
      position,
      name: s.name,
      store: s.store,
      status: position === 0 ? 'waiting' : 'pending',
      attempts: 0,
      runs: 0,
      error: undefined,
      requeued: 0,
      dueAt: undefined,
      startedAt: undefined,
      finishedAt: undefined,
      result: undefined,
    }));
  }

  /**
   * Records a step finished (in `ctx`'s transaction) and queues the next one in it; the request is
   * done after its last step.
   */
  async complete(
    ctx: Context,
    request: RequestRecord,
    step: StepRecord,
    summary: Record<string, unknown> | undefined,
  ): Promise<void> {
    const now = ctx.clock.now();
    await this.#deps.steps.update(ctx, step.id, {
      status: 'done',
      finishedAt: now,
      error: null,
      result: summary ?? null,
    });
    await this.#changed(ctx, request, step, 'done', summary);
    await this.advance(ctx, request);
  }

  /** Queues the first step not finished yet, or finishes the request (in `ctx`'s transaction). */
  async advance(ctx: Context, request: RequestRecord): Promise<void> {
    const now = ctx.clock.now();
    const next = (await this.#deps.steps.ofRequest(ctx, request.id)).find(
      (s) => s.status !== 'done' && s.status !== 'skipped',
    );
    if (next === undefined) {
      await this.#deps.requests.update(ctx, request.id, {
        status: 'done',
        finishedAt: now,
        progressedAt: now,
        stalled: false,
      });
      await this.#deps.requests.addEvent(ctx, request.id, 'done', {});
      await this.#log(ctx, request, 'requests.done', { type: request.type });
      return;
    }
    if (next.status === 'pending' || next.status === 'failed') await this.queue(ctx, request, next);
  }

  /** Queues a step's job (a fresh run, so its own idempotency key). */
  async queue(ctx: Context, request: RequestRecord, step: StepRecord): Promise<void> {
    const runs = step.runs + 1;
    await this.#deps.steps.update(ctx, step.id, { status: 'queued', runs, error: null });
    await this.#deps.requests.update(ctx, request.id, {
      status: 'running',
      progressedAt: ctx.clock.now(),
      stalled: false,
    });
    await this.#job.enqueue(ctx, { stepId: step.id }, { key: `request-step:${step.id}:${runs}` });
    await this.#changed(ctx, request, step, 'queued', { run: runs });
  }

  async #run(ctx: Context, stepId: string, signal: AbortSignal): Promise<JobHandlerResult> {
    const { steps, requests } = this.#deps;
    const step = await steps.get(ctx, stepId);
    if (step === undefined || (step.status !== 'queued' && step.status !== 'running')) return jobDone();
    const request = await requests.get(ctx, step.requestId);
    if (request === undefined || request.finishedAt !== undefined) return jobDone();
    const now = ctx.clock.now();
    await this.#deps.db.transaction(ctx, async (tctx) => {
      // Still running from an attempt that never finished: its worker stopped heart-beating and the
      // queue's watchdog re-queued the job. Run again, and say so.
      if (step.status === 'running') {
        await steps.update(tctx, step.id, { requeued: step.requeued + 1 });
        await requests.update(tctx, request.id, { requeued: true });
        await requests.addEvent(tctx, request.id, 'requeued', { step: step.name, store: step.store });
        await this.#changed(tctx, request, step, 'requeued', undefined);
      }
      await steps.update(tctx, step.id, { status: 'running', attempts: step.attempts + 1, startedAt: now });
      await requests.update(tctx, request.id, { progressedAt: now });
    });
    let result: StepResult;
    try {
      result = await this.#deps.registry.find(step.name, step.store).run({ ctx, signal }, request, step);
    } catch (err) {
      result = { outcome: 'failed', error: err instanceof Error ? err.message : String(err) };
    }
    if (result.outcome === 'failed') {
      const error = result.error.slice(0, 500);
      return jobRetry(error, {
        record: async (rctx, final) => {
          const fresh = (await requests.get(rctx, request.id)) ?? request;
          if (final.state === 'dead') {
            await steps.update(rctx, step.id, { status: 'failed', error, finishedAt: rctx.clock.now() });
            await requests.update(rctx, request.id, { status: 'failed', progressedAt: rctx.clock.now() });
            await requests.addEvent(rctx, request.id, 'step.failed', { step: step.name, store: step.store });
            await this.#changed(rctx, fresh, step, 'failed', { error });
          } else {
            await steps.update(rctx, step.id, { status: 'queued', error });
            await this.#changed(rctx, fresh, step, 'retrying', { error });
          }
        },
      });
    }
    return jobDone(async (rctx, final) => {
      if (final.state !== 'done') return;
      const fresh = (await requests.get(rctx, request.id)) ?? request;
      if (result.outcome === 'waiting') {
        await steps.update(rctx, step.id, {
          status: 'waiting',
          dueAt: result.dueAt,
          result: result.summary ?? null,
        });
        await requests.update(rctx, request.id, { status: 'waiting', progressedAt: rctx.clock.now() });
        await requests.addEvent(rctx, request.id, 'step.waiting', { step: step.name, store: step.store });
        await this.#changed(rctx, fresh, step, 'waiting', result.summary);
        return;
      }
      await requests.addEvent(rctx, request.id, 'step.done', { step: step.name, store: step.store });
      await this.complete(rctx, fresh, step, result.summary);
    });
  }

  async #changed(
    ctx: Context,
    request: RequestRecord,
    step: StepRecord,
    status: string,
    details: Record<string, unknown> | undefined,
  ): Promise<void> {
    await this.#log(ctx, request, 'requests.step', {
      step: step.name,
      ...(step.store === '' ? {} : { store: step.store }),
      status,
      ...(details ?? {}),
    });
  }

  #log(
    ctx: Context,
    request: RequestRecord,
    action: string,
    details: Record<string, unknown>,
  ): Promise<void> {
    return this.#deps.audit.append(ctx, [
      {
        action,
        purpose: REQUESTS_PURPOSE,
        ...(request.subjectId === undefined ? {} : { subjectId: request.subjectId }),
        details: { requestId: request.id, ...details },
      },
    ]);
  }
}
