/**
 * `pledge connectors test` and `pledge connectors scan` against real databases, on each engine the
 * run has (PostgreSQL always, MariaDB/MySQL with PLEDGE_TEST_MYSQL_URL).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { datasetSchema } from '../../src/manifest/dataset.schema.js';
import { ROOT, runPledge } from '../helpers/cli.js';
import { createEngineDatabase, testEngines, type EngineDatabase } from '../helpers/connector-databases.js';
import { createShop, SHOP_DATASET_YAML } from './connectors.fixture.js';

const base = await readFile(path.join(ROOT, 'test/fixtures/fides/pledge.yaml'), 'utf8');
const block = (yaml: string) =>
  yaml
    .split('\n')
    .map((l, i) => (l === '' ? l : i === 0 ? `  - ${l}` : `    ${l}`))
    .join('\n');

for (const engine of testEngines()) {
  describe(`pledge connectors on ${engine}`, () => {
    let db: EngineDatabase;
    let manifest: string;
    let text: string;
    before(async () => {
      db = await createEngineDatabase(engine, 'connectors_cli');
      await createShop(db);
      await db.exec('drop table order_items');
      // The manifest declares a column the database does not have, and the table just dropped.
      text = `${base}\ndatasets:\n${block(
        SHOP_DATASET_YAML.replace('engine: postgresql', `engine: ${engine}`).replace(
          '      - name: address_id',
          '      - name: loyalty_tier\n      - name: address_id',
        ),
      )}`;
      manifest = path.join(await mkdtemp(path.join(tmpdir(), 'pledge-connectors-')), 'pledge.yaml');
      await writeFile(manifest, text, 'utf8');
    });
    after(() => db.drop());

    /** `file:line:column` of `word` on the line holding `needle`, as the CLI prints positions. */
    const at = (needle: string, word: string) => {
      const lines = text.split('\n');
      const i = lines.findIndex((l) => l.includes(needle));
      return `${manifest}:${i + 1}:${(lines[i] ?? '').indexOf(word) + 1}`;
    };

    test('connectors test names each missing table and column at its place in the manifest', async () => {
      const run = await runPledge(['connectors', 'test', manifest], {
        env: { PLEDGE_CONNECTOR_SHOP_URL: db.url },
      });
      assert.equal(run.code, 1, run.stderr);
      assert.deepEqual(run.stdout.trim().split('\n'), [
        `${at('- name: loyalty_tier', 'loyalty_tier')}: error connectors.missing_column: dataset shop: table "customers" has no column "loyalty_tier"`,
        `${at('- name: order_items', 'order_items')}: error connectors.missing_table: dataset shop: table "order_items" does not exist in the database`,
      ]);
    });

    test('connectors test without the URL is an error naming the variable', async () => {
      const run = await runPledge(['connectors', 'test', manifest], {
        env: { PLEDGE_CONNECTOR_SHOP_URL: '' },
      });
      assert.equal(run.code, 2);
      assert.match(run.stderr, /PLEDGE_CONNECTOR_SHOP_URL is not set: dataset shop is connected/);
    });

    test('connectors scan proposes a dataset block with keys, references and suggested categories', async () => {
      const run = await runPledge(['connectors', 'scan', db.url]);
      assert.equal(run.code, 0, run.stderr);
      const proposal = datasetSchema.parse((parse(run.stdout) as { datasets: unknown[] }).datasets[0]);
      assert.equal(proposal.engine, engine);
      assert.equal(proposal.connected, false, 'connected only once someone has reviewed it');
      const customers = proposal.collections.find((c) => c.name === 'customers');
      assert.deepEqual(
        customers?.fields.map((f) => [f.name, f.data_categories, f.identity ?? null, f.primary_key ?? false]),
        [
          ['id', [], null, true],
          ['email', ['user.contact.email'], 'email', false],
          ['phone', ['user.contact.phone_number'], 'phone', false],
          ['name', ['user.name'], null, false],
          ['address_id', [], null, false],
        ],
      );
      assert.deepEqual(customers?.fields.find((f) => f.name === 'address_id')?.references, [
        { field: 'addresses.id', direction: 'to' },
      ]);
      const orders = proposal.collections.find((c) => c.name === 'orders');
      assert.deepEqual(orders?.fields.find((f) => f.name === 'customer_id')?.references, [
        { field: 'customers.id', direction: 'from' },
      ]);
      assert.deepEqual(
        proposal.collections.map((c) => c.name),
        ['addresses', 'customers', 'orders'],
      );
    });
  });
}

describe('pledge serve with a connected dataset', () => {
  test('refuses to start without the dataset’s URL, naming the variable', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pledge-connectors-serve-'));
    const file = path.join(dir, 'pledge.yaml');
    await writeFile(file, `${base}\ndatasets:\n${block(SHOP_DATASET_YAML)}`, 'utf8');
    const run = await runPledge(['serve', '--manifest', file, '--data-dir', dir, '--port', '0'], {
      env: { PLEDGE_CONNECTOR_SHOP_URL: '', DATABASE_URL: '' },
    });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /PLEDGE_CONNECTOR_SHOP_URL is not set: dataset shop is connected/);
  });
});
