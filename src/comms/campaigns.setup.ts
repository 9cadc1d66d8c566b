/**
 * Builds the campaign service from the application's parts (createApp calls it once): checks the
 * DKIM keys (a bad key stops the server at boot with every problem listed), opens the pooled SMTP
 * transport and the pipeline, and says what `serve` does with them.
 */
import { createHmac } from 'node:crypto';
import type { ConsentService } from '../consent/consent.service.js';
import { deriveLinkTokenKey } from '../consent/link-tokens.js';
import type { ActiveManifest } from '../manifest/manifest.service.js';
import type { ManifestVersionRepository } from '../manifest/manifest.repository.js';
import type { Config } from '../platform/config.js';
import type { Context } from '../platform/context.js';
import type { Database } from '../platform/db/database.js';
import type { Keyring } from '../vault/keyring.js';
import type { Vault } from '../vault/vault.service.js';
import type { RunnerLogger } from './campaign.runner.js';
import { CampaignService, type PolicyChangeNoticeResult } from './campaigns.service.js';
import { loadDkimKeys } from './dkim.js';
import { mailSettingsOf } from './mail.settings.js';
import { MailTransport } from './mail.transport.js';
import { MessagePipeline } from './message.pipeline.js';
import type { SuppressionService } from './suppression.service.js';

/** What {@link createCampaigns} uses. */
export interface CampaignsSetupDeps {
  config: Config;
  database: Pick<Database, 'db'>;
  active: ActiveManifest;
  versions: ManifestVersionRepository;
  consent: ConsentService;
  vault: Vault;
  suppression: SuppressionService;
  keyring: Keyring;
  log: RunnerLogger;
}

/** The campaign service with what `serve` starts and stops. */
export interface Campaigns {
  service: CampaignService;
  /**
   * What `serve` does at start: queues the policy-change notice of a new manifest version (once per
   * version) and, when mail is configured, starts the runner.
   */
  start(ctx: Context): Promise<PolicyChangeNoticeResult>;
  /** Stops the runner (messages in flight finish) and closes the SMTP connections. */
  close(): Promise<void>;
}

/** Builds the campaign service; throws a ConfigError when a DKIM key is unusable. */
export function createCampaigns(deps: CampaignsSetupDeps): Campaigns {
  const { config, active } = deps;
  const settings = mailSettingsOf(config, active.manifest);
  const dkim = loadDkimKeys(config.dkim, settings.mailDomain);
  const concurrency = Math.max(1, Math.min(8, config.mailRatePerSecond));
  const transport = new MailTransport({
    smtpUrl: config.smtpUrl,
    from: settings.from,
    log: deps.log,
    pool: concurrency,
  });
  const pipeline = new MessagePipeline({
    manifest: active.manifest,
    consent: deps.consent,
    vault: deps.vault,
    suppression: deps.suppression,
    linkKey: deriveLinkTokenKey(deps.keyring.indexKey),
    messageIdKey: createHmac('sha256', deps.keyring.indexKey).update('pledge message ids v1').digest(),
    settings,
    dkim,
  });
  const service = new CampaignService({
    db: deps.database.db,
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
      bounceAddress: settings.bounceAddress,
      log: deps.log,
      ratePerSecond: config.mailRatePerSecond,
      concurrency,
    },
  });
  return {
    service,
    async start(ctx) {
      const notice = await service.notifyPolicyChange(ctx);
      if (notice.queued) {
        deps.log.info(
          { campaign: notice.campaignId, recipients: notice.recipients },
          'the manifest changed materially: a policy-change notice is queued',
        );
      }
      if (transport.enabled) service.runner.start();
      else if (notice.queued) {
        deps.log.warn({ campaign: notice.campaignId }, 'the policy-change notice waits for PLEDGE_SMTP_URL');
      }
      return notice;
    },
    async close() {
      await service.runner.stop();
      transport.close();
    },
  };
}
