/**
 * Beacon ingest over HTTP: a real `pledge serve` (SQLite, a fresh data directory) loaded with
 * autocannon on `POST /api/v1/beacon` (text/plain holding JSON, as navigator.sendBeacon sends it),
 * against the durable reference, bare Fastify with bare better-sqlite3 group-committing a row of the
 * same columns before answering (bench/baseline/fastify-sqlite-beacon.mjs), loaded the same way in
 * the same run. Target: Pledge serves at least ×0.8 of the durable reference's requests/s. After
 * the runs each server's rows are counted: every acknowledged (204) beacon must be there.
 *
 * Alone: `node --import tsx bench/beacon.bench.ts [--quick]` (runs the built CLI: `npm run build`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import BetterSqlite3 from 'better-sqlite3';
import { ConsentReceipts } from '../src/tracking/consent-receipt.js';
import { Keyring } from '../src/vault/keyring.js';
import { DESKTOP_CHROME_UA, EXAMPLE_SITE } from '../test/helpers/tracking.js';
import {
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  runAlone,
  stopServer,
  type BenchResult,
} from './lib.js';
import {
  HTTP_LOAD_QUICK,
  loadCells,
  loadHeaders,
  loadFigures,
  loadInterleaved,
  PLEDGE_BENCH_ENV,
  startOnFreePort,
  summarizeRuns,
  throughputTarget,
  type BenchServer,
  type HttpLoadOptions,
  type LoadFigures,
} from './servers.js';

/** How long and how hard to load each server; the quick form is for trying the harness. */
export type BeaconBenchOptions = HttpLoadOptions;

/** The figures of `npm run bench`. */
export const BEACON_BENCH_DEFAULTS: BeaconBenchOptions = {
  rounds: 4,
  seconds: 8,
  // Pledge's first seconds are slower (the JIT, the jobs it runs at start): outside the figures.
  warmupSeconds: 5,
  connections: 50,
};

/** `--quick`: one short run each. */
export const BEACON_BENCH_QUICK: BeaconBenchOptions = { ...BEACON_BENCH_DEFAULTS, ...HTTP_LOAD_QUICK };

/** Pledge's requests/s over the durable reference's, at least. */
const TARGET_RATIO = 0.8;
const PATH = '/api/v1/beacon';
const SITE = EXAMPLE_SITE;
const USER_AGENT = DESKTOP_CHROME_UA;
const DURABLE = 'bare Fastify + better-sqlite3 commit (bench/baseline/fastify-sqlite-beacon.mjs)';
const PLEDGE = 'pledge serve (SQLite)';

/**
 * Pledge's configuration for the run: the benches' (the rate limit out of the way, quiet logs), the
 * example site as the listed origin, the visitor's country from a CDN header.
 */
const PLEDGE_ENV = {
  ...PLEDGE_BENCH_ENV,
  PLEDGE_SITE_ORIGINS: SITE,
  PLEDGE_COUNTRY_HEADER: 'cf-ipcountry',
};

/** What one load sends: every other beacon carries a receipt and a cookie id, the others none. */
interface Traffic {
  /** Receipts allowing site-analytics, one per browser, issued under the Pledge server's own key. */
  receipts: readonly string[];
}

/** Browsers with a receipt: each comes back on many pages, as visitors do. */
const BROWSERS = 200;

/** The n-th beacon: its body and the country its CDN header names. */
function beaconOf(n: number, traffic: Traffic): { body: string; country: string } {
  const path = `/docs/page-${n % 500}`;
  if (n % 2 === 0) {
    // A European visitor who allowed measurement: counted with the cookie id, keyed-hashed.
    return {
      country: 'DE',
      body: JSON.stringify({
        path,
        referrer: 'news.example.org',
        receipt: traffic.receipts[(n >> 1) % traffic.receipts.length],
        visitor: `vid${String((n >> 1) % traffic.receipts.length).padStart(20, '0')}`,
      }),
    };
  }
  // A US visitor before any choice: opt-out, a cookieless count under the day's salt.
  return { country: 'US', body: JSON.stringify({ path, event: n % 10 === 1 ? 'signup_click' : undefined }) };
}

/** Loads `base` for `seconds`; throws a BenchFailure on any error or non-2xx answer (loadFigures). */
async function load(
  label: string,
  base: string,
  seconds: number,
  connections: number,
  traffic: Traffic,
): Promise<LoadFigures> {
  let n = 0;
  const result = await autocannon({
    url: base,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: PATH,
        setupRequest: (request) => {
          const { body, country } = beaconOf(n++, traffic);
          return {
            ...request,
            headers: {
              'content-type': 'text/plain;charset=UTF-8',
              origin: SITE,
              'user-agent': USER_AGENT,
              'cf-ipcountry': country,
            },
            body,
          };
        },
      },
    ],
  });
  return loadFigures(label, result);
}

/** Rows committed by the reference (its GET /count). */
async function countReference(base: string): Promise<number> {
  const res = await fetch(`${base}/count`);
  return ((await res.json()) as { rows: number }).rows;
}

/** Rows of beacon_events in a stopped Pledge's SQLite database. */
function countPledge(dataDir: string): number {
  const db = new BetterSqlite3(path.join(dataDir, 'pledge.db'), { readonly: true });
  try {
    return (db.prepare('select count(*) as n from beacon_events').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Loads both servers and returns the report section. Throws a BenchFailure on failure. */
export async function runBeaconBench(
  options: BeaconBenchOptions = BEACON_BENCH_DEFAULTS,
): Promise<BenchResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-beacon-'));
  let pledge: BenchServer | undefined;
  let durable: BenchServer | undefined;
  let runs: Map<string, LoadFigures[]>;
  /** 2xx answers per server over every load, the warm-up included: each an acknowledged beacon. */
  const acknowledged = new Map<string, number>([
    [PLEDGE, 0],
    [DURABLE, 0],
  ]);
  const rows = new Map<string, number>();
  try {
    pledge = await startOnFreePort(PLEDGE, ['bin/pledge.js', 'serve'], {
      PLEDGE_DATA_DIR: dataDir,
      ...PLEDGE_ENV,
    });
    durable = await startOnFreePort(DURABLE, ['bench/baseline/fastify-sqlite-beacon.mjs'], {
      DATA_DIR: dataDir,
    });
    // The server made its key file on start: a receipt under its banner_receipts key, as the
    // banner's POST /api/v1/banner/choices would hand the script.
    const keyring = await Keyring.load({ dataDir });
    const signer = new ConsentReceipts(keyring.use('banner_receipts'), { maxAgeDays: 395 });
    const receipts = Array.from({ length: BROWSERS }, (_, i) =>
      signer.issue({
        browser: `bench_browser_${String(i).padStart(10, '0')}`,
        allowed: ['site-analytics'],
        jurisdiction: 'DE',
        issuedAt: new Date(),
      }),
    );
    const traffic: Traffic = { receipts };
    const servers = [
      { label: DURABLE, base: durable.base },
      { label: PLEDGE, base: pledge.base },
    ];
    runs = await loadInterleaved(servers, options, async (label, base, seconds) => {
      const figures = await load(label, base, seconds, options.connections, traffic);
      acknowledged.set(label, acknowledged.get(label)! + figures.requests);
      return figures;
    });
    rows.set(DURABLE, await countReference(durable.base));
    // Stopped first (SIGTERM: a graceful close), then its file is counted.
    await stopServer(pledge.child);
    rows.set(PLEDGE, countPledge(dataDir));
  } finally {
    if (pledge) await stopServer(pledge.child);
    if (durable) await stopServer(durable.child);
    rmSync(dataDir, { recursive: true, force: true });
  }

  const summary = (label: string) => summarizeRuns(runs.get(label)!);
  const durableBase = summary(DURABLE);
  const missed: string[] = [];
  const tableRows = [DURABLE, PLEDGE].map((label) => {
    const s = summary(label);
    const acked = acknowledged.get(label)!;
    const stored = rows.get(label) ?? 0;
    const lost = Math.max(0, acked - stored);
    if (lost > 0) missed.push(`${label}: ${lost} acknowledged beacon(s) missing from the database`);
    return [
      label,
      ...loadCells(s),
      label === DURABLE ? '—' : formatRatio(s.requestsPerSecond, durableBase.requestsPerSecond),
      `${acked.toLocaleString('en-US')} / ${stored.toLocaleString('en-US')}${lost > 0 ? ` ❌ ${lost} lost` : ' ✅'}`,
      label === PLEDGE ? formatTarget(throughputTarget(label, s, durableBase, TARGET_RATIO, missed)) : '—',
    ];
  });

  const markdown = [
    formatTable(
      [
        'server',
        ...loadHeaders('204'),
        'ratio to the durable reference',
        'acknowledged / rows stored',
        'target (requests/s)',
      ],
      tableRows,
    ),
    '',
    `autocannon (in the bench process: it shares the machine's cores with the server) with ` +
      `${options.connections} connections POSTs \`${PATH}\` as navigator.sendBeacon does (text/plain ` +
      `holding JSON, Origin ${SITE}, a desktop Chrome user agent), alternating two visitors: one in ` +
      `Germany (\`cf-ipcountry: DE\`, opt-in) carrying a consent receipt that allows site-analytics, ` +
      `signed by the server, and a pledge_vid cookie id (${BROWSERS} browsers, each back on many pages), ` +
      'and one in the US (opt-out) with neither, ' +
      'counted cookieless; paths over 500 pages, a referrer host on the first, an event on one in ten of ' +
      `the second. ${options.seconds} s per run; ${options.rounds} run(s) per server, interleaved, after ` +
      `${options.warmupSeconds} s of untimed load on each. requests/s = 204 answers / duration, ` +
      'averaged over the runs; p50 averaged, p99 the highest run. Any error or non-2xx answer fails ' +
      "the bench. After the runs each server's rows are counted (Pledge's after a graceful stop, from " +
      'its file): every acknowledged beacon, warm-up included, must be stored. `pledge serve` runs the ' +
      `built CLI (\`bin/pledge.js\`) on SQLite in a new data directory with ${Object.entries(PLEDGE_ENV)
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ', ',
        )}; it verifies the receipt (HMAC; one verified in the last minute is believed again without), checks the user agent against isbot, the web ` +
      "system's purpose and source and the visitor's consent mode, keeps the declared fields sealed " +
      '(AES-256-GCM) and the visitor as a keyed hash (HMAC-SHA256 of the cookie id, or of truncated IP, ' +
      "user agent and site under the day's salt), both done for the beacons of one event-loop turn on a " +
      'worker thread (src/tracking/beacons.crypto.ts), and answers 204 after the group commit that holds the ' +
      'row. The durable reference: bare Fastify with bare better-sqlite3 (WAL, synchronous=FULL as ' +
      "Pledge's SQLite, 8 KiB pages, 32 MiB cache, the same beacon_events table and indexes) parsing " +
      'the same text/plain JSON and inserting the fields as plaintext JSON and the visitor unhashed, ' +
      'answering 204 after the commit, the rows of one event-loop turn sharing a transaction: the ' +
      'durable part of the work alone, without consent, receipts, hashing, sealing, bot checks, CORS, ' +
      'rate limiting or logging.',
  ].join('\n');
  return { title: 'Beacon ingest over HTTP', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runBeaconBench(quick ? BEACON_BENCH_QUICK : BEACON_BENCH_DEFAULTS));
}
