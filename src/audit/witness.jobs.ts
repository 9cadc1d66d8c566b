/**
 * Witness cosigning on the platform queue: each signed checkpoint enqueues, in its own transaction,
 * one `audit.witness_cosign` job per configured witness (PLEDGE_LOG_WITNESSES). The job sends the
 * latest checkpoint with a consistency proof from the size that witness last cosigned (C2SP tlog-witness),
 * keeps the cosignatures that verify with the witness's key (served after the checkpoint's own
 * signature by GET /log/checkpoint), and retries with backoff while the witness is unreachable.
 */
import type { Context } from '../platform/context.js';
import { jobDead, jobDone, jobRetry } from '../platform/jobs/jobs.definition.js';
import type { JobQueue } from '../platform/jobs/jobs.service.js';
import type { TransparencyLog } from './log.service.js';
import { requestCosignature, type Witness } from './witness.client.js';
import { LOG_JOBS_KEEP_DONE_MS } from './log.jobs.js';

/** The job type. */
export const WITNESS_COSIGN_JOB = 'audit.witness_cosign';

interface CosignPayload {
  size: number;
  /** The witness's name (its key's name). */
  witness: string;
}

/** What {@link defineWitnessJobs} gives back. */
export interface WitnessJobs {
  /** Enqueues a cosigning request of the checkpoint of `size` to every witness, in `ctx`'s transaction. */
  enqueue(ctx: Context, size: number): Promise<void>;
}

/** Defines the cosigning job on `queue` (at boot, before the queue starts); nothing when no witness is set. */
export function defineWitnessJobs(
  queue: JobQueue,
  deps: {
    log: Pick<TransparencyLog, 'latestCheckpoint' | 'consistency' | 'addCosignature'>;
    witnesses: readonly Witness[];
    /** How long one add-checkpoint may take. */
    timeoutMs?: number;
  },
): WitnessJobs {
  if (deps.witnesses.length === 0) return { enqueue: () => Promise.resolve() };
  const byName = new Map(deps.witnesses.map((w) => [w.name, w]));
  // The size each witness last cosigned, as far as this process knows: a guess that saves a round
  // trip; a wrong one costs a 409, which answers the right size.
  const known = new Map<string, number>();
  queue.define<CosignPayload>({
    type: WITNESS_COSIGN_JOB,
    retry: { baseDelayMs: 5_000, maxDelayMs: 600_000, maxAttempts: 20 },
    // One per checkpoint and witness (a checkpoint every 10 s while entries arrive).
    keepDoneMs: LOG_JOBS_KEEP_DONE_MS,
    handle: async (ctx, job, signal) => {
      const witness = byName.get(job.payload.witness);
      if (witness === undefined)
        return jobDead(`the witness "${job.payload.witness}" is no longer configured`);
      // The latest checkpoint, which may be later than the job's: a witness keeps only the latest,
      // so a backlog of jobs costs one request each at most and never sends an older tree.
      const checkpoint = await deps.log.latestCheckpoint(ctx);
      if (checkpoint === undefined || checkpoint.size < job.payload.size)
        return jobDead(`no checkpoint of size ${job.payload.size} or later`);
      if ((known.get(witness.name) ?? -1) >= checkpoint.size) return jobDone();
      const result = await requestCosignature(
        witness,
        {
          note: checkpoint.note,
          size: checkpoint.size,
          knownSize: known.get(witness.name) ?? 0,
          proof: async (from, to) => (await deps.log.consistency(ctx, from, to)).proof,
        },
        { signal, ...(deps.timeoutMs !== undefined ? { timeoutMs: deps.timeoutMs } : {}) },
      );
      if (result.kind === 'cosigned') {
        known.set(witness.name, result.size);
        for (const line of result.signatures)
          await deps.log.addCosignature(ctx, checkpoint.size, witness.name, `${line}\n`);
        return jobDone();
      }
      if (result.witnessSize !== undefined) {
        known.set(witness.name, result.witnessSize);
        // The witness has cosigned a later checkpoint: its cosignature of that one supersedes this.
        if (result.witnessSize > checkpoint.size) return jobDone();
        // Same size, other root: the witness saw another tree of this size. Evidence, not a retry.
        return jobDead(result.error);
      }
      return jobRetry(result.error);
    },
  });
  return {
    async enqueue(ctx, size) {
      for (const w of deps.witnesses)
        await queue.enqueue(
          ctx,
          WITNESS_COSIGN_JOB,
          { size, witness: w.name },
          { key: `witness-${w.name}-${size}` },
        );
    },
  };
}
