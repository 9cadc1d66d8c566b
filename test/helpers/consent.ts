/** A consent service over a test vault's database, built as createApp builds it. */
import { ConsentRepository } from '../../src/consent/consent.repository.js';
import { ConsentService, type PropagateChanges } from '../../src/consent/consent.service.js';
import { LinkGenerationsRepository } from '../../src/consent/link-generations.repository.js';
import type { Manifest } from '../../src/manifest/manifest.schema.js';
import type { TestVault } from './vault.js';

/** A consent service over `t`'s database; `propagate` runs in each change's transaction. */
export function newConsentService(
  t: TestVault,
  options: { propagate?: PropagateChanges; manifest?: Manifest } = {},
): ConsentService {
  return new ConsentService({
    db: t.database.db,
    repo: new ConsentRepository(t.database.db),
    linkGenerations: new LinkGenerationsRepository(t.database.db),
    subjects: t.subjects,
    audit: t.audit,
    notifications: t.database,
    manifest: { manifest: options.manifest ?? t.active.manifest, versionId: t.active.version.id },
    evidenceSecret: t.keyring.use('evidence'),
    ...(options.propagate ? { propagate: options.propagate } : {}),
  });
}
