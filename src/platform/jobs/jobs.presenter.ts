/**
 * What leaves the server about jobs: where each stands and who enqueued it, never its payload. Of the
 * payload only the ids show (top-level fields named `id` or ending in `Id`, with a string or number
 * value, and `...Ids` lists of them), which is what an operator needs to follow a job to its
 * subject, campaign or delivery; anything else a payload holds stays inside.
 */
import type { Actor } from '../context.js';
import type { JsonValue } from './jobs.definition.js';
import type { JobCountsResult, JobRecord } from './jobs.service.js';
import type { JobState } from './jobs.tables.js';

/** Who enqueued a job, as shown: the kind of actor and its id (never an API key's scopes). */
export interface ActorView {
  kind: Actor['kind'];
  /** The API key's id, the CLI user, the job type of the system, the subject of a signed link. */
  id: string | null;
}

/** A job, as the API and `pledge jobs --format json` show it. */
export interface JobView {
  id: string;
  type: string;
  key: string | null;
  state: JobState;
  /** The ids the payload names (see the file's comment); nothing else of the payload. */
  ids: Record<string, string | number | Array<string | number>>;
  attempts: number;
  maxAttempts: number;
  /** When it is due; null unless pending. */
  runAt: string | null;
  /** Until when its worker's lease holds; null unless running. */
  leaseUntil: string | null;
  worker: string | null;
  lastError: string | null;
  enqueuedBy: ActorView;
  requestId: string;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Counts of jobs by state, as the API and `pledge jobs counts` show them. */
export interface JobCountsView {
  states: Record<JobState, number>;
  types: Array<{ type: string; states: Record<JobState, number>; oldestPendingRunAt: string | null }>;
}

/** The fields of a {@link JobView}, for schemas and tests. */
export const JOB_VIEW_FIELDS = [
  'id',
  'type',
  'key',
  'state',
  'ids',
  'attempts',
  'maxAttempts',
  'runAt',
  'leaseUntil',
  'worker',
  'lastError',
  'enqueuedBy',
  'requestId',
  'createdAt',
  'updatedAt',
  'startedAt',
  'finishedAt',
] as const satisfies ReadonlyArray<keyof JobView>;

/** A job. */
export function presentJob(job: JobRecord): JobView {
  return {
    id: job.id,
    type: job.type,
    key: job.key ?? null,
    state: job.state,
    ids: payloadIds(job.payload),
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    runAt: job.state === 'pending' ? job.runAt.toISOString() : null,
    leaseUntil: job.state === 'running' ? (job.leaseUntil?.toISOString() ?? null) : null,
    worker: job.worker ?? null,
    lastError: job.lastError ?? null,
    enqueuedBy: presentActor(job.enqueuedBy),
    requestId: job.requestId,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
  };
}

/** Counts by state. */
export function presentJobCounts(counts: JobCountsResult): JobCountsView {
  return {
    states: { ...counts.states },
    types: counts.types.map((t) => ({
      type: t.type,
      states: { ...t.states },
      oldestPendingRunAt: t.oldestPendingRunAt?.toISOString() ?? null,
    })),
  };
}

function presentActor(actor: Actor): ActorView {
  return actor.kind === 'anonymous' ? { kind: actor.kind, id: null } : { kind: actor.kind, id: actor.id };
}

const ID_FIELD = /^(id|[a-zA-Z0-9]*Id)$/;
const IDS_FIELD = /^[a-zA-Z0-9]*Ids$/;
/** Ids shown of one `...Ids` list; the rest are counted in the list's length elsewhere. */
const MAX_LISTED_IDS = 20;
const MAX_ID_LENGTH = 100;

function payloadIds(payload: JsonValue): JobView['ids'] {
  const ids: JobView['ids'] = {};
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return ids;
  for (const [name, value] of Object.entries(payload)) {
    if (ID_FIELD.test(name) && isIdValue(value)) ids[name] = value;
    else if (IDS_FIELD.test(name) && Array.isArray(value) && value.every(isIdValue)) {
      ids[name] = value.slice(0, MAX_LISTED_IDS);
    }
  }
  return ids;
}

function isIdValue(value: JsonValue | undefined): value is string | number {
  return (typeof value === 'string' && value.length <= MAX_ID_LENGTH) || typeof value === 'number';
}
