/**
 * What a job's handler is given: its job as handlers see it, and the context it runs in (the
 * system of its type, or, for a type that acts as its enqueuer, the actor and request that queued
 * it; a batch runs as its type's system, since its jobs may come from several actors).
 */
import type { Clock } from '../clock.js';
import { createContext, type Context } from '../context.js';
import type { Job, ResolvedJobType } from './jobs.definition.js';
import type { JobRecord } from './jobs.repository.js';

/** The context a handler of `type` runs `job` (or a batch starting with it) in. */
export function handlerContext(type: ResolvedJobType, job: JobRecord | undefined, clock: Clock): Context {
  const actor =
    type.actAs === 'enqueuer' && job !== undefined && type.batchSize === 1
      ? job.enqueuedBy
      : ({ kind: 'system', job: type.type } as const);
  return createContext(actor, {
    clock,
    ...(job !== undefined && type.batchSize === 1 ? { requestId: job.requestId } : {}),
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
    requestId: record.requestId,
    createdAt: record.createdAt,
  };
}
