/**
 * The consent ledger and its projection. Appending an event and updating the projection happen in
 * one statement group inside the caller's transaction; the projection keeps only the latest event
 * per holder, purpose and channel (by time, then id), so replaying the ledger in any order gives
 * the same state.
 */
import { sql, type Kysely } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { ConsentTables } from './consent.tables.js';
import type { ConsentMethod, ConsentState } from './consent.decide.js';

/** An event as stored (evidence already sealed). */
export interface ConsentEventRow {
  id: string;
  holder: string;
  subjectId: string | undefined;
  purpose: string;
  channel: string;
  state: ConsentState;
  method: ConsentMethod;
  noticeVersion: string | undefined;
  policyVersionId: number;
  jurisdiction: string | undefined;
  at: Date;
  evidence: string | undefined;
  mergedFrom: string | undefined;
}

/** A row of the projection. */
export interface ConsentStateRow {
  holder: string;
  purpose: string;
  channel: string;
  state: ConsentState;
  method: ConsentMethod;
  eventId: string;
  at: Date;
}

/** Reads and appends consent events; maintains the projection, in the transaction of the context. */
export class ConsentRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<ConsentTables> {
    return this.db.executor<ConsentTables>(ctx);
  }

  /** Appends events and moves the projection forward where an event is newer than what it holds. */
  async append(ctx: Context, events: readonly ConsentEventRow[]): Promise<void> {
    for (let i = 0; i < events.length; i += 500) {
      const chunk = events.slice(i, i + 500);
      await this.#q(ctx)
        .insertInto('consent_events')
        .values(
          chunk.map((e) => ({
            id: e.id,
            holder: e.holder,
            subject_id: e.subjectId ?? null,
            purpose: e.purpose,
            channel: e.channel,
            state: e.state,
            method: e.method,
            notice_version: e.noticeVersion ?? null,
            policy_version_id: e.policyVersionId,
            jurisdiction: e.jurisdiction ?? null,
            at: e.at.toISOString(),
            evidence: e.evidence ?? null,
            merged_from: e.mergedFrom ?? null,
          })),
        )
        .execute();
      await this.project(ctx, chunk);
    }
  }

  /** Applies events to the projection (latest by time then id wins, so the order of calls does not matter). */
  async project(ctx: Context, events: readonly ConsentEventRow[]): Promise<void> {
    // Within one call the last event of a key wins only if it is also the newest; pre-reduce so the
    // statement never names a key twice (PostgreSQL refuses that in one ON CONFLICT statement).
    const latest = new Map<string, ConsentEventRow>();
    for (const e of events) {
      const key = `${e.holder}\u0000${e.purpose}\u0000${e.channel}`;
      const held = latest.get(key);
      if (held === undefined || isNewer(e, held)) latest.set(key, e);
    }
    if (latest.size === 0) return;
    await this.#q(ctx)
      .insertInto('consent_state')
      .values(
        [...latest.values()].map((e) => ({
          holder: e.holder,
          purpose: e.purpose,
          channel: e.channel,
          state: e.state,
          method: e.method,
          event_id: e.id,
          at: e.at.toISOString(),
        })),
      )
      .onConflict((oc) =>
        oc
          .columns(['holder', 'purpose', 'channel'])
          .doUpdateSet({
            state: (eb) => eb.ref('excluded.state'),
            method: (eb) => eb.ref('excluded.method'),
            event_id: (eb) => eb.ref('excluded.event_id'),
            at: (eb) => eb.ref('excluded.at'),
          })
          .where((eb) =>
            eb.or([
              eb(eb.ref('excluded.at'), '>', eb.ref('consent_state.at')),
              eb.and([
                eb(eb.ref('excluded.at'), '=', eb.ref('consent_state.at')),
                eb(eb.ref('excluded.event_id'), '>', eb.ref('consent_state.event_id')),
              ]),
            ]),
          ),
      )
      .execute();
  }

  /** The projection rows of some holders. */
  async statesOf(ctx: Context, holders: readonly string[]): Promise<ConsentStateRow[]> {
    const out: ConsentStateRow[] = [];
    for (let i = 0; i < holders.length; i += 1000) {
      const rows = await this.#q(ctx)
        .selectFrom('consent_state')
        .selectAll()
        .where('holder', 'in', holders.slice(i, i + 1000))
        .execute();
      for (const r of rows) {
        out.push({
          holder: r.holder,
          purpose: r.purpose,
          channel: r.channel,
          state: r.state as ConsentState,
          method: r.method as ConsentMethod,
          eventId: r.event_id,
          at: new Date(r.at),
        });
      }
    }
    return out;
  }

  /** A holder's events, oldest first. */
  async eventsOf(ctx: Context, holder: string): Promise<ConsentEventRow[]> {
    const rows = await this.#q(ctx)
      .selectFrom('consent_events')
      .selectAll()
      .where('holder', '=', holder)
      .orderBy('at')
      .orderBy('id')
      .execute();
    return rows.map(toEvent);
  }

  /** Every event, in pages (for rebuilding the projection). */
  async *allEvents(ctx: Context, pageSize = 5000): AsyncGenerator<ConsentEventRow[]> {
    let after = '';
    for (;;) {
      const rows = await this.#q(ctx)
        .selectFrom('consent_events')
        .selectAll()
        .where('id', '>', after)
        .orderBy('id')
        .limit(pageSize)
        .execute();
      if (rows.length === 0) return;
      yield rows.map(toEvent);
      after = rows[rows.length - 1]!.id;
    }
  }

  /** Empties the projection (before a rebuild, in the same transaction). */
  async clearProjection(ctx: Context): Promise<void> {
    await this.#q(ctx).deleteFrom('consent_state').execute();
  }

  /** Removes an erased subject's events and state. The database refuses this unless the subject is erased. */
  async eraseSubject(ctx: Context, subjectId: string): Promise<number> {
    const holder = subjectHolder(subjectId);
    await this.#q(ctx).deleteFrom('consent_state').where('holder', '=', holder).execute();
    const result = await this.#q(ctx)
      .deleteFrom('consent_events')
      .where('subject_id', '=', subjectId)
      .execute();
    return Number(result[0]?.numDeletedRows ?? 0);
  }

  /** Tells other instances (PostgreSQL) that these holders changed; delivered when the transaction commits. */
  async notify(ctx: Context, channel: string, holders: readonly string[]): Promise<void> {
    // NOTIFY payloads are limited to 8000 bytes: send holders in chunks.
    for (let i = 0; i < holders.length; i += 100) {
      await sql`select pg_notify(${channel}, ${holders.slice(i, i + 100).join(' ')})`.execute(this.#q(ctx));
    }
  }
}

/** The holder key of a subject. */
export function subjectHolder(subjectId: string): string {
  return `s:${subjectId}`;
}

/** The holder key of a browser. */
export function browserHolder(browserId: string): string {
  return `b:${browserId}`;
}

function isNewer(a: ConsentEventRow, b: ConsentEventRow): boolean {
  const ta = a.at.getTime();
  const tb = b.at.getTime();
  return ta > tb || (ta === tb && a.id > b.id);
}

function toEvent(r: ConsentTables['consent_events']): ConsentEventRow {
  return {
    id: r.id,
    holder: r.holder,
    subjectId: r.subject_id ?? undefined,
    purpose: r.purpose,
    channel: r.channel,
    state: r.state as ConsentState,
    method: r.method as ConsentMethod,
    noticeVersion: r.notice_version ?? undefined,
    policyVersionId: r.policy_version_id,
    jurisdiction: r.jurisdiction ?? undefined,
    at: new Date(r.at),
    evidence: r.evidence ?? undefined,
    mergedFrom: r.merged_from ?? undefined,
  };
}
