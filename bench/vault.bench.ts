/**
 * The vault in-process, on SQLite: encrypted writes through Vault.write (records/s) and reads through
 * the use gate, Vault.read (latency), each against bare better-sqlite3 on the same tables in the same
 * run. Targets: writes ≥ 20,000 records/s; a use-gate read of a subject with 1,000 records, p99 < 5 ms.
 *
 * Alone: `node --import tsx bench/vault.bench.ts [--quick]`.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import type { WriteRecordInput } from '../src/vault/vault.service.js';
import {
  BenchFailure,
  formatMs,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  runAlone,
  summarize,
  type BenchResult,
  type Stats,
} from './lib.js';
import {
  createSubjects,
  openBareSqlite,
  openBenchApp,
  REGISTRATION_FIELDS,
  registrationRecord,
  writeRegistrations,
  type BenchApp,
} from './vault-fixture.js';

/** How much to write and read; the quick form is for trying the harness, not for figures. */
export interface VaultBenchOptions {
  /** Records timed per write round (100,000). */
  records: number;
  /** Subjects the records are spread over (1,000). */
  subjects: number;
  /** Records per Vault.write call and per baseline transaction (500). */
  batch: number;
  /** Vault.write calls in flight at once. */
  inFlight: number;
  /** Write rounds, each Pledge and baseline on fresh databases, interleaved. */
  rounds: number;
  /** Timed reads per read case (≥ 200). */
  reads: number;
  /** Records of the subject each read case reads (1,000). */
  readRecords: number;
}

/** The figures of `npm run bench`. */
export const VAULT_BENCH_DEFAULTS: VaultBenchOptions = {
  records: 100_000,
  subjects: 1_000,
  batch: 500,
  inFlight: 4,
  rounds: 3,
  reads: 200,
  readRecords: 1_000,
};

/** `--quick`: the harness end to end in seconds. */
export const VAULT_BENCH_QUICK: VaultBenchOptions = {
  ...VAULT_BENCH_DEFAULTS,
  records: 10_000,
  rounds: 1,
  reads: 20,
};

const WRITE_TARGET_PER_S = 20_000;
const READ_TARGET_P99_MS = 5;

function formatRate(perSecond: number): string {
  return Number.isFinite(perSecond) ? `${Math.round(perSecond).toLocaleString('en-US')}/s` : 'n/a';
}

/** Runs `work` and returns its wall time in milliseconds. */
async function timed(work: () => unknown): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

interface ReadCase {
  label: string;
  purpose: string;
  subjectId: string;
  /** Fields each record must return. */
  fieldsPerRecord: number;
}

/** Writes the two subjects the read cases read, into the database the write rounds filled. */
async function prepareReadCases(bench: BenchApp, n: number, batch: number): Promise<ReadCase[]> {
  const { vault } = bench.app;
  const visitor = await vault.createSubject(bench.ctx, { kind: 'visitor', jurisdiction: 'US' });
  const customer = await vault.createSubject(bench.ctx, { kind: 'customer', jurisdiction: 'US' });
  for (let i = 0; i < n; i += batch) {
    const cookies: WriteRecordInput[] = [];
    const registrations: WriteRecordInput[] = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      cookies.push({
        subjectId: visitor.id,
        source: 'site-cookies',
        fields: {
          cookie_id: { category: 'user.device.cookie_id', value: `c-${String(j).padStart(6, '0')}-9f3a71` },
        },
      });
      registrations.push(registrationRecord(customer.id, 10_000_000 + j));
    }
    await vault.write(bench.ctx, cookies);
    await vault.write(bench.ctx, registrations);
  }
  return [
    {
      label: `(a) ${n.toLocaleString('en-US')} cookie records, 1 field each, for site-analytics`,
      purpose: 'site-analytics',
      subjectId: visitor.id,
      fieldsPerRecord: 1,
    },
    {
      label: `(b) ${n.toLocaleString('en-US')} registration records, 8 fields each, for provide-service`,
      purpose: 'provide-service',
      subjectId: customer.id,
      fieldsPerRecord: Object.keys(REGISTRATION_FIELDS).length,
    },
  ];
}

interface ReadFigures {
  readCase: ReadCase;
  pledge: Stats;
  bare: Stats;
}

/** Times Vault.read and the bare SELECT of each case, interleaved, after 5 untimed reads each. */
async function measureReads(
  bench: BenchApp,
  cases: readonly ReadCase[],
  reads: number,
  expected: number,
): Promise<ReadFigures[]> {
  const bare = new BetterSqlite3(path.join(bench.dataDir, 'pledge.db'), { readonly: true });
  try {
    // The use gate's own query (its columns, its order), without Kysely, decryption or audit.
    const select = bare.prepare(
      'select id, source, purposes, policy_version_id, collected_at, key_version, fields from records where subject_id = ? order by id',
    );
    const samples = cases.map(() => ({ pledge: [] as number[], bare: [] as number[] }));
    for (let i = -5; i < reads; i++) {
      for (const [c, readCase] of cases.entries()) {
        let rows = 0;
        const bareMs = await timed(() => {
          rows = select.all(readCase.subjectId).length;
        });
        let got = 0;
        let fields = 0;
        const pledgeMs = await timed(async () => {
          const result = await bench.app.vault.read(bench.ctx, readCase.subjectId, readCase.purpose);
          got = result.records.length;
          fields = result.records.reduce((s, r) => s + Object.keys(r.fields).length, 0);
        });
        if (rows !== expected || got !== expected || fields !== expected * readCase.fieldsPerRecord) {
          throw new BenchFailure(
            `${readCase.label}: expected ${expected} records of ${readCase.fieldsPerRecord} field(s); ` +
              `the use gate returned ${got} records and ${fields} fields, the bare SELECT ${rows} rows`,
          );
        }
        if (i >= 0) {
          samples[c]!.pledge.push(pledgeMs);
          samples[c]!.bare.push(bareMs);
        }
      }
    }
    return cases.map((readCase, c) => ({
      readCase,
      pledge: summarize(samples[c]!.pledge),
      bare: summarize(samples[c]!.bare),
    }));
  } finally {
    bare.close();
  }
}

/** Runs the write rounds and the read cases and returns the report section. */
export async function runVaultBench(options: VaultBenchOptions = VAULT_BENCH_DEFAULTS): Promise<BenchResult> {
  const pledgeRates: number[] = [];
  const bareRates: number[] = [];
  const firstWriteRates: number[] = [];
  let reads: ReadFigures[] = [];
  for (let round = 0; round < options.rounds; round++) {
    // Baseline first, then Pledge, each on a fresh database: A B A B across rounds.
    const bare = await openBareSqlite(options.subjects);
    try {
      const ms = await timed(() => bare.insertRegistrations(options.records, options.batch));
      bareRates.push((options.records / ms) * 1000);
    } finally {
      bare.close();
    }

    const bench = await openBenchApp();
    try {
      const subjects = await createSubjects(bench, options.subjects);
      // A subject's first write makes its data key (one key-store transaction each): timed apart,
      // so the main figure is the steady state of subjects that already have a key.
      const firstMs = await timed(() =>
        writeRegistrations(bench, subjects, {
          total: subjects.length,
          batch: options.batch,
          inFlight: options.inFlight,
        }),
      );
      firstWriteRates.push((subjects.length / firstMs) * 1000);
      const ms = await timed(() =>
        writeRegistrations(bench, subjects, {
          total: options.records,
          batch: options.batch,
          inFlight: options.inFlight,
          offset: subjects.length,
        }),
      );
      pledgeRates.push((options.records / ms) * 1000);
      if (round === options.rounds - 1) {
        const cases = await prepareReadCases(bench, options.readRecords, options.batch);
        reads = await measureReads(bench, cases, options.reads, options.readRecords);
      }
    } finally {
      await bench.close();
    }
  }

  const missed: string[] = [];
  const pledge = summarize(pledgeRates);
  const bareStats = summarize(bareRates);
  const first = summarize(firstWriteRates);
  const writeMet = pledge.median >= WRITE_TARGET_PER_S;
  const writeLabel = `Vault.write, ${options.records.toLocaleString('en-US')} records of 8 fields over ${options.subjects.toLocaleString('en-US')} subjects`;
  if (!writeMet) {
    missed.push(
      `${writeLabel}: median ${formatRate(pledge.median)}, target ≥ ${formatRate(WRITE_TARGET_PER_S)}`,
    );
  }
  const writeRows = [
    [
      writeLabel,
      String(pledge.n),
      formatRate(pledge.median),
      `${formatRate(pledge.min)} – ${formatRate(pledge.max)}`,
      formatRate(bareStats.median),
      formatRatio(pledge.median, bareStats.median),
      formatTarget({ label: `≥ ${formatRate(WRITE_TARGET_PER_S)}`, met: writeMet }),
    ],
    [
      `first record of each of the ${options.subjects.toLocaleString('en-US')} subjects (makes its data key)`,
      String(first.n),
      formatRate(first.median),
      `${formatRate(first.min)} – ${formatRate(first.max)}`,
      '—',
      '—',
      '— (not a target)',
    ],
  ];

  const readRows = reads.map(({ readCase, pledge: p, bare: b }) => {
    const met = p.p99 < READ_TARGET_P99_MS;
    if (!met) {
      missed.push(
        `use gate ${readCase.label}: p99 ${formatMs(p.p99)}, target < ${formatMs(READ_TARGET_P99_MS)}`,
      );
    }
    return [
      readCase.label,
      String(p.n),
      formatMs(p.median),
      formatMs(p.p95),
      formatMs(p.p99),
      formatMs(b.median),
      formatMs(b.p99),
      formatRatio(p.p99, b.p99),
      formatTarget({ label: `p99 < ${formatMs(READ_TARGET_P99_MS)}`, met }),
    ];
  });

  const markdown = [
    '**Encrypted writes** (records/s; each round on a fresh SQLite database)',
    '',
    formatTable(
      ['what', 'rounds', 'median', 'min – max', 'baseline median', 'ratio', 'target (median)'],
      writeRows,
    ),
    '',
    `Vault.write in this process (the app built by createApp, as \`pledge serve\` wires it, from the ` +
      `TypeScript sources through tsx), registration records of 8 fields (the example manifest plus ` +
      `\`language\`), record i for subject i mod ${options.subjects}, ${options.batch} records per call, ` +
      `${options.inFlight} calls in flight; timed from the first call to the last commit. Each round ` +
      `first writes one record per subject, timed apart (second row). Baseline: bare better-sqlite3 on ` +
      `a database migrated by Pledge (same tables, indexes and foreign keys), WAL, synchronous=FULL, a ` +
      `prepared INSERT in transactions of ${options.batch}, the same rows with the fields column holding ` +
      `the plaintext JSON of the 8 values and UUIDv7 ids as Pledge makes them; ratio = Pledge / baseline. Rounds interleaved (baseline, Pledge).`,
    '',
    `**Use-gate reads** (one subject with ${options.readRecords.toLocaleString('en-US')} records, in the ` +
      `database of the last write round)`,
    '',
    formatTable(
      ['case', 'reads', 'p50', 'p95', 'p99', 'baseline p50', 'baseline p99', 'ratio (p99)', 'target'],
      readRows,
    ),
    '',
    'Vault.read(ctx, subject, purpose): the decision, the SELECT, decryption of every field the ' +
      'purpose may use and the audit entry every read writes (one commit). Case (a): cookie records ' +
      '(site-cookies, one `user.device.cookie_id` field) of a US visitor, read for site-analytics ' +
      '(opt-out in the US, so allowed). Case (b): registration records, all 8 fields read for ' +
      "provide-service. Baseline: the use gate's own SELECT (`select id, source, purposes, " +
      'policy_version_id, collected_at, key_version, fields from records where subject_id = ? order by id`) ' +
      'with bare better-sqlite3 (no decryption, no audit), interleaved with each read; 5 untimed reads ' +
      'of each first.',
  ].join('\n');
  return { title: 'Vault writes and use-gate reads', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runVaultBench(quick ? VAULT_BENCH_QUICK : VAULT_BENCH_DEFAULTS));
}
