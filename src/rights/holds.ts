/**
 * Legal holds on an erasure: a legal request in force (approved or narrowed, disclosed or not, and
 * not closed; src/share/legal.*) whose approved scope names the person keeps the data of the
 * categories it approved. Read through the legal service's list, never its tables.
 */
import { coversCategory } from '../manifest/taxonomy.js';
import type { Context } from '../platform/context.js';

/** What one legal request holds of a person, and why. */
export interface Hold {
  /** The legal request's id. */
  requestId: string;
  /** The authority's reference (docket or case number), for the requester's answer. */
  reference: string;
  /** The authority's name. */
  authority: string;
  /** The taxonomy categories it approved (data of a category they cover is kept). */
  categories: readonly string[];
}

/** A legal request as holds need it (LegalService's record, narrowed). */
export interface LegalRequestForHolds {
  id: string;
  reference: string;
  authority: { name: string };
  decision: string | undefined;
  approved: { subjects: string[]; categories: string[] } | undefined;
  closedAt: Date | undefined;
}

/** What holds ask of the legal requests' service (LegalService.list). */
export interface LegalRequestsForHolds {
  list(
    ctx: Context,
    options: { open?: boolean; limit?: number; before?: string },
  ): Promise<LegalRequestForHolds[]>;
}

/** The most open requests weighed at once (the legal service's page limit). */
const OPEN_REQUESTS_PAGE = 500;

/** Finds the holds on a person. */
export class LegalHolds {
  readonly #legal: LegalRequestsForHolds;

  constructor(legal: LegalRequestsForHolds) {
    this.#legal = legal;
  }

  /** The holds in force on `subjectId` now (empty when none). */
  async holdsOn(ctx: Context, subjectId: string): Promise<Hold[]> {
    const open: LegalRequestForHolds[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await this.#legal.list(ctx, {
        open: true,
        limit: OPEN_REQUESTS_PAGE,
        ...(before === undefined ? {} : { before }),
      });
      open.push(...page);
      if (page.length < OPEN_REQUESTS_PAGE) break;
      before = page[page.length - 1]?.id;
    }
    return open
      .filter(
        (r) =>
          r.closedAt === undefined &&
          (r.decision === 'approved' || r.decision === 'narrowed') &&
          r.approved?.subjects.includes(subjectId) === true,
      )
      .map((r) => ({
        requestId: r.id,
        reference: r.reference,
        authority: r.authority.name,
        categories: r.approved?.categories ?? [],
      }));
  }
}

/** True when a record of these categories is held by one of `holds`. */
export function isHeld(holds: readonly Hold[], categories: readonly string[]): boolean {
  return holds.some((h) => h.categories.some((held) => categories.some((c) => coversCategory(held, c))));
}
