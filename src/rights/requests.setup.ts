/**
 * Data-subject requests' parts, built from what the app gives: the repositories, the seal and codes
 * (each under its own key use), the step engine with its executor registry, the service, its
 * routes and pages. Executors of collect, assemble, deliver and erase steps are registered on
 * `registry` by the capabilities that provide them; a step without one is a manual task for staff.
 */
import type { FastifyInstance } from 'fastify';
import type { AuditAppender } from '../audit/audit.service.js';
import type { PageSite } from '../consent/pages.views.js';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { AuthHook } from '../platform/http/auth.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { MailMessage, SendMailResult } from '../platform/mail/mail.transport.js';
import type { UseKeys } from '../vault/use-keys.js';
import { AgentsRepository } from './agents.repository.js';
import { registerAgentRoutes } from './agents.routes.js';
import { AgentsService } from './agents.service.js';
import { registerRequestPages } from './requests.pages.js';
import { DEFAULT_DUE_WINDOW_MS } from './requests.presenter.js';
import { RequestsRepository, type RequestRecord } from './requests.repository.js';
import { registerRequestRoutes } from './requests.routes.js';
import { RequestSeal } from './requests.seal.js';
import { RequestsService, type DueNotice } from './requests.service.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import {
  bookkeepingExecutor,
  manualTaskExecutor,
  StepEngine,
  StepRegistry,
  webhookTaskExecutor,
  type TaskDelivery,
} from './steps.engine.js';
import { StepsRepository } from './steps.repository.js';
import { VerificationRepository } from './verification.repository.js';
import { VerificationService } from './verification.service.js';
import type { SmsAdapter } from './verification.sms.js';

/** How long staff have for a manual task. */
export const MANUAL_TASK_MS = 7 * 86_400_000;

/** What {@link createRequests} is given. */
export interface RequestsSetupDeps {
  db: Db;
  queue: Pick<JobQueue, 'define'>;
  audit: AuditAppender;
  keys: { requests: UseKeys; codes: UseKeys; links: UseKeys };
  mail: { send(ctx: Context, message: MailMessage): Promise<SendMailResult> };
  sms?: SmsAdapter | undefined;
  matchSubject(
    ctx: Context,
    identifiers: { email?: string | undefined; phone?: string | undefined },
  ): Promise<string | undefined>;
  /** The stores steps reach; `['pledge']` when absent (the connectors add theirs). */
  stores?: (() => readonly string[]) | undefined;
  site: PageSite;
  jurisdictions: readonly string[];
  publicUrl: string;
  stallAfterMs: number;
  onStalled?: ((ctx: Context, request: RequestRecord) => Promise<void>) | undefined;
  /** The manifest in force: its `requests:` block gives each new request's deadlines. */
  manifest: { readonly manifest: Pick<Manifest, 'requests'> };
  /** A deadline this close is due soon (PLEDGE_REQUEST_DUE_SOON); default 7 days. */
  dueSoonMs?: number | undefined;
  /** Tells staff that a request became due soon or overdue (the `request.due` webhook). */
  onDue?: ((ctx: Context, request: RequestRecord, due: DueNotice) => Promise<void>) | undefined;
  /**
   * Systems whose steps are tasks sent to their webhook (those with a webhook receiving
   * `request.task`), and how a task reaches it (the webhook outbox).
   */
  webhookTasks?: { systems: readonly string[]; deliver: TaskDelivery } | undefined;
}

/** The built requests capability. */
export interface Requests {
  service: RequestsService;
  /** Authorized agents (Data Rights Protocol 1.0) registered by staff, and their signed requests. */
  agents: AgentsService;
  /** Where executors of steps are registered (by step name, optionally per store). */
  registry: StepRegistry;
  engine: StepEngine;
  registerRoutes(http: FastifyInstance, options: { auth: AuthHook }): Promise<void>;
  start(ctx: Context): Promise<void>;
}

/** Builds data-subject requests. */
export function createRequests(deps: RequestsSetupDeps): Requests {
  const requests = new RequestsRepository(deps.db);
  const steps = new StepsRepository(deps.db);
  const registry = new StepRegistry(manualTaskExecutor(MANUAL_TASK_MS));
  // Pledge's bookkeeping: the confirmation records what the earlier steps' results say.
  registry.register('confirm', bookkeepingExecutor);
  const taskSystems = deps.webhookTasks?.systems ?? [];
  if (deps.webhookTasks !== undefined) {
    const executor = webhookTaskExecutor(deps.webhookTasks.deliver, MANUAL_TASK_MS);
    for (const system of taskSystems)
      for (const name of ['collect', 'erase', 'apply']) registry.register(name, executor, system);
  }
  const stores = deps.stores ?? (() => ['pledge']);
  const engine = new StepEngine({
    db: deps.db,
    requests,
    steps,
    audit: deps.audit,
    jobs: deps.queue,
    registry,
  });
  const service = new RequestsService({
    db: deps.db,
    requests,
    steps,
    verification: new VerificationService(new VerificationRepository(deps.db), deps.keys.codes),
    seal: new RequestSeal(deps.keys.requests, deps.keys.links),
    engine,
    audit: deps.audit,
    jobs: deps.queue,
    mail: deps.mail,
    sms: deps.sms,
    matchSubject: (ctx, identifiers) => deps.matchSubject(ctx, identifiers),
    stores: () => [...stores(), ...taskSystems.filter((s) => !stores().includes(s))],
    organization: deps.site.name,
    publicUrl: deps.publicUrl,
    defaultJurisdiction: deps.jurisdictions[0] ?? 'EU',
    stallAfterMs: deps.stallAfterMs,
    onStalled: deps.onStalled,
    manifest: deps.manifest,
    dueSoonMs: deps.dueSoonMs ?? DEFAULT_DUE_WINDOW_MS,
    onDue: deps.onDue,
  });
  const agents = new AgentsService({
    db: deps.db,
    agents: new AgentsRepository(deps.db),
    requests: service,
    audit: deps.audit,
    businessId: new URL(deps.publicUrl).host,
  });
  return {
    service,
    agents,
    registry,
    engine,
    registerRoutes: async (http, { auth }) => {
      registerRequestRoutes(http, { requests: service, auth });
      registerAgentRoutes(http, { agents, auth });
      await registerRequestPages(http, {
        requests: service,
        site: deps.site,
        jurisdictions: deps.jurisdictions,
      });
    },
    start: (ctx) => service.start(ctx),
  };
}
