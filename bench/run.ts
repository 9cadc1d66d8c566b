/**
 * `npm run bench`: builds dist/, runs every benchmark, prints a markdown report with the machine it
 * ran on and writes it to bench/results/latest.md. Exits 1 when a benchmarked command fails (the
 * report says which and shows its output); with `--strict`, also when a target is missed.
 *
 * Options: `--quick` (few runs: to try the harness, not for figures), `--no-build` (bench the
 * dist/ already there), `--only check|serve|vault|memory|collect|consent|one-click|mail|credentials|banner|beacon|share|export|log|erasure`,
 * `--strict`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as prettier from 'prettier';
import { BANNER_BENCH_DEFAULTS, BANNER_BENCH_QUICK, runBannerBench } from './banner.bench.js';
import { BEACON_BENCH_DEFAULTS, BEACON_BENCH_QUICK, runBeaconBench } from './beacon.bench.js';
import { runCheckBench } from './check.bench.js';
import {
  CREDENTIALS_BENCH_DEFAULTS,
  CREDENTIALS_BENCH_QUICK,
  runCredentialsBench,
} from './credentials.bench.js';
import { COLLECT_BENCH_DEFAULTS, COLLECT_BENCH_QUICK, runCollectBench } from './collect.bench.js';
import { CONSENT_BENCH_DEFAULTS, CONSENT_BENCH_QUICK, runConsentBench } from './consent.bench.js';
import { ONE_CLICK_BENCH_DEFAULTS, ONE_CLICK_BENCH_QUICK, runOneClickBench } from './one-click.bench.js';
import { MAIL_BENCH_DEFAULTS, MAIL_BENCH_QUICK, runMailBench } from './mail.bench.js';
import { BenchFailure, formatMiB, NODE, ROOT, type BenchResult } from './lib.js';
import { LOG_BENCH_DEFAULTS, LOG_BENCH_QUICK, runLogBench } from './log.bench.js';
import { runServeBench } from './serve.bench.js';
import { runShareBench, SHARE_BENCH_DEFAULTS, SHARE_BENCH_QUICK } from './share.bench.js';
import { ERASURE_BENCH_DEFAULTS, ERASURE_BENCH_QUICK, runErasureBench } from './erasure.bench.js';
import { EXPORT_BENCH_DEFAULTS, EXPORT_BENCH_QUICK, runExportBench } from './export.bench.js';
import { runVaultBench, VAULT_BENCH_DEFAULTS, VAULT_BENCH_QUICK } from './vault.bench.js';
import { runVaultMemoryBench, VAULT_MEMORY_DEFAULTS, VAULT_MEMORY_QUICK } from './vault-memory.bench.js';

/** Where the latest report is written. */
export const REPORT_PATH = 'bench/results/latest.md';

/** The machine the figures come from, as markdown list items. */
export function describeMachine(): string[] {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpu = m[1].trim();
  } catch {
    // Not Linux: os.cpus() already named it.
  }
  return [
    `- CPU: ${cpu}`,
    `- cores: ${os.availableParallelism()}`,
    `- memory: ${formatMiB(os.totalmem() / 1024)} total, ${formatMiB(os.freemem() / 1024)} free at start`,
    `- Node.js: ${process.version} (${NODE})`,
    `- OS: ${os.type()} ${os.release()} ${os.arch()}`,
    `- load average at start: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  ];
}

function build(): void {
  // What `npm run build` does: tsc to dist/, then the CLI bundle that bin/pledge.js runs (without
  // the bundle step, the benchmarked commands would be an older build).
  const steps: Array<{ label: string; args: string[] }> = [
    {
      label: 'tsc -p tsconfig.build.json',
      args: [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    },
    { label: 'node scripts/bundle-cli.mjs', args: ['scripts/bundle-cli.mjs'] },
  ];
  for (const step of steps) {
    const result = spawnSync(NODE, step.args, { cwd: ROOT, encoding: 'utf8' });
    if (result.status !== 0) {
      throw new BenchFailure(
        `build: \`${step.label}\` failed, so dist/ would be stale\n${result.stdout}${result.stderr}`,
      );
    }
  }
}

interface Section {
  /** The name `--only` takes. */
  key: string;
  title: string;
  run: () => BenchResult | Promise<BenchResult>;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
      only: { type: 'string' },
    },
  });
  const quick = values.quick;
  const sections: Section[] = [
    {
      key: 'check',
      title: '`pledge check`',
      run: () => runCheckBench(quick ? { runs: 3, warmup: 1 } : { runs: 20, warmup: 2 }),
    },
    {
      key: 'serve',
      title: '`pledge serve`',
      run: () => runServeBench(quick ? { runs: 1, settleMs: 500 } : { runs: 5, settleMs: 1000 }),
    },
    {
      key: 'vault',
      title: 'Vault writes and use-gate reads',
      run: () => runVaultBench(quick ? VAULT_BENCH_QUICK : VAULT_BENCH_DEFAULTS),
    },
    {
      key: 'memory',
      title: 'Vault memory while writing',
      run: () => runVaultMemoryBench(quick ? VAULT_MEMORY_QUICK : VAULT_MEMORY_DEFAULTS),
    },
    {
      key: 'collect',
      title: '`POST /api/v1/collect` over HTTP',
      run: () => runCollectBench(quick ? COLLECT_BENCH_QUICK : COLLECT_BENCH_DEFAULTS),
    },
    {
      key: 'consent',
      title: 'Decisions (`decide`, `POST /api/v1/decisions`)',
      run: () => runConsentBench(quick ? CONSENT_BENCH_QUICK : CONSENT_BENCH_DEFAULTS),
    },
    {
      key: 'one-click',
      title: 'One-click unsubscribe across instances (PostgreSQL)',
      run: () => runOneClickBench(quick ? ONE_CLICK_BENCH_QUICK : ONE_CLICK_BENCH_DEFAULTS),
    },
    {
      key: 'mail',
      title: 'Campaign mail through the pipeline',
      run: () => runMailBench(quick ? MAIL_BENCH_QUICK : MAIL_BENCH_DEFAULTS),
    },
    {
      key: 'credentials',
      title: 'Credential hashing per registration',
      run: () => runCredentialsBench(quick ? CREDENTIALS_BENCH_QUICK : CREDENTIALS_BENCH_DEFAULTS),
    },
    {
      key: 'banner',
      title: 'The banner: script size and main-thread time in Chromium',
      run: () => runBannerBench(quick ? BANNER_BENCH_QUICK : BANNER_BENCH_DEFAULTS),
    },
    {
      key: 'beacon',
      title: 'Beacon ingest over HTTP',
      run: () => runBeaconBench(quick ? BEACON_BENCH_QUICK : BEACON_BENCH_DEFAULTS),
    },
    {
      key: 'share',
      title: 'Share gate (`POST /api/v1/disclosures`, one subject)',
      run: () => runShareBench(quick ? SHARE_BENCH_QUICK : SHARE_BENCH_DEFAULTS),
    },
    {
      key: 'export',
      title: 'Export package (one person, 100,000 records, to a zip)',
      run: () => runExportBench(quick ? EXPORT_BENCH_QUICK : EXPORT_BENCH_DEFAULTS),
    },
    {
      key: 'log',
      title: 'The transparency log: append, verify, inclusion proofs',
      run: () => runLogBench(quick ? LOG_BENCH_QUICK : LOG_BENCH_DEFAULTS),
    },
    {
      key: 'erasure',
      title: 'Erasure of one subject end to end (two databases and the vault)',
      run: () => runErasureBench(quick ? ERASURE_BENCH_QUICK : ERASURE_BENCH_DEFAULTS),
    },
  ];
  const selected = sections.filter((s) => values.only === undefined || s.key === values.only);
  if (selected.length === 0) {
    process.stderr.write(
      `bench: --only must be one of ${sections.map((s) => s.key).join(', ')}, not "${values.only}"\n`,
    );
    return 2;
  }

  const started = new Date();
  const out: string[] = [
    '# Pledge benchmarks',
    '',
    `Run ${started.toISOString()} with \`npm run bench${process.argv.slice(2).length > 0 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\`${quick ? ' (**quick**: too few runs for real figures)' : ''}.`,
    '',
    '## Machine',
    '',
    ...describeMachine(),
    '',
  ];
  const failures: string[] = [];
  const missed: string[] = [];

  if (!values['no-build']) {
    process.stderr.write('bench: building dist/ ...\n');
    try {
      build();
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
    }
  }

  if (failures.length === 0) {
    for (const section of selected) {
      process.stderr.write(`bench: ${section.title} ...\n`);
      out.push(`## ${section.title}`, '');
      try {
        const result = await section.run();
        out.push(result.markdown, '');
        missed.push(...result.missed);
      } catch (err) {
        if (!(err instanceof BenchFailure)) throw err;
        failures.push(err.message);
        out.push(`**FAILED**: see Failures below.`, '');
      }
    }
  }

  out.push('## Summary', '');
  if (failures.length > 0) {
    out.push(`**${failures.length} failure(s)**; their figures are missing.`, '', '## Failures', '');
    for (const f of failures) out.push('```', f, '```', '');
  } else if (missed.length > 0) {
    out.push(
      `Every command ran. **${missed.length} target(s) missed:**`,
      '',
      ...missed.map((m) => `- ${m}`),
      '',
    );
  } else {
    out.push('Every command ran and every target was met.', '');
  }
  out.push(`Took ${((Date.now() - started.getTime()) / 1000).toFixed(1)} s.`, '');

  const file = path.join(ROOT, REPORT_PATH);
  // Formatted as `npm run lint` expects, so the report can be committed as it is written.
  const report = await prettier.format(out.join('\n'), {
    ...(await prettier.resolveConfig(file)),
    filepath: file,
  });
  process.stdout.write(report);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, report);
  process.stderr.write(`bench: report written to ${REPORT_PATH}\n`);
  if (failures.length > 0) return 1;
  return values.strict && missed.length > 0 ? 1 : 0;
}

process.exitCode = await main();
