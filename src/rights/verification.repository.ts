/** The SQL of verification codes. Only this file touches dsr_verifications. */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { DsrVerificationsTable, RightsTables } from './requests.tables.js';

/** Where an identifier's verification is. */
export type VerificationStatus = 'pending' | 'verified' | 'failed' | 'expired' | 'unsendable';

/** One identifier to verify. */
export interface VerificationRecord {
  id: string;
  requestId: string;
  kind: 'email' | 'phone';
  identifierHash: string;
  codeHmac: string | undefined;
  keyVersion: number;
  expiresAt: Date;
  attempts: number;
  status: VerificationStatus;
  createdAt: Date;
  verifiedAt: Date | undefined;
  ipHash: string;
}

/** Reads and writes verification codes, in the transaction of the context given. */
export class VerificationRepository {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  #q(ctx: Context): Kysely<RightsTables> {
    return this.#db.executor<RightsTables>(ctx);
  }

  /** Stores new verifications. */
  async insertMany(ctx: Context, rows: readonly VerificationRecord[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#q(ctx)
      .insertInto('dsr_verifications')
      .values(
        rows.map((v) => ({
          id: v.id,
          request_id: v.requestId,
          kind: v.kind,
          identifier_hash: v.identifierHash,
          code_hmac: v.codeHmac ?? null,
          key_version: v.keyVersion,
          expires_at: v.expiresAt.toISOString(),
          attempts: v.attempts,
          status: v.status,
          created_at: v.createdAt.toISOString(),
          verified_at: null,
          ip_hash: v.ipHash,
        })),
      )
      .execute();
  }

  /** A request's verifications; `lock` takes them FOR UPDATE on PostgreSQL. */
  async ofRequest(
    ctx: Context,
    requestId: string,
    options: { lock?: boolean } = {},
  ): Promise<VerificationRecord[]> {
    let query = this.#q(ctx).selectFrom('dsr_verifications').selectAll().where('request_id', '=', requestId);
    if (options.lock === true && this.#db.dialect === 'postgres') query = query.forUpdate();
    return (await query.orderBy('kind').execute()).map(fromRow);
  }

  /** Codes sent since `since` to an identifier (by hash) or from a client (by hash). */
  async countSince(
    ctx: Context,
    by: { identifierHash?: string; ipHash?: string },
    since: Date,
  ): Promise<number> {
    let query = this.#q(ctx)
      .selectFrom('dsr_verifications')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('created_at', '>=', since.toISOString());
    if (by.identifierHash !== undefined) query = query.where('identifier_hash', '=', by.identifierHash);
    if (by.ipHash !== undefined) query = query.where('ip_hash', '=', by.ipHash);
    const row = await query.executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Records an attempt's outcome. */
  async settle(
    ctx: Context,
    id: string,
    change: { attempts: number; status: VerificationStatus; verifiedAt?: Date | undefined },
  ): Promise<void> {
    await this.#q(ctx)
      .updateTable('dsr_verifications')
      .set({
        attempts: change.attempts,
        status: change.status,
        // A settled code is useless: its HMAC goes.
        ...(change.status === 'pending' ? {} : { code_hmac: null }),
        verified_at: change.verifiedAt?.toISOString() ?? null,
      })
      .where('id', '=', id)
      .execute();
  }
}

function fromRow(row: Selectable<DsrVerificationsTable>): VerificationRecord {
  return {
    id: row.id,
    requestId: row.request_id,
    kind: row.kind as 'email' | 'phone',
    identifierHash: row.identifier_hash,
    codeHmac: row.code_hmac ?? undefined,
    keyVersion: Number(row.key_version),
    expiresAt: new Date(row.expires_at),
    attempts: Number(row.attempts),
    status: row.status as VerificationStatus,
    createdAt: new Date(row.created_at),
    verifiedAt: row.verified_at === null ? undefined : new Date(row.verified_at),
    ipHash: row.ip_hash,
  };
}
