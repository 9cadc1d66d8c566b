/**
 * `POST /api/v1/collect/:source` over HTTP: a real `pledge serve` (SQLite, a fresh data directory)
 * loaded with autocannon, against the durable reference, bare Fastify with bare better-sqlite3
 * group-committing each request's row before answering (bench/baseline/fastify-sqlite-collect.mjs),
 * loaded the same way in the same run. Target: Pledge serves at least ×0.75 of the durable
 * reference's requests/s. A bare Fastify route that only parses the same JSON body
 * (bench/baseline/fastify-collect.mjs) is shown as a second reference.
 *
 * Alone: `node --import tsx bench/collect.bench.ts [--quick]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
  createApiKey,
  HTTP_LOAD_QUICK,
  loadCells,
  loadHeaders,
  loadInterleaved,
  loadPosts,
  PLEDGE_BENCH_ENV,
  registerSubjects,
  startOnFreePort,
  summarizeRuns,
  throughputTarget,
  type BenchServer,
  type HttpLoadOptions,
  type LoadFigures,
} from './servers.js';

/** How long and how hard to load each server; the quick form is for trying the harness. */
export interface CollectBenchOptions extends HttpLoadOptions {
  /** Subjects the feedback records are spread over (each made by a registration first). */
  subjects: number;
}

/** The figures of `npm run bench`. */
export const COLLECT_BENCH_DEFAULTS: CollectBenchOptions = {
  rounds: 2,
  seconds: 10,
  warmupSeconds: 2,
  connections: 50,
  subjects: 100,
};

/** `--quick`: one short run each. */
export const COLLECT_BENCH_QUICK: CollectBenchOptions = { ...COLLECT_BENCH_DEFAULTS, ...HTTP_LOAD_QUICK };

/** Pledge's requests/s over the durable reference's, at least. */
const TARGET_RATIO = 0.75;
const PATH = '/api/v1/collect/feedback';
const BASELINE = 'bare Fastify (bench/baseline/fastify-collect.mjs)';
const DURABLE = 'bare Fastify + better-sqlite3 commit (bench/baseline/fastify-sqlite-collect.mjs)';
const PLEDGE = 'pledge serve (SQLite)';
const SEALED =
  'the durable reference + key check, inline seals, audit row (fastify-sqlite-collect.mjs --sealed)';

/** Pledge's configuration for the run: the rate limit out of the way (its maximum), quiet logs. */
const PLEDGE_ENV = PLEDGE_BENCH_ENV;

/** Loads `base` with feedback POSTs for `seconds`; throws a BenchFailure on any error or non-2xx. */
function load(
  label: string,
  base: string,
  key: string,
  subjects: readonly string[],
  seconds: number,
  connections: number,
): Promise<LoadFigures> {
  return loadPosts(label, base, {
    path: PATH,
    key,
    seconds,
    connections,
    // The next subject, a distinct message.
    body: (n) => ({
      subject: { id: subjects[n % subjects.length] },
      data: { message: `The recording export is slow (feedback ${n}).`, rating: 4 },
    }),
  });
}

/** Loads both servers and returns the report section. Throws a BenchFailure on failure. */
export async function runCollectBench(
  options: CollectBenchOptions = COLLECT_BENCH_DEFAULTS,
): Promise<BenchResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-collect-'));
  let pledge: BenchServer | undefined;
  let baseline: BenchServer | undefined;
  let durable: BenchServer | undefined;
  let sealed: BenchServer | undefined;
  let runs: Map<string, LoadFigures[]>;
  try {
    const key = createApiKey(dataDir, ['collect:write']);
    pledge = await startOnFreePort(PLEDGE, ['bin/pledge.js', 'serve'], {
      PLEDGE_DATA_DIR: dataDir,
      ...PLEDGE_ENV,
    });
    baseline = await startOnFreePort(BASELINE, ['bench/baseline/fastify-collect.mjs'], {});
    durable = await startOnFreePort(DURABLE, ['bench/baseline/fastify-sqlite-collect.mjs'], {
      DATA_DIR: dataDir,
    });
    sealed = await startOnFreePort(SEALED, ['bench/baseline/fastify-sqlite-collect.mjs', '--sealed'], {
      DATA_DIR: dataDir,
      BEARER: key,
    });
    const subjects = (await registerSubjects(pledge.base, key, options.subjects)).map((p) => p.subjectId);
    const servers = [
      { label: BASELINE, base: baseline.base },
      { label: DURABLE, base: durable.base },
      { label: SEALED, base: sealed.base },
      { label: PLEDGE, base: pledge.base },
    ];
    runs = await loadInterleaved(servers, options, (label, base, seconds) =>
      load(label, base, key, subjects, seconds, options.connections),
    );
  } finally {
    if (pledge) await stopServer(pledge.child);
    if (baseline) await stopServer(baseline.child);
    if (durable) await stopServer(durable.child);
    if (sealed) await stopServer(sealed.child);
    rmSync(dataDir, { recursive: true, force: true });
  }

  const summary = (label: string) => summarizeRuns(runs.get(label)!);
  const base = summary(BASELINE);
  const durableBase = summary(DURABLE);
  const missed: string[] = [];
  const sealedBase = summary(SEALED);
  const rows = [DURABLE, BASELINE, SEALED, PLEDGE].map((label) => {
    const s = summary(label);
    return [
      label,
      ...loadCells(s),
      label === DURABLE ? '—' : formatRatio(s.requestsPerSecond, durableBase.requestsPerSecond),
      label === BASELINE ? '—' : formatRatio(s.requestsPerSecond, base.requestsPerSecond),
      label === PLEDGE ? formatRatio(s.requestsPerSecond, sealedBase.requestsPerSecond) : '—',
      label === PLEDGE ? formatTarget(throughputTarget(label, s, durableBase, TARGET_RATIO, missed)) : '—',
    ];
  });

  const markdown = [
    formatTable(
      [
        'server',
        ...loadHeaders('2xx'),
        'ratio to the durable reference',
        'ratio to the parse-only route',
        'ratio to the sealed reference',
        'target (requests/s)',
      ],
      rows,
    ),
    '',
    `autocannon (in the bench process: it shares the machine's cores with the server) with ` +
      `${options.connections} connections POSTs \`${PATH}\` bodies \`{ "subject": { "id": … }, "data": ` +
      `{ "message": …, "rating": 4 } }\`, rotating over ${options.subjects} subjects registered first ` +
      `through \`/api/v1/collect/registration\`, for ${options.seconds} s per run; ${options.rounds} ` +
      `run(s) per server, interleaved, after ${options.warmupSeconds} s of untimed load on each. ` +
      'requests/s = 2xx answers / duration, averaged over the runs; p50 averaged, p99 the highest run. ' +
      'Any error or non-2xx answer fails the bench. `pledge serve` runs the built CLI (`bin/pledge.js`) ' +
      `on SQLite in a new data directory with ${Object.entries(PLEDGE_ENV)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')} (1,000,000 a minute is the highest rate limit it accepts) and an API key with ` +
      'collect:write made by `pledge keys create`; each answer comes after the commit that holds its ' +
      "record. The target's baseline, the durable reference: bare Fastify with bare better-sqlite3 " +
      '(WAL, synchronous=FULL, 8 KiB pages, 32 MiB cache, a records table indexed by (subject_id, id)) ' +
      'inserting the plaintext body as one row and answering 201 after the commit, the rows of one ' +
      'event-loop turn sharing a transaction: the durable part of the work alone, without validation, ' +
      'encryption, audit or consent. Second reference: a bare Fastify route that parses the JSON body ' +
      'and answers 201 with a small JSON, no validation, no database. Third, the sealed reference: the ' +
      'durable reference doing naively and inline the rest of what Pledge must store for the request ' +
      "(the bearer key checked by SHA-256 and timingSafeEqual, each value sealed with AES-256-GCM in Pledge's " +
      "envelope under its subject's key, the record row with Pledge's indexes, one audit row), still " +
      'without validation, consent or logging: what the policy asks for, done without Pledge.',
  ].join('\n');
  return { title: '`POST /api/v1/collect` over HTTP', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runCollectBench(quick ? COLLECT_BENCH_QUICK : COLLECT_BENCH_DEFAULTS));
}
