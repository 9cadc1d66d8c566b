/**
 * The transparency log's storage and sequencing on every engine, built as createApp builds it but
 * with no worker running, so each pass is the test's: entries that name no one in plaintext and are
 * what their leaves hash; the append-only triggers (no edit, no delete, a leaf index set once); a
 * checkpoint every 1,000 entries and after 10 s of new entries (a fixed clock), signed so that the
 * public key verifies it, and appended to the checkpoint file; inclusion and consistency proofs
 * from the stored tiles that verify; rows written by an earlier version migrated into leaves.
 */
import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import fc from 'fast-check';
import { assembleEntry, canonicalJson, encodeEntry } from '../../src/audit/log.entry.js';
import { CHECKPOINT_EVERY, CHECKPOINT_INTERVAL_MS } from '../../src/audit/log.integrator.js';
import { parseCheckpointFile } from '../../src/audit/log.publisher.js';
import { createAuditCapability, type AuditCapability } from '../../src/audit/log.setup.js';
import { storedLogSource, verifyLog } from '../../src/audit/log.verify.js';
import { LogVerifyRepository } from '../../src/audit/log.verify.repository.js';
import { auditMigrations } from '../../src/audit/audit.migrations.js';
import { buildTilePyramid, encodeInnerRows } from '../../src/audit/tiles.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { openNote, parseCheckpointBody, parseVerifierKey } from '../../src/audit/note.js';
import { MIGRATIONS } from '../../src/capabilities.js';
import { fixedClock } from '../../src/platform/clock.js';
import { createContext, type Actor, type Context } from '../../src/platform/context.js';
import { migrateToLatest } from '../../src/platform/db/migrations.js';
import { JobQueue } from '../../src/platform/jobs/jobs.service.js';
import { Keyring } from '../../src/vault/keyring.js';
import { DIALECTS, openTestDatabase, type TestDatabase, type TestDialect } from '../helpers/databases.js';

const SUBJECT = '01930000-0000-7000-8000-00000000beef';
const ORIGIN = 'pledge.example.test/log';
const SILENT = { info: () => undefined, warn: () => undefined };
const LOG_MIGRATION = '2026_12_16_001_transparency_log';

/** audit_events as versions before the transparency log wrote it. */
interface LegacyTables {
  audit_events: {
    at: string;
    actor: string;
    action: string;
    subject_id: string | null;
    purpose: string | null;
    request_id: string | null;
    details: string;
  };
}

interface Parts {
  database: TestDatabase;
  dataDir: string;
  keyring: Keyring;
  cap: AuditCapability;
  /** Builds the capability again (after a later migration). */
  build(): AuditCapability;
  clock: ReturnType<typeof fixedClock>;
  ctx: Context;
  cleanup(): Promise<void>;
}

/** A database migrated (up to `before` when given), a keyring, and the audit capability over them. */
async function openParts(dialect: TestDialect, options: { before?: string } = {}): Promise<Parts> {
  const database = await openTestDatabase(dialect);
  await migrateToLatest(
    database,
    options.before === undefined ? MIGRATIONS : MIGRATIONS.filter(([name]) => name < options.before!),
  );
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pledge-log-'));
  const keyring = await Keyring.load({ dataDir });
  const clock = fixedClock(new Date('2026-12-07T12:00:00.000Z'));
  const ctx = createContext({ kind: 'cli', id: 'test' }, { clock });
  const build = () =>
    createAuditCapability({
      db: database.db,
      queue: new JobQueue({ db: database.db }),
      subjectKeys: keyring.use('log_subjects'),
      checkpointKeys: keyring.use('log_checkpoints'),
      settings: {
        origin: ORIGIN,
        checkpointFile: path.join(dataDir, 'checkpoints.jsonl'),
        checkpointWebhook: undefined,
        publicTiles: false,
      },
      log: SILENT,
    });
  return {
    database,
    dataDir,
    keyring,
    cap: build(),
    build,
    clock,
    ctx,
    async cleanup() {
      await database.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The commitment the log keeps for a subject: HMAC-SHA256 under the log_subjects key's derivation. */
function commitmentOf(keyring: Keyring, subjectId: string): string {
  const key = hkdfSync(
    'sha256',
    keyring.use('log_subjects').current().secret,
    Buffer.alloc(0),
    'pledge transparency log subject commitment v1',
    32,
  );
  return createHmac('sha256', Buffer.from(key)).update(subjectId).digest('hex');
}

/** Every raw row of audit_events in leaf order (pending ones last, by id). */
async function rawRows(database: TestDatabase) {
  const rows = await database.tables.selectFrom('audit_events').selectAll().orderBy('id').execute();
  return rows.map((r) => ({
    ...r,
    id: Number(r.id),
    leaf_index: r.leaf_index === null ? null : Number(r.leaf_index),
  }));
}

/** The level-0 tiles' hashes, concatenated in order: every leaf hash of the tree. */
async function leafHashesFromTiles(database: TestDatabase): Promise<Buffer[]> {
  const tiles = await database.tables
    .selectFrom('log_tiles')
    .select(['tile_index', 'hashes'])
    .where('level', '=', 0)
    .orderBy('tile_index')
    .execute();
  const all = Buffer.concat(tiles.map((t) => Buffer.from(t.hashes)));
  return Array.from({ length: all.length / 32 }, (_, i) => all.subarray(i * 32, i * 32 + 32));
}

test('an entry assembled on the append path is the canonical encoding of its fields', () => {
  const json = fc.jsonValue();
  fc.assert(
    fc.property(
      fc.record({
        time: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        action: fc.string(),
        purpose: fc.option(fc.string(), { nil: undefined }),
        requestId: fc.option(fc.string(), { nil: undefined }),
        subject: fc.option(fc.stringMatching(/^[0-9a-f]{64}$/), { nil: undefined }),
        details: fc.dictionary(fc.string(), json),
        actor: fc.constantFrom<Actor>(
          { kind: 'cli', id: 'ops' },
          { kind: 'system', id: 'crm', key: 'k1' },
          { kind: 'subject_link', id: 'c0ffee', scope: 'preferences' },
          { kind: 'anonymous' },
        ),
      }),
      (f) => {
        const assembled = assembleEntry({
          ...f,
          actorJson: canonicalJson(f.actor),
          detailsJson: canonicalJson(f.details),
        });
        assert.equal(assembled, encodeEntry(f));
        assert.equal(canonicalJson(JSON.parse(assembled)), assembled);
      },
    ),
  );
});

for (const dialect of DIALECTS) {
  describe(`the transparency log's storage on ${dialect}`, () => {
    let p: Parts;
    before(async () => {
      p = await openParts(dialect);
    });
    after(async () => {
      await p?.cleanup();
    });

    test('an entry names no one in plaintext, and its leaf hashes exactly its bytes', async () => {
      const linkCtx: Context = {
        ...p.ctx,
        actor: { kind: 'subject_link', id: SUBJECT, scope: 'preferences' },
      };
      await p.cap.audit.append(p.ctx, [
        {
          action: 'vault.read',
          subjectId: SUBJECT,
          purpose: 'marketing-email',
          details: { records: 2, b: 1, a: 2 },
        },
        { action: 'keys.rotate', details: { version: 2 } },
      ]);
      await p.cap.audit.append(linkCtx, [{ action: 'consent.change', subjectId: SUBJECT, details: {} }]);
      const before = await rawRows(p.database);
      assert.ok(
        before.every((r) => r.leaf_index === null),
        'nothing is integrated before the integrator runs',
      );
      const result = await p.cap.integrateNow(p.ctx);
      assert.equal(result.size, 3);

      const rows = await rawRows(p.database);
      const commitment = commitmentOf(p.keyring, SUBJECT);
      for (const row of rows) {
        assert.ok(!JSON.stringify(row).includes(SUBJECT), `row ${row.id} holds no subject id in plaintext`);
        assert.equal(row.subject_id, null);
        const entry = JSON.parse(row.entry ?? '') as Record<string, unknown>;
        assert.equal(canonicalJson(entry), row.entry, 'the entry is canonical JSON (sorted keys, no spaces)');
        assert.equal(entry.version, 1);
        assert.equal(entry.action, row.action);
        assert.equal(entry.time, row.at);
      }
      assert.deepEqual(
        rows.map((r) => r.subject),
        [commitment, null, commitment],
        'the subject is its keyed commitment',
      );
      const link = JSON.parse(rows[2]!.entry ?? '') as { actor: { kind: string; id: string } };
      assert.deepEqual(link.actor, { kind: 'subject_link', id: commitment, scope: 'preferences' });
      assert.deepEqual(
        rows.map((r) => r.leaf_index),
        [0, 1, 2],
      );
      const leaves = await leafHashesFromTiles(p.database);
      assert.deepEqual(
        leaves.map((h) => h.toString('hex')),
        rows.map((r) => leafHash(Buffer.from(r.entry ?? '', 'utf8')).toString('hex')),
        'each leaf is SHA-256(0x00 ‖ entry)',
      );
      // The subject's own lookup still works, through the commitment.
      const events = await p.cap.audit.listBySubject(p.ctx, SUBJECT);
      assert.deepEqual(
        events.map((e) => [e.action, e.subjectId, e.leafIndex]),
        [
          ['vault.read', SUBJECT, 0],
          ['consent.change', SUBJECT, 2],
        ],
      );
      assert.deepEqual(events[1]?.actor, { kind: 'subject_link', id: SUBJECT, scope: 'preferences' });
    });

    test('the database refuses edits, deletes, a second leaf index, and a plaintext subject id', async () => {
      await p.cap.audit.append(p.ctx, [{ action: 'test.pending', details: {} }]);
      const [first] = await rawRows(p.database);
      const db = p.database.tables;
      const refused = async (what: string, run: () => Promise<unknown>) =>
        assert.rejects(run, /append-only|no subject id/, what);
      await refused('an edit of an entry', () =>
        db.updateTable('audit_events').set({ action: 'forged' }).where('id', '=', first!.id).execute(),
      );
      await refused('an edit of a pending entry', () =>
        db
          .updateTable('audit_events')
          .set({ details: '{"x":1}' })
          .where('action', '=', 'test.pending')
          .execute(),
      );
      await refused('a delete', () => db.deleteFrom('audit_events').where('id', '=', first!.id).execute());
      await refused('a second leaf index', () =>
        db.updateTable('audit_events').set({ leaf_index: 99 }).where('id', '=', first!.id).execute(),
      );
      await refused('a leaf index taken away', () =>
        db.updateTable('audit_events').set({ leaf_index: null }).where('id', '=', first!.id).execute(),
      );
      await refused('a plaintext subject id', () =>
        db
          .insertInto('audit_events')
          .values({
            at: 'x',
            actor: '{}',
            action: 'x',
            subject_id: SUBJECT,
            subject: null,
            purpose: null,
            request_id: null,
            details: '{}',
            entry: '{}',
            leaf_index: null,
          })
          .execute(),
      );
      // What the integrator does is still allowed: the pending row takes the next index, once.
      const r = await p.cap.integrateNow(p.ctx);
      assert.equal(r.integrated, 1);
      assert.equal((await rawRows(p.database)).at(-1)?.leaf_index, r.size - 1);
    });

    test('checkpoints every 1,000 entries and after 10 s of new entries, signed, and in the file', async () => {
      const start = (await p.cap.log.listCheckpoints(p.ctx)).at(-1)?.size ?? 0;
      const sizeBefore = await p.cap.log.size(p.ctx);
      const n = 2 * CHECKPOINT_EVERY + 500;
      const entries = Array.from({ length: n }, (_, i) => ({ action: 'test.bulk', details: { i } }));
      await p.cap.audit.append(p.ctx, entries);
      await p.cap.integrateNow(p.ctx);
      const sizes = (await p.cap.log.listCheckpoints(p.ctx)).map((c) => c.size).filter((s) => s > start);
      const size = await p.cap.log.size(p.ctx);
      assert.equal(size, sizeBefore + n);
      assert.ok(sizes.length >= 2, `checkpoints while integrating: ${sizes.join(', ')}`);
      let previous = start;
      for (const s of sizes) {
        assert.ok(
          s - previous <= CHECKPOINT_EVERY,
          `no more than 1,000 entries between checkpoints (${previous} → ${s})`,
        );
        previous = s;
      }
      assert.ok(size - previous < CHECKPOINT_EVERY, 'the rest waits for the interval');

      p.clock.advance(CHECKPOINT_INTERVAL_MS - 1);
      assert.equal((await p.cap.integrateNow(p.ctx)).checkpoint, undefined, 'not before 10 s');
      p.clock.advance(1);
      const timed = (await p.cap.integrateNow(p.ctx)).checkpoint;
      assert.equal(timed?.size, size, 'after 10 s the new entries get their checkpoint');
      p.clock.advance(CHECKPOINT_INTERVAL_MS);
      assert.equal((await p.cap.integrateNow(p.ctx)).checkpoint, undefined, 'no new entries, no checkpoint');

      const verifier = parseVerifierKey(p.cap.log.verifierKey);
      const stored = await p.cap.log.listCheckpoints(p.ctx);
      for (const c of stored) {
        const opened = openNote(c.note, [verifier]);
        assert.deepEqual(opened.verifiedBy, [ORIGIN]);
        const body = parseCheckpointBody(opened.body);
        assert.equal(body.origin, ORIGIN);
        assert.equal(body.size, c.size);
        assert.deepEqual(body.root, c.root);
      }
      assert.equal(p.cap.log.publicKey.length, 32);
      const file = parseCheckpointFile(await readFile(path.join(p.dataDir, 'checkpoints.jsonl'), 'utf8'));
      assert.equal(file.truncated, false);
      assert.deepEqual(
        file.lines.map((l) => [l.size, l.root, l.note]),
        stored.map((c) => [c.size, c.root.toString('base64'), c.note]),
        'every checkpoint is in the file, as signed',
      );
    });

    test('a restart publishes the checkpoints the file missed (a crash between commit and line)', async () => {
      const file = path.join(p.dataDir, 'checkpoints.jsonl');
      const stored = await p.cap.log.listCheckpoints(p.ctx);
      assert.ok(stored.length >= 3);
      // The file as a crash would leave it: the first line, and half of the next.
      const text = await readFile(file, 'utf8');
      const [first = '', second = ''] = text.split('\n');
      await writeFile(file, `${first}\n${second.slice(0, 20)}`);
      p.cap = p.build();
      await p.cap.start(p.ctx);
      const after = parseCheckpointFile(await readFile(file, 'utf8'));
      assert.equal(after.skipped, 1, 'the fragment stays a line of its own, skipped');
      assert.equal(after.truncated, false);
      assert.deepEqual(
        after.lines.map((l) => l.size),
        stored.map((c) => c.size),
        'every stored checkpoint is in the file again, in order',
      );
    });

    test('inclusion and consistency proofs from the stored tiles verify against the checkpoints', async () => {
      const checkpoints = await p.cap.log.listCheckpoints(p.ctx);
      const rows = (await rawRows(p.database)).filter((r) => r.leaf_index !== null);
      const byLeaf = new Map(rows.map((r) => [r.leaf_index!, r.entry ?? '']));
      for (const c of checkpoints.filter((x) => x.size > 0)) {
        for (const index of new Set([0, 1, Math.floor(c.size / 2), 255, 256, c.size - 1])) {
          if (index >= c.size) continue;
          const r = await p.cap.log.inclusion(p.ctx, index, c.size);
          assert.equal(r.entry, byLeaf.get(index));
          assert.ok(
            verifyInclusion(leafHash(Buffer.from(r.entry, 'utf8')), index, c.size, r.proof, c.root),
            `leaf ${index} is in the tree of ${c.size}`,
          );
        }
      }
      for (const a of checkpoints.filter((x) => x.size > 0)) {
        for (const b of checkpoints.filter((x) => x.size >= a.size)) {
          const r = await p.cap.log.consistency(p.ctx, a.size, b.size);
          assert.ok(verifyConsistency(a.size, b.size, r.proof, a.root, b.root), `${a.size} → ${b.size}`);
        }
      }
      await assert.rejects(p.cap.log.inclusion(p.ctx, 5, 3), { code: 'log.index_out_of_range' });
      const size = await p.cap.log.size(p.ctx);
      await assert.rejects(p.cap.log.inclusion(p.ctx, 0, size + 1), { code: 'log.size_beyond_tree' });
      await assert.rejects(p.cap.log.consistency(p.ctx, 0, 1), { code: 'log.range_invalid' });
    });
  });

  describe(`the tiles' inner rows on ${dialect}`, () => {
    let p: Parts;
    before(async () => {
      p = await openParts(dialect);
    });
    after(async () => {
      await p?.cleanup();
    });

    /** Every stored tile with its inner rows, and those the tile's hashes give. */
    async function tileRows() {
      const tiles = await p.database.tables
        .selectFrom('log_tiles')
        .select(['level', 'tile_index', 'hashes', 'inner'])
        .orderBy('level')
        .orderBy('tile_index')
        .execute();
      return tiles.map((t) => ({
        key: `${t.level}/${t.tile_index}`,
        level: Number(t.level),
        index: Number(t.tile_index),
        stored: t.inner === null ? null : Buffer.from(t.inner),
        expected: encodeInnerRows(buildTilePyramid(Buffer.from(t.hashes))),
      }));
    }

    test('the integrator stores every node inside a tile as the tile grows, pass by pass', async () => {
      // Passes of uneven sizes, so partial tiles are read back, grown and written again.
      for (const n of [1, 2, 37, 200, 19, 513, 64]) {
        await p.cap.audit.append(
          p.ctx,
          Array.from({ length: n }, (_, i) => ({ action: 'test.bulk', details: { i } })),
        );
        await p.cap.integrateNow(p.ctx);
        for (const t of await tileRows()) assert.deepEqual(t.stored, t.expected, `tile ${t.key} after +${n}`);
      }
      const size = await p.cap.log.size(p.ctx);
      assert.ok(size > 2 * 256, `${size} leaves span level-0 tiles and a level-1 tile`);
    });

    test('pledge audit verify finds an edited inner row, which proofs would read', async () => {
      const size = await p.cap.log.size(p.ctx);
      const source = () =>
        storedLogSource(p.ctx, new LogVerifyRepository(p.database.db), {
          origin: ORIGIN,
          verifiers: [parseVerifierKey(p.cap.log.verifierKey)],
          externalCheckpoints: [],
        });
      assert.deepEqual((await verifyLog(await source())).problems, []);
      const tile = (await tileRows()).find((t) => t.level === 0 && t.index === 1)!;
      const edited = Buffer.from(tile.stored!);
      edited[5 * 32] = edited[5 * 32]! ^ 0xff; // row 1, node 5: leaves 256 + 10 and 11
      await p.database.tables
        .updateTable('log_tiles')
        .set({ inner: edited })
        .where('level', '=', 0)
        .where('tile_index', '=', 1)
        .execute();
      try {
        const result = await verifyLog(await source());
        assert.equal(result.ok, false);
        const problem = result.problems.find((x) => x.code === 'log.tile_mismatch');
        assert.deepEqual(problem?.range, { from: 266, to: 268 });
        assert.match(problem?.message ?? '', /inner node of level-0 tile 1/);
      } finally {
        await p.database.tables
          .updateTable('log_tiles')
          .set({ inner: tile.stored })
          .where('level', '=', 0)
          .where('tile_index', '=', 1)
          .execute();
      }
      assert.ok(size > 0);
    });

    test('tiles stored before inner rows get them from the migration; proofs are the same', async () => {
      const size = await p.cap.log.size(p.ctx);
      const proofs = async () => {
        const log = p.build().log; // a fresh instance: nothing cached
        return Promise.all(
          [0, 255, 256, 300, size - 1].map(async (i) => (await log.inclusion(p.ctx, i, size)).proof),
        );
      };
      const before = await proofs();
      const migration = auditMigrations['2026_12_17_001_log_tile_inner_rows']!;
      await migration.down!(p.database.tables);
      await migration.up(p.database.tables);
      for (const t of await tileRows()) assert.deepEqual(t.stored, t.expected, `tile ${t.key} backfilled`);
      assert.deepEqual(await proofs(), before);
      // A tile with no inner rows (written by hand, say) still answers: the pyramid is hashed instead.
      await p.database.tables.updateTable('log_tiles').set({ inner: null }).execute();
      assert.deepEqual(await proofs(), before);
      // And the integrator writes them back whole as it grows the rightmost tiles.
      await p.cap.audit.append(p.ctx, [{ action: 'test.bulk', details: { i: -1 } }]);
      await p.cap.integrateNow(p.ctx);
      const rightmost = (await tileRows()).filter((t) => t.stored !== null);
      assert.ok(rightmost.length >= 1);
      for (const t of rightmost) assert.deepEqual(t.stored, t.expected, `tile ${t.key} regrown`);
    });
  });

  describe(`rows of an earlier version on ${dialect}`, () => {
    let p: Parts;
    before(async () => {
      p = await openParts(dialect, { before: LOG_MIGRATION });
    });
    after(async () => {
      await p?.cleanup();
    });

    test('are migrated into leaves: the subject becomes its commitment, in id order, once', async () => {
      const db = p.database.tables as unknown as Kysely<LegacyTables>;
      await db
        .insertInto('audit_events')
        .values([
          {
            at: '2026-11-30T10:00:00.000Z',
            actor: '{"kind":"cli","id":"ops"}',
            action: 'subject.create',
            subject_id: SUBJECT,
            purpose: null,
            request_id: 'r1',
            details: '{"kind":"customer"}',
          },
          {
            at: '2026-11-30T10:00:01.000Z',
            actor: `{"kind":"subject_link","id":"${SUBJECT}","scope":"preferences"}`,
            action: 'consent.change',
            subject_id: SUBJECT,
            purpose: 'marketing-email',
            request_id: 'r2',
            details: '{}',
          },
          {
            at: '2026-11-30T10:00:02.000Z',
            actor: '{"kind":"job","id":"retention"}',
            action: 'retention.sweep',
            subject_id: null,
            purpose: null,
            request_id: 'r3',
            details: '{"records":3}',
          },
        ])
        .execute();
      await migrateToLatest(p.database, MIGRATIONS);
      p.cap = p.build();
      await p.cap.start(p.ctx);
      const converted = await rawRows(p.database);
      const commitment = commitmentOf(p.keyring, SUBJECT);
      assert.deepEqual(
        converted.map((r) => [r.action, r.subject_id, r.subject]),
        [
          ['subject.create', null, commitment],
          ['consent.change', null, commitment],
          ['retention.sweep', null, null],
        ],
      );
      assert.ok(
        converted.every((r) => !JSON.stringify(r).includes(SUBJECT)),
        'no plaintext subject id is left',
      );
      const entry = JSON.parse(converted[0]!.entry ?? '') as Record<string, unknown>;
      assert.deepEqual(entry, {
        action: 'subject.create',
        actor: { kind: 'cli', id: 'ops' },
        details: { kind: 'customer' },
        request_id: 'r1',
        subject: commitment,
        time: '2026-11-30T10:00:00.000Z',
        version: 1,
      });
      // A conversion happens once: the converted row is as append-only as any other.
      await assert.rejects(
        sql`update audit_events set entry = '{}' where id = ${converted[0]!.id}`.execute(p.database.kysely),
        /append-only/,
      );
      await p.cap.audit.append(p.ctx, [{ action: 'test.new', subjectId: SUBJECT }]);
      await p.cap.integrateNow(p.ctx);
      const leaves = await rawRows(p.database);
      assert.deepEqual(
        leaves.map((r) => r.leaf_index),
        [0, 1, 2, 3],
        'the old rows come first, in the order they were written',
      );
      assert.deepEqual(
        (await p.cap.audit.listBySubject(p.ctx, SUBJECT)).map((e) => e.action),
        ['subject.create', 'consent.change', 'test.new'],
      );
      const tiles = await leafHashesFromTiles(p.database);
      assert.deepEqual(
        tiles.map((h) => h.toString('hex')),
        leaves.map((r) => leafHash(Buffer.from(r.entry ?? '', 'utf8')).toString('hex')),
      );
    });
  });
}
