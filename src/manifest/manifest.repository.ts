/**
 * Manifest versions: every manifest that has been in force, kept forever so a record can name the
 * policy version it came in under, and so the policy text of any past date can be shown again.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Context } from '../platform/context.js';
import type { Db } from '../platform/db/db.js';
import type { ManifestTables, ManifestVersionsTable } from './manifest.tables.js';

/** A manifest that has been in force. */
export interface ManifestVersion {
  id: number;
  /** SHA-256 of the manifest file's bytes, hex. */
  hash: string;
  version: string;
  effective: string;
  /** The manifest file as it was (YAML). */
  source: string;
  firstSeenAt: Date;
  /** When it last came into force; the version with the latest is in force now. */
  inForceFrom: Date;
}

/** A time a version came into force: its first, or a rollback to it. */
export interface ManifestActivation {
  id: number;
  versionId: number;
  at: Date;
}

/** The manifest that has just come into force. */
export interface RecordInForceOptions {
  hash: string;
  version: string;
  effective: string;
  source: string;
  at: Date;
}

/** The row of the manifest in force, and whether this call added it. */
export interface RecordInForceResult {
  id: number;
  created: boolean;
}

/** Reads and records manifest versions. */
export class ManifestVersionRepository {
  constructor(private readonly db: Db) {}

  #q(ctx: Context): Kysely<ManifestTables> {
    return this.db.executor<ManifestTables>(ctx);
  }

  /**
   * Records that the manifest with `hash` is in force from `at`, and makes it the current one.
   * Idempotent on the hash: a restart with the manifest already in force changes nothing (one read).
   * A new hash adds a row. A hash seen before but not current (a rollback) gets no new row; its
   * `inForceFrom` moves to `at` so that it is current again, while its id stays what records cite.
   * Either way the activation is recorded (manifest_activations), in the same transaction.
   */
  async recordInForce(ctx: Context, options: RecordInForceOptions): Promise<RecordInForceResult> {
    // The read and the write belong together; joins the caller's transaction when there is one.
    return this.db.transaction(ctx, async (trx): Promise<RecordInForceResult> => {
      const db = this.#q(trx);
      const current = await selectCurrent(db);
      if (current?.hash === options.hash) return { id: current.id, created: false };
      // "Current" is the row with the latest in_force_from. If this machine's clock is behind the one
      // that recorded the current row, `at` would not be the latest and the manifest that is actually
      // in force would not become current; a millisecond after the current row keeps the order true.
      let inForceFrom = options.at;
      if (current !== undefined && inForceFrom.toISOString() <= current.in_force_from) {
        inForceFrom = new Date(Date.parse(current.in_force_from) + 1);
      }
      const inserted = await db
        .insertInto('manifest_versions')
        .values({
          hash: options.hash,
          version: options.version,
          effective: options.effective,
          source: options.source,
          first_seen_at: options.at.toISOString(),
          in_force_from: inForceFrom.toISOString(),
        })
        // Another server starting with the same manifest may have inserted it since our read.
        .onConflict((oc) => oc.column('hash').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (inserted !== undefined) {
        await recordActivation(db, inserted.id, inForceFrom);
        return { id: inserted.id, created: true };
      }
      const { id } = await db
        .updateTable('manifest_versions')
        .set({ in_force_from: inForceFrom.toISOString() })
        .where('hash', '=', options.hash)
        .returning('id')
        .executeTakeFirstOrThrow();
      await recordActivation(db, id, inForceFrom);
      return { id, created: false };
    });
  }

  /** The version with this id (as cited by records), if any. */
  async getById(ctx: Context, id: number): Promise<ManifestVersion | undefined> {
    const row = await this.#q(ctx)
      .selectFrom('manifest_versions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toManifestVersion(row);
  }

  /** Every version, the one in force first, then by when each last came into force, newest first. */
  async list(ctx: Context): Promise<ManifestVersion[]> {
    const rows = await this.#q(ctx)
      .selectFrom('manifest_versions')
      .selectAll()
      .orderBy('in_force_from', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map(toManifestVersion);
  }

  /** Every time a version came into force, in order (oldest first). */
  async activations(ctx: Context): Promise<ManifestActivation[]> {
    const rows = await this.#q(ctx)
      .selectFrom('manifest_activations')
      .selectAll()
      .orderBy('at')
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ id: r.id, versionId: r.manifest_version_id, at: new Date(r.at) }));
  }
}

async function recordActivation(db: Kysely<ManifestTables>, versionId: number, at: Date): Promise<void> {
  await db
    .insertInto('manifest_activations')
    .values({ manifest_version_id: versionId, at: at.toISOString() })
    .execute();
}

function selectCurrent(db: Kysely<ManifestTables>): Promise<Selectable<ManifestVersionsTable> | undefined> {
  return db
    .selectFrom('manifest_versions')
    .selectAll()
    .orderBy('in_force_from', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

function toManifestVersion(row: Selectable<ManifestVersionsTable>): ManifestVersion {
  return {
    id: row.id,
    hash: row.hash,
    version: row.version,
    effective: row.effective,
    source: row.source,
    firstSeenAt: new Date(row.first_seen_at),
    inForceFrom: new Date(row.in_force_from),
  };
}
