/**
 * The audit table's SQL: append-only (the database refuses UPDATE and DELETE but the integrator's
 * setting of a leaf index, once). Entries carry ids, purposes, counts and category names, never
 * personal data; a subject only as its keyed commitment. Only this file and log.repository.ts touch
 * the audit capability's tables; other capabilities append through the audit log (audit.service.ts).
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

/** An entry as read back (its subject id only when it was looked up by it). */
export interface AuditEvent extends AuditEntry {
  id: number;
  at: Date;
  actor: Context['actor'];
  requestId: string | undefined;
  /** The leaf's index in the transparency log; absent while the entry waits for the integrator. */
  leafIndex: number | undefined;
}

/** A row as the audit log prepares it (entry encoded, subject committed). */
export interface AuditRow {
  at: string;
  actor: string;
  action: string;
  subject: string | null;
  purpose: string | null;
  request_id: string | null;
  details: string;
  entry: string;
}

/** The audit table's INSERT, built once per chunk size: every write and read appends to it. */
const AUDIT_ROWS = new RowInserter<AuditTables, 'audit_events'>('audit_events', [
  'at',
  'actor',
  'action',
  'subject',
  'purpose',
  'request_id',
  'details',
  'entry',
]);

/** Appends to and reads the audit table, in the transaction of the context it is given. */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<AuditTables> {
    return this.db.executor<AuditTables>(ctx);
  }

  /** Appends prepared rows in as few INSERTs as possible (plain INSERTs: no lock beyond the row's). */
  async insert(ctx: Context, rows: readonly AuditRow[]): Promise<void> {
    if (rows.length > 0) await AUDIT_ROWS.insert(this.#q(ctx), rows);
  }

  /** The entries recorded under any of `commitments`, oldest first. */
  async listBySubject(ctx: Context, commitments: readonly string[]): Promise<AuditEvent[]> {
    if (commitments.length === 0) return [];
    const rows = await this.#q(ctx)
      .selectFrom('audit_events')
      .selectAll()
      .where('subject', 'in', commitments)
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
    ...(row.purpose !== null ? { purpose: row.purpose } : {}),
    details: JSON.parse(row.details) as Record<string, unknown>,
    leafIndex: row.leaf_index === null ? undefined : Number(row.leaf_index),
  };
}
