/**
 * "Who got my data": what a person is shown of the disclosures of their data, from the transparency
 * log (the share gate's `share.disclose` and `share.pass_through` entries, found by the person's
 * subject commitments), in the words of the manifest, each with its inclusion proof at a size that
 * has a signed checkpoint.
 *
 * A disclosure under a legal request whose notice is prohibited is left out altogether, and so is
 * one whose request is not found (it is never shown before its notice may be): the page is built
 * from the shown entries only, so nothing on it (a count, a gap, a proof) hints at what is held.
 * The consent capability's privacy center asks this presenter through {@link DisclosuresReader}; it
 * reads no share or audit table itself.
 */
import type { AuditEvent } from '../audit/audit.service.js';
import type { StoredCheckpoint } from '../audit/log.repository.js';
import type { InclusionProofResult } from '../audit/log.service.js';
import type { Manifest, RecipientKind } from '../manifest/manifest.schema.js';
import { lowerFirst } from '../manifest/policy.wording.js';
import { Taxonomy } from '../manifest/taxonomy.js';
import type { Context } from '../platform/context.js';

/** The log entry actions that are a disclosure of a person's data. */
const DISCLOSURE_ACTIONS: ReadonlySet<string> = new Set(['share.disclose', 'share.pass_through']);

/** One disclosure as the page shows it. */
export interface DisclosureItem {
  /** The entry's leaf index in the log; absent while the integrator has not reached it. */
  leaf: number | undefined;
  /** When the data left (the entry's time). */
  at: Date;
  recipientName: string;
  recipientKind: RecipientKind | 'unknown';
  purposeName: string;
  /**
   * The categories that left, in words ("e-mail address"); empty when the recipient was answered
   * without any (the person had none of what was asked for on file): still shown, it was recorded.
   */
  categories: string[];
  /** `ready`: covered by a signed checkpoint, its proof can be downloaded; `pending`: not yet. */
  proof: 'ready' | 'pending';
}

/** What the "who got my data" page shows. */
export interface DisclosuresModel {
  /** Newest first. */
  items: DisclosureItem[];
  /** The log's verifier key (public), for the "how to check this" text. */
  verifierKey: string;
  /** The checkpoints' origin line. */
  origin: string;
}

/** An inclusion proof as the proof API answers it, with the checkpoint of its size. */
export interface DisclosureProof {
  index: number;
  size: number;
  entry: string;
  proof: string[];
  checkpoint: string;
}

/** What the privacy center asks (the narrow interface the consent pages are given). */
export interface DisclosuresReader {
  /** The disclosures of `subjectId`'s data the person may see now. */
  disclosuresOf(ctx: Context, subjectId: string): Promise<DisclosuresModel>;
  /**
   * The inclusion proof of leaf `leaf` when it is one of the disclosures `subjectId` may see now
   * and a signed checkpoint covers it; otherwise `undefined` (whoever else's leaf it is).
   */
  proofOf(ctx: Context, subjectId: string, leaf: number): Promise<DisclosureProof | undefined>;
}

/** What {@link DisclosuresView} reads. */
export interface DisclosuresViewDeps {
  audit: { listBySubject(ctx: Context, subjectId: string): Promise<AuditEvent[]> };
  log: {
    readonly verifierKey: string;
    readonly origin: string;
    latestCheckpoint(ctx: Context): Promise<StoredCheckpoint | undefined>;
    inclusion(ctx: Context, index: number, size: number): Promise<InclusionProofResult>;
  };
  legal: {
    disclosuresOf(
      ctx: Context,
      subjectId: string,
    ): Promise<Array<{ requestId: string; heldUntil: Date | 'indefinite' | undefined }>>;
  };
  manifest: { readonly manifest: Manifest };
}

/** The presenter of the "who got my data" page. */
export class DisclosuresView implements DisclosuresReader {
  readonly #deps: DisclosuresViewDeps;

  constructor(deps: DisclosuresViewDeps) {
    this.#deps = deps;
  }

  /** The entries of `subjectId` that are disclosures the person may see now, oldest first. */
  async #visibleEntries(ctx: Context, subjectId: string): Promise<AuditEvent[]> {
    const events = (await this.#deps.audit.listBySubject(ctx, subjectId)).filter((e) =>
      DISCLOSURE_ACTIONS.has(e.action),
    );
    const legal = events.some((e) => typeof e.details?.legalRequest === 'string')
      ? await this.#deps.legal.disclosuresOf(ctx, subjectId)
      : [];
    // Shown once telling the person is allowed: a request not found counts as held.
    const shown = new Set(legal.filter((d) => d.heldUntil === undefined).map((d) => d.requestId));
    return events.filter((e) => {
      const request = e.details?.legalRequest;
      return request === undefined || (typeof request === 'string' && shown.has(request));
    });
  }

  async disclosuresOf(ctx: Context, subjectId: string): Promise<DisclosuresModel> {
    const [entries, checkpoint] = await Promise.all([
      this.#visibleEntries(ctx, subjectId),
      this.#deps.log.latestCheckpoint(ctx),
    ]);
    const manifest = this.#deps.manifest.manifest;
    const taxonomy = new Taxonomy(manifest.categories);
    const signedSize = checkpoint?.size ?? 0;
    const items = entries.map((e): DisclosureItem => {
      const recipientKey = typeof e.details?.recipient === 'string' ? e.details.recipient : '';
      const recipient = manifest.recipients.find((r) => r.key === recipientKey);
      const purpose = manifest.purposes.find((p) => p.key === e.purpose);
      return {
        leaf: e.leafIndex,
        at: e.at,
        // A recipient or purpose no longer in the manifest is still named, by its key.
        recipientName: recipient?.name ?? recipientKey,
        recipientKind: recipient?.kind ?? 'unknown',
        purposeName: purpose?.name ?? e.purpose ?? '',
        categories: [...new Set(categoriesOf(e))].map((k) => lowerFirst(taxonomy.get(k)?.name ?? k)),
        proof: e.leafIndex !== undefined && e.leafIndex < signedSize ? 'ready' : 'pending',
      };
    });
    items.sort((a, b) => b.at.getTime() - a.at.getTime() || (b.leaf ?? Infinity) - (a.leaf ?? Infinity));
    return { items, verifierKey: this.#deps.log.verifierKey, origin: this.#deps.log.origin };
  }

  async proofOf(ctx: Context, subjectId: string, leaf: number): Promise<DisclosureProof | undefined> {
    const entries = await this.#visibleEntries(ctx, subjectId);
    if (!entries.some((e) => e.leafIndex === leaf)) return undefined;
    const checkpoint = await this.#deps.log.latestCheckpoint(ctx);
    if (checkpoint === undefined || leaf >= checkpoint.size) return undefined;
    const r = await this.#deps.log.inclusion(ctx, leaf, checkpoint.size);
    // The checkpoint of the proof's own size (the log's answer carries the latest, which may differ).
    return {
      index: r.index,
      size: r.size,
      entry: r.entry,
      proof: r.proof.map((h) => h.toString('base64')),
      checkpoint: checkpoint.note,
    };
  }
}

function categoriesOf(e: AuditEvent): string[] {
  const c = e.details?.categories;
  return Array.isArray(c) ? c.filter((x): x is string => typeof x === 'string') : [];
}
