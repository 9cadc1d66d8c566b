/**
 * The pages people use to make choices: the preference center and the unsubscribe page.
 * (Being built: see issue 4.)
 */
import type { FastifyInstance } from 'fastify';
import type { Manifest } from '../manifest/manifest.schema.js';
import type { Config } from '../platform/config.js';
import type { Keyring } from '../vault/keyring.js';
import type { Vault } from '../vault/vault.service.js';
import type { ConsentService } from './consent.service.js';

/** What the pages use. */
export interface ConsentPagesDeps {
  consent: ConsentService;
  vault: Vault;
  manifest: Manifest;
  keyring: Keyring;
  config: Pick<Config, 'publicUrl' | 'smtpUrl' | 'mailFrom'>;
}

/** Registers the preference center and the unsubscribe page. */
export async function registerConsentPages(_http: FastifyInstance, _deps: ConsentPagesDeps): Promise<void> {
  // Filled in by the pages work of issue 4.
}
