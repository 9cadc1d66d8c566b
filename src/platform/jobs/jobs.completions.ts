/**
 * How the worker writes outcomes: handlers that finish together share one transaction (the
 * platform's group commit), with each outcome's `record` in it. Every change is fenced by the
 * claim's lease token, so a worker that lost a job changes nothing and is told so. One outcome
 * whose transaction fails (a `record` that throws) is written alone, without its record, as a
 * failed attempt; its neighbours still land.
 */
import type { Clock } from '../clock.js';
import type { Context } from '../context.js';
import { Db } from '../db/db.js';
import { GroupCommit, type WriteOutcome } from '../db/group-commit.js';
import type { JobFinalState, JobRecorder } from './jobs.definition.js';
import type { JobRecord, JobsRepository } from './jobs.repository.js';
import type { JobLogger } from './jobs.worker.types.js';

/** One job's outcome, waiting for the next commit. */
export interface Completion {
  job: JobRecord;
  token: string;
  final: JobFinalState;
  record: JobRecorder | undefined;
  /** The handler's context, which `record` runs in (bound to the group's transaction). */
  ctx: Context;
  /** The final state to write instead when `record` fails. */
  onRecordFailed: (error: string) => JobFinalState;
}

/** What writing an outcome came to: the state written (it changes if `record` failed), and whether it held. */
export interface CompletionResult {
  final: JobFinalState | undefined;
  applied: boolean;
}

/** What the completions use. */
export interface JobCompletionsOptions {
  db: Db;
  repository: JobsRepository;
  clock: Clock;
  log: JobLogger;
  /** The context of the worker's own writes. */
  ctx: () => Context;
  describeError: (err: unknown) => string;
}

/** Writes job outcomes in group commits. */
export class JobCompletions {
  readonly #options: JobCompletionsOptions;
  readonly #writes: GroupCommit<Completion, boolean>;
  #pending = 0;

  constructor(options: JobCompletionsOptions) {
    this.#options = options;
    this.#writes = new GroupCommit(options.db, (group, items) => this.#apply(group, items));
  }

  /** True while an outcome waits to be written. */
  get busy(): boolean {
    return this.#pending > 0;
  }

  /** Resolves once every outcome submitted so far is written or given up. */
  drain(): Promise<void> {
    return this.#writes.drain();
  }

  /** Writes an outcome with the next group; resolves with what was written (never rejects). */
  async complete(item: Completion): Promise<CompletionResult> {
    this.#pending++;
    try {
      return { final: item.final, applied: await this.#writes.submit(item) };
    } catch (err) {
      return await this.#applyAlone(item, err);
    } finally {
      this.#pending--;
    }
  }

  /** The outcomes of a group, in its transaction: plain completions per claim in one statement. */
  async #apply(tctx: Context, group: readonly Completion[]): Promise<Array<WriteOutcome<boolean>>> {
    const { repository: repo, clock } = this.#options;
    const now = clock.now();
    const applied = new Map<Completion, boolean>();
    const plain = new Map<string, Completion[]>();
    for (const c of group) {
      if (c.final.state !== 'done' || c.record !== undefined) continue;
      let items = plain.get(c.token);
      if (items === undefined) plain.set(c.token, (items = []));
      items.push(c);
    }
    for (const [token, items] of plain) {
      const done = new Set(
        await repo.completeMany(
          tctx,
          token,
          items.map((c) => c.job.id),
          now,
        ),
      );
      for (const c of items) applied.set(c, done.has(c.job.id));
    }
    for (const c of group) {
      if (applied.has(c)) continue;
      const ok = await repo.finish(tctx, { id: c.job.id, leaseToken: c.token, final: c.final, now });
      applied.set(c, ok);
      // Only while the job is still this worker's: otherwise its outcome is another worker's to write.
      if (ok && c.record) await c.record(Db.join(c.ctx, tctx), c.final);
    }
    return group.map((c) => ({ ok: true, value: applied.get(c) ?? false }));
  }

  /** An outcome whose transaction failed on its own: without its record, as a failed attempt. */
  async #applyAlone(c: Completion, err: unknown): Promise<CompletionResult> {
    const { repository: repo, clock, log, ctx } = this.#options;
    const lost = (again: unknown): CompletionResult => {
      log.error(
        { err: again, job: c.job.id, type: c.job.type },
        'recording a job outcome failed; the watchdog will re-queue it',
      );
      return { final: c.final, applied: false };
    };
    if (c.record === undefined) return lost(err);
    const final = c.onRecordFailed(this.#options.describeError(err));
    try {
      return {
        final,
        applied: await repo.finish(ctx(), { id: c.job.id, leaseToken: c.token, final, now: clock.now() }),
      };
    } catch (again) {
      return lost(again);
    }
  }
}
