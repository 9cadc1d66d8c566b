/** The SQL of authorized agents and the signed messages seen. Only this file touches dsr_agents*. */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { AgentTables, DsrAgentsTable } from './requests.tables.js';

/** An agent as staff registered it. */
export interface AgentRecord {
  id: string;
  name: string;
  publicKey: string;
  status: 'active' | 'revoked';
  registeredBy: string;
  registeredAt: Date;
  revokedAt: Date | undefined;
}

function toRecord(row: Selectable<DsrAgentsTable>): AgentRecord {
  return {
    id: row.id,
    name: row.name,
    publicKey: row.public_key,
    status: row.status === 'revoked' ? 'revoked' : 'active',
    registeredBy: row.registered_by,
    registeredAt: new Date(row.registered_at),
    revokedAt: row.revoked_at === null ? undefined : new Date(row.revoked_at),
  };
}

/** Reads and writes agents, in the transaction of the context given. */
export class AgentsRepository {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<AgentTables> {
    return this.#db.executor<AgentTables>(ctx);
  }

  /** The agent with this id, or undefined. */
  async get(ctx: Context, id: string): Promise<AgentRecord | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('dsr_agents')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  }

  /** Every agent, by id. */
  async list(ctx: Context): Promise<AgentRecord[]> {
    const rows = await this.#q(ctx).selectFrom('dsr_agents').selectAll().orderBy('id').execute();
    return rows.map(toRecord);
  }

  /** Stores a new agent. */
  async insert(ctx: Context, agent: AgentRecord): Promise<void> {
    await this.#q(ctx)
      .insertInto('dsr_agents')
      .values({
        id: agent.id,
        name: agent.name,
        public_key: agent.publicKey,
        status: agent.status,
        registered_by: agent.registeredBy,
        registered_at: agent.registeredAt.toISOString(),
        revoked_at: null,
      })
      .execute();
  }

  /** Marks an agent revoked; false when it was not active. */
  async revoke(ctx: Context, id: string, at: Date): Promise<boolean> {
    const res = await this.#q(ctx)
      .updateTable('dsr_agents')
      .set({ status: 'revoked', revoked_at: at.toISOString() })
      .where('id', '=', id)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Whether this signed message was seen already. */
  async seen(ctx: Context, id: string): Promise<boolean> {
    const row = await this.#q(ctx)
      .selectFrom('dsr_agent_messages')
      .select('id')
      .where('id', '=', id)
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Records a signed message as seen; false when it was already (a concurrent replay that passed
   * `seen` before the first one committed: its primary key keeps the second out).
   */
  async remember(
    ctx: Context,
    message: { id: string; agentId: string; requestId: string; expiresAt: Date },
  ): Promise<boolean> {
    const result = await this.#q(ctx)
      .insertInto('dsr_agent_messages')
      .values({
        id: message.id,
        agent_id: message.agentId,
        request_id: message.requestId,
        expires_at: message.expiresAt.toISOString(),
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }
}
