import { randomUUID } from 'node:crypto';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';

/** Who is acting: an API key, a person through a page, the CLI, or the system itself. */
export type Actor =
  | { kind: 'api_key'; id: string; scopes: readonly string[] }
  | { kind: 'cli'; user: string }
  | { kind: 'system'; job: string }
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

/** A context for work that no request started (CLI commands, background jobs, tests). */
export function createContext(actor: Actor, options: { clock?: Clock; requestId?: string } = {}): Context {
  return { actor, requestId: options.requestId ?? randomUUID(), clock: options.clock ?? systemClock };
}
