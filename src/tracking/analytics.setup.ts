/**
 * Builds the analytics side of the beacons (createApp calls it once): the daily roll-up and the
 * API that reads it, the salts and the expiry of raw events as recurring jobs, and the e-mail open
 * pixel (the mail pipeline's extras, and the handler of `/b.gif?m=TOKEN`).
 */
import type { FastifyInstance } from 'fastify';
import type { ConsentService } from '../consent/consent.service.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import type { SystemGate } from '../manifest/systems.gate.js';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { AuthHook } from '../platform/http/auth.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { UseKeys } from '../vault/use-keys.js';
import { BEACON_JOB_INTERVAL_MS, defineBeaconJobs, type BeaconJobsLogger } from './analytics.jobs.js';
import { AnalyticsRepository } from './analytics.repository.js';
import { registerAnalyticsRoutes } from './analytics.routes.js';
import { AnalyticsService } from './analytics.service.js';
import type { BeaconsRepository } from './beacons.repository.js';
import type { BeaconSeal } from './beacons.seal.js';
import type { MailOpenHandler } from './beacons.routes.js';
import type { BeaconService } from './beacons.service.js';
import { BeaconExpiry } from './expiry.service.js';
import { MailOpens } from './mail-open.service.js';
import { MailOpenTokens } from './mail-open.tokens.js';
import { SaltRotation } from './salts.service.js';

/** What {@link createAnalytics} uses. */
export interface AnalyticsSetupDeps {
  db: Db;
  queue: JobQueue;
  manifest: { readonly manifest: Manifest };
  /** The raw events and salts (the beacons' repository). */
  beaconsRepo: BeaconsRepository;
  /** Opens the events' sealed fields. */
  seal: BeaconSeal;
  /** Records e-mail opens. */
  beacons: Pick<BeaconService, 'recordMailOpen'>;
  consent: Pick<ConsentService, 'decide' | 'decideMany'>;
  /** The keyring's `beacons` use: the mail-open tokens' key is derived from it. */
  beaconKeys: UseKeys;
  publicUrl: string;
  log: BeaconJobsLogger;
}

/** The analytics parts createApp holds. */
export interface Analytics {
  service: AnalyticsService;
  mailOpens: MailOpens;
  salts: SaltRotation;
  expiry: BeaconExpiry;
  /** The handler of `/b.gif?m=TOKEN` (the beacon routes' `mailOpen`). */
  mailOpen: MailOpenHandler;
  /** Registers `GET /api/v1/analytics`. */
  registerRoutes(app: FastifyInstance, deps: { auth: AuthHook; systems: SystemGate }): void;
  /** Enqueues the current slot of the recurring jobs (at start; once per slot across instances). */
  start(ctx: Context): Promise<void>;
}

/** Builds the analytics parts and defines their job types on the queue. */
export function createAnalytics(deps: AnalyticsSetupDeps): Analytics {
  const service = new AnalyticsService({
    db: deps.db,
    repo: new AnalyticsRepository(deps.db),
    events: deps.beaconsRepo,
    seal: deps.seal,
    manifest: deps.manifest,
  });
  const salts = new SaltRotation(deps.beaconsRepo, { aheadMs: BEACON_JOB_INTERVAL_MS });
  const expiry = new BeaconExpiry(deps.beaconsRepo, deps.manifest);
  const jobs = defineBeaconJobs(deps.queue, { analytics: service, salts, expiry, log: deps.log });
  const mailOpens = new MailOpens({
    tokens: new MailOpenTokens(deps.beaconKeys),
    consent: deps.consent,
    beacons: deps.beacons,
    manifest: deps.manifest,
    publicUrl: deps.publicUrl,
  });
  return {
    service,
    mailOpens,
    salts,
    expiry,
    mailOpen: async (ctx, request, token) => {
      await mailOpens.open(ctx, token, request.headers['user-agent']);
    },
    registerRoutes: (app, r) =>
      registerAnalyticsRoutes(app, { analytics: service, auth: r.auth, systems: r.systems }),
    start: (ctx) => jobs.schedule(ctx),
  };
}
