/**
 * Group commit: writes submitted in one turn of the event loop, or while a transaction commits,
 * share the next transaction, and each caller is answered only after the commit that holds its
 * write. "Answer after commit" then costs one fsync for many writes instead of one each. A group
 * whose transaction fails is retried one write per transaction, so one bad write fails alone and
 * its neighbours still land; when it failed because the database is unavailable, every write of
 * the group, and every write queued behind it, fails with that error at once.
 */
import { createContext, type Context } from '../context.js';
import type { Transactions } from './db.js';
import { asDatabaseUnavailable } from './dialects/unavailable.js';

/** What a write came to: its value, or the error it is refused with. */
export type WriteOutcome<R> = { ok: true; value: R } | { ok: false; error: Error };

/**
 * Applies a group of writes in one transaction (`group` is a context bound to it: join each item's
 * own context to it with `Db.join`); one outcome per item, in order. An item it refuses
 * (`ok: false`) is left out of the group's writes without failing the others; an error it throws
 * fails the whole group, which is then retried one item at a time.
 */
export type ApplyGroup<T, R> = (group: Context, items: readonly T[]) => Promise<Array<WriteOutcome<R>>>;

/** The context a group's transaction is opened with; each item keeps its own actor and request. */
const GROUP = createContext({ kind: 'job', id: 'group-commit' });

/** Queues writes of type `T` and commits them in groups with `apply`. */
export class GroupCommit<T, R> {
  readonly #db: Transactions;
  readonly #apply: ApplyGroup<T, R>;
  #queue: Array<{ item: T; resolve: (value: R) => void; reject: (err: unknown) => void }> = [];
  #flushing: Promise<void> | undefined;

  constructor(db: Transactions, apply: ApplyGroup<T, R>) {
    this.#db = db;
    this.#apply = apply;
  }

  /** Writes `item` with the next group; resolves after the commit that holds it. */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  /** Resolves once every write submitted so far is committed or failed (for a graceful shutdown). */
  async drain(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
  }

  async #flush(): Promise<void> {
    // Let the writes of this turn of the event loop join the group.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#queue.length > 0) {
      const group = this.#queue;
      this.#queue = [];
      try {
        const outcomes = await this.#db.transaction(GROUP, (trx) =>
          this.#apply(
            trx,
            group.map((w) => w.item),
          ),
        );
        group.forEach((w, i) => settle(w, outcomes[i]));
      } catch (err) {
        // A database that is unavailable fails every write alike; one transaction each would only
        // queue as many timeouts one after another. The writes that queued up meanwhile fail with
        // it: they would wait one more timeout for the same answer. Each caller may retry.
        if (asDatabaseUnavailable(err) !== undefined) {
          const waiting = this.#queue;
          this.#queue = [];
          for (const w of [...group, ...waiting]) w.reject(err);
          continue;
        }
        for (const w of group) {
          try {
            const value = await this.#db.transaction(GROUP, async (trx) => {
              const [outcome] = await this.#apply(trx, [w.item]);
              // Refused alone: roll back whatever the refusal left, and answer with its error.
              if (outcome?.ok !== true) throw outcome?.error ?? new Error('a write came to nothing');
              return outcome.value;
            });
            w.resolve(value);
          } catch (err) {
            w.reject(err);
          }
        }
      }
    }
    this.#flushing = undefined;
  }
}

function settle<R>(
  w: { resolve: (value: R) => void; reject: (err: unknown) => void },
  outcome: WriteOutcome<R> | undefined,
): void {
  if (outcome?.ok === true) w.resolve(outcome.value);
  else w.reject(outcome?.error ?? new Error('a write came to nothing'));
}
