/**
 * Subjects and their blind index (tables `subjects` and `subject_identifiers`): the only code that
 * queries them. Other capabilities ask through the vault's Subjects; the one reader outside the vault
 * is in the database itself, the consent ledger's append-only trigger, which checks
 * `subjects.erased_at` (consent.migrations.ts).
 */
import type { Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { VaultTables } from './vault.tables.js';

/** A subject as stored (no personal data). */
export interface Subject {
  id: string;
  kind: string;
  jurisdiction: string | undefined;
  createdAt: Date;
  erasedAt: Date | undefined;
}

/** An identifier hash to add. */
export interface IdentifierHash {
  kind: string;
  hash: string;
}

/** Reads and writes subjects. */
export class SubjectsRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<VaultTables> {
    return this.db.executor<VaultTables>(ctx);
  }

  /** Adds a subject. */
  async insert(
    ctx: Context,
    subject: {
      id: string;
      kind: string;
      jurisdiction: string | undefined;
      at: Date;
    },
  ): Promise<void> {
    await this.#q(ctx)
      .insertInto('subjects')
      .values({
        id: subject.id,
        kind: subject.kind,
        jurisdiction: subject.jurisdiction ?? null,
        created_at: subject.at.toISOString(),
        erased_at: null,
      })
      .execute();
  }

  /** The subject with this id, erased or not. */
  async get(ctx: Context, id: string): Promise<Subject | undefined> {
    const row = await this.#q(ctx).selectFrom('subjects').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toSubject(row);
  }

  /** Those of these subjects that exist and are not erased, by id (one query per 500). */
  async listLive(ctx: Context, ids: readonly string[]): Promise<Map<string, Subject>> {
    const live = new Map<string, Subject>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await this.#q(ctx)
        .selectFrom('subjects')
        .selectAll()
        .where('id', 'in', unique.slice(i, i + 500))
        .where('erased_at', 'is', null)
        .execute();
      for (const row of rows) live.set(row.id, toSubject(row));
    }
    return live;
  }

  /** The jurisdictions of those of these subjects that exist and are not erased (one query per 1,000). */
  async listLiveJurisdictions(
    ctx: Context,
    ids: readonly string[],
  ): Promise<Map<string, { jurisdiction: string | undefined }>> {
    const out = new Map<string, { jurisdiction: string | undefined }>();
    for (let i = 0; i < ids.length; i += 1000) {
      const rows = await this.#q(ctx)
        .selectFrom('subjects')
        .select(['id', 'jurisdiction'])
        .where('id', 'in', ids.slice(i, i + 1000))
        .where('erased_at', 'is', null)
        .execute();
      for (const r of rows) out.set(r.id, { jurisdiction: r.jurisdiction ?? undefined });
    }
    return out;
  }

  /**
   * Which of these subjects exist and are not erased: one query for a whole group commit instead of
   * one per write.
   */
  async listLiveIds(ctx: Context, ids: readonly string[]): Promise<Set<string>> {
    const live = new Set<string>();
    // Well under SQLite's and PostgreSQL's limits on bound parameters.
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.#q(ctx)
        .selectFrom('subjects')
        .select('id')
        .where('id', 'in', ids.slice(i, i + 500))
        .where('erased_at', 'is', null)
        .execute();
      for (const row of rows) live.add(row.id);
    }
    return live;
  }

  /**
   * The ids of live (not erased) subjects, optionally of one jurisdiction and kind, or created before
   * `createdBefore`, in id order, at most `limit` after `after`: ids only, no personal data.
   */
  async listLiveIdsPage(
    ctx: Context,
    filter: {
      jurisdiction?: string | undefined;
      kind?: string | undefined;
      createdBefore?: Date | undefined;
    },
    page: { after: string | undefined; limit: number },
  ): Promise<string[]> {
    const rows = await this.#q(ctx)
      .selectFrom('subjects')
      .select('id')
      .where('erased_at', 'is', null)
      .$if(filter.jurisdiction !== undefined, (qb) =>
        qb.where('jurisdiction', '=', filter.jurisdiction ?? ''),
      )
      .$if(filter.kind !== undefined, (qb) => qb.where('kind', '=', filter.kind ?? ''))
      .$if(filter.createdBefore !== undefined, (qb) =>
        qb.where('created_at', '<', filter.createdBefore?.toISOString() ?? ''),
      )
      .$if(page.after !== undefined, (qb) => qb.where('id', '>', page.after ?? ''))
      .orderBy('id')
      .limit(page.limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /** The blind-index hashes of one kind of a subject's identifiers, in hash order. */
  async identifierHashesOf(ctx: Context, subjectId: string, kind: string): Promise<string[]> {
    const rows = await this.#q(ctx)
      .selectFrom('subject_identifiers')
      .select('hash')
      .where('subject_id', '=', subjectId)
      .where('kind', '=', kind)
      .orderBy('hash')
      .execute();
    return rows.map((r) => r.hash);
  }

  /** The subject an identifier hash belongs to. */
  async findByIdentifier(ctx: Context, kind: string, hash: string): Promise<Subject | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('subject_identifiers as i')
      .innerJoin('subjects as s', 's.id', 'i.subject_id')
      .selectAll('s')
      .where('i.kind', '=', kind)
      .where('i.hash', '=', hash)
      .executeTakeFirst();
    return row && toSubject(row);
  }

  /** Links identifier hashes to a subject; hashes already linked (to anyone) are left as they are. */
  async addIdentifiers(
    ctx: Context,
    subjectId: string,
    identifiers: readonly IdentifierHash[],
    at: Date,
  ): Promise<void> {
    if (identifiers.length === 0) return;
    await this.#q(ctx)
      .insertInto('subject_identifiers')
      .values(
        identifiers.map((i) => ({
          kind: i.kind,
          hash: i.hash,
          subject_id: subjectId,
          created_at: at.toISOString(),
        })),
      )
      .onConflict((oc) => oc.columns(['kind', 'hash']).doNothing())
      .execute();
  }

  /** Removes a subject's blind-index entries (an erasure held in part keeps the subject, not how to find it). */
  async deleteIdentifiers(ctx: Context, id: string): Promise<number> {
    const result = await this.#q(ctx)
      .deleteFrom('subject_identifiers')
      .where('subject_id', '=', id)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Erases a subject: its identifiers go, its row stays as a tombstone so references still resolve. */
  async markErased(ctx: Context, id: string, at: Date): Promise<void> {
    await this.#q(ctx).deleteFrom('subject_identifiers').where('subject_id', '=', id).execute();
    await this.#q(ctx)
      .updateTable('subjects')
      .set({ erased_at: at.toISOString(), jurisdiction: null })
      .where('id', '=', id)
      .execute();
  }
}

function toSubject(row: VaultTables['subjects']): Subject {
  return {
    id: row.id,
    kind: row.kind,
    jurisdiction: row.jurisdiction ?? undefined,
    createdAt: new Date(row.created_at),
    erasedAt: row.erased_at === null ? undefined : new Date(row.erased_at),
  };
}
