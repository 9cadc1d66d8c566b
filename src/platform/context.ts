import { randomUUID } from 'node:crypto';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';

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
 * The first argument of every service method: who acts, which request this is, and what time it is.
 * The audit log reads the actor from here, never from a global.
 */
export interface Context {
  actor: Actor;
  requestId: string;
  clock: Clock;
}

/** The same request, acted on by the person whose signed link (of `scope`) it carried. */
export function asLinkHolder(ctx: Context, subjectId: string, scope: string): Context {
  return { ...ctx, actor: { kind: 'subject_link', subjectId, scope } };
}

/** A context for work that no request started (CLI commands, background jobs, tests). */
export function createContext(actor: Actor, options: { clock?: Clock; requestId?: string } = {}): Context {
  return { actor, requestId: options.requestId ?? randomUUID(), clock: options.clock ?? systemClock };
}
