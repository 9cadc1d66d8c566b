/**
 * The audit log: the one door through which every capability records what was done with personal
 * data. An entry is appended in the transaction of the context it is given, so it commits with the
 * change it describes, or not at all. The sharing issue turns this into the verifiable transparency
 * log; callers will not change.
 */
import type { Context } from '../platform/context.js';
import type { AuditEntry, AuditEvent, AuditRepository } from './audit.repository.js';

export type { AuditEntry, AuditEvent } from './audit.repository.js';

/** What a capability needs to record its actions: the narrow interface it is given. */
export interface AuditAppender {
  append(ctx: Context, entries: readonly AuditEntry[]): Promise<void>;
  appendEach(
    group: Context,
    items: ReadonlyArray<{ ctx: Context; entries: readonly AuditEntry[] }>,
  ): Promise<void>;
}

/** Appends to and reads the audit log. */
export class AuditLog implements AuditAppender {
  readonly #repo: AuditRepository;

  constructor(repo: AuditRepository) {
    this.#repo = repo;
  }

  /** Appends entries in `ctx`'s transaction; the actor and request id come from `ctx`. */
  async append(ctx: Context, entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length > 0) await this.#repo.appendEach(ctx, [{ ctx, entries }]);
  }

  /**
   * Appends the entries of several callers that share one transaction (a group commit, which
   * `group` is bound to), each entry with its own caller's actor, time and request id.
   */
  async appendEach(
    group: Context,
    items: ReadonlyArray<{ ctx: Context; entries: readonly AuditEntry[] }>,
  ): Promise<void> {
    await this.#repo.appendEach(group, items);
  }

  /** A subject's entries, oldest first. */
  listBySubject(ctx: Context, subjectId: string): Promise<AuditEvent[]> {
    return this.#repo.listBySubject(ctx, subjectId);
  }

  /** The newest entries, newest first. */
  listRecent(ctx: Context, limit: number): Promise<AuditEvent[]> {
    return this.#repo.listRecent(ctx, limit);
  }
}
