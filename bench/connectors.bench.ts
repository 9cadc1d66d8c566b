/**
 * Erasure of one subject through the PostgreSQL connector against the bare statements for the same
 * rows, in the same run, interleaved: a dataset of 1,000,000 indexed rows (200,000 customers, two
 * orders each, one item per order), each round erasing a different customer by e-mail. The
 * connector finds and locks the rows by the declared paths, then deletes the items and orders and
 * masks and nulls the customer's columns in foreign-key order, in one transaction; the bare
 * baseline runs the three statements a person would write for the same rows in one transaction.
 * Target (for the whole request, later): at most ×3 of the bare statements.
 *
 * Alone: `PLEDGE_TEST_DATABASE_URL=postgres://… node --import tsx bench/connectors.bench.ts [--quick]`.
 */
import pg from 'pg';
import { parse } from 'yaml';
import { datasetSchema } from '../src/manifest/dataset.schema.js';
import { postgresConnector } from '../src/rights/connectors/postgres.connector.js';
import { createPostgresDatabase } from '../test/helpers/postgres.js';
import {
  BenchFailure,
  formatMs,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  runAlone,
  summarize,
  type BenchResult,
} from './lib.js';

/** How much to run. */
export interface ConnectorsBenchOptions {
  /** Customers; the dataset has five rows per customer. */
  customers: number;
  /** Subjects erased per side. */
  erasures: number;
}

/** The figures of `npm run bench`. */
export const CONNECTORS_BENCH_DEFAULTS: ConnectorsBenchOptions = { customers: 200_000, erasures: 200 };
/** `--quick`: to try the harness. */
export const CONNECTORS_BENCH_QUICK: ConnectorsBenchOptions = { customers: 20_000, erasures: 20 };

const TARGET = 3;

const DATASET = datasetSchema.parse(
  parse(`key: shop
name: Shop
engine: postgresql
connected: true
collections:
  - name: customers
    fields:
      - { name: id, primary_key: true }
      - { name: email, data_categories: [user.contact.email], identity: email, erase: mask, mask: erased@invalid }
      - { name: phone, data_categories: [user.contact.phone_number], erase: set_null }
      - { name: name, data_categories: [user.name], erase: mask }
  - name: orders
    fields:
      - { name: id, primary_key: true }
      - { name: customer_id, references: [{ field: customers.id, direction: from }] }
      - { name: note, data_categories: [user.contact.address], erase: delete_row }
  - name: order_items
    fields:
      - { name: id, primary_key: true }
      - { name: order_id, references: [{ field: orders.id, direction: from }] }
      - { name: gift, data_categories: [user.content], erase: delete_row }
`),
);

async function build(client: pg.Client, n: number): Promise<void> {
  await client.query(`
    create table customers (id integer primary key, email text, phone text, name text);
    create table orders (id integer primary key, customer_id integer not null references customers (id), note text);
    create table order_items (id integer primary key, order_id integer not null references orders (id), gift text);
    insert into customers select i, 'user' || i || '@example.com', '+1555' || i, 'Name ' || i from generate_series(1, ${n}) i;
    insert into orders select i, (i + 1) / 2, 'note ' || i from generate_series(1, ${2 * n}) i;
    insert into order_items select i, i, 'gift ' || i from generate_series(1, ${2 * n}) i;
    create index customers_email on customers (email);
    create index orders_customer on orders (customer_id);
    create index items_order on order_items (order_id);
    analyze;`);
}

/** The bare statements for the same rows: what a person would write by hand. */
async function bareErase(client: pg.Client, email: string): Promise<void> {
  await client.query('begin');
  await client.query(
    'delete from order_items where order_id in (select o.id from orders o join customers c on c.id = o.customer_id where c.email = $1)',
    [email],
  );
  await client.query('delete from orders where customer_id in (select id from customers where email = $1)', [
    email,
  ]);
  await client.query(
    "update customers set email = 'erased@invalid', phone = null, name = '[erased]' where email = $1",
    [email],
  );
  await client.query('commit');
}

/** Runs the bench. */
export async function runConnectorsBench(options: ConnectorsBenchOptions): Promise<BenchResult> {
  const db = await createPostgresDatabase('bench_connectors');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const connector = postgresConnector(DATASET, 0, db.url);
  try {
    const started = performance.now();
    await build(client, options.customers);
    const buildMs = performance.now() - started;
    const viaConnector: number[] = [];
    const bare: number[] = [];
    // Warm both paths once (plans, the connector's primary-key lookup), untimed.
    await connector.erase({ email: ['user1@example.com'] });
    await bareErase(client, 'user2@example.com');
    const step = Math.floor(options.customers / (2 * options.erasures + 2));
    for (let i = 1; i <= options.erasures; i++) {
      const a = `user${2 + 2 * i * step}@example.com`;
      const b = `user${3 + 2 * i * step}@example.com`;
      let t = performance.now();
      const result = await connector.erase({ email: [a] });
      viaConnector.push(performance.now() - t);
      if (!result.ok || result.collections.map((c) => c.rows).join(',') !== '2,2,1')
        throw new BenchFailure(
          `the connector's erasure of ${a} did not change 2 items, 2 orders and 1 customer`,
        );
      t = performance.now();
      await bareErase(client, b);
      bare.push(performance.now() - t);
    }
    const rows = Number(
      (
        await client.query<{ n: string }>(
          'select (select count(*) from customers) + (select count(*) from orders) + (select count(*) from order_items) as n',
        )
      ).rows[0]?.n,
    );
    const c = summarize(viaConnector);
    const s = summarize(bare);
    const met = c.median <= TARGET * s.median;
    const target = { label: `≤ ×${TARGET} of the bare statements (median)`, met };
    return {
      title: 'Connector erasure (bench/connectors.bench.ts)',
      markdown: [
        formatTable(
          ['erasure of one subject (2 items, 2 orders, 1 customer)', 'median', 'p95', 'ratio', 'target'],
          [
            [
              'PostgreSQL connector `erase`',
              formatMs(c.median),
              formatMs(c.p95),
              formatRatio(c.median, s.median),
              formatTarget(target),
            ],
            [
              'bare DELETE, DELETE, UPDATE in one transaction',
              formatMs(s.median),
              formatMs(s.p95),
              '×1.00',
              '—',
            ],
          ],
        ),
        '',
        `${options.erasures} erasures per side, interleaved, on ${rows.toLocaleString('en-US')} rows left of ${(5 * options.customers).toLocaleString('en-US')} (built in ${formatMs(buildMs)} with generate_series).`,
      ].join('\n'),
      missed: met
        ? []
        : [
            `connector erasure ${formatRatio(c.median, s.median)} of the bare statements (target ≤ ×${TARGET})`,
          ],
    };
  } finally {
    await connector.close();
    await client.end();
    await db.drop();
  }
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runConnectorsBench(quick ? CONNECTORS_BENCH_QUICK : CONNECTORS_BENCH_DEFAULTS));
}
