/**
 * Tampering with the log directly in the database, past its append-only triggers (dropped first):
 * an entry's bytes edited, a row deleted, two rows' leaf indexes or entries swapped, the log
 * truncated from an index. Each tamper is made on a fresh copy of a log of 1,000 entries whose first
 * 900 are covered by three checkpoints kept outside the database (at 300, 600 and 900: mid-tile, with
 * four hash tiles under them), and 100 after; the verifier (what
 * `pledge audit verify` runs) must find every one and name its first bad index, and must report the
 * entries after the last external checkpoint as not yet verifiable, never as verified. On SQLite the
 * copy is the database file's bytes, opened in memory; on PostgreSQL each tamper runs in a
 * transaction that is rolled back.
 * A few tampers also go through the CLI itself, for its exit code and its words.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, sql, SqliteDialect } from 'kysely';
import { LogRepository } from '../../src/audit/log.repository.js';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext, type Context } from '../../src/platform/context.js';
import { Db } from '../../src/platform/db/db.js';
import { openDatabase } from '../../src/platform/db/database.js';
import { EXIT_NOT_YET_VERIFIABLE, EXIT_TAMPERED } from '../../src/cli/audit.command.js';
import { runPledge } from '../helpers/cli.js';
import { openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';
import {
  distinctEntry,
  openTestLog,
  verifyDatabase,
  TEST_LOG_ORIGIN,
  type TestLog,
} from '../helpers/log-db.js';

/**
 * Entries covered by external checkpoints, and entries after the last one. Every tamper costs a
 * verification of the whole log, so the log is as small as still spans several checkpoints and tiles.
 */
const COVERED = 900;
const AFTER = 100;
/** Entries between two external checkpoints. */
const SEGMENT = 300;
const SQLITE_TAMPERS = 1000;
const POSTGRES_TAMPERS = 60;

type Kind = 'edit' | 'delete' | 'swap_index' | 'swap_entry' | 'truncate';
const KINDS: readonly Kind[] = ['edit', 'delete', 'swap_index', 'swap_entry', 'truncate'];

interface Tamper {
  kind: Kind;
  /** The leaf index it damages first. */
  index: number;
  /** The other row of a swap. */
  other?: number;
  /** The position and the character an edit puts in the entry's text. */
  at?: number;
  char?: string;
}

/** A small seeded generator (mulberry32), so a failing tamper can be replayed from its number. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tampers(count: number, seed: number): Tamper[] {
  const rnd = random(seed);
  const pick = (n: number) => Math.floor(rnd() * n);
  return Array.from({ length: count }, (_, t) => {
    const kind = KINDS[t % KINDS.length]!;
    const index = pick(COVERED);
    if (kind === 'swap_index' || kind === 'swap_entry') {
      let other = pick(COVERED);
      while (other === index) other = pick(COVERED);
      return { kind, index: Math.min(index, other), other: Math.max(index, other) };
    }
    if (kind === 'edit')
      return { kind, index, at: pick(1_000_000), char: String.fromCharCode(0x21 + pick(94)) };
    return { kind, index };
  });
}

/** The SQL of a tamper, as an operator with the database's password would write it. */
function tamperStatements(t: Tamper, entryAt: (index: number) => string): string[] {
  switch (t.kind) {
    case 'edit': {
      const entry = entryAt(t.index);
      const at = t.at! % entry.length;
      // Another character at that place (one that differs from the one there).
      const char = entry[at] === t.char ? (t.char === 'a' ? 'b' : 'a') : t.char!;
      const edited = entry.slice(0, at) + char + entry.slice(at + 1);
      return [
        `update audit_events set entry = '${edited.replaceAll("'", "''")}' where leaf_index = ${t.index}`,
      ];
    }
    case 'delete':
      return [`delete from audit_events where leaf_index = ${t.index}`];
    case 'truncate':
      return [`delete from audit_events where leaf_index >= ${t.index}`];
    case 'swap_index':
      // Through a free value: the leaf index is unique.
      return [
        `update audit_events set leaf_index = -1 where leaf_index = ${t.index}`,
        `update audit_events set leaf_index = ${t.index} where leaf_index = ${t.other!}`,
        `update audit_events set leaf_index = ${t.other!} where leaf_index = -1`,
      ];
    case 'swap_entry': {
      const a = entryAt(t.index).replaceAll("'", "''");
      const b = entryAt(t.other!).replaceAll("'", "''");
      return [
        `update audit_events set entry = '${b}' where leaf_index = ${t.index}`,
        `update audit_events set entry = '${a}' where leaf_index = ${t.other!}`,
      ];
    }
  }
}

const DROP_SQLITE_TRIGGERS = [
  'drop trigger audit_events_append_only_update',
  'drop trigger audit_events_append_only_delete',
  'drop trigger audit_events_append_only_insert',
];

describe('tampering with the log in the database', () => {
  describe('on SQLite, each tamper on a copy of the database file', () => {
    let database: TestDatabase;
    let log: TestLog;
    let external: string[];
    let entries: string[];
    let template: string;
    let work: string;

    before(async () => {
      database = await openMigratedTestDatabase('sqlite');
      log = await openTestLog(database);
      await buildLog(database, log);
      external = await log.externalCheckpoints();
      entries = await readEntries(database, log.ctx);
      template = database.location;
      await database.close();
      // Closed cleanly, the write-ahead log is folded into the file: the file alone is the database.
      await assert.rejects(stat(`${template}-wal`), { code: 'ENOENT' });
      work = await mkdtemp(path.join(os.tmpdir(), 'pledge-tamper-'));
    });
    after(async () => {
      await rm(work, { recursive: true, force: true });
      await log.cleanup();
      await database.cleanup();
    });

    it('verifies the untouched log up to its last external checkpoint, the rest not yet verifiable', async () => {
      assert.deepEqual(
        external.map((n) => Number(n.split('\n')[1])),
        [SEGMENT, 2 * SEGMENT, COVERED],
      );
      const copy = await copyOf(template, work, 'clean');
      const opened = await openDatabase({ dataDir: copy, checkpointInBackground: false });
      try {
        const result = await verifyDatabase(opened, log.vkey, external);
        assert.deepEqual(result.problems, []);
        assert.equal(result.verifiedSize, COVERED);
        assert.equal(result.notYetVerifiable, AFTER);
        assert.equal(result.entries, COVERED + AFTER);
      } finally {
        await opened.close();
      }
    });

    it(`finds each of ${SQLITE_TAMPERS} random tampers and names its first bad index`, async () => {
      // Each copy is the file's bytes opened as a database in memory: a fresh copy in a millisecond,
      // read by the same repository code through Kysely as the CLI reads the file.
      const bytes = await readFile(template);
      // The file is in WAL mode (header bytes 18 and 19 are 2), which a database in memory cannot
      // be: marked as a rollback-journal file (1), the same pages open in memory.
      bytes[18] = 1;
      bytes[19] = 1;
      const missed: string[] = [];
      for (const [n, t] of tampers(SQLITE_TAMPERS, 14).entries()) {
        const raw = new BetterSqlite3(bytes);
        const copy = new Kysely<object>({ dialect: new SqliteDialect({ database: raw }) });
        try {
          for (const s of DROP_SQLITE_TRIGGERS) raw.exec(s);
          for (const s of tamperStatements(t, (i) => entries[i]!)) raw.exec(s);
          const result = await verifyDatabase({ db: new Db(copy, 'sqlite') }, log.vkey, external);
          if (result.ok || result.firstBadIndex !== t.index)
            missed.push(
              `#${n} ${JSON.stringify(t)}: ok ${result.ok}, first bad index ${result.firstBadIndex}`,
            );
          // Never more verified than what precedes the damage.
          if (result.verifiedSize > t.index)
            missed.push(`#${n}: verified ${result.verifiedSize} past index ${t.index}`);
          if (result.notYetVerifiable !== Math.max(0, result.entries - COVERED))
            missed.push(`#${n}: ${result.notYetVerifiable} not yet verifiable of ${result.entries}`);
        } finally {
          await copy.destroy();
        }
      }
      assert.deepEqual(missed, []);
    });

    it('`pledge audit verify` exits 2 on the untouched log and 3 naming the first bad index on a tampered one', async () => {
      const clean = await copyOf(template, work, 'cli-clean');
      const env = { PLEDGE_LOG_ORIGIN: TEST_LOG_ORIGIN, PLEDGE_LOG_CHECKPOINT_FILE: log.checkpointFile };
      const ok = await runPledge(['audit', 'verify', '--data-dir', clean, '--key', log.vkey], { env });
      assert.equal(ok.code, EXIT_NOT_YET_VERIFIABLE, ok.stderr + ok.stdout);
      assert.match(ok.stdout, /verified: leaves 0 to 899 match the signed external checkpoint of size 900/);
      assert.match(ok.stdout, /not yet verifiable: 100 entries \(from index 900\)/);

      const bad = await copyOf(template, work, 'cli-bad');
      const raw = new BetterSqlite3(path.join(bad, 'pledge.db'));
      for (const s of DROP_SQLITE_TRIGGERS) raw.exec(s);
      for (const s of tamperStatements({ kind: 'delete', index: 456 }, (i) => entries[i]!)) raw.exec(s);
      raw.close();
      const tampered = await runPledge(['audit', 'verify', '--data-dir', bad, '--key', log.vkey], { env });
      assert.equal(tampered.code, EXIT_TAMPERED, tampered.stderr + tampered.stdout);
      assert.match(tampered.stdout, /FAILED: first bad index 456/);
      assert.match(tampered.stdout, /leaf index 456 is missing/);
      assert.match(tampered.stdout, /verified before it: leaves 0 to 299/);
    });
  });

  describe('on PostgreSQL, each tamper in a transaction rolled back after', () => {
    let database: TestDatabase;
    let log: TestLog;
    let external: string[];
    let entries: string[];

    before(async () => {
      database = await openMigratedTestDatabase('postgres');
      log = await openTestLog(database);
      await buildLog(database, log);
      external = await log.externalCheckpoints();
      entries = await readEntries(database, log.ctx);
    });
    after(async () => {
      await log.cleanup();
      await database.cleanup();
    });

    it(`finds each of ${POSTGRES_TAMPERS} random tampers and names its first bad index`, async () => {
      const missed: string[] = [];
      const rollback = new Error('rollback');
      for (const [n, t] of tampers(POSTGRES_TAMPERS, 62).entries()) {
        await database.db
          .transaction(createContext({ kind: 'cli', id: 'test' }), async (trx) => {
            const q = database.db.executor<object>(trx);
            await sql.raw('drop trigger audit_events_append_only on audit_events').execute(q);
            for (const s of tamperStatements(t, (i) => entries[i]!)) await sql.raw(s).execute(q);
            const result = await verifyDatabase(database, log.vkey, external, trx);
            if (result.ok || result.firstBadIndex !== t.index)
              missed.push(
                `#${n} ${JSON.stringify(t)}: ok ${result.ok}, first bad index ${result.firstBadIndex}`,
              );
            throw rollback;
          })
          .catch((err: unknown) => {
            if (err !== rollback) throw err;
          });
      }
      assert.deepEqual(missed, []);
      // Rolled back: the log verifies again, triggers and all.
      const result = await verifyDatabase(database, log.vkey, external);
      assert.equal(result.ok, true);
      assert.equal(result.verifiedSize, COVERED);
      assert.equal(result.notYetVerifiable, AFTER);
    });
  });
});

/**
 * Appends COVERED + AFTER distinct entries and integrates them: a checkpoint (published to the file)
 * after each SEGMENT, none after the last AFTER. The integrator signs one on its first pass and then
 * when 10 s have passed since the last while entries wait, so the clock moves 10 s between segments.
 */
async function buildLog(database: TestDatabase, log: TestLog): Promise<void> {
  const clock = fixedClock(new Date('2026-12-01T09:00:00.000Z'));
  const ctx = createContext({ kind: 'job', id: 'test' }, { clock });
  const segments = [...Array.from({ length: COVERED / SEGMENT }, () => SEGMENT), AFTER];
  let from = 0;
  for (const [n, count] of segments.entries()) {
    // The AFTER entries (the last segment) come within the 10 s: no checkpoint covers them.
    if (n > 0 && n < COVERED / SEGMENT) clock.advance(10_000);
    for (let i = 0; i < count; i += 100) {
      const entries = Array.from({ length: Math.min(100, count - i) }, (_, k) => distinctEntry(from + i + k));
      await database.db.transaction(ctx, (trx) => log.audit.append(trx, entries));
    }
    await log.integrateNow(ctx);
    from += count;
  }
}

/** Every entry's text, by leaf index. */
async function readEntries(database: TestDatabase, ctx: Context): Promise<string[]> {
  const rows = await new LogRepository(database.db).entries(ctx, 0, COVERED + AFTER);
  assert.equal(rows.length, COVERED + AFTER);
  return rows.map((r) => r.entry);
}

/** A new directory holding a copy of the database file (the WAL is empty once it was closed). */
async function copyOf(template: string, work: string, name: string): Promise<string> {
  const dir = path.join(work, name);
  await mkdir(dir);
  await copyFile(template, path.join(dir, 'pledge.db'));
  return dir;
}
