/**
 * The ledger's small rules that the consent service applies: a holder's key, choices as a map, the
 * audit entries of a change, and the error of an unknown subject.
 */
import type { AuditEntry } from '../audit/audit.service.js';
import { NotFoundError } from '../platform/errors.js';
import { choiceKey, type ChoiceState, type ConsentMethod, type ConsentState } from './consent.decide.js';
import { browserHolder, subjectHolder } from './consent.repository.js';
import type { ConsentChange, ConsentHolder } from './consent.types.js';

/** The ledger's key of a holder. */
export function holderKey(holder: ConsentHolder): string {
  return 'subjectId' in holder ? subjectHolder(holder.subjectId) : browserHolder(holder.browserId);
}

/** Projection rows as the choices a decision reads. */
export function toChoiceMap(
  states: ReadonlyArray<{
    purpose: string;
    channel: string;
    state: ConsentState;
    method: ConsentMethod;
    at: Date;
    eventId: string;
  }>,
): Map<string, ChoiceState> {
  return new Map(
    states.map((s) => [
      choiceKey(s.purpose, s.channel),
      { state: s.state, method: s.method, at: s.at, eventId: s.eventId },
    ]),
  );
}

/** The error of a subject that is unknown or erased. */
export function subjectNotFound(subjectId: string): NotFoundError {
  return new NotFoundError(
    'consent.subject_not_found',
    'there is no subject with this id (or it was erased)',
    {
      subjectId,
    },
  );
}

/** The audit entries of some changes: one per subject and call; browsers are counted, never named. */
export function auditEntries(changes: readonly ConsentChange[]): AuditEntry[] {
  // One entry per holder and call; browser holders are counted, never named.
  const bySubject = new Map<string | undefined, ConsentChange[]>();
  for (const c of changes) {
    const key = 'subjectId' in c.holder ? c.holder.subjectId : undefined;
    const list = bySubject.get(key);
    if (list) list.push(c);
    else bySubject.set(key, [c]);
  }
  return [...bySubject.entries()].map(([subjectId, list]) => ({
    action: 'consent.change',
    ...(subjectId !== undefined ? { subjectId } : {}),
    details: {
      changes: list.map((c) => ({
        purpose: c.purpose,
        ...(c.channel !== undefined ? { channel: c.channel } : {}),
        state: c.state,
        previous: c.previous,
        method: c.method,
        eventId: c.eventId,
      })),
    },
  }));
}
