/**
 * What the HTTP benches share to set up a real `pledge serve`: starting a server on a free port, an
 * API key made with the CLI, people registered through the registration collection point, and a
 * PostgreSQL database of its own; and to load it: autocannon runs checked and summarized, the
 * servers loaded in turn.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { getFreePort } from '../test/helpers/net.js';
import { createPostgresDatabase, type PostgresDatabase } from '../test/helpers/postgres.js';
import {
  BenchFailure,
  benchEnv,
  formatMs,
  formatRatio,
  NODE,
  ROOT,
  startServer,
  type StartedServer,
  type TargetResult,
} from './lib.js';

/** The PostgreSQL server benches use when `PLEDGE_TEST_DATABASE_URL` is unset. */
const DEFAULT_BENCH_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** A server started by {@link startOnFreePort}; `base` is http://127.0.0.1:PORT. */
export type BenchServer = StartedServer & { base: string };

/**
 * Starts `node ...args --port P` on a free port P of 127.0.0.1 (`env` on top of {@link benchEnv})
 * and waits until GET /healthz answers 200. Throws a {@link BenchFailure} when it does not.
 */
export async function startOnFreePort(
  label: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string = ROOT,
): Promise<BenchServer> {
  const port = await getFreePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer(
    {
      label,
      command: NODE,
      args: [...args, '--port', String(port)],
      cwd,
      env: benchEnv({ HOST: '127.0.0.1', ...env }),
    },
    { readyUrl: `${base}/healthz` },
  );
  return { ...server, base };
}

/**
 * Creates an API key with `scopes` for `system` (one of the example manifest's systems; `null` for
 * a checkout from before keys had systems) with the built CLI of the checkout at `root` (`pledge keys
 * create --data-dir dataDir`, `env` on top of {@link benchEnv}, e.g. a DATABASE_URL); returns the key.
 */
export function createApiKey(
  dataDir: string,
  scopes: readonly string[],
  env: NodeJS.ProcessEnv = {},
  root: string = ROOT,
  system: string | null = 'web-app',
): string {
  const args = [
    'bin/pledge.js',
    'keys',
    'create',
    '--name',
    'bench',
    ...(system !== null ? ['--system', system] : []),
    '--scope',
    ...scopes,
  ];
  const result = spawnSync(NODE, [...args, '--data-dir', dataDir], {
    cwd: root,
    env: benchEnv(env),
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

/** How {@link registerSubjects} registers people. */
export interface RegisterSubjectsOptions {
  /** Person i lives in `jurisdictions[i % length]`; US only by default. */
  jurisdictions?: readonly string[];
  /** Registrations in flight at once; 1 (one after another) by default. */
  concurrency?: number;
}

/** A person registered by {@link registerSubjects}. */
export interface RegisteredSubject {
  subjectId: string;
  /** The e-mail address registered, unique to the run. */
  address: string;
}

/**
 * Registers `count` people at `base` (POST /api/v1/collect/trial-signup with a key holding
 * collect:write: a sign-up without a password, whose verifier would cost a registration's worth of
 * CPU per person and is benched on its own); returns them in order. Throws a {@link BenchFailure}
 * on any answer but 201.
 */
export async function registerSubjects(
  base: string,
  key: string,
  count: number,
  options: RegisterSubjectsOptions = {},
): Promise<RegisteredSubject[]> {
  const jurisdictions = options.jurisdictions ?? ['US'];
  // Unique across runs too, should a bench ever reuse a database.
  const run = randomBytes(4).toString('hex');
  const people = new Array<RegisteredSubject>(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const address = `bench-${run}-${i}@example-customer.test`;
      const res = await fetch(`${base}/api/v1/collect/trial-signup`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          jurisdiction: jurisdictions[i % jurisdictions.length],
          data: {
            email: address,
            first_name: 'Ada',
            last_name: `Lovelace-${i}`,
          },
        }),
      });
      const body = (await res.json()) as { subject?: { id?: string } };
      if (res.status !== 201 || typeof body.subject?.id !== 'string') {
        throw new BenchFailure(`registration ${i}: ${res.status} ${JSON.stringify(body)}`);
      }
      people[i] = { subjectId: body.subject.id, address };
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, worker));
  return people;
}

/** What one run of {@link loadPosts} measured; latencies in milliseconds. */
export interface LoadFigures {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  /** Requests answered 2xx. */
  requests: number;
}

/** What {@link loadPosts} sends, and for how long. */
export interface LoadPostsOptions {
  /** The URL path every request POSTs to. */
  path: string;
  /** The bearer key. */
  key: string;
  seconds: number;
  connections: number;
  /** The JSON body of the n-th request (from 0): a new body per request. */
  body: (n: number) => unknown;
}

/**
 * Loads `base` with JSON POSTs for `options.seconds` with autocannon (in this process: it shares the
 * machine's cores with the server). requests/s = 2xx answers / duration. Throws a
 * {@link BenchFailure} on any connection error or non-2xx answer, or when nothing was answered.
 */
export async function loadPosts(
  label: string,
  base: string,
  options: LoadPostsOptions,
): Promise<LoadFigures> {
  let n = 0;
  const result = await autocannon({
    url: base,
    connections: options.connections,
    duration: options.seconds,
    requests: [
      {
        method: 'POST',
        path: options.path,
        headers: { authorization: `Bearer ${options.key}`, 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: JSON.stringify(options.body(n++)) }),
      },
    ],
  });
  return loadFigures(label, result);
}

/**
 * The figures of one autocannon run: requests/s = 2xx answers / duration. Throws a
 * {@link BenchFailure} on any connection error or non-2xx answer, or when nothing was answered.
 */
export function loadFigures(label: string, result: autocannon.Result): LoadFigures {
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

/**
 * One server's timed runs in one row: requests/s and p50 averaged over the runs, p99 the highest
 * run's, requests summed.
 */
export function summarizeRuns(runs: readonly LoadFigures[]): LoadFigures {
  const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return {
    requestsPerSecond: mean(runs.map((x) => x.requestsPerSecond)),
    p50: mean(runs.map((x) => x.p50)),
    p99: Math.max(...runs.map((x) => x.p99)),
    requests: runs.reduce((s, x) => s + x.requests, 0),
  };
}

/** The headers of {@link loadCells}; `answers` names the status counted (`2xx`, `204`). */
export function loadHeaders(answers: string): string[] {
  return [`requests (${answers})`, 'requests/s', 'latency p50', 'latency p99'];
}

/** A summarized server's first cells in a bench's table: requests, requests/s, p50, p99. */
export function loadCells(figures: LoadFigures): string[] {
  return [
    figures.requests.toLocaleString('en-US'),
    Math.round(figures.requestsPerSecond).toLocaleString('en-US'),
    formatMs(figures.p50),
    formatMs(figures.p99),
  ];
}

/**
 * An HTTP bench's target: `label`'s requests/s at least `ratio` × the durable reference's. Returns
 * it for the table; when it is missed, says so in `missed`.
 */
export function throughputTarget(
  label: string,
  figures: LoadFigures,
  durable: LoadFigures,
  ratio: number,
  missed: string[],
): TargetResult {
  const target = `≥ ×${ratio.toFixed(2)} of the durable reference`;
  const met = figures.requestsPerSecond >= ratio * durable.requestsPerSecond;
  if (!met) {
    missed.push(
      `${label}: ${Math.round(figures.requestsPerSecond)} requests/s, ${formatRatio(figures.requestsPerSecond, durable.requestsPerSecond)} of the durable reference's ${Math.round(durable.requestsPerSecond)}; target ${target}`,
    );
  }
  return { label: target, met };
}

/** How {@link loadInterleaved} schedules its runs. */
export interface LoadInterleavedOptions {
  /** Seconds of untimed load on each server first. */
  warmupSeconds: number;
  /** Seconds per measured run. */
  seconds: number;
  /** Measured runs per server, interleaved (reference, Pledge, reference, Pledge ...). */
  rounds: number;
}

/** How long and how hard an HTTP bench loads each server. */
export interface HttpLoadOptions extends LoadInterleavedOptions {
  /** Concurrent connections. */
  connections: number;
}

/** `--quick` of an HTTP bench: one short run per server. */
export const HTTP_LOAD_QUICK = { rounds: 1, seconds: 2, warmupSeconds: 1 } as const;

/**
 * Pledge's configuration for an HTTP bench: the rate limit out of the way (1,000,000 a minute, the
 * highest it accepts), quiet logs.
 */
export const PLEDGE_BENCH_ENV = { PLEDGE_RATE_LIMIT: '1000000', PLEDGE_LOG_LEVEL: 'warn' } as const;

/**
 * Loads each server once for `warmupSeconds` (untimed), then `rounds` times for `seconds`,
 * interleaved (A B A B ...) so that drift in the machine's load touches each alike. Returns each
 * server's timed runs by label.
 */
export async function loadInterleaved(
  servers: ReadonlyArray<{ label: string; base: string }>,
  options: LoadInterleavedOptions,
  load: (label: string, base: string, seconds: number) => Promise<LoadFigures>,
): Promise<Map<string, LoadFigures[]>> {
  const runs = new Map(servers.map((s) => [s.label, [] as LoadFigures[]]));
  for (const s of servers) await load(s.label, s.base, options.warmupSeconds);
  for (let round = 0; round < options.rounds; round++) {
    for (const s of servers) runs.get(s.label)!.push(await load(s.label, s.base, options.seconds));
  }
  return runs;
}

/**
 * A PostgreSQL database of its own, named `prefix_<random>`, on the server $PLEDGE_TEST_DATABASE_URL
 * names (else the machine's at {@link DEFAULT_BENCH_DATABASE_URL}), for servers that share one.
 * Throws a {@link BenchFailure} when PostgreSQL cannot be reached.
 */
export async function createBenchDatabase(prefix: string): Promise<PostgresDatabase> {
  // Benches run outside scripts/run-tests.mjs, which starts a server only for tests.
  const serverUrl = process.env.PLEDGE_TEST_DATABASE_URL || DEFAULT_BENCH_DATABASE_URL;
  try {
    return await createPostgresDatabase(prefix, serverUrl);
  } catch (err) {
    throw new BenchFailure(`PostgreSQL at ${serverUrl}: ${(err as Error).message}`);
  }
}
