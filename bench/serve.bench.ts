/**
 * `pledge serve` start-to-first-answer and idle memory, against a bare Fastify server
 * (bench/baseline/fastify-hello.mjs) started the same way in the same run. Each start spawns
 * `node ... --port P` and polls GET http://127.0.0.1:P/healthz until it answers 200; idle memory is
 * the server's VmRSS one second after that answer. Targets: ready < 1 s, idle < 120 MB RSS (medians).
 *
 * Alone: `node --import tsx bench/serve.bench.ts [--quick]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  formatMiB,
  formatMs,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  runAlone,
  readMemory,
  stopServer,
  summarize,
  type BenchResult,
  type Stats,
} from './lib.js';
import { startOnFreePort } from './servers.js';

/** How many starts of each server; the quick form is for trying the harness, not for figures. */
export interface ServeBenchOptions {
  runs: number;
  /** Time between the first answer and the memory reading. */
  settleMs: number;
}

const READY_TARGET_MS = 1000;
/** 120 MB, in KiB as /proc reports it. */
const IDLE_TARGET_KIB = (120 * 1000 * 1000) / 1024;

const BASELINE = 'bare Fastify (bench/baseline/fastify-hello.mjs)';
const COLD = 'pledge serve, empty data dir (first start)';
const WARM = 'pledge serve, existing data dir (restart)';

interface Samples {
  readyMs: number[];
  idleKiB: number[];
  peakKiB: number[];
}

/** Starts a server once, records when it answered and its memory once settled, and stops it. */
async function measureStart(
  label: string,
  args: string[],
  extraEnv: NodeJS.ProcessEnv,
  settleMs: number,
  into: Samples,
): Promise<void> {
  const server = await startOnFreePort(label, args, extraEnv);
  try {
    await delay(settleMs);
    const memory = readMemory(server.pid);
    into.readyMs.push(server.readyMs);
    into.idleKiB.push(memory.rssKiB);
    into.peakKiB.push(memory.peakKiB);
  } finally {
    await stopServer(server.child);
  }
}

/** Times `pledge serve` starts and returns the report section. Throws a BenchFailure on failure. */
export async function runServeBench(
  options: ServeBenchOptions = { runs: 5, settleMs: 1000 },
): Promise<BenchResult> {
  const samples = new Map<string, Samples>(
    [BASELINE, COLD, WARM].map((l) => [l, { readyMs: [], idleKiB: [], peakKiB: [] }]),
  );
  const pledgeArgs = ['bin/pledge.js', 'serve'];
  for (let i = 0; i < options.runs; i++) {
    // Interleaved, so drift in the machine's load touches each alike.
    await measureStart(
      BASELINE,
      ['bench/baseline/fastify-hello.mjs'],
      {},
      options.settleMs,
      samples.get(BASELINE)!,
    );
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-'));
    try {
      const env = { PLEDGE_DATA_DIR: dataDir };
      await measureStart(COLD, pledgeArgs, env, options.settleMs, samples.get(COLD)!);
      await measureStart(WARM, pledgeArgs, env, options.settleMs, samples.get(WARM)!);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  const stats = (label: string): { ready: Stats; idle: Stats; peak: Stats } => {
    const s = samples.get(label)!;
    return { ready: summarize(s.readyMs), idle: summarize(s.idleKiB), peak: summarize(s.peakKiB) };
  };
  const base = stats(BASELINE);
  const missed: string[] = [];
  const readyRows: string[][] = [];
  const memoryRows: string[][] = [];
  for (const label of [BASELINE, COLD, WARM]) {
    const s = stats(label);
    const isBaseline = label === BASELINE;
    const readyMet = s.ready.median < READY_TARGET_MS;
    const idleMet = s.idle.median < IDLE_TARGET_KIB;
    if (!isBaseline && !readyMet) {
      missed.push(
        `${label}: ready median ${formatMs(s.ready.median)}, target < ${formatMs(READY_TARGET_MS)}`,
      );
    }
    if (!isBaseline && !idleMet) {
      missed.push(`${label}: idle RSS median ${formatMiB(s.idle.median)}, target < 120 MB`);
    }
    readyRows.push([
      label,
      String(s.ready.n),
      formatMs(s.ready.median),
      formatMs(s.ready.p95),
      formatMs(s.ready.min),
      formatMs(s.ready.max),
      formatMs(base.ready.median),
      formatRatio(s.ready.median, base.ready.median),
      isBaseline ? '—' : formatTarget({ label: '< 1 s', met: readyMet }),
    ]);
    memoryRows.push([
      label,
      formatMiB(s.idle.median),
      formatMiB(s.idle.max),
      formatMiB(s.peak.median),
      formatMiB(base.idle.median),
      formatRatio(s.idle.median, base.idle.median),
      isBaseline ? '—' : formatTarget({ label: '< 120 MB', met: idleMet }),
    ]);
  }

  const markdown = [
    '**Start to first answer** (spawn → first 200 from `GET /healthz`)',
    '',
    formatTable(
      ['server', 'starts', 'median', 'p95', 'min', 'max', 'baseline median', 'ratio', 'target (median)'],
      readyRows,
    ),
    '',
    `**Idle memory** (VmRSS ${options.settleMs} ms after the first answer; peak = VmHWM)`,
    '',
    formatTable(
      [
        'server',
        'idle RSS median',
        'idle RSS max',
        'peak RSS median',
        'baseline median',
        'ratio',
        'target (median)',
      ],
      memoryRows,
    ),
    '',
    `Each server is started ${options.runs} times, interleaved, with \`--port P\` on 127.0.0.1 and the ` +
      'readiness URL polled every 5 ms (so times are accurate to about 5 ms). `pledge serve` uses ' +
      'SQLite in a new PLEDGE_DATA_DIR for each first start and the same one for the restart. ' +
      'Baseline: a bare Fastify server with one route, in the same run; ratio = figure / baseline median.',
  ].join('\n');
  return { title: '`pledge serve`', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runServeBench(quick ? { runs: 1, settleMs: 500 } : undefined));
}
