import { randomUUID } from 'node:crypto';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { UnitOfWork } from './db/db.js';

/**
 * Who is acting: an API key, the CLI, the system itself, a person who holds a signed link of theirs
 * (a preference-center, unsubscribe or one-click link: the link is the credential, so the audit says
 * whose link acted), or someone unidentified (a page before any link is checked).
 */
export type Actor =
  | { kind: 'api_key'; id: string; scopes: readonly string[] }
  | { kind: 'cli'; user: string }
  | { kind: 'system'; job: string }
  | { kind: 'subject_link'; subjectId: string; scope: string }
  | { kind: 'anonymous' };

/**
 * The first argument of every service method: who acts, which request this is, what time it is,
 * and the transaction the call is part of. The audit log reads the actor from here, never from a
 * global; repositories read their executor from here (`Db.executor`), never from a loose argument.
 */
export interface Context {
  actor: Actor;
  requestId: string;
  clock: Clock;
  /** The transaction this call runs in, set by `Db.transaction`; absent outside one. */
  unit?: UnitOfWork | undefined;
}

/** The same request, acted on by the person whose signed link (of `scope`) it carried. */
export function asLinkHolder(ctx: Context, subjectId: string, scope: string): Context {
  return { ...ctx, actor: { kind: 'subject_link', subjectId, scope } };
}

/** A context for work that no request started (CLI commands, background jobs, tests). */
export function createContext(actor: Actor, options: { clock?: Clock; requestId?: string } = {}): Context {
  return { actor, requestId: options.requestId ?? randomUUID(), clock: options.clock ?? systemClock };
}
