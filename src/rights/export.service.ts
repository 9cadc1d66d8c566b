/**
 * The access and export package (docs/requests.md, "What an access request returns"): everything
 * Pledge holds on one person, gathered through other capabilities' services only — the vault's
 * records, opened through the use gate under the legal-compliance purpose with `requiredByLaw` (the
 * law requires the copy, whatever each record was collected for; every page read is audited as any
 * use is), the consent ledger, the disclosures of the person's data with recipients and dates, and
 * the rows the connectors found in the company's own databases.
 *
 * Records and connector rows are async iterables read page by page, so a person with a hundred
 * thousand records is never held in memory; {@link writeExportZip} consumes them once.
 */
import type { ConsentEventView, ConsentHolder } from '../consent/consent.types.js';
import type { Context } from '../platform/context.js';
import { NotFoundError } from '../platform/errors.js';
import type { DisclosuresModel } from '../share/disclosures.view.js';
import type { ReadManyOptions, ReadPage, ReadResult } from '../vault/vault.types.js';

/** The purpose an access request reads the vault for (a legal obligation: GDPR Art. 15). */
export const ACCESS_PURPOSE = 'legal-compliance';
/** Records read per use-gate page. */
const RECORDS_PAGE = 1000;

/** One row a connector found in the company's databases. */
export interface ConnectorRow {
  dataset: string;
  collection: string;
  row: Record<string, unknown>;
  /** The category of each column of the row that has one (as the dataset declares). */
  categories: Record<string, string>;
}

/** One vault record as the package gives it. */
export interface ExportRecord {
  id: string;
  source: string;
  collectedAt: Date;
  policyVersionId: number;
  fields: Record<string, { category: string; value: unknown }>;
}

/** One change of a consent choice. */
export interface ExportConsentEvent {
  at: Date;
  purpose: string;
  channel: string | undefined;
  state: string;
  method: string;
  noticeVersion: string | undefined;
  policyVersionId: number;
  jurisdiction: string | undefined;
  evidence: Record<string, unknown> | undefined;
}

/** One disclosure of the person's data. */
export interface ExportDisclosure {
  at: Date;
  recipient: string;
  recipientKind: string;
  purpose: string;
  categories: string[];
  /** The entry's leaf in the transparency log, when integrated. */
  logLeaf: number | undefined;
}

/** Everything Pledge holds on a person. */
export interface ExportPackage {
  subjectId: string;
  generatedAt: Date;
  subject: { id: string; kind: string; jurisdiction: string | undefined; createdAt: Date };
  /** Read from the vault as it is consumed (once). */
  records: AsyncIterable<ExportRecord>;
  consent: ExportConsentEvent[];
  disclosures: ExportDisclosure[];
  /** Read from the connectors as it is consumed (once); empty when none were given. */
  connectorRows: AsyncIterable<ConnectorRow>;
  /** Records whose keys were gone (restored from a backup after an erasure), counted once read. */
  unreadable: { count: number };
}

/** What {@link ExportService} uses: narrow interfaces of other capabilities. */
export interface ExportServiceDeps {
  vault: {
    getSubjectOrThrow(
      ctx: Context,
      id: string,
    ): Promise<{ id: string; kind: string; jurisdiction?: string | undefined; createdAt: Date }>;
    read(
      ctx: Context,
      subjectId: string,
      purposeKey: string,
      page?: ReadPage,
      options?: Pick<ReadManyOptions, 'requiredByLaw'>,
    ): Promise<ReadResult>;
  };
  consent: { history(ctx: Context, holder: ConsentHolder): Promise<ConsentEventView[]> };
  disclosures: { disclosuresOf(ctx: Context, subjectId: string): Promise<DisclosuresModel> };
  /** The purpose the vault is read for (default {@link ACCESS_PURPOSE}; its legal basis must be legal_obligation). */
  purpose?: string | undefined;
}

/** Options of {@link ExportService.collectPledgeData}. */
export interface CollectPledgeDataOptions {
  /** The rows the connectors found (the workflow's collect steps), consumed once while the zip is written. */
  connectorRows?: AsyncIterable<ConnectorRow> | undefined;
}

async function* none(): AsyncIterable<ConnectorRow> {
  // No connector rows.
}

/** Gathers a person's package. */
export class ExportService {
  readonly #deps: ExportServiceDeps;
  readonly #purpose: string;

  constructor(deps: ExportServiceDeps) {
    this.#deps = deps;
    this.#purpose = deps.purpose ?? ACCESS_PURPOSE;
  }

  /**
   * The package of `subjectId`: consent and disclosures read now, records and connector rows read as
   * the package is written. Throws `vault.subject_not_found` for an unknown or erased subject (an
   * erased person has nothing left to export).
   */
  async collectPledgeData(
    ctx: Context,
    subjectId: string,
    options: CollectPledgeDataOptions = {},
  ): Promise<ExportPackage> {
    const subject = await this.#deps.vault.getSubjectOrThrow(ctx, subjectId);
    const [consent, disclosures] = await Promise.all([
      this.#consentOf(ctx, subjectId),
      this.#deps.disclosures.disclosuresOf(ctx, subjectId),
    ]);
    const unreadable = { count: 0 };
    return {
      subjectId,
      generatedAt: ctx.clock.now(),
      subject: {
        id: subject.id,
        kind: subject.kind,
        jurisdiction: subject.jurisdiction,
        createdAt: subject.createdAt,
      },
      records: this.#records(ctx, subjectId, unreadable),
      consent,
      disclosures: disclosures.items.map((d) => ({
        at: d.at,
        recipient: d.recipientName,
        recipientKind: d.recipientKind,
        purpose: d.purposeName,
        categories: d.categories,
        logLeaf: d.leaf,
      })),
      connectorRows: options.connectorRows ?? none(),
      unreadable,
    };
  }

  async *#records(
    ctx: Context,
    subjectId: string,
    unreadable: { count: number },
  ): AsyncIterable<ExportRecord> {
    let cursor: string | undefined;
    do {
      const page = await this.#deps.vault.read(
        ctx,
        subjectId,
        this.#purpose,
        { limit: RECORDS_PAGE, cursor },
        { requiredByLaw: true },
      );
      unreadable.count += page.unreadable;
      yield* page.records;
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  }

  async #consentOf(ctx: Context, subjectId: string): Promise<ExportConsentEvent[]> {
    let events: ConsentEventView[];
    try {
      events = await this.#deps.consent.history(ctx, { subjectId });
    } catch (err) {
      // A person who never made a choice has no ledger: an empty history, not a failed export.
      if (err instanceof NotFoundError) return [];
      throw err;
    }
    return events.map((e) => ({
      at: e.at,
      purpose: e.purpose,
      channel: e.channel,
      state: e.state,
      method: e.method,
      noticeVersion: e.noticeVersion,
      policyVersionId: e.policyVersionId,
      jurisdiction: e.jurisdiction,
      evidence: e.evidence === undefined ? undefined : { ...e.evidence },
    }));
  }
}
