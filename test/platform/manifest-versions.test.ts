import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  ManifestVersionRepository,
  type RecordInForceOptions,
} from '../../src/manifest/manifest.repository.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { createContext } from '../../src/platform/context.js';

const CTX = createContext({ kind: 'cli', id: 'test' });

function manifest(version: string, at: string): RecordInForceOptions {
  // Non-ASCII and newlines: the YAML must come back byte for byte.
  const source = `pledge: 1\norganization:\n  name: Zürich Meetings — ${version}\n  version: "${version}"\n`;
  return {
    hash: createHash('sha256').update(source).digest('hex'),
    version,
    effective: '2026-12-01',
    source,
    at: new Date(at),
  };
}

/** The version in force: `list` names it first. */
async function inForce(repository: ManifestVersionRepository) {
  return (await repository.list(CTX))[0];
}

/** The version with this hash, if it was ever in force. */
async function byHash(repository: ManifestVersionRepository, hash: string) {
  return (await repository.list(CTX)).find((v) => v.hash === hash);
}

for (const dialect of DIALECTS) {
  void describe(dialect, () => {
    let database: TestDatabase;
    before(async () => {
      database = await openMigratedTestDatabase(dialect);
    });
    after(async () => {
      await database?.cleanup();
    });

    void test('recording versions: idempotent on the hash, the newest is current, rows are kept', async () => {
      const repository = new ManifestVersionRepository(database.db);
      assert.equal(await inForce(repository), undefined);

      const v1 = manifest('1.0', '2026-12-01T09:00:00.000Z');
      const first = await repository.recordInForce(CTX, v1);
      assert.equal(first.created, true);

      // A server restart with the same manifest, through a fresh repository, adds nothing.
      const restarted = await new ManifestVersionRepository(database.db).recordInForce(CTX, {
        ...v1,
        at: new Date('2026-12-02T09:00:00.000Z'),
      });
      assert.deepEqual(restarted, { id: first.id, created: false });
      assert.equal((await repository.list(CTX)).length, 1);
      assert.deepEqual(await inForce(repository), {
        id: first.id,
        hash: v1.hash,
        version: '1.0',
        effective: '2026-12-01',
        source: v1.source,
        firstSeenAt: new Date('2026-12-01T09:00:00.000Z'),
        inForceFrom: new Date('2026-12-01T09:00:00.000Z'),
      });

      const v2 = manifest('2.0', '2026-12-10T09:00:00.000Z');
      const second = await repository.recordInForce(CTX, v2);
      assert.equal(second.created, true);
      assert.notEqual(second.id, first.id);
      assert.equal((await inForce(repository))?.hash, v2.hash);
      assert.deepEqual(
        (await repository.list(CTX)).map((v) => v.version),
        ['2.0', '1.0'],
      );

      // The old version is still there for records that name it.
      assert.equal((await byHash(repository, v1.hash))?.source, v1.source);
      assert.equal((await repository.getById(CTX, first.id))?.hash, v1.hash);
      assert.equal(await byHash(repository, '0'.repeat(64)), undefined);
    });

    void test('rolling back to an earlier manifest makes it current again without a new row', async () => {
      const repository = new ManifestVersionRepository(database.db);
      const before = await repository.list(CTX);
      const v1 = manifest('1.0', '2026-12-20T09:00:00.000Z');
      const result = await repository.recordInForce(CTX, v1);
      assert.equal(result.created, false);
      const current = await inForce(repository);
      assert.equal(current?.hash, v1.hash);
      assert.equal(current?.id, result.id);
      assert.deepEqual(current?.firstSeenAt, new Date('2026-12-01T09:00:00.000Z'));
      assert.deepEqual(current?.inForceFrom, new Date('2026-12-20T09:00:00.000Z'));
      assert.equal((await repository.list(CTX)).length, before.length);
    });

    void test('a new manifest becomes current even when this clock is behind the last recorded one', async () => {
      const repository = new ManifestVersionRepository(database.db);
      const latest = await inForce(repository);
      assert.ok(latest);
      const v3 = manifest('3.0', '2026-01-01T00:00:00.000Z');
      const result = await repository.recordInForce(CTX, v3);
      assert.equal(result.created, true);
      const current = await inForce(repository);
      assert.equal(current?.hash, v3.hash);
      assert.ok(current.inForceFrom > latest.inForceFrom);
      assert.deepEqual(current.firstSeenAt, new Date('2026-01-01T00:00:00.000Z'));
    });

    void test('concurrent recording of the same new manifest adds one row', async () => {
      const repository = new ManifestVersionRepository(database.db);
      const v4 = manifest('4.0', '2027-01-01T00:00:00.000Z');
      const results = await Promise.all([1, 2, 3].map(() => repository.recordInForce(CTX, v4)));
      assert.equal(new Set(results.map((r) => r.id)).size, 1);
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal((await repository.list(CTX)).filter((v) => v.hash === v4.hash).length, 1);
    });
  });
}
