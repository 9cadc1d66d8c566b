/**
 * A connector reads and erases one person's rows in one of the company's databases, as its
 * manifest dataset declares them: which columns hold an identifier, which references lead from
 * there to the other tables, what each column's categories are and what erasure does to it.
 *
 * The engine-specific parts (driver, live-schema queries) are an {@link EngineAdapter}; everything
 * else is here, on Kysely's `sql` with quoted identifiers, the same for PostgreSQL and MySQL/MariaDB.
 * Values read from these databases are personal data: nothing here logs them, and a database error
 * is reported by its SQLSTATE only (PostgreSQL's detail and MySQL's duplicate-key message quote
 * the values).
 */
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import { datasetGraph, type DatasetGraph } from '../../manifest/dataset.graph.js';
import { isPrimaryKey, type Dataset, type DatasetCollection } from '../../manifest/dataset.schema.js';
import type { ManifestPath } from '../../manifest/problems.js';
import { PledgeError } from '../../platform/errors.js';

/** A person's identifiers by kind (`email`, `phone`, `subject_id`, …), as the request verified them. */
export type Identities = Readonly<Record<string, readonly string[]>>;

/** One row found for the person: the declared fields of its collection, with their categories. */
export interface CollectedRow {
  collection: string;
  fields: Array<{ name: string; categories: readonly string[]; value: unknown }>;
}

/** What an erasure did, or failed to do, in one collection. */
export interface CollectionErasure {
  collection: string;
  /** `delete`: rows deleted; `update`: fields set to NULL or masked. */
  action: 'delete' | 'update';
  /** Rows deleted or changed (0 when the person has none left there). */
  rows: number;
  /** `rolled_back`: done, then undone because a later step failed; `not_run`: never reached. */
  status: 'done' | 'failed' | 'rolled_back' | 'not_run';
  /** Why it failed: a stable code and the database's SQLSTATE, never its message (it may quote values). */
  error?: { code: string; sqlState?: string };
}

/** The outcome of {@link Connector.erase}: all collections or none. */
export interface EraseResult {
  dataset: string;
  /** Every step done and committed. */
  ok: boolean;
  /** Committed, and no row needed a change: the person was already erased here. */
  nothingFound: boolean;
  /** In the order the statements ran (foreign-key order: children before parents). */
  collections: CollectionErasure[];
}

/** A difference between the manifest and the live schema, at the manifest position it concerns. */
export interface LiveSchemaProblem {
  code: string;
  message: string;
  path: ManifestPath;
}

/** A live table: its columns (name → type) and primary key. */
export interface LiveTable {
  columns: Map<string, string>;
  primaryKey: string[];
  /** Foreign keys: this table's column → the table and column it references. */
  foreignKeys: Array<{ column: string; table: string; referencedColumn: string }>;
}

/**
 * The live tables from the catalogue's rows: each table's columns (name → type) and, from its key
 * columns, the primary key (`primary` tells those rows apart per engine) and the foreign keys.
 */
export function liveTablesFrom<
  K extends { table_name: string; column_name: string; ref_table: string | null; ref_column: string | null },
>(
  columns: ReadonlyArray<{ table_name: string; column_name: string; data_type: string }>,
  keys: readonly K[],
  primary: (key: K) => boolean,
): Map<string, LiveTable> {
  const tables = new Map<string, LiveTable>();
  for (const r of columns) {
    let t = tables.get(r.table_name);
    if (t === undefined)
      tables.set(r.table_name, (t = { columns: new Map(), primaryKey: [], foreignKeys: [] }));
    t.columns.set(r.column_name, r.data_type);
  }
  for (const r of keys) {
    const t = tables.get(r.table_name);
    if (t === undefined) continue;
    if (primary(r)) t.primaryKey.push(r.column_name);
    else if (r.ref_table !== null && r.ref_column !== null)
      t.foreignKeys.push({ column: r.column_name, table: r.ref_table, referencedColumn: r.ref_column });
  }
  return tables;
}

/** Finds and erases a person's rows in one connected dataset. */
export interface Connector {
  readonly dataset: string;
  /**
   * Every row the identities reach by the declared paths, collection after collection in read
   * order, a page at a time (memory holds one page and the key values the next hops need).
   */
  collect(identities: Identities): AsyncIterable<CollectedRow>;
  /**
   * Applies the declared erase actions to every reached row in one transaction: children before
   * parents, all or nothing. Never throws for a database failure: the result says where it failed.
   */
  erase(identities: Identities): Promise<EraseResult>;
  /** Compares the dataset with the live schema: missing tables, columns and primary keys. */
  checkSchema(): Promise<LiveSchemaProblem[]>;
  close(): Promise<void>;
}

/** What differs between engines: the Kysely instance and how to read the live schema. */
export interface EngineAdapter {
  readonly db: Kysely<unknown>;
  /** The tables of the current schema (PostgreSQL) or database (MySQL), by name. */
  liveTables(): Promise<Map<string, LiveTable>>;
  /** The SQLSTATE of a driver error, when it has one. */
  sqlStateOf(err: unknown): string | undefined;
}

/** What an erasure does to one collection: delete its rows, or null and mask some fields. */
interface EraseStep {
  collection: string;
  delete: boolean;
  nulls: string[];
  masks: Array<{ field: string; mask: string }>;
}

/** Rows read per query while paging. */
const PAGE_SIZE = 500;
/** Values per IN list (several lists are OR-ed): well under either engine's placeholder limit. */
const IN_CHUNK = 1000;
const DEFAULT_MASK = '[erased]';
const FOREIGN_KEY_STATES = new Set(['23503', '23000']);

/** A connector over any engine adapter; see the module comment. */
export class SqlConnector implements Connector {
  readonly dataset: string;
  readonly #model: Dataset;
  readonly #index: number;
  readonly #graph: DatasetGraph;
  readonly #adapter: EngineAdapter;
  #keys: Map<string, string> | undefined;

  /** `index` is the dataset's position in the manifest (for problem paths). */
  constructor(dataset: Dataset, index: number, adapter: EngineAdapter) {
    this.dataset = dataset.key;
    this.#model = dataset;
    this.#index = index;
    this.#adapter = adapter;
    this.#graph = datasetGraph(dataset, index);
    if (this.#graph.readCycle.length > 0 || this.#graph.eraseCycle.length > 0) {
      throw new PledgeError(
        'connector.dataset_cycle',
        `dataset ${dataset.key} has a cycle in its references; run pledge check`,
        { status: 500 },
      );
    }
  }

  async close(): Promise<void> {
    await this.#adapter.db.destroy();
  }

  async checkSchema(): Promise<LiveSchemaProblem[]> {
    const live = await this.#adapter.liveTables();
    const problems: LiveSchemaProblem[] = [];
    this.#model.collections.forEach((c, j) => {
      const base: ManifestPath = ['datasets', this.#index, 'collections', j];
      const table = live.get(c.name);
      if (table === undefined) {
        problems.push({
          code: 'connectors.missing_table',
          message: `dataset ${this.dataset}: table "${c.name}" does not exist in the database`,
          path: [...base, 'name'],
        });
        return;
      }
      c.fields.forEach((f, k) => {
        if (!table.columns.has(f.name))
          problems.push({
            code: 'connectors.missing_column',
            message: `dataset ${this.dataset}: table "${c.name}" has no column "${f.name}"`,
            path: [...base, 'fields', k, 'name'],
          });
      });
      const declared = c.fields.filter(isPrimaryKey).map((f) => f.name);
      const key = declared.length > 0 ? declared : table.primaryKey;
      if (key.length !== 1)
        problems.push({
          code: 'connectors.no_primary_key',
          message: `dataset ${this.dataset}: table "${c.name}" has ${key.length === 0 ? 'no primary key' : 'a primary key of several columns'}; connectors page and erase by a one-column key`,
          path: [...base, 'name'],
        });
    });
    return problems;
  }

  async *collect(identities: Identities): AsyncIterable<CollectedRow> {
    const keys = await this.#primaryKeys();
    const found = new Map<string, Set<unknown>>();
    for (const name of this.#graph.readOrder) {
      const c = this.#collection(name);
      const where = this.#predicate(name, identities, found);
      if (where === undefined) continue;
      const key = keys.get(name) as string;
      const declared = c.fields.map((f) => f.name);
      const needed = this.#neededFields(name);
      const columns = [...new Set([key, ...declared, ...needed])];
      for await (const row of this.#pages(this.#adapter.db, name, key, columns, where, false)) {
        for (const f of needed) remember(found, `${name}.${f}`, row[f]);
        yield {
          collection: name,
          fields: c.fields.map((f) => ({ name: f.name, categories: f.data_categories, value: row[f.name] })),
        };
      }
    }
  }

  async erase(identities: Identities): Promise<EraseResult> {
    const plan = this.#erasePlan();
    const results: CollectionErasure[] = plan.map((p) => ({
      collection: p.collection,
      action: p.delete ? 'delete' : 'update',
      rows: 0,
      status: 'not_run',
    }));
    const failed = new Error('erase step failed');
    try {
      const keys = await this.#primaryKeys();
      await this.#adapter.db.transaction().execute(async (trx) => {
        // First every reached row's key, locked, while all the paths still lead to them.
        const rows = new Map<string, unknown[]>();
        const found = new Map<string, Set<unknown>>();
        for (const name of this.#graph.readOrder) {
          const where = this.#predicate(name, identities, found);
          if (where === undefined) continue;
          const key = keys.get(name) as string;
          const needed = this.#neededFields(name);
          const list: unknown[] = [];
          for await (const row of this.#pages(trx, name, key, [...new Set([key, ...needed])], where, true)) {
            list.push(row[key]);
            for (const f of needed) remember(found, `${name}.${f}`, row[f]);
          }
          rows.set(name, list);
        }
        // Then the changes, children before parents.
        for (const [i, step] of plan.entries()) {
          const result = results[i] as CollectionErasure;
          const key = keys.get(step.collection) as string;
          try {
            for (const chunk of chunks(rows.get(step.collection) ?? [], IN_CHUNK)) {
              const out = await this.#apply(trx, step, key, chunk);
              result.rows += out;
            }
            result.status = 'done';
          } catch (err) {
            result.status = 'failed';
            result.error = this.#errorOf(err);
            throw failed;
          }
        }
      });
    } catch (err) {
      for (const r of results) if (r.status === 'done') r.status = 'rolled_back';
      if (err !== failed) {
        const first = results.find((r) => r.status === 'not_run');
        if (first !== undefined) {
          first.status = 'failed';
          first.error = this.#errorOf(err);
        }
      }
      return { dataset: this.dataset, ok: false, nothingFound: false, collections: results };
    }
    return {
      dataset: this.dataset,
      ok: true,
      nothingFound: results.every((r) => r.rows === 0),
      collections: results,
    };
  }

  /** The collections with an erase action, in foreign-key order, and what is done to each. */
  #erasePlan(): EraseStep[] {
    const plan: EraseStep[] = [];
    for (const name of this.#graph.eraseOrder) {
      const c = this.#collection(name);
      const acting = c.fields.filter((f) => f.erase !== undefined);
      if (acting.length === 0) continue;
      plan.push({
        collection: name,
        delete: acting.some((f) => f.erase === 'delete_row'),
        nulls: acting.filter((f) => f.erase === 'set_null').map((f) => f.name),
        masks: acting
          .filter((f) => f.erase === 'mask')
          .map((f) => ({ field: f.name, mask: f.mask ?? DEFAULT_MASK })),
      });
    }
    return plan;
  }

  async #apply(trx: Transaction<unknown>, step: EraseStep, key: string, ids: unknown[]): Promise<number> {
    const table = sql.table(step.collection);
    const inKeys = sql`${sql.id(key)} in (${sql.join(ids)})`;
    if (step.delete) {
      const r = await sql`delete from ${table} where ${inKeys}`.execute(trx);
      return Number(r.numAffectedRows ?? 0n);
    }
    const sets = [
      ...step.nulls.map((f) => sql`${sql.id(f)} = null`),
      // A NULL stays NULL: there is nothing to mask.
      ...step.masks.map(
        (m) => sql`${sql.id(m.field)} = case when ${sql.id(m.field)} is null then null else ${m.mask} end`,
      ),
    ];
    // Only rows that still hold something: a second erasure changes nothing and says so.
    const pending = [
      ...step.nulls.map((f) => sql`${sql.id(f)} is not null`),
      ...step.masks.map((m) => sql`${sql.id(m.field)} <> ${m.mask}`),
    ];
    const r =
      await sql`update ${table} set ${sql.join(sets)} where ${inKeys} and (${sql.join(pending, sql` or `)})`.execute(
        trx,
      );
    return Number(r.numAffectedRows ?? 0n);
  }

  /** The rows of `name` the identities or the already-read collections point at; none: `undefined`. */
  #predicate(
    name: string,
    identities: Identities,
    found: Map<string, Set<unknown>>,
  ): RawBuilder<unknown> | undefined {
    const parts: RawBuilder<unknown>[] = [];
    for (const { field, kind } of this.#graph.identities.get(name) ?? []) {
      parts.push(...inLists(field, [...new Set(identities[kind] ?? [])]));
    }
    for (const hop of this.#graph.hops.get(name) ?? []) {
      parts.push(...inLists(hop.field, [...(found.get(`${hop.source}.${hop.sourceField}`) ?? [])]));
    }
    return parts.length === 0 ? undefined : sql`(${sql.join(parts, sql` or `)})`;
  }

  /** The fields of `name` whose values the next hops look up. */
  #neededFields(name: string): string[] {
    const out = new Set<string>();
    for (const hops of this.#graph.hops.values())
      for (const h of hops) if (h.source === name) out.add(h.sourceField);
    return [...out];
  }

  /** Pages through the matching rows by primary key (keyset), so memory holds one page. */
  async *#pages(
    db: Kysely<unknown>,
    table: string,
    key: string,
    columns: string[],
    where: RawBuilder<unknown>,
    lock: boolean,
  ): AsyncIterable<Record<string, unknown>> {
    let after: unknown;
    for (;;) {
      const q = sql<
        Record<string, unknown>
      >`select ${sql.join(columns.map((c) => sql.id(c)))} from ${sql.table(table)} where ${where}${after === undefined ? sql`` : sql` and ${sql.id(key)} > ${after}`} order by ${sql.id(key)} limit ${sql.lit(PAGE_SIZE)}${lock ? sql` for update` : sql``}`;
      const { rows } = await q.execute(db);
      for (const row of rows) yield row;
      if (rows.length < PAGE_SIZE) return;
      after = rows[rows.length - 1]?.[key];
    }
  }

  /** Each reached collection's one-column key: declared, else the live primary key. */
  async #primaryKeys(): Promise<Map<string, string>> {
    if (this.#keys !== undefined) return this.#keys;
    const keys = new Map<string, string>();
    let live: Map<string, LiveTable> | undefined;
    for (const name of this.#graph.readOrder) {
      const declared = this.#collection(name)
        .fields.filter(isPrimaryKey)
        .map((f) => f.name);
      let key = declared;
      if (key.length === 0) {
        live ??= await this.#adapter.liveTables();
        key = live.get(name)?.primaryKey ?? [];
      }
      if (key.length !== 1 || key[0] === undefined)
        throw new PledgeError(
          'connector.no_primary_key',
          `dataset ${this.dataset}: table "${name}" has no one-column primary key; run pledge connectors test`,
          { status: 500 },
        );
      keys.set(name, key[0]);
    }
    this.#keys = keys;
    return keys;
  }

  #collection(name: string): DatasetCollection {
    return this.#model.collections.find((c) => c.name === name) as DatasetCollection;
  }

  #errorOf(err: unknown): { code: string; sqlState?: string } {
    if (err instanceof PledgeError) return { code: err.code };
    const sqlState = this.#adapter.sqlStateOf(err);
    const code =
      sqlState !== undefined && FOREIGN_KEY_STATES.has(sqlState)
        ? 'connector.foreign_key'
        : sqlState === undefined
          ? 'connector.unavailable'
          : 'connector.statement_failed';
    return { code, ...(sqlState === undefined ? {} : { sqlState }) };
  }
}

function remember(found: Map<string, Set<unknown>>, key: string, value: unknown): void {
  if (value === null || value === undefined) return;
  let set = found.get(key);
  if (set === undefined) found.set(key, (set = new Set()));
  // Numbers and bigints arrive as strings from some drivers; one spelling keeps the set small.
  set.add(typeof value === 'bigint' ? value.toString() : value);
}

function inLists(field: string, values: readonly unknown[]): RawBuilder<unknown>[] {
  return chunks(values, IN_CHUNK).map((c) => sql`${sql.id(field)} in (${sql.join(c)})`);
}

function chunks<T>(values: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.slice(i, i + size));
  return out;
}
