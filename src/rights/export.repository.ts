/** The export deliveries' SQL: only this file touches export_deliveries and export_chunks. */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { ExportDeliveriesTable, ExportTables } from './export.tables.js';

/** A delivery as the service sees it. */
export interface ExportDelivery {
  id: string;
  subjectId: string;
  createdAt: Date;
  expiresAt: Date;
  maxDownloads: number;
  downloads: number;
  keyVersion: number;
  size: number;
  deletedAt: Date | undefined;
}

function toDelivery(r: Selectable<ExportDeliveriesTable>): ExportDelivery {
  return {
    id: r.id,
    subjectId: r.subject_id,
    createdAt: new Date(r.created_at),
    expiresAt: new Date(r.expires_at),
    maxDownloads: Number(r.max_downloads),
    downloads: Number(r.downloads),
    keyVersion: Number(r.key_version),
    size: Number(r.size),
    deletedAt: r.deleted_at === null ? undefined : new Date(r.deleted_at),
  };
}

/** Stores deliveries and their sealed chunks. */
export class ExportRepository {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<ExportTables> {
    return this.#db.executor<ExportTables>(ctx);
  }

  /** Stores one sealed chunk (before its delivery row: a delivery is only offered once complete). */
  async insertChunk(ctx: Context, deliveryId: string, seq: number, data: Buffer): Promise<void> {
    await this.#q(ctx).insertInto('export_chunks').values({ delivery_id: deliveryId, seq, data }).execute();
  }

  /** Stores a delivery. */
  async insert(ctx: Context, d: ExportDelivery): Promise<void> {
    await this.#q(ctx)
      .insertInto('export_deliveries')
      .values({
        id: d.id,
        subject_id: d.subjectId,
        created_at: d.createdAt.toISOString(),
        expires_at: d.expiresAt.toISOString(),
        max_downloads: d.maxDownloads,
        downloads: d.downloads,
        key_version: d.keyVersion,
        size: d.size,
        deleted_at: null,
      })
      .execute();
  }

  /** A delivery by id. */
  async get(ctx: Context, id: string): Promise<ExportDelivery | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('export_deliveries')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toDelivery(row);
  }

  /**
   * Takes one download of the budget, in one statement (so concurrent takers never exceed it):
   * true when one was left and the delivery is live at `now`.
   */
  async takeDownload(ctx: Context, id: string, now: Date): Promise<boolean> {
    const result = await this.#q(ctx)
      .updateTable('export_deliveries')
      .set((eb) => ({ downloads: eb('downloads', '+', 1) }))
      .where('id', '=', id)
      .where('deleted_at', 'is', null)
      .where('expires_at', '>', now.toISOString())
      .whereRef('downloads', '<', 'max_downloads')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** The sealed chunks of a delivery, in order, a few at a time. */
  async *chunks(ctx: Context, id: string): AsyncIterable<{ seq: number; data: Buffer }> {
    let after = -1;
    for (;;) {
      const rows = await this.#q(ctx)
        .selectFrom('export_chunks')
        .select(['seq', 'data'])
        .where('delivery_id', '=', id)
        .where('seq', '>', after)
        .orderBy('seq')
        .limit(8)
        .execute();
      if (rows.length === 0) return;
      for (const r of rows) yield { seq: Number(r.seq), data: Buffer.from(r.data) };
      after = Number(rows[rows.length - 1]?.seq);
    }
  }

  /** Deletes a delivery's chunks and marks it deleted; returns how many chunks went. */
  async deleteChunks(ctx: Context, id: string, at: Date): Promise<number> {
    const result = await this.#q(ctx)
      .deleteFrom('export_chunks')
      .where('delivery_id', '=', id)
      .executeTakeFirst();
    await this.#q(ctx)
      .updateTable('export_deliveries')
      .set({ deleted_at: at.toISOString() })
      .where('id', '=', id)
      .execute();
    return Number(result.numDeletedRows);
  }
}
