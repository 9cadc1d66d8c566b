/**
 * What leaves the server about requests. Staff see ids, statuses, steps, errors and due dates, never
 * the requester's identifiers (they stay sealed); the requester sees their request's status and
 * steps in plain words, never errors or ids of other things.
 */
import { dueStatusOf } from './requests.deadlines.js';
import type { RequestEventRecord, RequestRecord } from './requests.repository.js';
import { REJECT_REASONS } from './requests.validator.js';
import type { StepRecord } from './steps.repository.js';

const DAY_MS = 86_400_000;

/** How close a deadline counts as due soon when the caller names no window. */
export const DEFAULT_DUE_WINDOW_MS = 7 * DAY_MS;

/**
 * A request as the staff API and CLI show it: its deadlines as stored at receipt, and where it
 * stands against them at `now` (`due`: null once closed), with `withinMs` as the due-soon window.
 */
export function presentRequest(
  r: RequestRecord,
  now: Date,
  withinMs: number = DEFAULT_DUE_WINDOW_MS,
): Record<string, unknown> {
  const due = dueStatusOf(r, now, withinMs);
  const extendable =
    r.extendedAt === undefined &&
    r.extensionNoticeBy !== undefined &&
    now.getTime() <= r.extensionNoticeBy.getTime();
  return {
    id: r.id,
    type: r.type,
    status: r.status,
    jurisdiction: r.jurisdiction,
    receivedAt: r.receivedAt.toISOString(),
    dueAt: r.dueAt.toISOString(),
    extendableTo: extendable ? r.extendedDueAt.toISOString() : null,
    extendedAt: r.extendedAt?.toISOString() ?? null,
    confirmBy: r.confirmBy?.toISOString() ?? null,
    deadlines: {
      rule: r.deadlineRule ?? null,
      confirmBy: r.confirmBy?.toISOString() ?? null,
      confirmedAt: r.confirmedAt?.toISOString() ?? null,
      answerBy: r.answerBy.toISOString(),
      extensionNoticeBy: r.extensionNoticeBy?.toISOString() ?? null,
      extendedAnswerBy: r.extensionNoticeBy === undefined ? null : r.extendedDueAt.toISOString(),
    },
    due: due === undefined ? null : { status: due.status, deadline: due.deadline, at: due.due.toISOString() },
    overdue: due?.status === 'overdue',
    daysLeft: Math.floor((r.dueAt.getTime() - now.getTime()) / DAY_MS),
    subjectId: r.subjectId ?? null,
    agent: r.agent,
    flags: { stalled: r.stalled, requeued: r.requeued },
    reason: r.reason ?? null,
    progressedAt: r.progressedAt.toISOString(),
    finishedAt: r.finishedAt?.toISOString() ?? null,
  };
}

/** A step as staff see it. */
export function presentStep(s: StepRecord): Record<string, unknown> {
  return {
    id: s.id,
    position: s.position,
    name: s.name,
    store: s.store === '' ? null : s.store,
    status: s.status,
    attempts: s.attempts,
    error: s.error ?? null,
    requeued: s.requeued,
    dueAt: s.dueAt?.toISOString() ?? null,
    startedAt: s.startedAt?.toISOString() ?? null,
    finishedAt: s.finishedAt?.toISOString() ?? null,
    result: s.result ?? null,
  };
}

/** An event as staff see it. */
export function presentEvent(e: RequestEventRecord): Record<string, unknown> {
  return { at: e.at.toISOString(), kind: e.kind, details: e.details };
}

const TYPE_WORDS: Record<string, string> = {
  access: 'a copy of the data we hold on you (access)',
  export: 'a portable copy of your data (export)',
  erasure: 'the erasure of your data',
  rectification: 'the correction of your data',
  restriction: 'a restriction of how we use your data',
  objection: 'an objection to a use of your data',
  inquiry: 'a question or complaint',
};

const STATUS_WORDS: Record<string, string> = {
  verifying: 'We are waiting for you to enter the code we sent.',
  verified: 'Your identity is verified; our privacy team is reviewing the request.',
  running: 'We are working on your request.',
  waiting: 'A member of our team is working on part of your request.',
  done: 'Your request is answered.',
  rejected: 'We could not act on this request.',
  failed: 'Part of the work failed; our team has been told and will try again.',
};

const STEP_WORDS: Record<string, string> = {
  verify: 'Confirm it is you',
  collect: 'Find your data',
  assemble: 'Put your copy together',
  deliver: 'Send you your copy',
  erase: 'Erase your data',
  notify: 'Tell those who received your data',
  confirm: 'Confirm what was done',
  apply: 'Make the change you asked for',
  answer: 'Answer your question',
};

const STEP_STATUS_WORDS: Record<string, string> = {
  pending: 'not started',
  queued: 'about to start',
  running: 'in progress',
  waiting: 'in progress',
  done: 'done',
  failed: 'being retried',
  skipped: 'not needed',
};

/** What the requester's status page shows, in plain words. */
export interface RequesterStatus {
  type: string;
  status: string;
  receivedOn: string;
  dueOn: string;
  extended: boolean;
  /** Why it was rejected, in plain words. */
  reason: string | undefined;
  steps: Array<{ label: string; state: string }>;
}

/** The requester's view of their request: no ids, errors, stores' names or subject. */
export function presentForRequester(r: RequestRecord, steps: readonly StepRecord[]): RequesterStatus {
  // One line per kind of step: "Find your data" once, however many stores it searched.
  const lines = new Map<string, string[]>();
  for (const s of steps) {
    const label = STEP_WORDS[s.name] ?? s.name;
    lines.set(label, [...(lines.get(label) ?? []), s.status]);
  }
  const stateOf = (states: string[]): string =>
    states.every((s) => s === 'done' || s === 'skipped')
      ? 'done'
      : states.every((s) => s === 'pending')
        ? 'not started'
        : (STEP_STATUS_WORDS[states.find((s) => s !== 'done') ?? 'pending'] ?? 'in progress');
  return {
    type: TYPE_WORDS[r.type] ?? r.type,
    status: STATUS_WORDS[r.status] ?? r.status,
    receivedOn: r.receivedAt.toISOString().slice(0, 10),
    dueOn: r.dueAt.toISOString().slice(0, 10),
    extended: r.extendedAt !== undefined,
    reason:
      r.status === 'rejected' && r.reason !== undefined && r.reason in REJECT_REASONS
        ? REJECT_REASONS[r.reason as keyof typeof REJECT_REASONS]
        : undefined,
    steps: [...lines].map(([label, states]) => ({
      label,
      state: r.status === 'rejected' ? 'stopped' : stateOf(states),
    })),
  };
}
