/** The share capability's SQL: the record of bulk exports. Only this file touches share_exports. */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { ShareExportsTable, ShareTables } from './share.tables.js';

/** A bulk export as read back. */
export interface ShareExport {
  id: string;
  recipient: string;
  purpose: string;
  categories: string[];
  fields: string[];
  status: 'running' | 'complete' | 'failed';
  subjectCount: number;
  refusedCount: number;
  actor: Context['actor'];
  startedAt: Date;
  finishedAt: Date | undefined;
}

function toExport(row: Selectable<ShareExportsTable>): ShareExport {
  return {
    id: row.id,
    recipient: row.recipient,
    purpose: row.purpose,
    categories: JSON.parse(row.categories) as string[],
    fields: JSON.parse(row.fields) as string[],
    status: row.status as ShareExport['status'],
    subjectCount: Number(row.subject_count),
    refusedCount: Number(row.refused_count),
    actor: JSON.parse(row.actor) as Context['actor'],
    startedAt: new Date(row.started_at),
    finishedAt: row.finished_at === null ? undefined : new Date(row.finished_at),
  };
}

/** Reads and writes export records, in the transaction of the context it is given. */
export class ShareRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<ShareTables> {
    return this.db.executor<ShareTables>(ctx);
  }

  /** Records a new export as running. */
  async insertExport(
    ctx: Context,
    e: Pick<ShareExport, 'id' | 'recipient' | 'purpose' | 'categories' | 'fields'>,
  ): Promise<void> {
    await this.#q(ctx)
      .insertInto('share_exports')
      .values({
        id: e.id,
        recipient: e.recipient,
        purpose: e.purpose,
        categories: JSON.stringify(e.categories),
        fields: JSON.stringify(e.fields),
        status: 'running',
        subject_count: 0,
        refused_count: 0,
        actor: JSON.stringify(ctx.actor),
        started_at: ctx.clock.now().toISOString(),
        finished_at: null,
      })
      .execute();
  }

  /** Adds a page's counts to a running export. */
  async addCounts(ctx: Context, id: string, sent: number, refused: number): Promise<void> {
    await this.#q(ctx)
      .updateTable('share_exports')
      .set((eb) => ({
        subject_count: eb('subject_count', '+', sent),
        refused_count: eb('refused_count', '+', refused),
      }))
      .where('id', '=', id)
      .where('status', '=', 'running')
      .execute();
  }

  /** Ends a running export as complete or failed. */
  async finish(ctx: Context, id: string, status: 'complete' | 'failed'): Promise<void> {
    await this.#q(ctx)
      .updateTable('share_exports')
      .set({ status, finished_at: ctx.clock.now().toISOString() })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .execute();
  }

  /** An export, or `undefined`. */
  async getExport(ctx: Context, id: string): Promise<ShareExport | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('share_exports')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toExport(row);
  }

  /** The newest exports, newest first. */
  async listExports(ctx: Context, limit: number): Promise<ShareExport[]> {
    const rows = await this.#q(ctx)
      .selectFrom('share_exports')
      .selectAll()
      .orderBy('started_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toExport);
  }
}
