/**
 * The processors' feed on a database an earlier version wrote, on every engine: it kept no
 * activations, only each version's first date and its latest `in_force_from`. The migration that
 * adds them counts each version's first time and the rollback that made it current again, so the
 * feed of an upgraded deployment shows that rollback too, and earlier entries keep their ids.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDocument } from 'yaml';
import { MIGRATIONS } from '../../src/capabilities.js';
import { ManifestVersionRepository } from '../../src/manifest/manifest.repository.js';
import { ManifestVersions } from '../../src/manifest/manifest.service.js';
import { processorHistory } from '../../src/manifest/processors.page.js';
import { createContext } from '../../src/platform/context.js';
import { migrateToLatest } from '../../src/platform/db/migrations.js';
import { ROOT } from '../helpers/cli.js';
import { DIALECTS, openTestDatabase, tablesOf, type TestDatabase } from '../helpers/databases.js';

const ACTIVATIONS = '2026_12_17_102_manifest_activations';
const ctx = createContext({ kind: 'cli', id: 'test' });
const V1 = await readFile(path.join(ROOT, 'examples/example-online/pledge.yaml'), 'utf8');
const V2 = (() => {
  const doc = parseDocument(V1);
  const card = (doc.toJS() as { recipients: Array<{ key: string }> }).recipients.findIndex(
    (r) => r.key === 'card-processor',
  );
  doc.setIn(['policy', 'version'], '2026-03-01');
  doc.setIn(['policy', 'effective'], '2026-03-01');
  doc.setIn(['recipients', card, 'country'], 'IE');
  return doc.toString({ lineWidth: 0 });
})();

for (const dialect of DIALECTS) {
  describe(`the processors' feed after an upgrade on ${dialect}`, () => {
    let database: TestDatabase;
    before(async () => {
      database = await openTestDatabase(dialect);
    });
    after(() => database.cleanup());

    test('a rollback made before the upgrade has its entry; the versions keep theirs', async () => {
      await migrateToLatest(
        database,
        MIGRATIONS.filter(([name]) => name < ACTIVATIONS),
      );
      // V1, then V2, then back to V1, as the earlier version recorded them.
      const row = (source: string, version: string, firstSeen: string, inForce: string) => ({
        hash: createHash('sha256').update(source).digest('hex'),
        version,
        effective: version,
        source,
        first_seen_at: firstSeen,
        in_force_from: inForce,
      });
      await tablesOf(database)
        .insertInto('manifest_versions')
        .values([
          row(V1, '2012-09-07', '2026-01-05T10:00:00.000Z', '2026-04-02T08:30:00.000Z'),
          row(V2, '2026-03-01', '2026-03-01T09:00:00.000Z', '2026-03-01T09:00:00.000Z'),
        ])
        .execute();

      assert.ok((await migrateToLatest(database, MIGRATIONS)).applied.includes(ACTIVATIONS));
      const versions = new ManifestVersions(new ManifestVersionRepository(database.db));
      const activations = await versions.activations(ctx);
      assert.deepEqual(
        activations.map((a) => a.at.toISOString()),
        ['2026-01-05T10:00:00.000Z', '2026-03-01T09:00:00.000Z', '2026-04-02T08:30:00.000Z'],
      );

      const list = await versions.list(ctx);
      const history = processorHistory(list, 'https://www.example-online.test', activations);
      const without = processorHistory(list, 'https://www.example-online.test');
      assert.equal(history.entries.length, 3);
      assert.equal(history.entries[0]!.rollback, true);
      assert.equal(history.entries[0]!.updated.toISOString(), '2026-04-02T08:30:00.000Z');
      assert.match(history.entries[0]!.changes.join(' '), /policy version 2012-09-07 .* is in force again/);
      assert.deepEqual(
        history.entries.slice(1).map((e) => e.id),
        without.entries.map((e) => e.id),
        'the entries of the versions keep the ids they had before the upgrade',
      );
      assert.equal(history.updated.toISOString(), '2026-04-02T08:30:00.000Z');

      // The next activation is recorded as it happens, and is in the feed like the others.
      await new ManifestVersionRepository(database.db).recordInForce(ctx, {
        hash: createHash('sha256').update(V2).digest('hex'),
        version: '2026-03-01',
        effective: '2026-03-01',
        source: V2,
        at: new Date('2026-05-01T00:00:00.000Z'),
      });
      const next = processorHistory(
        await versions.list(ctx),
        'https://www.example-online.test',
        await versions.activations(ctx),
      );
      assert.equal(next.entries.length, 4);
      assert.equal(next.entries[0]!.rollback, true);
      assert.equal(next.entries[0]!.policyVersion, '2026-03-01');
      assert.equal(new Set(next.entries.map((e) => e.id)).size, 4);
    });
  });
}
