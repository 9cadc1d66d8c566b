/**
 * Benchmark helpers: time whole child commands (process start included) the way hyperfine does,
 * start servers and time them to their first answer, read a child's memory from /proc, and write
 * the markdown that bench/run.ts reports. Every figure is meant to be shown beside a baseline
 * measured in the same run, and the ratio of the two, so a slow machine does not read as a
 * regression.
 */
import { parseArgs } from 'node:util';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository root; benchmarked commands run from here, as a user would run them. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The node that runs the benchmarks; children run under the same one. */
export const NODE = process.execPath;

/** True when the module at `importMetaUrl` is the script node was started with. */
export function isMainModule(importMetaUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && importMetaUrl === pathToFileURL(path.resolve(script)).href;
}

/** A failed benchmark step: the command, how it ended and the tail of its output. */
export class BenchFailure extends Error {
  override readonly name = 'BenchFailure';
}

/** A command to run; `env` is the whole environment of the child. */
export interface CommandSpec {
  /** How the report names this command. */
  label: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Summary statistics of some samples, in the samples' unit. */
export interface Stats {
  n: number;
  min: number;
  mean: number;
  median: number;
  p95: number;
  p99: number;
  max: number;
}

/** The `p`-th percentile (0-100) of sorted samples, interpolating linearly between ranks. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of no samples');
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (rank - lo);
}

/** Min, mean, median, p95, p99 and max of some samples. */
export function summarize(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    min: sorted[0] ?? Number.NaN,
    mean: sorted.reduce((s, x) => s + x, 0) / sorted.length,
    median: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

function describeCommand(spec: CommandSpec): string {
  return [spec.command, ...spec.args].join(' ');
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Runs a command to completion and returns its wall time in milliseconds, from just before the
 * spawn to its exit. Throws a {@link BenchFailure} when it does not exit 0, with its output.
 */
export function timeCommandOnce(spec: CommandSpec): number {
  const start = performance.now();
  const result = spawnSync(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  });
  const elapsed = performance.now() - start;
  if (result.error !== undefined || result.status !== 0) {
    const how = result.error
      ? result.error.message
      : result.signal
        ? `was killed by ${result.signal}`
        : `exited with code ${String(result.status)}`;
    throw new BenchFailure(
      `${spec.label}: \`${describeCommand(spec)}\` ${how}\n` +
        `--- stderr (tail) ---\n${tail(result.stderr ?? '')}\n--- stdout (tail) ---\n${tail(result.stdout ?? '')}`,
    );
  }
  return elapsed;
}

/** How many times to run each command. */
export interface TimeCommandsOptions {
  runs: number;
  /** Untimed runs first, to warm the file cache. */
  warmup: number;
}

/**
 * Times several commands `runs` times each, interleaved (A B A B ...) so that the machine's drift
 * during the run affects each alike. Returns the statistics in milliseconds, by label.
 */
export function timeCommands(
  specs: readonly CommandSpec[],
  options: TimeCommandsOptions,
): Map<string, Stats> {
  for (let i = 0; i < options.warmup; i++) for (const spec of specs) timeCommandOnce(spec);
  const samples = new Map<string, number[]>(specs.map((s) => [s.label, []]));
  for (let i = 0; i < options.runs; i++) {
    for (const spec of specs) samples.get(spec.label)!.push(timeCommandOnce(spec));
  }
  return new Map([...samples].map(([label, xs]) => [label, summarize(xs)]));
}

/** A process's memory, in KiB, from /proc/<pid>/status. */
export interface MemoryResult {
  /** Resident set size now (VmRSS). */
  rssKiB: number;
  /** Largest resident set size so far (VmHWM). */
  peakKiB: number;
}

/** Reads a running process's memory from /proc (Linux only). Throws when the process is gone. */
export function readMemory(pid: number): MemoryResult {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new BenchFailure(`/proc/${pid}/status has no ${name} line`);
    return Number(m[1]);
  };
  return { rssKiB: field('VmRSS'), peakKiB: field('VmHWM') };
}

function getStatus(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** A server started by {@link startServer}, answering at `url`. */
export interface StartedServer {
  child: ChildProcess;
  pid: number;
  /** Milliseconds from just before the spawn to the first 200 answer. */
  readyMs: number;
  /** Everything the server printed so far (last 64 KiB). */
  output: () => string;
}

/** How to start a server and tell that it is ready. */
export interface StartServerOptions {
  /** The URL polled until it answers 200, e.g. http://127.0.0.1:PORT/healthz. */
  readyUrl: string;
  timeoutMs?: number;
  /** Time between polls; it bounds the precision of `readyMs`. */
  pollIntervalMs?: number;
}

/**
 * Spawns a server and polls `readyUrl` until it answers 200. Throws a {@link BenchFailure} with the
 * server's output when it exits first or is not ready in time (the server is then stopped).
 */
export async function startServer(spec: CommandSpec, options: StartServerOptions): Promise<StartedServer> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const interval = options.pollIntervalMs ?? 5;
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-65_536);
  };
  const start = performance.now();
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = signal ? `was killed by ${signal}` : `exited with code ${String(code)}`;
  });
  child.once('error', (err) => {
    exited = `could not start: ${err.message}`;
  });

  const fail = async (why: string): Promise<never> => {
    await stopServer(child);
    throw new BenchFailure(
      `${spec.label}: \`${describeCommand(spec)}\` ${why}\n--- output (tail) ---\n${tail(output, 25)}`,
    );
  };
  for (;;) {
    if (exited !== undefined) return fail(`${exited} before ${options.readyUrl} answered`);
    if (performance.now() - start > timeoutMs) {
      return fail(`did not answer 200 at ${options.readyUrl} within ${timeoutMs} ms`);
    }
    const status = await getStatus(options.readyUrl);
    if (status === 200) break;
    await delay(interval);
  }
  const readyMs = performance.now() - start;
  if (child.pid === undefined) return fail('has no process id');
  return { child, pid: child.pid, readyMs, output: () => output };
}

/** Stops a child with SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopServer(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A duration in milliseconds for a report: "123 ms", "1.23 s". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}

/** A size in KiB as MiB for a report: "87.3 MiB". */
export function formatMiB(kib: number): string {
  return Number.isFinite(kib) ? `${(kib / 1024).toFixed(1)} MiB` : 'n/a';
}

/** The ratio of a figure to its baseline: "×1.85". */
export function formatRatio(value: number, baseline: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(baseline) || baseline <= 0) return 'n/a';
  return `×${(value / baseline).toFixed(2)}`;
}

/** One markdown table row. Pipes in cells are escaped. */
export function formatRow(cells: readonly string[]): string {
  return `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
}

/** A markdown table: header row, separator, body rows. */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  return [formatRow(header), formatRow(header.map(() => '---')), ...rows.map(formatRow)].join('\n');
}

/** A target and whether a figure met it. */
export interface TargetResult {
  label: string;
  met: boolean;
}

/** "met" or "MISSED" for a report cell. */
export function formatTarget(t: TargetResult): string {
  return `${t.label} ${t.met ? '✅ met' : '❌ MISSED'}`;
}

/** What one bench file hands bench/run.ts. */
export interface BenchResult {
  title: string;
  /** Markdown: the table(s) and a line on method. */
  markdown: string;
  /** Targets that were not met, one line each. */
  missed: string[];
}

/** Variables that would change what a benchmarked child does, removed from its environment. */
const UNSET_FOR_CHILDREN = [
  'NODE_OPTIONS',
  'DATABASE_URL',
  'PORT',
  'HOST',
  'PLEDGE_MANIFEST',
  'PLEDGE_DATA_DIR',
];

/**
 * This process's environment without the variables that would change what a benchmarked child
 * does (a developer's NODE_OPTIONS or DATABASE_URL), plus `extra`.
 */
export function benchEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of UNSET_FOR_CHILDREN) delete env[name];
  return { ...env, ...extra };
}

/**
 * Runs one bench file on its own and prints its section; a {@link BenchFailure} is printed
 * without a stack trace and exits 1.
 */
export async function runAlone(
  run: (quick: boolean, only: string | undefined) => BenchResult | Promise<BenchResult>,
): Promise<void> {
  // `--quick` on the command line: the few runs that try the harness; `--only PART`: a bench's part,
  // for the benches that have parts.
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } },
  });
  try {
    const result = await run(values.quick, values.only);
    process.stdout.write(`## ${result.title}\n\n${result.markdown}\n`);
    if (result.missed.length > 0)
      process.stdout.write(`\nMissed:\n${result.missed.map((m) => `- ${m}`).join('\n')}\n`);
  } catch (err) {
    if (!(err instanceof BenchFailure)) throw err;
    process.stderr.write(`bench FAILED: ${err.message}\n`);
    process.exitCode = 1;
  }
}
