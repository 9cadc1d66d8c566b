/**
 * People's link generations (table `link_generations`): the number a preference-center link must
 * carry to work. Raising it signs out every preference link made before.
 */
import { sql, type Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { ConsentTables } from './consent.tables.js';

/** Reads and raises link generations, in the transaction of the context. */
export class LinkGenerationsRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<ConsentTables> {
    return this.db.executor<ConsentTables>(ctx);
  }

  /** A subject's current generation (0 when it was never raised). */
  async get(ctx: Context, subjectId: string): Promise<number> {
    const row = await this.#q(ctx)
      .selectFrom('link_generations')
      .select('generation')
      .where('subject_id', '=', subjectId)
      .executeTakeFirst();
    return Number(row?.generation ?? 0);
  }

  /** Raises a subject's generation by one, in one statement (two at once both count); returns the new one. */
  async bump(ctx: Context, subjectId: string, at: Date): Promise<number> {
    const row = await this.#q(ctx)
      .insertInto('link_generations')
      .values({ subject_id: subjectId, generation: 1, updated_at: at.toISOString() })
      .onConflict((oc) =>
        oc.column('subject_id').doUpdateSet({
          generation: sql<number>`link_generations.generation + 1`,
          updated_at: at.toISOString(),
        }),
      )
      .returning('generation')
      .executeTakeFirstOrThrow();
    return Number(row.generation);
  }
}
