/**
 * The subjects the vault holds, as other capabilities may know them: ids, kind and jurisdiction,
 * never personal data. Consent asks which subjects are live and where they are, campaigns which
 * subjects are in a segment, the suppression list a subject's e-mail hashes; none of them reads the
 * vault's tables. Every call runs in the transaction of the context it is given, so a consent change
 * checks that its subject is live inside its own transaction.
 */
import type { Context } from '../platform/context.js';
import type { Subject, SubjectsRepository } from './subjects.repository.js';

export type { Subject } from './subjects.repository.js';

/** A filter of live subjects (a campaign's segment). */
export interface SubjectSegment {
  jurisdiction?: string | undefined;
  kind?: string | undefined;
  /** Only subjects created before this moment (a policy-change notice reaches those who knew the old one). */
  createdBefore?: Date | undefined;
}

/** What consent needs of the vault: which of some subjects are live, and where each is. */
export interface LiveSubjects {
  liveJurisdictions(
    ctx: Context,
    subjectIds: readonly string[],
  ): Promise<Map<string, { jurisdiction: string | undefined }>>;
}

/** Answers questions about subjects without personal data. */
export class Subjects implements LiveSubjects {
  readonly #repo: SubjectsRepository;

  constructor(repo: SubjectsRepository) {
    this.#repo = repo;
  }

  /** The subject with this id, erased or not, or `undefined`. */
  get(ctx: Context, id: string): Promise<Subject | undefined> {
    return this.#repo.get(ctx, id);
  }

  /** Those of these subjects that exist and are not erased, with their jurisdictions. */
  liveJurisdictions(
    ctx: Context,
    subjectIds: readonly string[],
  ): Promise<Map<string, { jurisdiction: string | undefined }>> {
    return this.#repo.listLiveJurisdictions(ctx, subjectIds);
  }

  /**
   * A page of the ids of live subjects in a segment, in id order: at most `limit` ids after `after`
   * (none: the first page). A segment has no bound, so it is read a page at a time.
   */
  liveIdsPage(
    ctx: Context,
    segment: SubjectSegment,
    page: { after: string | undefined; limit: number },
  ): Promise<string[]> {
    return this.#repo.listLiveIdsPage(ctx, segment, page);
  }

  /**
   * The e-mail blind-index hashes of a subject: the same keyed hashes the suppression list holds, so
   * an unsubscribe link (which names the subject, not the address) suppresses the addresses without
   * anyone seeing them.
   */
  emailHashesOf(ctx: Context, subjectId: string): Promise<string[]> {
    return this.#repo.identifierHashesOf(ctx, subjectId, 'email');
  }
}
