/**
 * The Pledge side of data-subject requests, built from what the app gives: tombstones (made first,
 * since collection asks them), legal holds, the export package and erasure. The request workflow
 * (src/rights/requests.*) calls these services as its steps.
 */
import type { AuditAppender, AuditEvent } from '../audit/audit.service.js';
import type { ConsentEventView, ConsentHolder } from '../consent/consent.types.js';
import type { Manifest } from '../manifest/manifest.schema.js';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { DisclosuresModel } from '../share/disclosures.view.js';
import type { Keyring } from '../vault/keyring.js';
import type { Identifiers } from '../vault/vault.types.js';
import { ErasureService, type ErasureServiceDeps } from './erasure.service.js';
import type { FastifyInstance } from 'fastify';
import { ExportDeliveries, type StoreExportOptions, type StoredExportResult } from './export.delivery.js';
import { ExportRepository } from './export.repository.js';
import { registerExportRoutes } from './export.routes.js';
import { ExportService, type CollectPledgeDataOptions, type ExportServiceDeps } from './export.service.js';
import { writeExportZip } from './export.zip.js';
import { LegalHolds, type LegalRequestsForHolds } from './holds.js';
import { TombstonesRepository } from './tombstones.repository.js';
import { Tombstones } from './tombstones.js';

/** The tombstones and how collection asks them (made before the collect gate). */
export function createTombstones(
  db: Db,
  keyring: Keyring,
  vault: { hashIdentifiers(identifiers: Identifiers): Array<{ kind: string; hash: string }> },
): { tombstones: Tombstones; recognize(ctx: Context, identifiers: Identifiers): Promise<string[]> } {
  const tombstones = new Tombstones(new TombstonesRepository(db), keyring.use('tombstones'));
  return {
    tombstones,
    recognize: (ctx, identifiers) => tombstones.recognize(ctx, vault.hashIdentifiers(identifiers)),
  };
}

/** What {@link createPledgeRights} is given. */
export interface PledgeRightsDeps {
  db: Db;
  tombstones: Tombstones;
  vault: ExportServiceDeps['vault'] & ErasureServiceDeps['vault'];
  consent: { history(ctx: Context, holder: ConsentHolder): Promise<ConsentEventView[]> };
  disclosures: { disclosuresOf(ctx: Context, subjectId: string): Promise<DisclosuresModel> };
  log: { listBySubject(ctx: Context, subjectId: string): Promise<AuditEvent[]> };
  audit: AuditAppender;
  legal: LegalRequestsForHolds;
  manifest: { readonly manifest: Manifest };
  jobs: Pick<JobQueue, 'define'>;
  keyring: Keyring;
  holdRecheckMs?: number | undefined;
}

/** The Pledge-side services of data-subject requests. */
export interface PledgeRights {
  tombstones: Tombstones;
  holds: LegalHolds;
  exports: ExportService;
  /** Sealed exports behind signed links (GET shows, POST downloads). */
  deliveries: ExportDeliveries;
  erasure: ErasureService;
  /**
   * The access step end to end: the person's package written as a zip, stored sealed, and the path
   * of its link (`/requests/export/…`, after the public URL) that the workflow sends the person.
   */
  deliverExport(
    ctx: Context,
    subjectId: string,
    options?: CollectPledgeDataOptions & StoreExportOptions,
  ): Promise<StoredExportResult>;
  /** Registers the link's public page and download. */
  registerRoutes(http: FastifyInstance): Promise<void>;
}

/** Builds {@link PledgeRights}. */
export function createPledgeRights(deps: PledgeRightsDeps): PledgeRights {
  const holds = new LegalHolds(deps.legal);
  const exports = new ExportService({
    vault: deps.vault,
    consent: deps.consent,
    disclosures: deps.disclosures,
  });
  const deliveries = new ExportDeliveries({
    db: deps.db,
    repo: new ExportRepository(deps.db),
    audit: deps.audit,
    jobs: deps.jobs,
    linkKeys: deps.keyring.use('export_links'),
    fileKeys: deps.keyring.use('export_files'),
  });
  return {
    tombstones: deps.tombstones,
    holds,
    exports,
    deliveries,
    async deliverExport(ctx, subjectId, options = {}) {
      const pkg = await exports.collectPledgeData(ctx, subjectId, options);
      return deliveries.store(ctx, subjectId, (out) => writeExportZip(pkg, out), options);
    },
    registerRoutes: (http) => registerExportRoutes(http, { deliveries, manifest: deps.manifest }),
    erasure: new ErasureService({
      db: deps.db,
      vault: deps.vault,
      log: deps.log,
      audit: deps.audit,
      tombstones: deps.tombstones,
      holds,
      manifest: deps.manifest,
      jobs: deps.jobs,
      signingKeys: deps.keyring.use('recipient_notices'),
      holdRecheckMs: deps.holdRecheckMs,
    }),
  };
}
