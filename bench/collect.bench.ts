/**
 * `POST /api/v1/collect/:source` over HTTP: a real `pledge serve` (SQLite, a fresh data directory)
 * loaded with autocannon, against a bare Fastify server with one route that parses the same JSON
 * body (bench/baseline/fastify-collect.mjs), loaded the same way in the same run. Target: Pledge
 * serves at least 50 % of bare Fastify's requests/s.
 *
 * Alone: `node --import tsx bench/collect.bench.ts [--quick]`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import {
  BenchFailure,
  benchEnv,
  formatMs,
  formatRatio,
  formatTable,
  formatTarget,
  getFreePort,
  isMainModule,
  NODE,
  ROOT,
  runAlone,
  startServer,
  stopServer,
  type BenchResult,
  type StartedServer,
} from './lib.js';

/** How long and how hard to load each server; the quick form is for trying the harness. */
export interface CollectBenchOptions {
  /** Measured runs per server, interleaved (baseline, Pledge, baseline, Pledge ...). */
  rounds: number;
  /** Seconds per measured run. */
  seconds: number;
  /** Seconds of untimed load on each server first. */
  warmupSeconds: number;
  /** Concurrent connections. */
  connections: number;
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
export const COLLECT_BENCH_QUICK: CollectBenchOptions = {
  ...COLLECT_BENCH_DEFAULTS,
  rounds: 1,
  seconds: 2,
  warmupSeconds: 1,
};

const TARGET_FRACTION = 0.5;
const PATH = '/api/v1/collect/feedback';
const BASELINE = 'bare Fastify (bench/baseline/fastify-collect.mjs)';
const PLEDGE = 'pledge serve (SQLite)';

/** Pledge's configuration for the run: the rate limit out of the way (its maximum), quiet logs. */
const PLEDGE_ENV = { PLEDGE_RATE_LIMIT: '1000000', PLEDGE_LOG_LEVEL: 'warn' };

interface LoadFigures {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  requests: number;
}

/** Creates an API key with `scopes` in `dataDir` with the CLI; returns the key. */
function createApiKey(dataDir: string, scopes: string[]): string {
  const args = ['bin/pledge.js', 'keys', 'create', '--name', 'bench', '--scope', ...scopes];
  const result = spawnSync(NODE, [...args, '--data-dir', dataDir], {
    cwd: ROOT,
    env: benchEnv(),
    encoding: 'utf8',
  });
  const key = result.stdout.trim();
  if (result.status !== 0 || !key.startsWith('pledge_')) {
    throw new BenchFailure(
      `\`node ${args.join(' ')}\` exited with code ${String(result.status)}\n${result.stderr}`,
    );
  }
  return key;
}

/** Registers `count` people at `base` (POST /api/v1/collect/registration); returns their subject ids. */
async function registerSubjects(base: string, key: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${base}/api/v1/collect/registration`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        jurisdiction: 'US',
        data: {
          email: `bench-${i}@example-customer.test`,
          first_name: 'Ada',
          last_name: `Lovelace-${i}`,
          password: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$h4shh4shh4shh4shh4shh4shh4shh4sh',
        },
      }),
    });
    const body = (await res.json()) as { subject?: { id?: string } };
    if (res.status !== 201 || typeof body.subject?.id !== 'string') {
      throw new BenchFailure(`registration ${i}: ${res.status} ${JSON.stringify(body)}`);
    }
    ids.push(body.subject.id);
  }
  return ids;
}

/** Loads `base` with feedback POSTs for `seconds`; throws a BenchFailure on any error or non-2xx. */
async function load(
  label: string,
  base: string,
  key: string,
  subjects: readonly string[],
  seconds: number,
  connections: number,
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
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        // A new body per request: the next subject, a distinct message.
        setupRequest: (request) => {
          n++;
          return {
            ...request,
            body: JSON.stringify({
              subject: { id: subjects[n % subjects.length] },
              data: { message: `The recording export is slow (feedback ${n}).`, rating: 4 },
            }),
          };
        },
      },
    ],
  });
  if (result.errors > 0 || result.non2xx > 0 || result['2xx'] === 0) {
    throw new BenchFailure(
      `${label}: autocannon saw ${result.errors} connection error(s) (${result.timeouts} timeouts) and ` +
        `${result.non2xx} non-2xx answer(s) (4xx ${result['4xx']}, 5xx ${result['5xx']}) ` +
        `out of ${result['2xx'] + result.non2xx}`,
    );
  }
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result['2xx'],
  };
}

async function start(
  label: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<StartedServer & { base: string }> {
  const port = await getFreePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer(
    {
      label,
      command: NODE,
      args: [...args, '--port', String(port)],
      cwd: ROOT,
      env: benchEnv({ HOST: '127.0.0.1', ...env }),
    },
    { readyUrl: `${base}/healthz` },
  );
  return { ...server, base };
}

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Loads both servers and returns the report section. Throws a BenchFailure on failure. */
export async function runCollectBench(
  options: CollectBenchOptions = COLLECT_BENCH_DEFAULTS,
): Promise<BenchResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-collect-'));
  let pledge: (StartedServer & { base: string }) | undefined;
  let baseline: (StartedServer & { base: string }) | undefined;
  const runs = new Map<string, LoadFigures[]>([
    [BASELINE, []],
    [PLEDGE, []],
  ]);
  try {
    const key = createApiKey(dataDir, ['collect:write']);
    pledge = await start(PLEDGE, ['bin/pledge.js', 'serve'], { PLEDGE_DATA_DIR: dataDir, ...PLEDGE_ENV });
    baseline = await start(BASELINE, ['bench/baseline/fastify-collect.mjs'], {});
    const subjects = await registerSubjects(pledge.base, key, options.subjects);
    const servers = [
      { label: BASELINE, base: baseline.base },
      { label: PLEDGE, base: pledge.base },
    ];
    for (const s of servers)
      await load(s.label, s.base, key, subjects, options.warmupSeconds, options.connections);
    for (let round = 0; round < options.rounds; round++) {
      for (const s of servers) {
        runs
          .get(s.label)!
          .push(await load(s.label, s.base, key, subjects, options.seconds, options.connections));
      }
    }
  } finally {
    if (pledge) await stopServer(pledge.child);
    if (baseline) await stopServer(baseline.child);
    rmSync(dataDir, { recursive: true, force: true });
  }

  const summary = (label: string) => {
    const r = runs.get(label)!;
    return {
      requestsPerSecond: mean(r.map((x) => x.requestsPerSecond)),
      p50: mean(r.map((x) => x.p50)),
      p99: Math.max(...r.map((x) => x.p99)),
      requests: r.reduce((s, x) => s + x.requests, 0),
    };
  };
  const base = summary(BASELINE);
  const missed: string[] = [];
  const rows = [BASELINE, PLEDGE].map((label) => {
    const s = summary(label);
    const isBaseline = label === BASELINE;
    const met = s.requestsPerSecond >= TARGET_FRACTION * base.requestsPerSecond;
    if (!isBaseline && !met) {
      missed.push(
        `${label}: ${Math.round(s.requestsPerSecond)} requests/s, ${((s.requestsPerSecond / base.requestsPerSecond) * 100).toFixed(0)} % of bare Fastify's ${Math.round(base.requestsPerSecond)}; target ≥ 50 %`,
      );
    }
    return [
      label,
      s.requests.toLocaleString('en-US'),
      Math.round(s.requestsPerSecond).toLocaleString('en-US'),
      formatMs(s.p50),
      formatMs(s.p99),
      Math.round(base.requestsPerSecond).toLocaleString('en-US'),
      formatRatio(s.requestsPerSecond, base.requestsPerSecond),
      isBaseline ? '—' : formatTarget({ label: '≥ 50 % of baseline', met }),
    ];
  });

  const markdown = [
    formatTable(
      [
        'server',
        'requests (2xx)',
        'requests/s',
        'latency p50',
        'latency p99',
        'baseline requests/s',
        'ratio',
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
      'record. Baseline: a bare Fastify server whose one route parses the JSON body and answers 201 ' +
      'with a small JSON, no validation, no database, in the same run.',
  ].join('\n');
  return { title: '`POST /api/v1/collect` over HTTP', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  await runAlone(() => runCollectBench(values.quick ? COLLECT_BENCH_QUICK : COLLECT_BENCH_DEFAULTS));
}
