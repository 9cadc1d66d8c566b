/**
 * The audit table's SQL: append-only (the database refuses UPDATE and DELETE). Entries carry ids,
 * purposes, counts and category names, never personal data. Only this file touches audit_events;
 * other capabilities append through the audit log (audit.service.ts).
 */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import { RowInserter } from '../platform/db/row-inserter.js';
import type { AuditTables } from './audit.tables.js';

/** What happened, in words a reviewer reads: `vault.read`, `vault.write`, `subject.erase` ... */
export interface AuditEntry {
  action: string;
  subjectId?: string;
  purpose?: string;
  /** Non-personal details: counts, field names, categories, sources. */
  details?: Record<string, unknown>;
}

/** An entry as read back. */
export interface AuditEvent extends AuditEntry {
  id: number;
  at: Date;
  actor: Context['actor'];
  requestId: string | undefined;
}

/** The audit table's INSERT, built once per chunk size: every write and read appends to it. */
const AUDIT_ROWS = new RowInserter<AuditTables, 'audit_events'>('audit_events', [
  'at',
  'actor',
  'action',
  'subject_id',
  'purpose',
  'request_id',
  'details',
]);

/** Appends to and reads the audit table, in the transaction of the context it is given. */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<AuditTables> {
    return this.db.executor<AuditTables>(ctx);
  }

  /**
   * Appends the entries of several contexts (the writes of one group commit, whose transaction
   * `group` is bound to) in as few INSERTs as possible; each entry's actor, time and request id come
   * from its own `ctx`.
   */
  async appendEach(
    group: Context,
    items: ReadonlyArray<{ ctx: Context; entries: readonly AuditEntry[] }>,
  ): Promise<void> {
    const rows = items.flatMap(({ ctx, entries }) => {
      if (entries.length === 0) return [];
      const at = ctx.clock.now().toISOString();
      const actor = JSON.stringify(ctx.actor);
      return entries.map((e) => ({
        at,
        actor,
        action: e.action,
        subject_id: e.subjectId ?? null,
        purpose: e.purpose ?? null,
        request_id: ctx.requestId,
        details: JSON.stringify(e.details ?? {}),
      }));
    });
    await AUDIT_ROWS.insert(this.#q(group), rows);
  }

  /** A subject's entries, oldest first. */
  async listBySubject(ctx: Context, subjectId: string): Promise<AuditEvent[]> {
    const rows = await this.#q(ctx)
      .selectFrom('audit_events')
      .selectAll()
      .where('subject_id', '=', subjectId)
      .orderBy('id')
      .execute();
    return rows.map(toEvent);
  }

  /** The newest entries, newest first. */
  async listRecent(ctx: Context, limit: number): Promise<AuditEvent[]> {
    const rows = await this.#q(ctx)
      .selectFrom('audit_events')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toEvent);
  }
}

function toEvent(row: Selectable<AuditTables['audit_events']>): AuditEvent {
  return {
    id: Number(row.id),
    at: new Date(row.at),
    actor: JSON.parse(row.actor) as Context['actor'],
    action: row.action,
    requestId: row.request_id ?? undefined,
    ...(row.subject_id !== null ? { subjectId: row.subject_id } : {}),
    ...(row.purpose !== null ? { purpose: row.purpose } : {}),
    details: JSON.parse(row.details) as Record<string, unknown>,
  };
}
