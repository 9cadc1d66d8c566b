/**
 * What leaves the server about manifests. The manifest is the published policy, so its content is
 * public to holders of `manifest:read`; the stored YAML source is not repeated in lists.
 */
import type { ManifestVersion } from './manifest.repository.js';
import type { Manifest } from './manifest.schema.js';

/** A manifest version as the API shows it. */
export function presentVersion(v: ManifestVersion) {
  return {
    id: v.id,
    hash: v.hash,
    policyVersion: v.version,
    effective: v.effective,
    firstSeenAt: v.firstSeenAt.toISOString(),
    inForceFrom: v.inForceFrom.toISOString(),
  };
}

/** The manifest in force with its version. */
export function presentActiveManifest(manifest: Manifest, version: ManifestVersion) {
  return { version: presentVersion(version), manifest };
}
