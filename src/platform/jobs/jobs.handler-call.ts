/**
 * What a job's handler is given: its job as handlers see it, and the context it runs in (the
 * job of its type, or, for a type that acts as its enqueuer, the actor and request that queued it;
 * either way for the system the enqueuing call acted for. A batch runs as its type's job, for no
 * system, since its jobs may come from several actors).
 */
import type { Clock } from '../clock.js';
import { createContext, type Context } from '../context.js';
import type { Job, ResolvedJobType } from './jobs.definition.js';
import type { JobRecord } from './jobs.repository.js';

/** The context a handler of `type` runs `job` (or a batch starting with it) in. */
export function handlerContext(type: ResolvedJobType, job: JobRecord | undefined, clock: Clock): Context {
  const single = job !== undefined && type.batchSize === 1;
  const actor =
    type.actAs === 'enqueuer' && single ? job.enqueuedBy : ({ kind: 'job', id: type.type } as const);
  // A job acts for the system whose action enqueued it; a batch, whose jobs may come from several
  // systems, for none (its handler holds each job to its own).
  return createContext(actor, {
    clock,
    ...(single ? { requestId: job.requestId, system: job.enqueuedFor } : {}),
  });
}

/** A job row as its handler sees it. */
export function toJob(record: JobRecord): Job<never> {
  return {
    id: record.id,
    type: record.type,
    payload: record.payload as never,
    attempt: record.attempts,
    maxAttempts: record.maxAttempts,
    key: record.key,
    enqueuedBy: record.enqueuedBy,
    enqueuedFor: record.enqueuedFor,
    requestId: record.requestId,
    createdAt: record.createdAt,
  };
}
