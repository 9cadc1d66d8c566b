/**
 * The manifest in force. At start the server loads and checks the manifest, refuses to serve one
 * that breaks its own pledges, records the version (kept forever, by hash), and renders the policy
 * once: the pages are pure functions of the manifest, so they never change while it does not.
 */
import { readFile } from 'node:fs/promises';
import type { Context } from '../platform/context.js';
import { PledgeError } from '../platform/errors.js';
import { checkManifest } from './manifest.checker.js';
import { parseManifest } from './manifest.loader.js';
import type {
  ManifestActivation,
  ManifestVersion,
  ManifestVersionRepository,
} from './manifest.repository.js';
import { renderPolicyHtml, renderPolicyMarkdown } from './manifest.renderer.js';
import type { Manifest } from './manifest.schema.js';
import { formatLocation, sortProblems } from './problems.js';

/** The manifest in force, its recorded version and its rendered policy. */
export interface ActiveManifest {
  manifest: Manifest;
  version: ManifestVersion;
  /** The rendered policy, computed once. */
  policy: { html: string; markdown: string };
}

/** What {@link activateManifest} needs. */
export interface ActivateManifestOptions {
  file: string;
  versions: ManifestVersionRepository;
}

/**
 * Loads, checks and records the manifest at `file`. Throws a PledgeError `manifest.invalid` whose
 * message lists every problem (file:line:column) when the manifest is not clean: a server must not
 * make promises its own manifest breaks.
 */
export async function activateManifest(
  ctx: Context,
  options: ActivateManifestOptions,
): Promise<ActiveManifest> {
  let source: string;
  try {
    source = await readFile(options.file, 'utf8');
  } catch (err) {
    throw new PledgeError(
      'manifest.unreadable',
      `cannot read the manifest ${options.file}: ${(err as Error).message}`,
      {
        cause: err,
        details: { file: options.file },
      },
    );
  }
  const loaded = parseManifest(source, options.file);
  const problems = loaded.manifest
    ? checkManifest(loaded.manifest, loaded.locator).problems
    : loaded.problems;
  if (!loaded.manifest || problems.length > 0) {
    const lines = sortProblems(problems).map(
      (p) => `  ${formatLocation(p.location)}: ${p.code}: ${p.message}`,
    );
    throw new PledgeError(
      'manifest.invalid',
      `the manifest ${options.file} has ${problems.length} problem(s); fix them (see \`pledge check\`) before serving:\n${lines.join('\n')}`,
      { details: { file: options.file, problems: problems.length } },
    );
  }
  const manifest = loaded.manifest;
  const { id } = await options.versions.recordInForce(ctx, {
    hash: loaded.hash,
    version: manifest.policy.version,
    effective: manifest.policy.effective,
    source,
    at: ctx.clock.now(),
  });
  const version = await options.versions.getById(ctx, id);
  if (!version)
    throw new PledgeError(
      'manifest.version_missing',
      `manifest version ${id} vanished after it was recorded`,
    );
  return {
    manifest,
    version,
    policy: { html: renderPolicyHtml(manifest), markdown: renderPolicyMarkdown(manifest) },
  };
}

/**
 * Every manifest that has been in force, as other capabilities and the routes read them: the
 * policy-change notice compares the one in force with the one before it.
 */
export class ManifestVersions {
  readonly #repo: ManifestVersionRepository;

  constructor(repo: ManifestVersionRepository) {
    this.#repo = repo;
  }

  /** Every version, the one in force first, then newest first. */
  list(ctx: Context): Promise<ManifestVersion[]> {
    return this.#repo.list(ctx);
  }

  /** The version with this id (as records cite it), or `undefined`. */
  getById(ctx: Context, id: number): Promise<ManifestVersion | undefined> {
    return this.#repo.getById(ctx, id);
  }

  /** Every time a version came into force (rollbacks included), oldest first. */
  activations(ctx: Context): Promise<ManifestActivation[]> {
    return this.#repo.activations(ctx);
  }
}
