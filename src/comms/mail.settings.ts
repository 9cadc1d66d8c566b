/**
 * The addresses and names Pledge's mail uses, from the configuration with the manifest's defaults,
 * worked out once at boot.
 */
import type { Manifest } from '../manifest/manifest.schema.js';
import type { Config } from '../platform/config.js';

/** The settings of outgoing mail. */
export interface MailSettings {
  /** The From header: the organization's name and the From address. */
  from: string;
  /** The domain of List-Id, the mailto unsubscribe address and the return path (`bounces+TOKEN@`). */
  mailDomain: string;
  /** Where people open the pages linked from mail (no trailing slash). */
  publicUrl: string;
}

/** The mail domain: PLEDGE_MAIL_DOMAIN, or the host of the manifest's organization website. */
export function mailDomainOf(config: Pick<Config, 'mailDomain'>, manifest: Manifest): string {
  return config.mailDomain ?? new URL(manifest.organization.website).hostname.toLowerCase();
}

/** The settings of outgoing mail from the configuration and the manifest. */
export function mailSettingsOf(
  config: Pick<Config, 'mailDomain' | 'mailFrom' | 'publicUrl'>,
  manifest: Manifest,
): MailSettings {
  const mailDomain = mailDomainOf(config, manifest);
  const address = config.mailFrom ?? manifest.organization.privacy_contact;
  const name = manifest.organization.name.replace(/["\\\r\n]/g, '');
  return {
    from: `"${name}" <${address}>`,
    mailDomain,
    publicUrl: config.publicUrl,
  };
}
