import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AuditTables } from '../../src/audit/audit.tables.js';
import { createContext } from '../../src/platform/context.js';
import { RowInserter } from '../../src/platform/db/row-inserter.js';
import { DIALECTS, openMigratedTestDatabase, type TestDatabase, tablesOf } from '../helpers/databases.js';

const CTX = createContext({ kind: 'cli', id: 'test' });
const AUDIT_COLUMNS = [
  'at',
  'actor',
  'action',
  'subject',
  'purpose',
  'request_id',
  'details',
  'entry',
] as const;

function auditRow(i: number) {
  return {
    at: new Date(Date.UTC(2026, 10, 29, 12, 0, i % 60)).toISOString(),
    actor: JSON.stringify({ kind: 'job', id: 'test' }),
    action: 'test.row',
    // Every other row with nulls, so a null is bound in the right place too.
    subject: i % 2 === 0 ? `subject-${i}` : null,
    purpose: i % 2 === 0 ? 'provide-service' : null,
    request_id: `request-${i}`,
    details: JSON.stringify({ i }),
    entry: JSON.stringify({ i }),
  };
}

for (const dialect of DIALECTS) {
  void describe(`multi-row inserts built once per size, on ${dialect}`, () => {
    let database: TestDatabase;
    before(async () => {
      database = await openMigratedTestDatabase(dialect);
    });
    after(async () => {
      await database?.cleanup();
    });

    void test('every row lands with each value in its own column, whatever the batch size', async () => {
      const inserter = new RowInserter<AuditTables, 'audit_events'>('audit_events', AUDIT_COLUMNS);
      // 300 rows go as 256 + 32 + 8 + 4; 1 and 300 again reuse what the first calls built.
      const sizes = [300, 1, 300, 7];
      let next = 0;
      for (const size of sizes) {
        const rows = Array.from({ length: size }, () => auditRow(next++));
        await inserter.insert(database.db.executor<AuditTables>(CTX), rows);
      }
      const stored = await tablesOf(database)
        .selectFrom('audit_events')
        .select([...AUDIT_COLUMNS])
        .where('action', '=', 'test.row')
        .orderBy('id')
        .execute();
      assert.equal(stored.length, next);
      stored.forEach((row, i) => assert.deepEqual(row, auditRow(i)));
    });

    void test('an empty batch writes nothing and does not fail', async () => {
      const inserter = new RowInserter<AuditTables, 'audit_events'>('audit_events', AUDIT_COLUMNS);
      await inserter.insert(database.db.executor<AuditTables>(CTX), []);
      const { n } = await tablesOf(database)
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('action', '=', 'test.empty')
        .executeTakeFirstOrThrow();
      assert.equal(Number(n), 0);
    });
  });
}
