/**
 * Wires Pledge by hand: createApp builds the platform's parts and every capability, and hands each
 * service only what it uses. A capability with many parts of its own builds them in its setup
 * function (comms/campaigns.setup.ts), called here with what it is given. No container: this file,
 * with those setup functions, tells you what depends on what.
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import type { AuditLog } from './audit/audit.service.js';
import { createAuditCapability, type AuditCapability } from './audit/log.setup.js';
import type { TransparencyLog } from './audit/log.service.js';
import { witnessOf } from './audit/witness.client.js';
import { defineWitnessJobs } from './audit/witness.jobs.js';
import { MIGRATIONS } from './capabilities.js';
import type { CardProcessor } from './collect/card-processor.js';
import { registerCollectRoutes } from './collect/collect.routes.js';
import { CollectService } from './collect/collect.service.js';
import { SEND_JOB } from './comms/campaign.runner.js';
import { registerCampaignRoutes } from './comms/campaigns.routes.js';
import type { CampaignService } from './comms/campaigns.service.js';
import { createCampaigns, mailConcurrency } from './comms/campaigns.setup.js';
import { loadDkimKeys, signMessage } from './comms/dkim.js';
import type { InboundSmtpListener } from './comms/inbound.smtp.js';
import { registerMailEventsRoutes } from './comms/mail-events.routes.js';
import { MailEventsService } from './comms/mail-events.service.js';
import { mailDomainOf, mailSettingsOf } from './comms/mail.settings.js';
import { registerOneClickRoutes } from './comms/one-click.routes.js';
import { SuppressionRepository } from './comms/suppression.repository.js';
import { SuppressionService } from './comms/suppression.service.js';
import { ConsentRepository } from './consent/consent.repository.js';
import { registerConsentRoutes } from './consent/consent.routes.js';
import { ConsentService } from './consent/consent.service.js';
import { LinkGenerationsRepository } from './consent/link-generations.repository.js';
import { deriveLinkTokenKeys } from './consent/link-tokens.js';
import { registerConsentPages } from './consent/pages.routes.js';
import { WebhookDeliveriesRepository } from './consent/webhooks.repository.js';
import { registerWebhookRoutes } from './consent/webhooks.routes.js';
import { WebhookService } from './consent/webhooks.service.js';
import { ManifestVersionRepository } from './manifest/manifest.repository.js';
import { registerManifestRoutes } from './manifest/manifest.routes.js';
import { activateManifest, ManifestVersions, type ActiveManifest } from './manifest/manifest.service.js';
import { SystemGate } from './manifest/systems.gate.js';
import { loadConnectorSettings } from './rights/connectors/connectors.config.js';
import { ApiKeyRepository } from './platform/auth/api-keys.repository.js';
import { ApiKeyService } from './platform/auth/api-keys.service.js';
import { SCOPES, SCOPE_DESCRIPTIONS } from './platform/auth/scopes.js';
import type { Config } from './platform/config.js';
import { createContext, type Context } from './platform/context.js';
import { openDatabase, type Database } from './platform/db/database.js';
import { migrateToLatest } from './platform/db/migrations.js';
import { requireApiKey } from './platform/http/auth.js';
import { registerHealthRoutes } from './platform/http/health.routes.js';
import { createHttpServer } from './platform/http/server.js';
import { registerJobRoutes } from './platform/jobs/jobs.routes.js';
import { JobQueue } from './platform/jobs/jobs.service.js';
import { MailTransport } from './platform/mail/mail.transport.js';
import { DataKeysRepository } from './vault/data-keys.repository.js';
import { DataKeys } from './vault/data-keys.service.js';
import { Credentials } from './vault/credentials.service.js';
import { registerCredentialRoutes } from './vault/credentials.routes.js';
import { Keyring } from './vault/keyring.js';
import { keyFileDirOf, openKeystore, sharedBackupUnits } from './vault/keystore.js';
import { RecordsRepository } from './vault/records.repository.js';
import { RetentionSchedule, RetentionService } from './vault/retention.service.js';
import { SubjectsRepository } from './vault/subjects.repository.js';
import { Subjects } from './vault/subjects.service.js';
import { registerVaultRoutes } from './vault/vault.routes.js';
import { Vault } from './vault/vault.service.js';
import { WebEndpoints } from './tracking/web.js';
import { createAnalytics, type Analytics } from './tracking/analytics.setup.js';
import { registerBannerRoutes } from './tracking/banner.routes.js';
import { bannerReceiptsOf } from './tracking/banner.config.js';
import { BeaconsRepository } from './tracking/beacons.repository.js';
import { registerBeaconRoutes } from './tracking/beacons.routes.js';
import { BeaconSeal } from './tracking/beacons.seal.js';
import { BeaconService } from './tracking/beacons.service.js';
import { DisclosuresView } from './share/disclosures.view.js';
import { ShareRepository } from './share/share.repository.js';
import { registerShareRoutes } from './share/share.routes.js';
import { ShareService } from './share/share.service.js';
import { NOTICE_EMAIL_JOB } from './share/acknowledgements.notices.js';
import type { AcknowledgementService } from './share/acknowledgements.service.js';
import { createAcknowledgements } from './share/acknowledgements.setup.js';
import { LEGAL_NOTICE_JOB, type LegalService } from './share/legal.service.js';
import { createLegal } from './share/legal.setup.js';
import { createPledgeRights, createTombstones, type PledgeRights } from './rights/pledge-rights.setup.js';
import { siteOf } from './consent/pages.views.js';
import type { RequestsService } from './rights/requests.service.js';
import { createRequests, type Requests } from './rights/requests.setup.js';
import { registerRequestExecutors, requestStores } from './rights/requests.executors.js';
import { RequestSeal } from './rights/requests.seal.js';
import type { SmsAdapter } from './rights/verification.sms.js';

/** What {@link createApp} needs beyond the configuration. */
export interface AppOptions {
  /** An already open database (tests pass one per engine); opened from the config when absent. */
  database?: Database;
  /** An already open key store; opened beside the database when absent. */
  keystore?: Database;
  /** Where logs go; standard output when absent. */
  logStream?: NodeJS.WritableStream;
  /**
   * Card processor adapters by recipient key (e.g. `{ 'card-processor': adapter }`); absent, the
   * built-in TestCardProcessor tokenizes cards (for development only).
   */
  processors?: Record<string, CardProcessor>;
  /**
   * The adapter of the manifest's SMS provider, for requests' codes to phone numbers; absent, a phone
   * number in a request cannot be verified and is not acted on.
   */
  sms?: SmsAdapter;
  /** Routes the caller adds before the server is ready (`pledge serve --example-site`). */
  extraRoutes?: (http: FastifyInstance) => void | Promise<void>;
  /** How often an erasure held by a legal request checks whether the hold ended (default one day; tests). */
  erasureHoldRecheckMs?: number;
}

/** A built application: the HTTP server and the parts a caller may need. */
export interface App {
  http: FastifyInstance;
  database: Database;
  keystore: Database;
  active: ActiveManifest;
  apiKeys: ApiKeyService;
  keyring: Keyring;
  dataKeys: DataKeys;
  vault: Vault;
  /** Checks secrets against stored credential verifiers (docs/vault.md, "Credentials"). */
  credentials: Credentials;
  /** Collection points: the TypeScript API of `POST /api/v1/collect/:source`. */
  collect: CollectService;
  /** Choices and decisions: the TypeScript API of the consent routes and pages. */
  consent: ConsentService;
  /** Delivers consent changes to the systems the manifest lists. */
  webhooks: WebhookService;
  /** The durable job queue every capability's later work runs on (docs/jobs.md). */
  jobs: JobQueue;
  /** The audit log (every capability appends to it; each entry becomes a leaf of the transparency log). */
  audit: AuditLog;
  /**
   * The transparency log: checkpoints, tiles, proofs, cosignatures (`log.addCosignature`), the
   * signer's verifier key; `integrateNow` integrates what has committed (tests and tools).
   */
  log: TransparencyLog & {
    listBySubject: AuditLog['listBySubject'];
    integrateNow: AuditCapability['integrateNow'];
    integrator: AuditCapability['integrator'];
  };
  /** Subjects as other capabilities know them (ids, kinds, jurisdictions). */
  subjects: Subjects;
  /** The retention sweeps on a timer; absent when PLEDGE_RETENTION_INTERVAL is 0. */
  retention: RetentionSchedule | undefined;
  /** The suppression list (unsubscribes, bounces, complaints): keyed hashes of addresses. */
  suppression: SuppressionService;
  /** Unsubscribes, bounces and complaints, from one-click POSTs, inbound mail and the webhook. */
  mailEvents: MailEventsService;
  /** The inbound SMTP listener; absent when PLEDGE_INBOUND_SMTP_PORT is 0. */
  inboundSmtp: InboundSmtpListener | undefined;
  /** Marketing campaigns and service notices, and the runner that sends them (docs/mail.md). */
  campaigns: CampaignService;
  /** What the keyless endpoints of the web (banner, beacons) act as, and where visitors are. */
  web: WebEndpoints;
  /** Page views and events people allowed (POST /api/v1/beacon, /b.gif), and e-mail opens. */
  beacons: BeaconService;
  /** The beacons' daily aggregates (GET /api/v1/analytics), their jobs, and the e-mail open pixel. */
  analytics: Analytics;
  /** Processors' and affiliates' acknowledgements of the policy: their standing for the share gate. */
  acknowledgements: AcknowledgementService;
  /** The share gate: disclosures to declared recipients, pass-throughs and exports (docs/sharing.md). */
  share: ShareService;
  /** Legal requests from authorities: intake, review, disclosure, notices, the transparency report. */
  legal: LegalService;
  /** Data-subject requests on Pledge's side: the export package, erasure with legal holds, tombstones. */
  pledgeRights: PledgeRights;
  /** Data-subject requests: intake, verification, the staff queue and the steps' engine. */
  requests: RequestsService;
  /** Where step executors (collect, assemble, deliver, erase) register, and the engine that runs them. */
  requestSteps: Pick<Requests, 'registry' | 'engine'>;
  /** Stops the server and closes the database (if this app opened it). */
  close(): Promise<void>;
}

/** Builds the application: database and migrations, the manifest in force, services, routes. */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const ctx = createContext({ kind: 'job', id: 'startup' });
  const ownsDatabase = options.database === undefined;
  const ownsKeystore = options.keystore === undefined;
  const database =
    options.database ??
    (await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      timeouts: config.databaseTimeouts,
    }));
  let keystore: Database | undefined = options.keystore;
  try {
    await migrateToLatest(database, MIGRATIONS);
    keystore ??= await openKeystore({
      databaseUrl: config.databaseUrl,
      keystoreUrl: config.keystoreUrl,
      dataDir: config.dataDir,
      timeouts: config.databaseTimeouts,
    });
    const { db } = database;
    const versionsRepo = new ManifestVersionRepository(db);
    const active = await activateManifest(ctx, { file: config.manifestPath, versions: versionsRepo });
    // A connected dataset's URL comes from PLEDGE_CONNECTOR_<KEY>_URL; without it, a boot error.
    const connectorSettings = loadConnectorSettings(active.manifest.datasets);
    const versions = new ManifestVersions(versionsRepo);
    const manifestInForce = { manifest: active.manifest, versionId: active.version.id };
    // Every caller is a declared system, held to its purposes by this one gate.
    const systems = new SystemGate(manifestInForce);
    // The banner's and beacons' endpoints have no key: they act as the manifest's web system.
    const web = new WebEndpoints(manifestInForce, {
      siteOrigins: config.siteOrigins,
      countryHeader: config.countryHeader,
      publicUrl: config.publicUrl,
    });
    const apiKeys = new ApiKeyService({
      keys: new ApiKeyRepository(db),
      systems: () => active.manifest.systems.map((s) => s.key),
    });
    const keyFileDir = keyFileDirOf(config);
    const keyring = await Keyring.load({ dataDir: keyFileDir, envKeys: config.keys });
    const dataKeys = new DataKeys(new DataKeysRepository(keystore.db), keyring, {
      reloadKeyring: () => Keyring.load({ dataDir: keyFileDir, envKeys: config.keys }),
    });
    const http = await createHttpServer({
      logLevel: config.logLevel,
      bodyLimitBytes: config.bodyLimitBytes,
      rateLimitPerMinute: config.rateLimitPerMinute,
      trustProxy: config.trustProxy,
      ...(options.logStream ? { logStream: options.logStream } : {}),
    });
    const log = http.log;
    const shared = ownsKeystore
      ? sharedBackupUnits({ ...config, keysFromEnv: config.keys !== undefined })
      : [];
    // Places only, never key material: a backup of the data alone must not undo an erasure.
    if (shared.length > 0) {
      log.warn(
        { shared },
        'the keys share a backup unit with the data: a backup of it can undo a crypto-erasure; set PLEDGE_KEYSTORE_URL (and PLEDGE_KEYS) to keep them apart (docs/vault.md, Backups)',
      );
    }

    // The platform's parts every capability is given.
    const jobs = new JobQueue({ db, log });
    const auditCapability = createAuditCapability({
      db,
      queue: jobs,
      subjectKeys: keyring.use('log_subjects'),
      checkpointKeys: keyring.use('log_checkpoints'),
      settings: {
        origin: config.logOrigin,
        checkpointFile: config.logCheckpointFile,
        checkpointWebhook: config.logCheckpointWebhook,
        publicTiles: config.logPublicTiles,
        rateLimitPerMinute: config.logRateLimitPerMinute,
      },
      log,
      notifications: database,
    });
    const audit = auditCapability.audit;
    // Each checkpoint asks every configured witness to cosign it (PLEDGE_LOG_WITNESSES), as jobs
    // enqueued in the checkpoint's own transaction; a key that does not parse stops the boot here.
    const witnessJobs = defineWitnessJobs(jobs, {
      log: auditCapability.log,
      witnesses: config.logWitnesses.map(witnessOf),
    });
    auditCapability.onCheckpoint((ctx, checkpoint) => witnessJobs.enqueue(ctx, checkpoint.size));
    const mailSettings = mailSettingsOf(config, active.manifest);
    // Checked at boot (a bad key stops the server with every problem listed); campaigns and service
    // mail are signed with them.
    const dkim = loadDkimKeys(config.dkim, mailSettings.mailDomain);
    const transport = new MailTransport({
      smtpUrl: config.smtpUrl,
      from: mailSettings.from,
      log,
      pool: mailConcurrency(config),
      sign: dkim === undefined ? undefined : (raw) => signMessage(raw, dkim),
    });

    // The capabilities, each given only what it uses. Subjects come first: consent, suppression and
    // campaigns ask the vault about subjects without reading its tables.
    const subjectsRepo = new SubjectsRepository(db);
    const subjects = new Subjects(subjectsRepo);
    const webhooks = new WebhookService({
      db,
      repo: new WebhookDeliveriesRepository(db),
      jobs,
      manifest: active.manifest,
      signingSecret: keyring.use('webhooks'),
      log,
    });
    const suppression = new SuppressionService({
      db,
      repo: new SuppressionRepository(db),
      audit,
      subjects,
      indexKey: keyring.indexKey,
      softBounceLimit: config.softBounceLimit,
    });
    const consent = new ConsentService({
      db,
      repo: new ConsentRepository(db),
      linkGenerations: new LinkGenerationsRepository(db),
      subjects,
      audit,
      notifications: database,
      manifest: manifestInForce,
      evidenceSecret: keyring.use('evidence'),
      // In the change's own transaction: the webhooks are queued and opt-outs lifted with it, or not at all.
      propagate: async (c, changes) => {
        await webhooks.enqueue(c, changes);
        await suppression.liftOptOutsOnConsent(c, changes);
      },
    });
    await consent.start();
    const records = new RecordsRepository(db);
    const vault = new Vault({
      db,
      subjects: subjectsRepo,
      records,
      audit,
      dataKeys,
      keyring,
      manifest: manifestInForce,
      systems,
      // The use gate obeys people's choices; erasure takes their ledger with it and tells the
      // systems the manifest lists, in its own transaction.
      decide: (c, subject, purpose) => consent.decideForUse(c, subject.id, purpose),
      erasure: async (c, subjectId) => {
        await consent.eraseSubject(c, subjectId);
        await webhooks.enqueueErasure(c, subjectId);
      },
    });
    const credentials = new Credentials({
      db,
      subjects: subjectsRepo,
      records,
      dataKeys,
      audit,
      write: (c, inputs) => vault.write(c, inputs),
    });
    // Processors bound to the policy: the manifest just activated is weighed before anything is
    // served, so a material change has paused the recipients it touches by then.
    const acknowledgements = createAcknowledgements({
      db,
      notifications: database,
      queue: jobs,
      audit,
      active,
      versions,
      mail: transport,
      signingKeys: keyring.use('recipient_notices'),
      signatoryKeys: keyring.use('share_signatories'),
      publicUrl: mailSettings.publicUrl,
    });
    await acknowledgements.start(ctx);

    // The share gate: the only way data leaves for a recipient, to a processor or affiliate only
    // while it stands by the policy in force (acknowledgements above).
    // Legal requests answer the share gate's question of what a request may let leave, and disclose
    // through it: the gate is found when a disclosure is made.
    const legal = createLegal({
      db,
      queue: jobs,
      audit,
      manifest: manifestInForce,
      apiKeys,
      subjects,
      vault,
      mail: transport,
      share: () => share,
      sealKeys: keyring.use('legal_requests'),
    });
    await legal.start(ctx);
    const share = new ShareService({
      db,
      repo: new ShareRepository(db),
      audit,
      manifest: manifestInForce,
      systems,
      vault,
      consent,
      subjects,
      standing: acknowledgements.service,
      legal: legal.service,
    });
    // Erased people's tombstones: collection recognizes someone erased who comes back.
    const tombstones = createTombstones(db, keyring, vault);
    // Data-subject requests act as the manifest's privacy office: codes go out through the mail
    // transport (the e-mail delivery provider) and the SMS adapter, stalls reach staff by webhook.
    const requests = createRequests({
      db,
      queue: jobs,
      audit,
      keys: {
        requests: keyring.use('requests'),
        codes: keyring.use('request_codes'),
        links: keyring.use('request_links'),
      },
      mail: transport,
      sms: options.sms,
      matchSubject: async (c, identifiers) => (await vault.matchSubject(c, identifiers))?.id,
      site: siteOf(active.manifest),
      jurisdictions: active.manifest.jurisdictions,
      publicUrl: mailSettings.publicUrl,
      stallAfterMs: config.requestStallAfterSeconds * 1000,
      // Pledge, then one store per connected dataset.
      stores: () => requestStores(connectorSettings),
      // A system with a webhook that receives request.task gets its steps as tasks sent there.
      webhookTasks: {
        systems: [
          ...new Set(
            active.manifest.webhooks
              .filter((w) => w.events.includes('request.task') && w.system !== undefined)
              .map((w) => w.system as string),
          ),
        ],
        deliver: (c, system, task) => webhooks.enqueueRequestTask(c, system, task),
      },
      onStalled: (c, r) =>
        webhooks.enqueueRequestStalled(c, {
          requestId: r.id,
          status: r.status,
          since: r.progressedAt.toISOString(),
        }),
      manifest: manifestInForce,
      dueSoonMs: config.requestDueSoonSeconds * 1000,
      onDue: (c, r, due) =>
        webhooks.enqueueRequestDue(c, {
          requestId: r.id,
          status: due.status,
          deadline: due.deadline,
          due: due.due.toISOString(),
        }),
    });
    const collect = new CollectService({
      vault,
      manifest: active.manifest,
      consent,
      systems,
      share,
      erased: tombstones,
      ...(options.processors ? { processors: options.processors } : {}),
    });
    if (collect.usesTestProcessor)
      log.warn('cards are tokenized by the built-in test processor; pass a real one as processors');
    const mailDomain = mailDomainOf(config, active.manifest);
    const mailEvents = new MailEventsService({
      consent,
      suppression,
      vault,
      linkKey: deriveLinkTokenKeys(keyring.use('links')),
      returnTokenSecret: keyring.use('message_id'),
      mailDomain,
    });
    const campaigns = createCampaigns({
      config,
      db,
      queue: jobs,
      transport,
      active,
      versions,
      consent,
      vault,
      subjects,
      suppression,
      audit,
      share,
      keyring,
      returnTokenSecret: keyring.use('message_id'),
      dkim,
      log,
      // The open pixel, for those who allowed it; asked only when messages are made, after start.
      extras: { htmlFor: (c, campaign, ids) => analytics.mailOpens.htmlFor(c, campaign, ids) },
    });

    // The banner's consent receipts, which beacons carry as proof of a choice; none without a banner.
    // The same as the banner's routes issue them with (whole days of ask_again).
    const receipts = bannerReceiptsOf(active.manifest, keyring.use('banner_receipts'));
    const beaconsRepo = new BeaconsRepository(db);
    const beaconSeal = new BeaconSeal(keyring.use('beacons'));
    const beacons = new BeaconService({
      db,
      repo: beaconsRepo,
      manifest: manifestInForce,
      systems,
      receipts,
      seal: beaconSeal,
    });
    const analytics = createAnalytics({
      db,
      queue: jobs,
      manifest: manifestInForce,
      beaconsRepo,
      seal: beaconSeal,
      beacons,
      consent,
      beaconKeys: keyring.use('beacons'),
      publicUrl: mailSettings.publicUrl,
      log,
    });

    await http.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Pledge API',
          version: '1',
          description: `The API of ${active.manifest.organization.name}'s privacy engine. Authenticate with "Authorization: Bearer pledge_..."; scopes: ${SCOPES.map((s) => `${s} (${SCOPE_DESCRIPTIONS[s]})`).join('; ')}.`,
        },
        components: {
          securitySchemes: {
            apiKey: { type: 'http', scheme: 'bearer', description: 'a key from `pledge keys create`' },
          },
        },
      },
    });
    const auth = requireApiKey(apiKeys);
    registerHealthRoutes(http, {
      db: database.kysely,
      dialect: database.dialect,
      policyVersion: active.manifest.policy.version,
      databaseTimeouts: config.databaseTimeouts,
    });
    registerManifestRoutes(http, { active, versions, auth, publicUrl: mailSettings.publicUrl });
    registerVaultRoutes(http, { vault, auth });
    registerCredentialRoutes(http, { credentials, auth });
    registerCollectRoutes(http, { collect, auth });
    registerShareRoutes(http, { share, auth });
    registerConsentRoutes(http, { consent, auth, systems });
    await registerBannerRoutes(http, {
      web,
      consent,
      systems,
      manifest: manifestInForce,
      publicUrl: config.publicUrl,
      receiptKeys: keyring.use('banner_receipts'),
    });
    registerWebhookRoutes(http, { webhooks, auth });
    // "Who got my data": the share capability's presenter over the log, for the privacy center
    // and for the export package.
    const disclosures = new DisclosuresView({
      audit,
      log: auditCapability.log,
      legal: legal.service,
      manifest: manifestInForce,
    });
    await registerConsentPages(http, {
      consent,
      vault,
      manifest: active.manifest,
      keyring,
      config,
      mail: transport,
      share,
      disclosures,
    });
    const pledgeRights = createPledgeRights({
      db,
      tombstones: tombstones.tombstones,
      vault,
      consent,
      disclosures,
      log: audit,
      audit,
      legal: legal.service,
      manifest: manifestInForce,
      jobs,
      keyring,
      holdRecheckMs: options.erasureHoldRecheckMs,
    });
    // The requests' steps, run by Pledge's services and the connectors, acting as the privacy office.
    registerRequestExecutors({
      db,
      registry: requests.registry,
      jobs,
      mail: transport,
      seal: new RequestSeal(keyring.use('requests'), keyring.use('request_links')),
      pledgeRights,
      consent,
      manifest: active.manifest,
      connectors: connectorSettings,
      system:
        active.manifest.systems.find((s) => s.key === 'privacy-office')?.key ??
        active.manifest.systems.find((s) => s.purposes.includes('legal-compliance'))?.key ??
        'privacy-office',
      organization: siteOf(active.manifest).name,
      publicUrl: mailSettings.publicUrl,
    });
    await registerOneClickRoutes(http, { mailEvents, manifest: active.manifest });
    await registerMailEventsRoutes(http, { mailEvents, suppression, auth, systems });
    registerCampaignRoutes(http, { campaigns: campaigns.service, auth });
    registerJobRoutes(http, { queue: jobs, auth });
    await registerBeaconRoutes(http, {
      beacons,
      web,
      mailOpen: analytics.mailOpen,
    });
    analytics.registerRoutes(http, { auth, systems });
    acknowledgements.registerRoutes(http, { auth });
    legal.registerRoutes(http, { auth });
    await pledgeRights.registerRoutes(http);
    await requests.registerRoutes(http, { auth });
    auditCapability.registerRoutes(http, { auth });
    http.get('/api/openapi.json', { schema: { hide: true } }, () => http.swagger());
    http.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect('/privacy'));
    await options.extraRoutes?.(http);
    await http.ready();

    const retention =
      config.retentionIntervalSeconds > 0
        ? new RetentionSchedule(new RetentionService({ db, records, audit }), {
            intervalMs: config.retentionIntervalSeconds * 1000,
            log,
          })
        : undefined;
    retention?.start();
    const inboundSmtp =
      config.inboundSmtpPort > 0
        ? // Loaded only when it listens: smtp-server is not needed by a server that receives no mail.
          new (await import('./comms/inbound.smtp.js')).InboundSmtpListener({
            port: config.inboundSmtpPort,
            host: config.inboundSmtpHost,
            mailDomain,
            mailEvents,
            log,
          })
        : undefined;
    await inboundSmtp?.listen();
    await campaigns.start(ctx);
    // The current hour's roll-up, salts and expiry (each run queues the next hour's).
    await analytics.start(ctx);
    // Rows of earlier versions become entries, then the integrator's chain of slots starts.
    await auditCapability.start(ctx);
    await requests.start(ctx);
    // Every job type is defined by now. Without a mail server, campaign sends wait for an instance
    // that has one.
    jobs.start({ skip: transport.enabled ? [] : [SEND_JOB, NOTICE_EMAIL_JOB, LEGAL_NOTICE_JOB] });

    let closed: Promise<void> | undefined;
    const openKeystoreDb = keystore;
    return {
      http,
      database,
      keystore: openKeystoreDb,
      active,
      apiKeys,
      keyring,
      dataKeys,
      vault,
      credentials,
      collect,
      consent,
      webhooks,
      jobs,
      audit,
      log: Object.assign(auditCapability.log, {
        listBySubject: audit.listBySubject.bind(audit),
        integrateNow: (c: Context) => auditCapability.integrateNow(c),
        integrator: auditCapability.integrator,
      }),
      subjects,
      retention,
      suppression,
      mailEvents,
      inboundSmtp,
      campaigns: campaigns.service,
      web,
      beacons,
      analytics,
      acknowledgements: acknowledgements.service,
      legal: legal.service,
      requests: requests.service,
      requestSteps: { registry: requests.registry, engine: requests.engine },
      share,
      pledgeRights,
      close: () =>
        (closed ??= (async () => {
          // The sweep in flight ends after its batch, requests in flight finish, then queued writes
          // commit, then the databases close.
          await retention?.stop();
          await http.close();
          await inboundSmtp?.close();
          // No new campaign message, then the queue's jobs in flight finish and are recorded.
          await campaigns.close();
          auditCapability.stop();
          await jobs.stop();
          await auditCapability.flush();
          await vault.drain();
          await beacons.drain();
          transport.close();
          await consent.stop();
          await acknowledgements.stop();
          if (ownsKeystore) await openKeystoreDb.close();
          if (ownsDatabase) await database.close();
        })()),
    };
  } catch (err) {
    if (ownsKeystore) await keystore?.close();
    if (ownsDatabase) await database.close();
    throw err;
  }
}
