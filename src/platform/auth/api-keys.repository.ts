/**
 * API key rows. The secret's digest is read by one method only (`getCredential`, for
 * authentication); every other read leaves it out, so it cannot end up in a listing by accident.
 */
import type { Kysely } from 'kysely';
import type { Context } from '../context.js';
import type { Db } from '../db/db.js';
import type { ApiKeyTables } from './api-keys.tables.js';
import { isScope, type Scope } from './scopes.js';

/** An API key as people see it: never the secret or its digest. */
export interface ApiKeySummary {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: Date;
  lastUsedAt: Date | undefined;
  revokedAt: Date | undefined;
  /** The system it acts for; undefined for an operator key. */
  system: string | undefined;
  holder: string | undefined;
  expiresAt: Date | undefined;
}

/** What authentication needs to check a presented key. */
export interface ApiKeyCredential {
  id: string;
  /** SHA-256 of the secret, hex. */
  secretHash: string;
  scopes: Scope[];
  revokedAt: Date | undefined;
  system: string | undefined;
  expiresAt: Date | undefined;
}

/** A key to store. */
export interface InsertApiKeyOptions {
  id: string;
  name: string;
  secretHash: string;
  scopes: readonly Scope[];
  createdAt: Date;
  system: string | undefined;
  holder: string | undefined;
  expiresAt: Date | undefined;
}

const SUMMARY_COLUMNS = [
  'id',
  'name',
  'scopes',
  'created_at',
  'last_used_at',
  'revoked_at',
  'system',
  'holder',
  'expires_at',
] as const;

/** Reads and writes the `api_keys` table. */
export class ApiKeyRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<ApiKeyTables> {
    return this.db.executor<ApiKeyTables>(ctx);
  }

  /** Stores a new key. */
  async insert(ctx: Context, options: InsertApiKeyOptions): Promise<void> {
    await this.#q(ctx)
      .insertInto('api_keys')
      .values({
        id: options.id,
        name: options.name,
        secret_hash: options.secretHash,
        scopes: JSON.stringify(options.scopes),
        created_at: options.createdAt.toISOString(),
        last_used_at: null,
        revoked_at: null,
        system: options.system ?? null,
        holder: options.holder ?? null,
        expires_at: options.expiresAt?.toISOString() ?? null,
      })
      .execute();
  }

  /** The digest and scopes of key `id`, for authentication; undefined when there is no such key. */
  async getCredential(ctx: Context, id: string): Promise<ApiKeyCredential | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('api_keys')
      .select(['id', 'secret_hash', 'scopes', 'revoked_at', 'system', 'expires_at'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      id: row.id,
      secretHash: row.secret_hash,
      scopes: parseScopes(row.scopes),
      revokedAt: toDate(row.revoked_at),
      system: row.system ?? undefined,
      expiresAt: toDate(row.expires_at),
    };
  }

  /** Key `id` without its digest, or undefined. */
  async get(ctx: Context, id: string): Promise<ApiKeySummary | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('api_keys')
      .select(SUMMARY_COLUMNS)
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toSummary(row);
  }

  /** Every key, revoked ones included, oldest first. */
  async list(ctx: Context): Promise<ApiKeySummary[]> {
    const rows = await this.#q(ctx)
      .selectFrom('api_keys')
      .select(SUMMARY_COLUMNS)
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .execute();
    return rows.map(toSummary);
  }

  /** Marks key `id` revoked at `at` unless it already is; false when nothing changed. */
  async revoke(ctx: Context, id: string, at: Date): Promise<boolean> {
    const result = await this.#q(ctx)
      .updateTable('api_keys')
      .set({ revoked_at: at.toISOString() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Binds key `id` to `system`; false when there is no live key `id`. */
  async bind(ctx: Context, id: string, system: string): Promise<boolean> {
    const result = await this.#q(ctx)
      .updateTable('api_keys')
      .set({ system })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Records that key `id` was used at `at`. */
  async touch(ctx: Context, id: string, at: Date): Promise<void> {
    await this.#q(ctx)
      .updateTable('api_keys')
      .set({ last_used_at: at.toISOString() })
      .where('id', '=', id)
      .execute();
  }
}

/** Scopes are JSON text; a scope this version no longer knows grants nothing rather than failing. */
function parseScopes(json: string): Scope[] {
  const value: unknown = JSON.parse(json);
  return Array.isArray(value) ? value.filter(isScope) : [];
}

function toDate(value: string | null): Date | undefined {
  return value === null ? undefined : new Date(value);
}

function toSummary(row: {
  id: string;
  name: string;
  scopes: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  system: string | null;
  holder: string | null;
  expires_at: string | null;
}): ApiKeySummary {
  return {
    id: row.id,
    name: row.name,
    scopes: parseScopes(row.scopes),
    createdAt: new Date(row.created_at),
    lastUsedAt: toDate(row.last_used_at),
    revokedAt: toDate(row.revoked_at),
    system: row.system ?? undefined,
    holder: row.holder ?? undefined,
    expiresAt: toDate(row.expires_at),
  };
}
