/**
 * The unit of work. A service method runs on the transaction its context carries, or opens one;
 * repositories take their executor from the context. One helper, {@link Db.transaction}, opens a
 * transaction and hands back a context bound to it, so a change that spans capabilities (a consent
 * change, its webhook jobs and its suppression lift) commits or rolls back as one, however many
 * services it passes through, without a transaction travelling as a loose argument.
 *
 * The platform knows no table: it holds the database as `Kysely<object>`, and each capability's
 * repository views it through its own table types ({@link Db.executor}).
 */
import type { Kysely, Transaction } from 'kysely';
import type { Context } from '../context.js';
import type { DialectName } from './database.js';

/** A transaction a context is bound to, and the work to run once it has committed. */
export interface UnitOfWork {
  /** The database the transaction belongs to (the key store is another one). */
  readonly owner: Db;
  readonly trx: Transaction<object>;
  /** Run in order after the commit; dropped when the transaction rolls back. */
  readonly afterCommit: Array<() => void>;
}

/**
 * What a service may do with a database: open or join a transaction, and defer work until it has
 * committed. It cannot run SQL; only repositories do, through {@link Db.executor}.
 */
export interface Transactions {
  readonly dialect: DialectName;
  transaction<R>(ctx: Context, work: (ctx: Context) => Promise<R>): Promise<R>;
  afterCommit(ctx: Context, fn: () => void): void;
  inTransaction(ctx: Context): boolean;
}

/** A database as capabilities see it: the executor of a context, and transactions. */
export class Db implements Transactions {
  readonly dialect: DialectName;
  readonly #root: Kysely<object>;

  constructor(root: Kysely<object>, dialect: DialectName) {
    this.#root = root;
    this.dialect = dialect;
  }

  /**
   * Where a repository call of `ctx` runs: the transaction `ctx` is bound to when it belongs to this
   * database, the database itself otherwise. `T` is the calling capability's own tables.
   */
  executor<T>(ctx: Context): Kysely<T> {
    const unit = ctx.unit;
    return (unit !== undefined && unit.owner === this ? unit.trx : this.#root) as unknown as Kysely<T>;
  }

  /** True when `ctx` is bound to a transaction of this database. */
  inTransaction(ctx: Context): boolean {
    return ctx.unit?.owner === this;
  }

  /**
   * Runs `work` in a transaction: the one `ctx` is already bound to (the work joins it and commits
   * with it), or a new one, committed when `work` resolves and rolled back when it throws. The
   * context `work` receives is bound to that transaction; after a commit of a transaction opened
   * here, the functions given to {@link afterCommit} run in order.
   */
  async transaction<R>(ctx: Context, work: (ctx: Context) => Promise<R>): Promise<R> {
    if (this.inTransaction(ctx)) return work(ctx);
    let unit: UnitOfWork | undefined;
    const result = await this.#root.transaction().execute((trx) => {
      unit = { owner: this, trx, afterCommit: [] };
      return work({ ...ctx, unit });
    });
    for (const fn of unit?.afterCommit ?? []) fn();
    return result;
  }

  /**
   * Runs `fn` once the transaction `ctx` is bound to has committed (never if it rolls back), or at
   * once when `ctx` has none on this database: what was written is committed already. For what must
   * follow a commit in this process (a cache update, waking a worker); never for durable work,
   * which is a job enqueued in the transaction.
   */
  afterCommit(ctx: Context, fn: () => void): void {
    if (this.inTransaction(ctx)) ctx.unit?.afterCommit.push(fn);
    else fn();
  }

  /** The context `ctx` (of another caller) bound to the transaction of `bound`: group commits share one. */
  static join(ctx: Context, bound: Context): Context {
    return bound.unit === undefined ? ctx : { ...ctx, unit: bound.unit };
  }
}
