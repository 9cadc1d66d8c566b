/**
 * Crypto-shredding reaches backups. A backup of the main database is taken, a subject is erased
 * through the vault (its data keys destroyed), then the backup is restored: the subject's records
 * are back, but nothing of them can be read, and the backup never held their plaintext. Subjects
 * that were not erased read from the same backup as before. The key store is not in the backup:
 * it lives in its own file (SQLite) or schema (PostgreSQL).
 *
 * SQLite: a real file backup (`VACUUM INTO`, a consistent copy of a live database) replaces
 * pledge.db. PostgreSQL: the vault's tables are copied into a backup schema and copied back.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, type Database } from '../../src/platform/db/database.js';
import { DataKeysRepository } from '../../src/vault/data-keys.repository.js';
import { DataKeys } from '../../src/vault/data-keys.service.js';
import { KEYSTORE_SQLITE_FILE } from '../../src/vault/keystore.js';
import { DIALECTS, dropTestSchema, tablesOf } from '../helpers/databases.js';
import { newVault, openTestVault, type TestVault } from '../helpers/vault.js';

interface Person {
  id: string;
  /** Every plaintext value written for the person (random, so a raw scan cannot match by chance). */
  secrets: string[];
}

/** A registration and a feedback message, both readable for provide-service. */
async function register(t: TestVault): Promise<Person> {
  const id = randomUUID();
  const token = randomBytes(8).toString('hex');
  const email = `person-${token}@example.test`;
  const name = `Name${token}`;
  const feedback = `feedback-${token}`;
  await t.vault.write(
    t.ctx,
    [
      {
        subjectId: id,
        source: 'registration',
        fields: {
          email: { category: 'user.contact.email', value: email },
          first_name: { category: 'user.name.first', value: name },
        },
      },
      {
        subjectId: id,
        source: 'feedback',
        fields: { message: { category: 'user.feedback', value: feedback } },
      },
    ],
    { id, kind: 'customer', jurisdiction: 'US', identifiers: { email } },
  );
  return { id, secrets: [email, name, feedback] };
}

/** A restored copy of the main database, opened as a restarted instance would. */
interface Restored {
  database: Pick<Database, 'db' | 'kysely'>;
  /** Every byte (SQLite) or every row as text (PostgreSQL) of the restored data, for a raw scan. */
  raw: string;
  close(): Promise<void>;
}

/** Takes a backup now; the returned function erases nothing and restores it. */
type TakeBackup = (t: TestVault) => Promise<() => Promise<Restored>>;

/** SQLite: `VACUUM INTO` a file beside, then that file replaces pledge.db while the database is closed. */
const sqliteBackup: TakeBackup = async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pledge-backup-'));
  const copy = path.join(dir, 'pledge-backup.db');
  await sql`vacuum into ${copy}`.execute(t.database.kysely);
  return async () => {
    const file = t.database.location;
    await t.database.close();
    // The WAL and shared-memory files belong to the database being replaced, not to the backup.
    for (const suffix of ['-wal', '-shm']) await rm(`${file}${suffix}`, { force: true });
    await copyFile(copy, file);
    await rm(dir, { recursive: true, force: true });
    const raw = (await readFile(file)).toString('latin1');
    const reopened: Database = await openDatabase({ dataDir: path.dirname(file) });
    return { database: reopened, raw, close: () => reopened.close() };
  };
};

/** PostgreSQL: the vault's tables copied into a schema of their own, then copied back. */
const postgresBackup: TakeBackup = async (t) => {
  const schema = `${t.database.schema ?? assert.fail('no schema')}_backup`;
  const db = t.database.kysely;
  await sql`create schema ${sql.id(schema)}`.execute(db);
  for (const table of ['subjects', 'subject_identifiers', 'records'])
    await sql`create table ${sql.id(schema, table)} as select * from ${sql.id(table)}`.execute(db);
  return async () => {
    // Rows the backup holds come back as they were; nothing newer is removed (nothing else changed).
    await sql`insert into subjects select * from ${sql.id(schema, 'subjects')}
      on conflict (id) do update set erased_at = excluded.erased_at, jurisdiction = excluded.jurisdiction`.execute(
      db,
    );
    await sql`insert into subject_identifiers select * from ${sql.id(schema, 'subject_identifiers')}
      on conflict do nothing`.execute(db);
    await sql`insert into records select * from ${sql.id(schema, 'records')} on conflict (id) do nothing`.execute(
      db,
    );
    const rows = await sql<{ row: string }>`
      select row_to_json(r)::text as row from ${sql.id(schema, 'records')} r
      union all select row_to_json(s)::text from ${sql.id(schema, 'subjects')} s
      union all select row_to_json(i)::text from ${sql.id(schema, 'subject_identifiers')} i
      union all select row_to_json(r)::text from records r
      union all select row_to_json(s)::text from subjects s`.execute(db);
    return {
      database: t.database,
      raw: rows.rows.map((r) => r.row).join('\n'),
      close: async () => {
        await dropTestSchema(db, schema);
      },
    };
  };
};

for (const dialect of DIALECTS) {
  describe(`erasure reaches backups on ${dialect}`, () => {
    let t: TestVault;
    before(async () => {
      t = await openTestVault(dialect);
    });
    after(async () => {
      await t.cleanup();
    });

    // First: the SQLite backup test below closes the database it replaces.
    test('the main database holds no data key: the key store is a separate file or schema', async () => {
      switch (dialect) {
        case 'sqlite': {
          const file = path.join(t.dataDir, KEYSTORE_SQLITE_FILE);
          const tables = await sql<{
            name: string;
          }>`select name from sqlite_master where type = 'table'`.execute(t.database.kysely);
          assert.ok(!tables.rows.some((r) => r.name === 'data_keys'));
          assert.ok((await readFile(file)).length > 0, 'keys.db is a file of its own in the data directory');
          break;
        }
        case 'postgres': {
          const tables = await sql<{ n: string }>`select count(*) as n from information_schema.tables
            where table_schema = ${t.database.schema} and table_name = 'data_keys'`.execute(
            t.database.kysely,
          );
          assert.equal(Number(tables.rows[0]?.n), 0);
          break;
        }
      }
    });

    test('a backup taken before an erasure restores the records, and not one of them can be read', async () => {
      const erased = await register(t);
      const kept = await register(t);
      const restore = await (dialect === 'sqlite' ? sqliteBackup : postgresBackup)(t);

      assert.deepEqual(await t.vault.erase(t.ctx, erased.id), { keysDestroyed: 1, recordsDeleted: 2 });
      const restored = await restore();
      try {
        // The erased subject's records are back in the restored database...
        const rows = await tablesOf(restored.database)
          .selectFrom('records')
          .select('id')
          .where('subject_id', '=', erased.id)
          .execute();
        assert.equal(rows.length, 2);
        assert.ok(restored.raw.includes(erased.id), 'the raw scan sees the restored rows');
        // ...but the backup never held a plaintext value, of anyone.
        for (const secret of [...erased.secrets, ...kept.secrets])
          assert.ok(!restored.raw.includes(secret), `the backup does not contain "${secret}"`);

        // A restarted instance on the restored database: the key store is the live one.
        const keyring = t.keyring;
        const vault = newVault(restored.database, {
          dataKeys: new DataKeys(new DataKeysRepository(t.keystore.db), keyring),
          keyring,
          manifest: { manifest: t.active.manifest, versionId: t.active.version.id },
        });
        const read = await vault.read(t.ctx, erased.id, 'provide-service');
        assert.equal(read.decision.allowed, true, 'the backup predates the erasure: the subject looks alive');
        assert.deepEqual(read.records, []);
        assert.equal(read.unreadable, rows.length);

        const other = await vault.read(t.ctx, kept.id, 'provide-service');
        assert.equal(other.unreadable, 0);
        assert.deepEqual(
          other.records.flatMap((r) => Object.values(r.fields).map((f) => f.value)).sort(),
          [...kept.secrets].sort(),
        );
      } finally {
        await restored.close();
      }
    });
  });
}
