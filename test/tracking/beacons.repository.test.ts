/**
 * The beacons' repository on every engine: events go in as group commits write them and come back
 * by day; a day's salt is made once however many instances ask at the same moment; expiry deletes
 * what is older than asked and only that.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createContext } from '../../src/platform/context.js';
import { uuidv7 } from '../../src/platform/ids.js';
import { BeaconsRepository, type BeaconEventRow } from '../../src/tracking/beacons.repository.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase } from '../helpers/databases.js';

const ctx = createContext({ kind: 'job', id: 'test' });

function event(at: Date, overrides: Partial<BeaconEventRow> = {}): BeaconEventRow {
  return {
    id: uuidv7(),
    at,
    day: at.toISOString().slice(0, 10),
    purpose: 'site-analytics',
    channel: 'web',
    source: 'web-beacons',
    site: 'www.example-online.test',
    kind: 'pageview',
    sealed: 'k1:AAAA',
    visitor: 'ab'.repeat(32),
    cookieless: true,
    campaignId: null,
    ...overrides,
  };
}

for (const dialect of DIALECTS) {
  describe(`beacons repository on ${dialect}`, () => {
    let database: TestDatabase;
    let repo: BeaconsRepository;

    before(async () => {
      database = await openMigratedTestDatabase(dialect);
      repo = new BeaconsRepository(database.db);
    });
    after(async () => {
      await database.cleanup();
    });

    test('events written in one call come back by day, in order, with every field', async () => {
      const day = new Date('2026-12-01T10:00:00.000Z');
      const rows = Array.from({ length: 300 }, (_, i) =>
        event(
          new Date(day.getTime() + i),
          i === 0 ? { channel: 'email', campaignId: 'c1', cookieless: false } : {},
        ),
      );
      await repo.insertEvents(ctx, rows);
      const first = await repo.eventsOfDay(ctx, '2026-12-01', { limit: 200 });
      const rest = await repo.eventsOfDay(ctx, '2026-12-01', { limit: 200, afterId: first.at(-1)!.id });
      assert.deepEqual([...first, ...rest], rows);
      assert.deepEqual(await repo.eventsOfDay(ctx, '2026-12-02', { limit: 10 }), []);
    });

    test("a day's salt is made once, whoever asks first", async () => {
      const now = new Date('2026-12-03T00:00:01.000Z');
      const candidates = Array.from({ length: 8 }, () => randomBytes(32).toString('base64'));
      const salts = await Promise.all(candidates.map((c) => repo.saltOf(ctx, '2026-12-03', c, now)));
      assert.equal(new Set(salts).size, 1);
      assert.ok(candidates.includes(salts[0]!));
      assert.equal(await repo.getSalt(ctx, '2026-12-03'), salts[0]);
      assert.equal(await repo.saltOf(ctx, '2026-12-03', randomBytes(32).toString('base64'), now), salts[0]);
    });

    test('old salts and old events are deleted, newer ones kept', async () => {
      await repo.saltOf(ctx, '2026-12-04', 'old', new Date('2026-12-04T00:00:00.000Z'));
      await repo.saltOf(ctx, '2026-12-06', 'new', new Date('2026-12-06T00:00:00.000Z'));
      assert.ok((await repo.deleteSaltsCreatedBefore(ctx, new Date('2026-12-05T00:00:00.000Z'))) >= 1);
      assert.equal(await repo.getSalt(ctx, '2026-12-04'), undefined);
      assert.equal(await repo.getSalt(ctx, '2026-12-06'), 'new');

      const old = event(new Date('2025-01-01T00:00:00.000Z'));
      const kept = event(new Date('2026-12-06T00:00:00.000Z'));
      await repo.insertEvents(ctx, [old, kept]);
      assert.equal(
        await repo.deleteEventsBefore(ctx, new Date('2025-06-01T00:00:00.000Z'), { limit: 100 }),
        1,
      );
      assert.deepEqual(await repo.eventsOfDay(ctx, '2025-01-01', { limit: 10 }), []);
      assert.deepEqual(await repo.eventsOfDay(ctx, '2026-12-06', { limit: 10 }), [kept]);
    });
  });
}
