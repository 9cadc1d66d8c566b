/**
 * `pledge check` wall time, process start included, on the example manifest and on a generated
 * large one (1000 sources, 50 recipients), against bare Node start (`node -e 0`) timed in the same
 * run. Targets: example < 300 ms, large < 2 s (medians).
 *
 * Alone: `node --import tsx bench/check.bench.ts [--quick]`.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_LARGE_MANIFEST, generateLargeManifest } from './generate-manifest.js';
import {
  benchEnv,
  formatMs,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  runAlone,
  NODE,
  ROOT,
  timeCommands,
  type BenchResult,
  type CommandSpec,
} from './lib.js';

/** The example manifest shipped in the repository. */
export const EXAMPLE_MANIFEST = 'examples/example-online/pledge.yaml';

/** How many timed runs; the quick form is for trying the harness, not for figures. */
export interface CheckBenchOptions {
  runs: number;
  warmup: number;
}

const BASELINE = 'node -e 0 (bare Node start)';

/** Times `pledge check` and returns the report section. Throws a BenchFailure if a command fails. */
export function runCheckBench(options: CheckBenchOptions = { runs: 20, warmup: 2 }): BenchResult {
  const large = path.join(ROOT, DEFAULT_LARGE_MANIFEST);
  mkdirSync(path.dirname(large), { recursive: true });
  writeFileSync(large, generateLargeManifest({ sources: 1000, recipients: 50 }));

  const env = benchEnv();
  const spec = (label: string, args: string[]): CommandSpec => ({
    label,
    command: NODE,
    args,
    cwd: ROOT,
    env,
  });
  const baseline = spec(BASELINE, ['-e', '0']);
  const cases = [
    {
      spec: spec(`pledge check ${EXAMPLE_MANIFEST}`, ['bin/pledge.js', 'check', EXAMPLE_MANIFEST]),
      targetMs: 300,
    },
    {
      spec: spec('pledge check (1000 sources, 50 recipients)', [
        'bin/pledge.js',
        'check',
        DEFAULT_LARGE_MANIFEST,
      ]),
      targetMs: 2000,
    },
  ];

  // The baseline is timed within each group, interleaved with the command, so both see the same
  // machine; the large manifest runs fewer times, being slower.
  const rows: string[][] = [];
  const missed: string[] = [];
  for (const [i, c] of cases.entries()) {
    const runs = i === 0 ? options.runs : Math.max(3, Math.ceil(options.runs / 2));
    const stats = timeCommands([baseline, c.spec], { runs, warmup: options.warmup });
    const base = stats.get(BASELINE)!;
    const s = stats.get(c.spec.label)!;
    const met = s.median < c.targetMs;
    if (!met) missed.push(`${c.spec.label}: median ${formatMs(s.median)}, target < ${formatMs(c.targetMs)}`);
    rows.push([
      c.spec.label,
      String(s.n),
      formatMs(s.median),
      formatMs(s.p95),
      formatMs(s.p99),
      formatMs(s.min),
      formatMs(base.median),
      formatRatio(s.median, base.median),
      formatMs(s.median - base.median),
      formatTarget({ label: `< ${formatMs(c.targetMs)}`, met }),
    ]);
  }

  const entry = existsSync(path.join(ROOT, 'dist/cli/main.js'))
    ? 'the compiled CLI (dist/)'
    : 'the TypeScript sources through tsx (no dist/: run `npm run build` for representative figures)';
  const markdown = [
    formatTable(
      [
        'command',
        'runs',
        'median',
        'p95',
        'p99',
        'min',
        'baseline median',
        'ratio',
        'over baseline',
        'target (median)',
      ],
      rows,
    ),
    '',
    `Wall time of \`node bin/pledge.js check FILE\` from spawn to exit, process start included, ` +
      `running ${entry}. Baseline: \`${BASELINE}\`, interleaved with each command in the same run; ` +
      `ratio = median / baseline median. ${options.warmup} untimed warm-up runs each.`,
  ].join('\n');
  return { title: '`pledge check`', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runCheckBench(quick ? { runs: 3, warmup: 1 } : undefined));
}
