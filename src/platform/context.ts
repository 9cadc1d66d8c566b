import { randomUUID } from 'node:crypto';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { UnitOfWork } from './db/db.js';

/**
 * Who is acting, as a typed reference with an id (never a name or an e-mail address, since the audit
 * log keeps it for years):
 * - `system`: an API key of a system the manifest declares (`id` the system, `key` the key's id);
 * - `api_key`: an operator key, bound to no system, which manages Pledge but acts for no person;
 * - `cli`: a command run on a host (`id` the operating-system account);
 * - `job`: Pledge's own background work (`id` what it is: a job type, `retention`, `inbound-smtp`);
 * - `subject_link`: a person who holds a signed link of theirs (a preference-center, unsubscribe or
 *   one-click link: the link is the credential, so the audit says whose link acted);
 * - `anonymous`: someone unidentified (a page before any link is checked).
 */
export type Actor =
  | { kind: 'system'; id: string; key: string }
  | { kind: 'api_key'; id: string }
  | { kind: 'cli'; id: string }
  | { kind: 'job'; id: string }
  | { kind: 'subject_link'; id: string; scope: string }
  | { kind: 'anonymous' };

/**
 * The first argument of every service method: who acts, for which declared system, which request
 * this is, what time it is, and the transaction the call is part of. The audit log reads the actor
 * from here, never from a global; repositories read their executor from here (`Db.executor`), never
 * from a loose argument.
 */
export interface Context {
  actor: Actor;
  /**
   * The system (a key under the manifest's `systems:`) this call acts for: the system of the API key,
   * the `--system` of a CLI command, the system whose action enqueued a job. The gates allow it only
   * its purposes, sources and categories. Absent for Pledge's own work and people's own links.
   */
  system?: string | undefined;
  requestId: string;
  clock: Clock;
  /** The transaction this call runs in, set by `Db.transaction`; absent outside one. */
  unit?: UnitOfWork | undefined;
}

/** The same request, acted on by the person whose signed link (of `scope`) it carried. */
export function asLinkHolder(ctx: Context, subjectId: string, scope: string): Context {
  return { ...ctx, actor: { kind: 'subject_link', id: subjectId, scope }, system: undefined };
}

/** A context for work that no request started (CLI commands, background jobs, tests). */
export function createContext(
  actor: Actor,
  options: { clock?: Clock; requestId?: string; system?: string | undefined } = {},
): Context {
  return {
    actor,
    system: actor.kind === 'system' ? actor.id : options.system,
    requestId: options.requestId ?? randomUUID(),
    clock: options.clock ?? systemClock,
  };
}
