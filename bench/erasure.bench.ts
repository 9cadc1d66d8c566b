/**
 * Erasure of one subject end to end against the bare statements for the same rows, in the same run,
 * interleaved: two connected PostgreSQL databases of 1,000,000 indexed rows each (200,000
 * customers, two orders each, one item per order) and the vault (SQLite in a data dir, the app
 * built as the other in-process benches build it) holding the subjects' records, each disclosed
 * once to a recipient. The Pledge side is the erase work of one request as the request executors
 * run it: the connector's erase on each dataset (a fresh connector per step, closed after, as the
 * executors open them), then the legal holds looked up and `erasePledgeData` (recipients from the
 * log, tombstone from the blind index, key destroyed, records deleted, log entries, recipient
 * notices queued). It calls the services directly: no HTTP intake, no verification, no step engine.
 * The bare side runs the DELETE, DELETE, UPDATE a person would write on each database and DELETEs
 * the subject's record rows and key rows in SQLite. Target: at most ×3 of the bare side (median).
 * Then a batch of erasures, Pledge side only, one after another: subjects per second.
 *
 * Alone: `PLEDGE_TEST_DATABASE_URL=postgres://… node --import tsx bench/erasure.bench.ts [--quick]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { parse } from 'yaml';
import { createApp } from '../src/app.js';
import { datasetSchema, type Dataset } from '../src/manifest/dataset.schema.js';
import { loadConfig } from '../src/platform/config.js';
import { createContext } from '../src/platform/context.js';
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
export interface ErasureBenchOptions {
  /** Customers per connected database; each has five rows per customer. */
  customers: number;
  /** Subjects erased per side, interleaved. */
  erasures: number;
  /** Subjects erased in the batch (Pledge side only). */
  batch: number;
}

/** The figures of `npm run bench`. */
export const ERASURE_BENCH_DEFAULTS: ErasureBenchOptions = {
  customers: 200_000,
  erasures: 200,
  batch: 10_000,
};
/** `--quick`: to try the harness. */
export const ERASURE_BENCH_QUICK: ErasureBenchOptions = { customers: 20_000, erasures: 20, batch: 200 };

const TARGET = 3;

function datasetOf(key: string): Dataset {
  return datasetSchema.parse(
    parse(`key: ${key}
name: ${key}
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
}

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

/** The bare statements for the same rows on one database: what a person would write by hand. */
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

const emailOf = (i: number) => `user${i}@example.com`;

/** Runs the bench. */
export async function runErasureBench(options: ErasureBenchOptions): Promise<BenchResult> {
  const needed = 2 * options.erasures + 2 + options.batch;
  if (needed > options.customers)
    throw new BenchFailure(`erasure bench: ${needed} subjects needed, only ${options.customers} customers`);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-erasure-'));
  const dbs = [
    await createPostgresDatabase('bench_erasure_a'),
    await createPostgresDatabase('bench_erasure_b'),
  ];
  const clients = dbs.map((d) => new pg.Client({ connectionString: d.url }));
  const datasets = [datasetOf('shop'), datasetOf('billing')];
  const app = await createApp({
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }),
    retentionIntervalSeconds: 0,
  });
  try {
    for (const c of clients) await c.connect();
    let started = performance.now();
    await Promise.all(clients.map((c) => build(c, options.customers)));
    const buildMs = performance.now() - started;

    // The subjects, by the same e-mail as the customers' in both databases; each disclosed once.
    const web = createContext({ kind: 'system', id: 'web-app', key: 'bench' });
    const office = createContext({ kind: 'system', id: 'legal-team', key: 'bench' });
    const subjects = new Map<number, string>();
    started = performance.now();
    for (let i = 1; i <= needed; i++) {
      const r = await app.collect.collect(web, 'trial-signup', {
        jurisdiction: 'US',
        data: { email: emailOf(i), first_name: 'Ada', last_name: 'Lovelace' },
      });
      await app.share.disclose(web, {
        recipient: 'email-delivery',
        purpose: 'provide-service',
        subjects: [r.subject.id],
        fields: ['email', 'first_name'],
      });
      subjects.set(i, r.subject.id);
    }
    const vaultMs = performance.now() - started;

    const phases = { connectors: [] as number[], holds: [] as number[], pledge: [] as number[] };
    let lastSteps: Record<string, unknown> = {};
    /** One request's erase steps, as the executors run them: each dataset, then Pledge. */
    const pledgeErase = async (i: number, timed: boolean): Promise<void> => {
      const t = performance.now();
      for (const [index, dataset] of datasets.entries()) {
        const connector = postgresConnector(dataset, index, dbs[index]!.url);
        try {
          const result = await connector.erase({ email: [emailOf(i)] });
          if (!result.ok || result.collections.map((c) => c.rows).join(',') !== '2,2,1')
            throw new BenchFailure(
              `the connector's erasure of ${emailOf(i)} in ${dataset.key} did not change 2 items, 2 orders and 1 customer`,
            );
        } finally {
          await connector.close();
        }
      }
      const afterConnectors = performance.now();
      const subjectId = subjects.get(i)!;
      const holds = await app.pledgeRights.holds.holdsOn(office, subjectId);
      const afterHolds = performance.now();
      const result = await app.pledgeRights.erasure.erasePledgeData(office, subjectId, holds);
      const end = performance.now();
      if (!result.ok || !result.keyDestroyed)
        throw new BenchFailure(`erasePledgeData of subject ${i} failed: ${JSON.stringify(result.steps)}`);
      lastSteps = Object.fromEntries(result.steps.map((s) => [s.step, s.details]));
      if (timed) {
        phases.connectors.push(afterConnectors - t);
        phases.holds.push(afterHolds - afterConnectors);
        phases.pledge.push(end - afterHolds);
      }
    };
    const kysely = app.database.kysely;
    const keys = app.keystore.kysely;
    /** The bare statements: the same on both databases, then the vault's rows deleted in SQLite. */
    const bare = async (i: number): Promise<void> => {
      for (const c of clients) await bareErase(c, emailOf(i));
      const subjectId = subjects.get(i)!;
      const records = await sql`DELETE FROM records WHERE subject_id = ${subjectId}`.execute(kysely);
      const keyRows = await sql`DELETE FROM data_keys WHERE subject_id = ${subjectId}`.execute(keys);
      if (Number(records.numAffectedRows) < 1 || Number(keyRows.numAffectedRows) < 1)
        throw new BenchFailure(`the bare vault deletes of subject ${i} found no rows`);
    };

    // Warm both paths once (plans, connections, prepared statements), untimed.
    await pledgeErase(1, false);
    await bare(2);
    const viaPledge: number[] = [];
    const viaBare: number[] = [];
    for (let k = 1; k <= options.erasures; k++) {
      const a = 1 + 2 * k;
      const b = 2 + 2 * k;
      let t = performance.now();
      await pledgeErase(a, true);
      viaPledge.push(performance.now() - t);
      t = performance.now();
      await bare(b);
      viaBare.push(performance.now() - t);
    }

    // The batch: one request's erase work after another, Pledge side only.
    const first = 2 * options.erasures + 3;
    started = performance.now();
    for (let i = first; i < first + options.batch; i++) await pledgeErase(i, false);
    const batchMs = performance.now() - started;

    const p = summarize(viaPledge);
    const s = summarize(viaBare);
    const ph = {
      connectors: summarize(phases.connectors),
      holds: summarize(phases.holds),
      pledge: summarize(phases.pledge),
    };
    const met = p.median <= TARGET * s.median;
    const target = { label: `≤ ×${TARGET} of the bare statements (median)`, met };
    return {
      title: 'Erasure of one subject end to end (bench/erasure.bench.ts)',
      markdown: [
        formatTable(
          ['erasure of one subject (two databases and the vault)', 'median', 'p95', 'ratio', 'target'],
          [
            [
              'Pledge: connector `erase` on both datasets, `holdsOn`, `erasePledgeData`',
              formatMs(p.median),
              formatMs(p.p95),
              formatRatio(p.median, s.median),
              formatTarget(target),
            ],
            [
              '— of which the two connector erasures',
              formatMs(ph.connectors.median),
              formatMs(ph.connectors.p95),
              '',
              '',
            ],
            ['— of which `holdsOn`', formatMs(ph.holds.median), formatMs(ph.holds.p95), '', ''],
            ['— of which `erasePledgeData`', formatMs(ph.pledge.median), formatMs(ph.pledge.p95), '', ''],
            [
              'bare: DELETE, DELETE, UPDATE per database; DELETE records and data_keys in SQLite',
              formatMs(s.median),
              formatMs(s.p95),
              '×1.00',
              '—',
            ],
          ],
        ),
        '',
        `${options.erasures} erasures per side, interleaved, on two databases of ${(5 * options.customers).toLocaleString('en-US')} rows each (built in ${formatMs(buildMs)} with generate_series) and a vault of ${needed.toLocaleString('en-US')} subjects, each disclosed once (made in ${formatMs(vaultMs)}). Pledge's last erasure: ${JSON.stringify(lastSteps)}.`,
        '',
        `Batch: ${options.batch.toLocaleString('en-US')} erasures one after another (Pledge side only) in ${formatMs(batchMs)}: **${((options.batch * 1000) / batchMs).toFixed(1)} subjects/s**.`,
      ].join('\n'),
      missed: met
        ? []
        : [
            `end-to-end erasure ${formatRatio(p.median, s.median)} of the bare statements (target ≤ ×${TARGET})`,
          ],
    };
  } finally {
    await app.close();
    for (const c of clients) await c.end().catch(() => undefined);
    for (const d of dbs) await d.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runErasureBench(quick ? ERASURE_BENCH_QUICK : ERASURE_BENCH_DEFAULTS));
}
