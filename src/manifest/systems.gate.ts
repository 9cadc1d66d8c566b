/**
 * The system gate: a caller acts for a system the manifest declares, and a system may use only its
 * purposes, submit only through its sources and read only its categories. The purpose or source a
 * request names is checked against the system its key is bound to, never believed: a marketing
 * tool's key asking `?purpose=provide-service` is refused, not served.
 *
 * Who is held to what:
 * - a context with a `system` (an API key of a system, a CLI command given `--system`, a job that
 *   system's action enqueued): that system's declarations;
 * - an operator key (`api_key` actor, no system): nothing for a person, ever;
 * - Pledge's own work (`job`, `cli` without `--system`) and a person's own signed link: not a
 *   system's call, so not narrowed here (the consent gates still apply to them).
 */
import { systemRequired } from '../platform/auth/api-keys.service.js';
import type { Context } from '../platform/context.js';
import { ForbiddenError } from '../platform/errors.js';
import type { Manifest, System } from './manifest.schema.js';

/** Where the gate reads the manifest in force (it may be replaced while the server runs). */
export interface ManifestSource {
  readonly manifest: Manifest;
}

/** The categories a system may use for one purpose: `undefined` for all of the purpose's. */
export function systemCategoriesFor(system: System, purposeKey: string): readonly string[] | undefined {
  if (system.declarations !== undefined) {
    return system.declarations.find((d) => d.purpose === purposeKey)?.categories;
  }
  return system.categories;
}

/** Checks calls against the manifest's systems. */
export class SystemGate {
  readonly #manifest: ManifestSource;
  /** The manifest's systems and purposes by key, made once per manifest (every API call asks). */
  #index: { of: Manifest; systems: Map<string, System>; purposes: Set<string> } | undefined;

  constructor(manifest: ManifestSource) {
    this.#manifest = manifest;
  }

  #indexed(): { systems: Map<string, System>; purposes: Set<string> } {
    const manifest = this.#manifest.manifest;
    if (this.#index?.of !== manifest) {
      this.#index = {
        of: manifest,
        systems: new Map(manifest.systems.map((s) => [s.key, s])),
        purposes: new Set(manifest.purposes.map((p) => p.key)),
      };
    }
    return this.#index;
  }

  /**
   * The system `ctx` acts for, or `undefined` for a call that is not a system's (see the file's
   * comment). Throws `auth.system_required` for an operator key and `auth.system_unknown` for a
   * system the manifest in force no longer declares.
   */
  systemOf(ctx: Context): System | undefined {
    if (ctx.system === undefined) {
      if (ctx.actor.kind === 'api_key') throw systemRequired(ctx.actor.id);
      return undefined;
    }
    const system = this.#indexed().systems.get(ctx.system);
    if (system === undefined) {
      throw new ForbiddenError(
        'auth.system_unknown',
        `this key acts for system "${ctx.system}", which the manifest in force does not declare; ` +
          'declare it under systems:, or use a key of a declared system',
        { system: ctx.system },
      );
    }
    return system;
  }

  /**
   * Throws `auth.purpose_not_allowed` unless the system of `ctx` serves `purposeKey` (details: the
   * system, the purpose asked, the purposes it has). Returns the categories it may use for it
   * (`undefined`: all of the purpose's; also for calls that are no system's; none for a purpose
   * the manifest does not declare, which the caller's service refuses).
   */
  requirePurpose(ctx: Context, purposeKey: string): readonly string[] | undefined {
    const system = this.systemOf(ctx);
    if (system === undefined) return undefined;
    // A purpose the manifest lacks is the caller's mistake, not a want of permission: the service
    // it calls refuses it as unknown (400 or 404, listing the purposes).
    if (!this.#indexed().purposes.has(purposeKey)) return [];
    if (!system.purposes.includes(purposeKey)) {
      throw new ForbiddenError(
        'auth.purpose_not_allowed',
        `system "${system.key}" may not act for purpose "${purposeKey}"; it serves ${list(system.purposes)}. ` +
          `Use a key of a system that serves "${purposeKey}", or declare that purpose for "${system.key}" in the manifest`,
        { system: system.key, purpose: purposeKey, purposes: [...system.purposes] },
      );
    }
    return systemCategoriesFor(system, purposeKey);
  }

  /** Throws `auth.source_not_allowed` unless the system of `ctx` submits to collection point `sourceKey`. */
  requireSource(ctx: Context, sourceKey: string): void {
    const system = this.systemOf(ctx);
    if (system === undefined || system.sources.includes(sourceKey)) return;
    throw new ForbiddenError(
      'auth.source_not_allowed',
      `system "${system.key}" may not submit to collection point "${sourceKey}"; it submits to ` +
        `${system.sources.length === 0 ? 'none' : list(system.sources)}. Add "${sourceKey}" to its sources in the manifest, or use the key of the system that collects there`,
      { system: system.key, source: sourceKey, sources: [...system.sources] },
    );
  }

  /**
   * Whether `ctx` may see what concerns a purpose: every purpose for a call that is no system's,
   * the system's own otherwise (a consent view lists only those; the others are not its business).
   */
  purposeVisible(ctx: Context): (purposeKey: string) => boolean {
    const system = this.systemOf(ctx);
    return system === undefined ? () => true : (key) => system.purposes.includes(key);
  }
}

function list(keys: readonly string[]): string {
  return keys.map((k) => `"${k}"`).join(', ');
}
