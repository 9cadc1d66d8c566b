/**
 * Decisions: in-process `ConsentService.decide` on a warm cache (against a bare awaited Map lookup
 * in the same run), `POST /api/v1/decisions` for one subject over HTTP with autocannon (against a
 * bare Fastify route that parses the same body and answers the same shape), and the latency of a
 * batch of 10,000 subjects (against the same bare route answering the batch shape).
 * Targets: ≥ 1,000,000 decisions/s in-process on one core; HTTP ≥ 70 % of bare Fastify's
 * requests/s; a batch of 10,000 under 50 ms.
 *
 * Alone: `node --import tsx bench/consent.bench.ts [--quick]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/platform/config.js';
import { createContext } from '../src/platform/context.js';
import {
  BenchFailure,
  formatMs,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  percentile,
  runAlone,
  stopServer,
  type BenchResult,
  ROOT,
} from './lib.js';
import {
  createApiKey,
  loadInterleaved,
  loadPosts,
  registerSubjects,
  startOnFreePort,
  type BenchServer,
  type LoadFigures,
} from './servers.js';

/** How much to run; the quick form is for trying the harness. */
export interface ConsentBenchOptions {
  /** Timed in-process decisions per round. */
  decisions: number;
  /** In-process rounds (the median is reported). */
  inProcessRounds: number;
  /** Subjects decided over in-process. */
  subjects: number;
  /** Seconds per HTTP run, runs per server, warm-up seconds, connections. */
  seconds: number;
  rounds: number;
  warmupSeconds: number;
  connections: number;
  /** Subjects in a batch, and timed batches per server. */
  batchSize: number;
  batches: number;
}

/** The figures of `npm run bench`. */
export const CONSENT_BENCH_DEFAULTS: ConsentBenchOptions = {
  decisions: 2_000_000,
  inProcessRounds: 5,
  subjects: 1_000,
  seconds: 10,
  rounds: 2,
  warmupSeconds: 2,
  connections: 50,
  batchSize: 10_000,
  batches: 50,
};

/** `--quick`: a taste of each. */
export const CONSENT_BENCH_QUICK: ConsentBenchOptions = {
  ...CONSENT_BENCH_DEFAULTS,
  decisions: 200_000,
  inProcessRounds: 2,
  seconds: 2,
  rounds: 1,
  warmupSeconds: 1,
  batches: 10,
};

const DECIDE_TARGET = 1_000_000;
const HTTP_TARGET_FRACTION = 0.7;
const BATCH_TARGET_MS = 50;
const PLEDGE = 'pledge serve (SQLite)';
const BASELINE = 'bare Fastify (bench/baseline/fastify-decide.mjs)';
const PLEDGE_ENV = { PLEDGE_RATE_LIMIT: '1000000', PLEDGE_LOG_LEVEL: 'warn', PLEDGE_BODY_LIMIT: '4194304' };

/** Median decisions/s of `decide` on a warm cache, and of the bare baseline, interleaved. */
async function measureInProcess(options: ConsentBenchOptions): Promise<{ pledge: number; bare: number }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-consent-'));
  const config = {
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }),
    retentionIntervalSeconds: 0,
  };
  const app = await createApp(config);
  try {
    const ctx = createContext({ kind: 'job', id: 'bench' });
    const ids: string[] = [];
    for (let i = 0; i < options.subjects; i++) {
      const jurisdiction = ['US', 'DE', 'GB', 'FR'][i % 4]!;
      ids.push((await app.vault.createSubject(ctx, { kind: 'customer', jurisdiction })).id);
    }
    // Some people have chosen, so decisions walk every branch: withdrawn, granted, defaults.
    for (let i = 0; i < ids.length; i += 3) {
      await app.consent.record(ctx, [
        {
          holder: { subjectId: ids[i]! },
          purpose: 'marketing-email',
          channel: 'email',
          state: i % 2 === 0 ? 'withdrawn' : 'granted',
          method: 'api',
        },
      ]);
    }
    for (const id of ids) await app.consent.decide(ctx, id, 'marketing-email', 'email');
    const bareMap = new Map(ids.map((id, i) => [id, i % 2 === 0]));
    const bareDecide = (id: string) => Promise.resolve(bareMap.get(id) ?? false);
    const n = options.decisions;
    const pledgeRates: number[] = [];
    const bareRates: number[] = [];
    let allowed = 0;
    for (let round = 0; round < options.inProcessRounds; round++) {
      let t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) if (await bareDecide(ids[i % ids.length]!)) allowed++;
      bareRates.push(n / (Number(process.hrtime.bigint() - t) / 1e9));
      t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        if ((await app.consent.decide(ctx, ids[i % ids.length]!, 'marketing-email', 'email')).allowed)
          allowed++;
      }
      pledgeRates.push(n / (Number(process.hrtime.bigint() - t) / 1e9));
    }
    if (allowed === 0) throw new BenchFailure('no decision allowed anything: the bench is not deciding');
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return { pledge: median(pledgeRates), bare: median(bareRates) };
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Loads `base` with one-subject decision POSTs for `seconds`; throws a BenchFailure on any error. */
function load(
  label: string,
  base: string,
  key: string,
  subjects: readonly string[],
  seconds: number,
  connections: number,
): Promise<LoadFigures> {
  return loadPosts(label, base, {
    path: '/api/v1/decisions',
    key,
    seconds,
    connections,
    body: (n) => ({ subject: subjects[n % subjects.length], purpose: 'marketing-email', channel: 'email' }),
  });
}

/** The latency (ms) of one batch request to `base`, from sending to the parsed answer. */
async function batchLatency(base: string, key: string, body: string, expected: number): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${base}/api/v1/decisions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body,
  });
  const answer = (await res.json()) as { decisions?: unknown[] };
  const ms = performance.now() - t;
  if (res.status !== 200 || answer.decisions?.length !== expected) {
    throw new BenchFailure(`batch: ${res.status}, ${answer.decisions?.length ?? 0} decisions`);
  }
  return ms;
}

/**
 * Latencies (ms) of `count` batch requests to each server, sorted, by base URL. The servers take
 * turns, one request each (after 3 untimed each), so that drift in the machine's load, and this
 * process's garbage collections of the answers it parsed, touch each alike (one server's batches
 * after the other's would leave the second the heap of the first's 50 answers).
 */
async function batchLatencies(
  bases: readonly string[],
  key: string,
  subjects: readonly string[],
  count: number,
): Promise<Map<string, number[]>> {
  const body = JSON.stringify({ subjects, purpose: 'marketing-email', channel: 'email' });
  const out = new Map(bases.map((b) => [b, [] as number[]]));
  for (let i = -3; i < count; i++) {
    for (const base of bases) {
      const ms = await batchLatency(base, key, body, subjects.length);
      if (i >= 0) out.get(base)!.push(ms);
    }
  }
  for (const xs of out.values()) xs.sort((a, b) => a - b);
  return out;
}

/** Runs the three measurements and returns the report section. */
export async function runConsentBench(
  options: ConsentBenchOptions = CONSENT_BENCH_DEFAULTS,
): Promise<BenchResult> {
  const inProcess = await measureInProcess(options);

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-decide-'));
  let pledge: BenchServer | undefined;
  let baseline: BenchServer | undefined;
  let http: Map<string, LoadFigures[]>;
  let batches: { pledge: number[]; bare: number[] };
  try {
    // The sign-up form's system registers the people; the marketing tool asks for their decisions.
    const signup = createApiKey(dataDir, ['collect:write']);
    const key = createApiKey(dataDir, ['consent:read'], {}, ROOT, 'marketing-automation');
    pledge = await startOnFreePort(PLEDGE, ['bin/pledge.js', 'serve'], {
      PLEDGE_DATA_DIR: dataDir,
      ...PLEDGE_ENV,
    });
    baseline = await startOnFreePort(BASELINE, ['bench/baseline/fastify-decide.mjs'], {});
    const people = await registerSubjects(pledge.base, signup, options.batchSize, {
      jurisdictions: ['US', 'DE'],
      concurrency: 16,
    });
    const subjects = people.map((p) => p.subjectId);
    const servers = [
      { label: BASELINE, base: baseline.base },
      { label: PLEDGE, base: pledge.base },
    ];
    http = await loadInterleaved(servers, options, (label, base, seconds) =>
      load(label, base, key, subjects, seconds, options.connections),
    );
    const latencies = await batchLatencies([baseline.base, pledge.base], key, subjects, options.batches);
    batches = { bare: latencies.get(baseline.base)!, pledge: latencies.get(pledge.base)! };
  } finally {
    if (pledge) await stopServer(pledge.child);
    if (baseline) await stopServer(baseline.child);
    rmSync(dataDir, { recursive: true, force: true });
  }

  const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const rps = (label: string) => mean(http.get(label)!.map((x) => x.requestsPerSecond));
  const p99 = (label: string) => Math.max(...http.get(label)!.map((x) => x.p99));
  const missed: string[] = [];
  const decideMet = inProcess.pledge >= DECIDE_TARGET;
  if (!decideMet)
    missed.push(`decide: ${Math.round(inProcess.pledge).toLocaleString('en-US')}/s; target ≥ 1,000,000/s`);
  const httpMet = rps(PLEDGE) >= HTTP_TARGET_FRACTION * rps(BASELINE);
  if (!httpMet) {
    missed.push(
      `HTTP decision: ${((rps(PLEDGE) / rps(BASELINE)) * 100).toFixed(0)} % of bare Fastify; target ≥ 70 %`,
    );
  }
  const batchP99 = percentile(batches.pledge, 99);
  const batchMet = batchP99 < BATCH_TARGET_MS;
  if (!batchMet) missed.push(`batch of ${options.batchSize}: p99 ${formatMs(batchP99)}; target < 50 ms`);
  const rate = (x: number) => `${Math.round(x).toLocaleString('en-US')}/s`;

  const markdown = [
    formatTable(
      ['figure', 'Pledge', 'same-run baseline', 'ratio', 'target'],
      [
        [
          '`decide` in-process, warm cache (median of rounds)',
          rate(inProcess.pledge),
          `awaited Map lookup: ${rate(inProcess.bare)}`,
          formatRatio(inProcess.pledge, inProcess.bare),
          formatTarget({ label: '≥ 1,000,000/s', met: decideMet }),
        ],
        [
          'HTTP `POST /api/v1/decisions`, one subject',
          `${rate(rps(PLEDGE))}, p99 ${formatMs(p99(PLEDGE))}`,
          `bare Fastify: ${rate(rps(BASELINE))}, p99 ${formatMs(p99(BASELINE))}`,
          formatRatio(rps(PLEDGE), rps(BASELINE)),
          formatTarget({ label: '≥ 70 % of baseline', met: httpMet }),
        ],
        [
          `HTTP batch of ${options.batchSize.toLocaleString('en-US')} subjects, p50 / p99`,
          `${formatMs(percentile(batches.pledge, 50))} / ${formatMs(batchP99)}`,
          `bare Fastify: ${formatMs(percentile(batches.bare, 50))} / ${formatMs(percentile(batches.bare, 99))}`,
          formatRatio(batchP99, percentile(batches.bare, 99)),
          formatTarget({ label: 'p99 < 50 ms', met: batchMet }),
        ],
      ],
    ),
    '',
    `In-process: \`app.consent.decide(ctx, subject, "marketing-email", "email")\` awaited one after another, ` +
      `${options.decisions.toLocaleString('en-US')} per round over ${options.subjects.toLocaleString('en-US')} subjects in ` +
      `four jurisdictions (a third with a recorded choice), every subject decided once before timing; ` +
      `${options.inProcessRounds} rounds interleaved with the baseline (an async function returning a Map lookup, awaited the same way). ` +
      `HTTP: a real \`pledge serve\` (${Object.entries(PLEDGE_ENV)
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ', ',
        )}) with an API key holding consent:read, ${options.batchSize.toLocaleString('en-US')} subjects registered ` +
      `through /api/v1/collect/registration (US and DE alternately); autocannon with ${options.connections} connections, ` +
      `${options.rounds} run(s) of ${options.seconds} s per server interleaved after ${options.warmupSeconds} s of warm-up. ` +
      `Batch: ${options.batches} requests per server one after another (after 3 untimed), the servers taking turns, with every ` +
      `registered subject, time from sending to the parsed answer, measured from the bench process.`,
  ].join('\n');
  return { title: 'Decisions (`decide`, `POST /api/v1/decisions`)', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runConsentBench(quick ? CONSENT_BENCH_QUICK : CONSENT_BENCH_DEFAULTS));
}
