/**
 * Multi-row INSERTs for hot paths, built by Kysely once per (engine, row count) and then reused with
 * new parameters. Building a 500-row INSERT through the query builder makes an operation node per
 * value (5,000 for the vault's records) and compiles them to SQL, on every call; that was a tenth of
 * a batched write's main-thread time and much of its garbage. The SQL text is the builder's own, so
 * it stays what the rest of the code would write, and the first use of each shape checks that the
 * parameters come out in the order Kysely put them.
 *
 * Rows go in chunks whose sizes are powers of two (500 rows: 256 + 128 + 64 + 32 + 16 + 4), so a
 * table has at most nine statement shapes, each prepared once and kept, whatever the batch sizes.
 */
import { CompiledQuery, type Insertable, type Kysely } from 'kysely';
import { PledgeError } from '../errors.js';
import { dialectOf } from './schema.js';

/** The largest chunk: 256 rows of up to 100 columns stays under SQLite's 32,766 bound parameters. */
const MAX_CHUNK = 256;

/**
 * Inserts rows of `table` (of the capability's tables `DB`) with exactly `columns`, in that order.
 * Only repositories use it.
 */
export class RowInserter<DB, T extends keyof DB & string> {
  readonly #table: T;
  readonly #columns: ReadonlyArray<keyof Insertable<DB[T]> & string>;
  /** `${engine}:${rows}` -> SQL text. */
  readonly #sql = new Map<string, string>();

  constructor(table: T, columns: ReadonlyArray<keyof Insertable<DB[T]> & string>) {
    this.#table = table;
    this.#columns = columns;
  }

  /** Inserts `rows`, each with every column of the inserter. */
  async insert(db: Kysely<DB>, rows: ReadonlyArray<Insertable<DB[T]>>): Promise<void> {
    const engine = dialectOf(db);
    for (let at = 0; at < rows.length;) {
      let size = MAX_CHUNK;
      while (size > rows.length - at) size >>= 1;
      const chunk = rows.slice(at, at + size);
      at += size;
      const parameters: unknown[] = [];
      for (const row of chunk) for (const column of this.#columns) parameters.push(row[column]);
      const key = `${engine}:${size}`;
      let text = this.#sql.get(key);
      if (text === undefined) {
        text = this.#compile(db, chunk, parameters);
        this.#sql.set(key, text);
      }
      await db.executeQuery(CompiledQuery.raw(text, parameters));
    }
  }

  #compile(db: Kysely<DB>, rows: ReadonlyArray<Insertable<DB[T]>>, parameters: readonly unknown[]): string {
    // Each row as an object with the columns in the inserter's order, so the builder lists them so.
    const ordered = rows.map((row) =>
      Object.fromEntries(this.#columns.map((column) => [column, row[column]])),
    ) as never;
    const compiled = (db as unknown as Kysely<Record<string, object>>)
      .insertInto(this.#table)
      .values(ordered)
      .compile();
    const same =
      compiled.parameters.length === parameters.length &&
      compiled.parameters.every((p, i) => Object.is(p, parameters[i]));
    if (!same) {
      throw new PledgeError(
        'db.internal',
        `the INSERT into ${String(this.#table)} did not bind its parameters in column order`,
      );
    }
    return compiled.sql;
  }
}
