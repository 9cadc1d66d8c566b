/**
 * Builds the acknowledgements part of the share capability for createApp: the service the share
 * gate asks for standing, the notices and their jobs, the routes, and the weighing of the manifest
 * that has just come into force (at start, given by app.ts, so the manifest capability never reads
 * the share tables).
 */
import type { FastifyInstance } from 'fastify';
import type { AuditAppender } from '../audit/audit.service.js';
import type { ActiveManifest, ManifestVersions } from '../manifest/manifest.service.js';
import type { Context } from '../platform/context.js';
import type { Database } from '../platform/db/database.js';
import type { Db } from '../platform/db/db.js';
import type { AuthHook } from '../platform/http/auth.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { MailMessage, SendMailResult } from '../platform/mail/mail.transport.js';
import type { UseKeys } from '../vault/use-keys.js';
import { RecipientNotices } from './acknowledgements.notices.js';
import { AcknowledgementsRepository } from './acknowledgements.repository.js';
import { registerAcknowledgementRoutes } from './acknowledgements.routes.js';
import { AcknowledgementService, type ActivateResult } from './acknowledgements.service.js';
import { ColumnSeal } from './sealed-columns.js';

/** What {@link createAcknowledgements} is given. */
export interface AcknowledgementsSetupDeps {
  db: Db;
  /** The database's notifications (how instances hear each other's acknowledgements and pauses). */
  notifications: Pick<Database, 'dialect' | 'channel' | 'listen'>;
  queue: JobQueue;
  audit: AuditAppender;
  active: ActiveManifest;
  versions: ManifestVersions;
  mail: { send(ctx: Context, message: MailMessage): Promise<SendMailResult> };
  /** `keyring.use('recipient_notices')`. */
  signingKeys: UseKeys;
  /** `keyring.use('share_signatories')`: seals who acknowledged. */
  signatoryKeys: UseKeys;
  publicUrl: string;
}

/** The built part. */
export interface Acknowledgements {
  service: AcknowledgementService;
  notices: RecipientNotices;
  /**
   * Seals signatories an earlier version left in plaintext, starts hearing other instances'
   * changes of standing, then weighs the manifest in force (once per activation, across instances).
   */
  start(ctx: Context): Promise<ActivateResult>;
  /** Stops hearing other instances' changes. */
  stop(): Promise<void>;
  registerRoutes(http: FastifyInstance, deps: { auth: AuthHook }): void;
}

/** Builds acknowledgements, their notices' job types and routes. */
export function createAcknowledgements(deps: AcknowledgementsSetupDeps): Acknowledgements {
  const repo = new AcknowledgementsRepository(deps.db, new ColumnSeal(deps.signatoryKeys));
  const notices = new RecipientNotices({
    repo,
    jobs: deps.queue,
    manifest: deps.active.manifest,
    mail: deps.mail,
    signingKeys: deps.signingKeys,
    publicUrl: deps.publicUrl,
  });
  const service = new AcknowledgementService({
    db: deps.db,
    repo,
    audit: deps.audit,
    notifications: deps.notifications,
    manifest: { manifest: deps.active.manifest, versionId: deps.active.version.id },
    versions: deps.versions,
    notices,
  });
  return {
    service,
    notices,
    start: async (ctx) => {
      await service.sealStored(ctx);
      await service.start();
      return service.activate(ctx, deps.active.version);
    },
    stop: () => service.stop(),
    registerRoutes: (http, { auth }) =>
      registerAcknowledgementRoutes(http, { acknowledgements: service, auth }),
  };
}
