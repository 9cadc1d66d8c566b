/**
 * The audit log: the one door through which every capability records what was done with personal
 * data. An entry is appended in the transaction of the context it is given, so it commits with the
 * change it describes, or not at all. Each entry is a leaf-to-be of the transparency log: its
 * canonical bytes are made here (log.entry.ts), with the subject as a keyed commitment, and the
 * integrator (log.integrator.ts) gives it its leaf index after it commits. Callers did not change.
 */
import type { Context } from '../platform/context.js';
import type { Transactions } from '../platform/db/db.js';
import type { Db } from '../platform/db/db.js';
import type { UseKeys } from '../vault/use-keys.js';
import { AuditRepository, type AuditEntry, type AuditEvent, type AuditRow } from './audit.repository.js';
import { assembleEntry, canonicalJson, SubjectCommitments } from './log.entry.js';

export type { AuditEntry, AuditEvent } from './audit.repository.js';

/** What a capability needs to record its actions: the narrow interface it is given. */
export interface AuditAppender {
  append(ctx: Context, entries: readonly AuditEntry[]): Promise<void>;
  appendEach(
    group: Context,
    items: ReadonlyArray<{ ctx: Context; entries: readonly AuditEntry[] }>,
  ): Promise<void>;
}

/** What {@link AuditLog} is built from. */
export interface AuditLogDeps {
  /** Where the committed-signal is given (the transaction an append runs in). */
  db: Transactions;
  repo: AuditRepository;
  commitments: SubjectCommitments;
  /** Called once an append has committed (wakes the integrator in this process); cheap. */
  onCommitted?: () => void;
}

/** Appends to and reads the audit log. */
export class AuditLog implements AuditAppender {
  readonly #deps: AuditLogDeps;
  #onCommitted: (() => void) | undefined;

  constructor(deps: AuditLogDeps) {
    this.#deps = deps;
    this.#onCommitted = deps.onCommitted;
  }

  /**
   * An audit log over `db` with no integrator in this process (a CLI command): its entries are
   * integrated by a server's integrator, which polls for them.
   */
  static over(db: Db, subjectKeys: UseKeys): AuditLog {
    return new AuditLog({
      db,
      repo: new AuditRepository(db),
      commitments: new SubjectCommitments(subjectKeys),
    });
  }

  /** Sets what runs after each committed append (the integrator's wake), once it exists. */
  onCommitted(fn: () => void): void {
    this.#onCommitted = fn;
  }

  /** Appends entries in `ctx`'s transaction; the actor and request id come from `ctx`. */
  async append(ctx: Context, entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length > 0) await this.appendEach(ctx, [{ ctx, entries }]);
  }

  /**
   * Appends the entries of several callers that share one transaction (a group commit, which
   * `group` is bound to), each entry with its own caller's actor, time and request id.
   */
  async appendEach(
    group: Context,
    items: ReadonlyArray<{ ctx: Context; entries: readonly AuditEntry[] }>,
  ): Promise<void> {
    const { commitments } = this.#deps;
    const rows: AuditRow[] = [];
    for (const { ctx, entries } of items) {
      if (entries.length === 0) continue;
      const at = ctx.clock.now().toISOString();
      // Canonical JSON (sorted keys), once per caller: the row's actor and the entry's are the same text.
      const actorJson = canonicalJson(commitments.actor(ctx.actor));
      for (const e of entries) {
        const subject = e.subjectId === undefined ? undefined : commitments.commit(e.subjectId);
        const detailsJson = canonicalJson(e.details ?? {});
        rows.push({
          at,
          actor: actorJson,
          action: e.action,
          subject: subject ?? null,
          purpose: e.purpose ?? null,
          request_id: ctx.requestId,
          details: detailsJson,
          entry: assembleEntry({
            time: at,
            actorJson,
            action: e.action,
            purpose: e.purpose,
            requestId: ctx.requestId,
            detailsJson,
            subject,
          }),
        });
      }
    }
    if (rows.length === 0) return;
    await this.#deps.repo.insert(group, rows);
    const wake = this.#onCommitted;
    if (wake !== undefined) this.#deps.db.afterCommit(group, wake);
  }

  /** A subject's entries, oldest first (found by the subject's commitments). */
  async listBySubject(ctx: Context, subjectId: string): Promise<AuditEvent[]> {
    const commitments = this.#deps.commitments.all(subjectId);
    const events = await this.#deps.repo.listBySubject(ctx, commitments);
    // The caller knows whom it asked about: the person's own link is named by id again.
    const own = new Set(commitments);
    return events.map((e) => ({
      ...e,
      subjectId,
      actor: e.actor.kind === 'subject_link' && own.has(e.actor.id) ? { ...e.actor, id: subjectId } : e.actor,
    }));
  }

  /** The newest entries, newest first (subjects are commitments: no subject id is given back). */
  listRecent(ctx: Context, limit: number): Promise<AuditEvent[]> {
    return this.#deps.repo.listRecent(ctx, limit);
  }
}
