/**
 * Builds the campaign service from the application's parts (createApp calls it once, with the DKIM
 * keys it checked at boot, which service mail is signed with too): builds the pipeline over Pledge's
 * one mail transport, and says what `serve` does with them.
 */
import type { ConsentService } from '../consent/consent.service.js';
import { deriveLinkTokenKeys } from '../consent/link-tokens.js';
import type { AuditAppender } from '../audit/audit.service.js';
import type { ActiveManifest, ManifestVersions } from '../manifest/manifest.service.js';
import type { Config } from '../platform/config.js';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import { JobQueue } from '../platform/jobs/jobs.service.js';
import type { MailTransport } from '../platform/mail/mail.transport.js';
import type { Keyring } from '../vault/keyring.js';
import type { Vault } from '../vault/vault.service.js';
import type { RunnerLogger } from './campaign.runner.js';
import { CampaignsRepository } from './campaigns.repository.js';
import {
  CampaignService,
  type CampaignSubjects,
  type PolicyChangeNoticeResult,
} from './campaigns.service.js';
import type { DkimKeys } from './dkim.js';
import { mailSettingsOf } from './mail.settings.js';
import { MessagePipeline, type MailShare, type MessageExtras } from './message.pipeline.js';
import type { SuppressionService } from './suppression.service.js';
import type { UseKeys } from '../vault/use-keys.js';

/** What {@link createCampaigns} uses. */
export interface CampaignsSetupDeps {
  config: Config;
  db: Db;
  /** The application's job queue. */
  queue: JobQueue;
  /** Pledge's one mail transport (pooled for campaigns). */
  transport: MailTransport;
  active: ActiveManifest;
  versions: ManifestVersions;
  consent: ConsentService;
  vault: Vault;
  subjects: CampaignSubjects;
  suppression: SuppressionService;
  audit: AuditAppender;
  keyring: Keyring;
  /** The secret the return tokens of Message-IDs and return paths are derived from (return-tokens.ts). */
  returnTokenSecret: Buffer | UseKeys;
  /** The DKIM keys (loadDkimKeys), checked at boot; absent: campaigns refuse to start. */
  dkim: DkimKeys | undefined;
  log: RunnerLogger;
  /** What marketing messages carry besides their template (the open pixel of src/tracking/). */
  extras?: MessageExtras | undefined;
  /** The share gate: every message is a disclosure to the e-mail delivery provider (message.pipeline.ts). */
  share?: MailShare | undefined;
}

/** The campaign service with what `serve` starts and stops. */
export interface Campaigns {
  service: CampaignService;
  /**
   * What `serve` does at start: queues the policy-change notice of a new manifest version (once per
   * version).
   */
  start(ctx: Context): Promise<PolicyChangeNoticeResult>;
  /** Stops the runner (messages in flight finish); the transport is the application's to close. */
  close(): Promise<void>;
}

/** Builds the campaign service. */
export function createCampaigns(deps: CampaignsSetupDeps): Campaigns {
  const { config, active } = deps;
  const settings = mailSettingsOf(config, active.manifest);
  const { dkim } = deps;
  const concurrency = mailConcurrency(config);
  const { transport } = deps;
  const pipeline = new MessagePipeline({
    manifest: active.manifest,
    consent: deps.consent,
    vault: deps.vault,
    suppression: deps.suppression,
    linkKey: deriveLinkTokenKeys(deps.keyring.use('links')),
    returnTokenSecret: deps.returnTokenSecret,
    settings,
    dkim,
    extras: deps.extras,
    share: deps.share,
  });
  const service = new CampaignService({
    db: deps.db,
    repo: new CampaignsRepository(deps.db),
    subjects: deps.subjects,
    audit: deps.audit,
    queue: deps.queue,
    createQueue: ({ clock }) => new JobQueue({ db: deps.db, ...(clock ? { clock } : {}), log: deps.log }),
    manifest: active.manifest,
    versions: deps.versions,
    currentVersion: active.version,
    publicUrl: settings.publicUrl,
    mailEnabled: transport.enabled,
    signed: dkim !== undefined,
    runner: {
      pipeline,
      transport,
      suppression: deps.suppression,
      log: deps.log,
      ratePerSecond: config.mailRatePerSecond,
      concurrency,
      recordDisclosures: (group, items) => deps.audit.appendEach(group, items),
    },
  });
  return {
    service,
    async start(ctx) {
      const notice = await service.notifyPolicyChange(ctx);
      if (notice.queued) {
        deps.log.info(
          { campaign: notice.campaignId },
          'the manifest changed materially: a policy-change notice is queued',
        );
      }
      // The application's job queue runs the sends (it leaves them alone without a mail server).
      if (!transport.enabled && notice.queued) {
        deps.log.warn({ campaign: notice.campaignId }, 'the policy-change notice waits for PLEDGE_SMTP_URL');
      }
      return notice;
    },
    close() {
      service.runner.halt();
      return Promise.resolve();
    },
  };
}

/** SMTP connections and messages in flight at once: up to 8, never more than the rate allows. */
export function mailConcurrency(config: Pick<Config, 'mailRatePerSecond'>): number {
  return Math.max(1, Math.min(8, config.mailRatePerSecond));
}
