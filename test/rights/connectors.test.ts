/**
 * The connectors on real databases: the same body on PostgreSQL (always) and MariaDB/MySQL (when
 * PLEDGE_TEST_MYSQL_URL is set, as `npm run test:mysql` and CI do). Each suite has a database of
 * its own, with real foreign keys and no cascades.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { CollectedRow, Connector } from '../../src/rights/connectors/connector.js';
import { openConnector } from '../../src/rights/connectors/connectors.js';
import { createEngineDatabase, testEngines, type EngineDatabase } from '../helpers/connector-databases.js';
import { createShop, dropShop, shopDataset } from './connectors.fixture.js';

async function collectAll(c: Connector, ids: Record<string, string[]>): Promise<CollectedRow[]> {
  const rows: CollectedRow[] = [];
  for await (const r of c.collect(ids)) rows.push(r);
  return rows;
}
const valueOf = (r: CollectedRow, f: string) => r.fields.find((x) => x.name === f)?.value;

for (const engine of testEngines()) {
  describe(`connector on ${engine}`, () => {
    let db: EngineDatabase;
    let connector: Connector;
    before(async () => {
      db = await createEngineDatabase(engine, 'connectors');
      connector = openConnector(shopDataset(engine), 0, { engine, url: db.url });
    });
    after(async () => {
      await connector.close();
      await db.drop();
    });
    beforeEach(async () => {
      await dropShop(db);
      await createShop(db);
    });

    test('collect follows the declared paths three levels down, and only the subject’s rows', async () => {
      const rows = await collectAll(connector, { email: ['ann@example.com'] });
      const by = (c: string) => rows.filter((r) => r.collection === c);
      assert.deepEqual(
        by('customers').map((r) => valueOf(r, 'email')),
        ['ann@example.com'],
      );
      assert.deepEqual(
        by('addresses').map((r) => valueOf(r, 'street')),
        ['1 Ann Street'],
      );
      assert.deepEqual(
        by('orders').map((r) => valueOf(r, 'shipping_note')),
        ['leave at door', 'ring twice'],
      );
      assert.deepEqual(
        by('order_items').map((r) => valueOf(r, 'gift_message')),
        ['happy birthday', null, 'for you'],
      );
      const email = by('customers')[0]?.fields.find((f) => f.name === 'email');
      assert.deepEqual(email?.categories, ['user.contact.email'], 'each value comes with its categories');
      // The phone identity finds the same person; an unknown one finds nothing.
      assert.equal((await collectAll(connector, { phone: ['+15550001'] })).length, rows.length);
      assert.deepEqual(await collectAll(connector, { email: ['nobody@example.com'] }), []);
    });

    test('erase applies delete, set null and mask in foreign-key order, then finds nothing left', async () => {
      const result = await connector.erase({ email: ['ann@example.com'] });
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal(result.nothingFound, false);
      assert.deepEqual(
        result.collections.map((c) => [c.collection, c.action, c.rows, c.status]),
        [
          ['order_items', 'delete', 3, 'done'],
          ['orders', 'delete', 2, 'done'],
          ['customers', 'update', 1, 'done'],
          ['addresses', 'delete', 1, 'done'],
        ],
      );
      assert.deepEqual(
        await db.query('select id, email, phone, name, address_id from customers order by id'),
        [
          { id: 1, email: 'erased@invalid', phone: null, name: '[erased]', address_id: null },
          { id: 2, email: 'bob@example.com', phone: '+15550002', name: 'Bob', address_id: 20 },
        ],
      );
      assert.deepEqual(await db.query('select id from orders order by id'), [{ id: 200 }]);
      assert.deepEqual(await db.query('select id from order_items order by id'), [{ id: 2000 }]);
      assert.deepEqual(await db.query('select id from addresses order by id'), [{ id: 20 }]);

      const again = await connector.erase({ email: ['ann@example.com'] });
      assert.equal(again.ok, true);
      assert.equal(again.nothingFound, true, 'a second erasure finds nothing and says so');
      assert.ok(again.collections.every((c) => c.rows === 0));
    });

    test('a failure mid-way undoes every step: all or nothing', async () => {
      // A table the manifest does not declare still points at the subject's order.
      await db.exec(
        'create table invoices (id integer primary key, order_id integer not null, foreign key (order_id) references orders (id))',
        'insert into invoices values (1, 101)',
      );
      const result = await connector.erase({ email: ['ann@example.com'] });
      assert.equal(result.ok, false);
      assert.deepEqual(
        result.collections.map((c) => [c.collection, c.status, c.error?.code]),
        [
          ['order_items', 'rolled_back', undefined],
          ['orders', 'failed', 'connector.foreign_key'],
          ['customers', 'not_run', undefined],
          ['addresses', 'not_run', undefined],
        ],
      );
      assert.doesNotMatch(JSON.stringify(result), /ann@example|leave at door/, 'no value in the result');
      assert.equal((await db.query('select id from order_items')).length, 4, 'the deleted items are back');
      assert.deepEqual(await db.query('select email from customers where id = 1'), [
        { email: 'ann@example.com' },
      ]);
    });

    test('a subject with more rows than a page and an IN list: collected page by page, erased in chunks', async () => {
      const values = Array.from({ length: 1_200 }, (_, i) => `(${5000 + i}, 101, 'gift ${i}')`).join(', ');
      await db.exec(`insert into order_items values ${values}`);
      const rows = await collectAll(connector, { email: ['ann@example.com'] });
      const items = rows.filter((r) => r.collection === 'order_items');
      assert.equal(items.length, 1_203, 'every item, across three pages');
      assert.equal(new Set(items.map((r) => valueOf(r, 'id'))).size, 1_203, 'none twice');
      const result = await connector.erase({ email: ['ann@example.com'] });
      assert.deepEqual(
        result.collections.map((c) => [c.collection, c.rows]),
        [
          ['order_items', 1_203],
          ['orders', 2],
          ['customers', 1],
          ['addresses', 1],
        ],
      );
      assert.deepEqual(await db.query('select id from order_items'), [{ id: 2000 }]);
    });

    test('checkSchema names the manifest position of a missing table or column', async () => {
      await db.exec('drop table order_items', 'alter table orders drop column shipping_note');
      const problems = await connector.checkSchema();
      assert.deepEqual(
        problems.map((p) => [p.code, p.path.join('.')]),
        [
          ['connectors.missing_column', 'datasets.0.collections.2.fields.2.name'],
          ['connectors.missing_table', 'datasets.0.collections.3.name'],
        ],
      );
    });
  });
}
