/**
 * Until acknowledgements are recorded (acknowledgements.service.ts, which replaces this in
 * app.ts), a recipient's standing follows the manifest alone: a processor or affiliate with an
 * `agreement` stands by the policy version in force (the rule acknowledgements keep for an existing
 * deployment on upgrade); one without has acknowledged nothing. And until legal requests are
 * recorded (legal.service.ts), none is approved: an authority receives nothing.
 */
import type { ManifestSource } from '../manifest/systems.gate.js';
import type { Context } from '../platform/context.js';
import type {
  LegalApprovals,
  LegalScope,
  RecipientStanding,
  RecipientStandingResult,
} from './share.types.js';

/** A recipient's standing from its agreement in the manifest in force. */
export class AgreementStanding implements RecipientStanding {
  readonly #manifest: ManifestSource;

  constructor(manifest: ManifestSource) {
    this.#manifest = manifest;
  }

  /** Stands by the version in force when the manifest gives the recipient an agreement. */
  standingOf(_ctx: Context, recipient: string): Promise<RecipientStandingResult> {
    const { manifest } = this.#manifest;
    const version = manifest.policy.version;
    const r = manifest.recipients.find((x) => x.key === recipient);
    if (r?.agreement !== undefined) return Promise.resolve({ ok: true, acknowledgedVersion: version });
    return Promise.resolve({
      ok: false,
      code: 'share.acknowledgement_required',
      policyVersion: version,
      message: `recipient "${recipient}" has not acknowledged the policy in force (version ${version}) and has no agreement in the manifest; record its acknowledgement (pledge recipients acknowledge ${recipient} --version ${version} --by NAME) or add its agreement: { reference, signed }`,
    });
  }
}

/** No legal request is approved (until legal requests are recorded). */
export const NO_LEGAL_APPROVALS: LegalApprovals = {
  approvedScopeOf: (): Promise<LegalScope | undefined> => Promise.resolve(undefined),
};
