/**
 * Memory while writing 1,000,000 records: a child process (bench/vault-memory.child.ts, so the
 * resident set is its own) writes registration records through Vault.write and samples its RSS
 * every 50,000 records; the same child writing the same rows with bare better-sqlite3 is the
 * baseline, in the same run. Target: flat, i.e. RSS grows by less than 10 % or less than 30 MB from
 * the 10 % mark (100,000 records) to the end.
 *
 * Alone: `node --import tsx bench/vault-memory.bench.ts [--quick]`.
 */
import { spawn } from 'node:child_process';
import {
  BenchFailure,
  benchEnv,
  formatMiB,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  NODE,
  ROOT,
  runAlone,
  type BenchResult,
} from './lib.js';

/** How many records; the quick form is for trying the harness, not for figures. */
export interface VaultMemoryBenchOptions {
  records: number;
  /** Records between two samples. */
  every: number;
}

/** The figures of `npm run bench`. */
export const VAULT_MEMORY_DEFAULTS: VaultMemoryBenchOptions = { records: 1_000_000, every: 50_000 };

/** `--quick`: a tenth of the records. */
export const VAULT_MEMORY_QUICK: VaultMemoryBenchOptions = { records: 100_000, every: 10_000 };

/** 30 MB, in KiB. */
const GROWTH_TARGET_KIB = (30 * 1000 * 1000) / 1024;
const GROWTH_TARGET_FRACTION = 0.1;

interface Sample {
  records: number;
  rssKiB: number;
  heapUsedKiB: number;
}

interface ChildRun {
  samples: Sample[];
  seconds: number;
  peakKiB: number;
}

const CHILD = 'bench/vault-memory.child.ts';

/** Runs the child for one engine and collects its samples; throws a BenchFailure when it fails. */
function runChild(engine: 'pledge' | 'bare', options: VaultMemoryBenchOptions): Promise<ChildRun> {
  const args = [
    '--import',
    'tsx',
    CHILD,
    '--engine',
    engine,
    '--records',
    String(options.records),
    '--every',
    String(options.every),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, args, { cwd: ROOT, env: benchEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8_192)));
    // Far above the few minutes it takes; a hung child must not hang `npm run bench`.
    const timer = setTimeout(() => child.kill('SIGKILL'), 20 * 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new BenchFailure(`${CHILD} --engine ${engine}: could not start: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const lines = stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Partial<Sample & { done: boolean; seconds: number; peakKiB: number }>);
      const done = lines.find((l) => l.done === true);
      if (code !== 0 || !done) {
        reject(
          new BenchFailure(
            `\`node ${args.join(' ')}\` ${signal ? `was killed by ${signal}` : `exited with code ${String(code)}`}` +
              `\n--- stderr (tail) ---\n${stderr.trimEnd().split('\n').slice(-15).join('\n')}`,
          ),
        );
        return;
      }
      resolve({
        samples: lines.filter((l): l is Sample => typeof l.records === 'number'),
        seconds: done.seconds ?? Number.NaN,
        peakKiB: done.peakKiB ?? Number.NaN,
      });
    });
  });
}

function rssAt(run: ChildRun, records: number): number {
  return run.samples.find((s) => s.records === records)?.rssKiB ?? Number.NaN;
}

function formatCount(n: number): string {
  return n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n);
}

/** Runs both children (baseline first) and returns the report section. */
export async function runVaultMemoryBench(
  options: VaultMemoryBenchOptions = VAULT_MEMORY_DEFAULTS,
): Promise<BenchResult> {
  const bare = await runChild('bare', options);
  const pledge = await runChild('pledge', options);

  const from = options.records / 10;
  const middle = options.records / 2;
  const to = options.records;
  const missed: string[] = [];
  const rows = [
    { label: 'bare better-sqlite3 (baseline)', run: bare, isBaseline: true },
    { label: 'Vault.write', run: pledge, isBaseline: false },
  ].map(({ label, run, isBaseline }) => {
    const growth = rssAt(run, to) - rssAt(run, from);
    const fraction = growth / rssAt(run, from);
    const underFraction = fraction < GROWTH_TARGET_FRACTION;
    const underAbsolute = growth < GROWTH_TARGET_KIB;
    const met = underFraction || underAbsolute;
    const which = [underFraction ? '< 10 %' : '', underAbsolute ? '< 30 MB' : '']
      .filter(Boolean)
      .join(' and ');
    if (!isBaseline && !met) {
      missed.push(
        `Vault.write memory: RSS grew ${formatMiB(growth)} (${(fraction * 100).toFixed(1)} %) from ${formatCount(from)} to ${formatCount(to)} records, target < 10 % or < 30 MB`,
      );
    }
    return [
      label,
      formatMiB(rssAt(run, from)),
      formatMiB(rssAt(run, middle)),
      formatMiB(rssAt(run, to)),
      `${growth >= 0 ? '+' : ''}${formatMiB(growth)} (${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(1)} %)`,
      formatMiB(run.peakKiB),
      `${run.seconds.toFixed(1)} s`,
      isBaseline ? '—' : formatTarget({ label: `flat (${met ? which : '< 10 % or < 30 MB'})`, met }),
    ];
  });

  const series = (run: ChildRun) => run.samples.map((s) => (s.rssKiB / 1024).toFixed(0)).join(', ');
  const markdown = [
    formatTable(
      [
        'writer',
        `RSS at ${formatCount(from)}`,
        `RSS at ${formatCount(middle)}`,
        `RSS at ${formatCount(to)}`,
        `growth ${formatCount(from)} → ${formatCount(to)}`,
        'peak RSS',
        'time',
        'target',
      ],
      rows,
    ),
    '',
    `RSS of Vault.write at ${formatCount(to)} records: ${formatRatio(rssAt(pledge, to), rssAt(bare, to))} the baseline's.`,
    '',
    `RSS (MiB) every ${formatCount(options.every)} records — Vault.write: ${series(pledge)}; baseline: ${series(bare)}.`,
    '',
    `A child process (\`node --import tsx ${CHILD}\`) writes ${options.records.toLocaleString('en-US')} ` +
      'registration records of 8 fields over 1,000 subjects on a fresh SQLite database: through ' +
      'Vault.write (the app built by createApp), 500 records per call, 4 calls in flight; or, for the ' +
      'baseline, with bare better-sqlite3 (the same rows, plaintext, in transactions of 500; WAL, ' +
      'synchronous=FULL). RSS is VmRSS from /proc/self/status, read in the child as the committed count ' +
      'passes each mark (no forced GC: what an operator would see). The baseline runs first.',
  ].join('\n');
  return { title: 'Vault memory while writing', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runVaultMemoryBench(quick ? VAULT_MEMORY_QUICK : VAULT_MEMORY_DEFAULTS));
}
