/**
 * The list of Pledge's capabilities, made here, above them: the platform knows none of them, and each
 * capability owns its tables (migrations and table types in its own folder). The migrator is handed
 * the merged list; names sort into the order they run, whichever capability they come from, so a
 * database made by an earlier version migrates with nothing to redo.
 */
import type { Migration } from 'kysely';
import { auditMigrations } from './audit/audit.migrations.js';
import type { AuditTables } from './audit/audit.tables.js';
import type { CampaignTables } from './comms/campaigns.tables.js';
import type { SuppressionTables } from './comms/suppression.tables.js';
import type { ConsentTables } from './consent/consent.tables.js';
import type { WebhookTables } from './consent/webhooks.tables.js';
import type { ManifestTables } from './manifest/manifest.tables.js';
import type { ApiKeyTables } from './platform/auth/api-keys.tables.js';
import type { BeaconTables } from './tracking/beacons.tables.js';
import type { AnalyticsTables } from './tracking/analytics.tables.js';
import type { JobTables } from './platform/jobs/jobs.tables.js';
import type { LegalTables } from './share/legal.tables.js';
import type { ShareTables } from './share/share.tables.js';
import type { AcknowledgementTables } from './share/acknowledgements.tables.js';
import type { VaultTables } from './vault/vault.tables.js';
import type { TombstoneTables } from './rights/tombstones.tables.js';
import { tombstoneMigrations } from './rights/tombstones.migrations.js';
import type { ExportTables } from './rights/export.tables.js';
import { exportMigrations } from './rights/export.migrations.js';
import type { RightsTables } from './rights/requests.tables.js';
import { rightsMigrations } from './rights/requests.migrations.js';
import { campaignMigrations } from './comms/campaigns.migrations.js';
import { suppressionMigrations } from './comms/suppression.migrations.js';
import { consentMigrations } from './consent/consent.migrations.js';
import { webhookMigrations } from './consent/webhooks.migrations.js';
import { manifestMigrations } from './manifest/manifest.migrations.js';
import { apiKeyMigrations } from './platform/auth/api-keys.migrations.js';
import { collectMigrations, type NamedMigration } from './platform/db/migrations.js';
import { jobMigrations } from './platform/jobs/jobs.migrations.js';
import { vaultMigrations } from './vault/vault.migrations.js';
import { beaconMigrations } from './tracking/beacons.migrations.js';
import { analyticsMigrations } from './tracking/analytics.migrations.js';
import { legalMigrations } from './share/legal.migrations.js';
import { shareMigrations } from './share/share.migrations.js';
import { acknowledgementMigrations } from './share/acknowledgements.migrations.js';

/** A capability as the migrator sees it: a name (for messages) and its migrations. */
export interface CapabilitySchema {
  name: string;
  migrations: Record<string, Migration>;
}

/** Every capability with tables in the main database, with its migrations. */
export const CAPABILITIES: readonly CapabilitySchema[] = [
  { name: 'manifest', migrations: manifestMigrations },
  { name: 'api-keys', migrations: apiKeyMigrations },
  { name: 'jobs', migrations: jobMigrations },
  { name: 'vault', migrations: vaultMigrations },
  { name: 'audit', migrations: auditMigrations },
  { name: 'consent', migrations: consentMigrations },
  { name: 'suppression', migrations: suppressionMigrations },
  { name: 'webhooks', migrations: webhookMigrations },
  { name: 'campaigns', migrations: campaignMigrations },
  { name: 'beacons', migrations: beaconMigrations },
  { name: 'analytics', migrations: analyticsMigrations },
  { name: 'legal-requests', migrations: legalMigrations },
  { name: 'share', migrations: shareMigrations },
  { name: 'acknowledgements', migrations: acknowledgementMigrations },
  { name: 'erasure-tombstones', migrations: tombstoneMigrations },
  { name: 'export-deliveries', migrations: exportMigrations },
  { name: 'requests', migrations: rightsMigrations },
];

/** All of the main database's migrations, in the order they run. */
export const MIGRATIONS: readonly NamedMigration[] = collectMigrations(
  ...CAPABILITIES.map((c) => c.migrations),
);

/**
 * Every table of the main database, for what looks at the whole of it (tests that check nothing
 * personal is at rest). No capability's code uses it: each views the database through its own.
 */
export type Tables = ManifestTables &
  ApiKeyTables &
  JobTables &
  VaultTables &
  AuditTables &
  ConsentTables &
  WebhookTables &
  SuppressionTables &
  CampaignTables &
  BeaconTables &
  AnalyticsTables &
  LegalTables &
  ShareTables &
  AcknowledgementTables &
  TombstoneTables &
  ExportTables &
  RightsTables;
