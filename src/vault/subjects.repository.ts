/** Subjects and their blind index. Only this file touches those tables. */
import type { Kysely } from 'kysely';
import type { Tables } from '../platform/db/tables.js';

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
  constructor(private readonly db: Kysely<Tables>) {}

  /** Adds a subject. */
  async insert(subject: {
    id: string;
    kind: string;
    jurisdiction: string | undefined;
    at: Date;
  }): Promise<void> {
    await this.db
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
  async get(id: string): Promise<Subject | undefined> {
    const row = await this.db.selectFrom('subjects').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toSubject(row);
  }

  /** Those of these subjects that exist and are not erased, by id (one query per 500). */
  async listLive(ids: readonly string[]): Promise<Map<string, Subject>> {
    const live = new Map<string, Subject>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await this.db
        .selectFrom('subjects')
        .selectAll()
        .where('id', 'in', unique.slice(i, i + 500))
        .where('erased_at', 'is', null)
        .execute();
      for (const row of rows) live.set(row.id, toSubject(row));
    }
    return live;
  }

  /**
   * Which of these subjects exist and are not erased: one query for a whole group commit instead of
   * one per write.
   */
  async listLiveIds(ids: readonly string[]): Promise<Set<string>> {
    const live = new Set<string>();
    // Well under SQLite's and PostgreSQL's limits on bound parameters.
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db
        .selectFrom('subjects')
        .select('id')
        .where('id', 'in', ids.slice(i, i + 500))
        .where('erased_at', 'is', null)
        .execute();
      for (const row of rows) live.add(row.id);
    }
    return live;
  }

  /** The subject an identifier hash belongs to. */
  async findByIdentifier(kind: string, hash: string): Promise<Subject | undefined> {
    const row = await this.db
      .selectFrom('subject_identifiers as i')
      .innerJoin('subjects as s', 's.id', 'i.subject_id')
      .selectAll('s')
      .where('i.kind', '=', kind)
      .where('i.hash', '=', hash)
      .executeTakeFirst();
    return row && toSubject(row);
  }

  /** Links identifier hashes to a subject; hashes already linked (to anyone) are left as they are. */
  async addIdentifiers(subjectId: string, identifiers: readonly IdentifierHash[], at: Date): Promise<void> {
    if (identifiers.length === 0) return;
    await this.db
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

  /** Updates what is known of where the subject is. */
  async setJurisdiction(id: string, jurisdiction: string): Promise<void> {
    await this.db.updateTable('subjects').set({ jurisdiction }).where('id', '=', id).execute();
  }

  /** Erases a subject: its identifiers go, its row stays as a tombstone so references still resolve. */
  async markErased(id: string, at: Date): Promise<void> {
    await this.db.deleteFrom('subject_identifiers').where('subject_id', '=', id).execute();
    await this.db
      .updateTable('subjects')
      .set({ erased_at: at.toISOString(), jurisdiction: null })
      .where('id', '=', id)
      .execute();
  }
}

function toSubject(row: Tables['subjects']): Subject {
  return {
    id: row.id,
    kind: row.kind,
    jurisdiction: row.jurisdiction ?? undefined,
    createdAt: new Date(row.created_at),
    erasedAt: row.erased_at === null ? undefined : new Date(row.erased_at),
  };
}
