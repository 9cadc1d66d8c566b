/**
 * The vault in-process, on SQLite: encrypted writes through Vault.write (records/s) and reads through
 * the use gate, Vault.read (latency), each against a naive baseline doing the same work on one
 * thread with bare better-sqlite3 and inline node:crypto, in the same run. Targets (same-run
 * ratios): writes at least ×1.0 of the naive writer; a use-gate read of a subject with 1,000
 * records of 8 fields, p99 at most ×1.25 of the naive reader's. The plaintext writer of earlier
 * issues (no crypto, no audit) stays as a reference row.
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
  naiveRead,
  openBareSqlite,
  openNaiveVault,
  openBenchApp,
  REGISTRATION_FIELDS,
  registrationRecord,
  USE_GATE_SELECT,
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

/** Vault.write's records/s over the naive writer's, at least. */
const WRITE_TARGET_RATIO = 1.0;
/** The 8-field use-gate read's p99 over the naive reader's, at most. */
const READ_TARGET_RATIO = 1.25;

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
  /** Whether the ratio target applies (the 8-field case); the other case is a reference. */
  target: boolean;
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
      target: false,
    },
    {
      label: `(b) ${n.toLocaleString('en-US')} registration records, 8 fields each, for provide-service`,
      purpose: 'provide-service',
      subjectId: customer.id,
      fieldsPerRecord: Object.keys(REGISTRATION_FIELDS).length,
      target: true,
    },
  ];
}

interface ReadFigures {
  readCase: ReadCase;
  pledge: Stats;
  /** The naive reader: the SELECT and inline opens of every value. */
  naive: Stats;
  /** The SELECT alone. */
  bare: Stats;
}

/**
 * Times Vault.read, the naive reader and the bare SELECT of each case, interleaved, after 5 untimed
 * reads each.
 */
async function measureReads(
  bench: BenchApp,
  cases: readonly ReadCase[],
  reads: number,
  expected: number,
): Promise<ReadFigures[]> {
  const bare = new BetterSqlite3(path.join(bench.dataDir, 'pledge.db'), { readonly: true });
  try {
    // The use gate's own query (its columns, its order), without Kysely, decryption or audit.
    const select = bare.prepare(USE_GATE_SELECT);
    const keys = await Promise.all(
      cases.map(async (c) => {
        const key = await bench.app.dataKeys.forRead(bench.ctx, c.subjectId, 1);
        if (!key) throw new BenchFailure(`${c.label}: the subject has no data key`);
        return key;
      }),
    );
    const samples = cases.map(() => ({
      pledge: [] as number[],
      naive: [] as number[],
      bare: [] as number[],
    }));
    for (let i = -5; i < reads; i++) {
      for (const [c, readCase] of cases.entries()) {
        let rows = 0;
        const bareMs = await timed(() => {
          rows = select.all(readCase.subjectId).length;
        });
        let naive = { rows: 0, values: 0 };
        const naiveMs = await timed(() => {
          naive = naiveRead(select, readCase.subjectId, keys[c]!);
        });
        let got = 0;
        let fields = 0;
        const pledgeMs = await timed(async () => {
          const result = await bench.app.vault.read(bench.ctx, readCase.subjectId, readCase.purpose);
          got = result.records.length;
          fields = result.records.reduce((s, r) => s + Object.keys(r.fields).length, 0);
        });
        const values = expected * readCase.fieldsPerRecord;
        if (rows !== expected || got !== expected || fields !== values || naive.values !== values) {
          throw new BenchFailure(
            `${readCase.label}: expected ${expected} records of ${readCase.fieldsPerRecord} field(s); ` +
              `the use gate returned ${got} records and ${fields} fields, the bare SELECT ${rows} rows, ` +
              `the naive reader ${naive.values} values`,
          );
        }
        if (i >= 0) {
          samples[c]!.pledge.push(pledgeMs);
          samples[c]!.naive.push(naiveMs);
          samples[c]!.bare.push(bareMs);
        }
      }
    }
    return cases.map((readCase, c) => ({
      readCase,
      pledge: summarize(samples[c]!.pledge),
      naive: summarize(samples[c]!.naive),
      bare: summarize(samples[c]!.bare),
    }));
  } finally {
    bare.close();
  }
}

/** The figures of one run, for bench/run.ts and bench/compare.ts. */
export interface VaultBenchFigures {
  /** Records/s of each round. */
  pledge: number[];
  naive: number[];
  plaintext: number[];
  firstWrite: number[];
  reads: ReadFigures[];
}

/** Runs the write rounds and the read cases; returns the raw figures. */
export async function measureVault(
  options: VaultBenchOptions = VAULT_BENCH_DEFAULTS,
): Promise<VaultBenchFigures> {
  const figures: VaultBenchFigures = { pledge: [], naive: [], plaintext: [], firstWrite: [], reads: [] };
  for (let round = 0; round < options.rounds; round++) {
    // The baselines first, then Pledge, each on a fresh database: A B C A B C across rounds.
    const bare = await openBareSqlite(options.subjects);
    try {
      const ms = await timed(() => bare.insertRegistrations(options.records, options.batch));
      figures.plaintext.push((options.records / ms) * 1000);
    } finally {
      bare.close();
    }
    const naive = await openNaiveVault(options.subjects);
    try {
      const ms = await timed(() => naive.writeRegistrations(options.records, options.batch));
      figures.naive.push((options.records / ms) * 1000);
      naive.checkEnvelope();
    } finally {
      naive.close();
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
      figures.firstWrite.push((subjects.length / firstMs) * 1000);
      const ms = await timed(() =>
        writeRegistrations(bench, subjects, {
          total: options.records,
          batch: options.batch,
          inFlight: options.inFlight,
          offset: subjects.length,
        }),
      );
      figures.pledge.push((options.records / ms) * 1000);
      if (round === options.rounds - 1) {
        const cases = await prepareReadCases(bench, options.readRecords, options.batch);
        figures.reads = await measureReads(bench, cases, options.reads, options.readRecords);
      }
    } finally {
      await bench.close();
    }
  }
  return figures;
}

/** Runs the vault bench and returns the report section. */
export async function runVaultBench(options: VaultBenchOptions = VAULT_BENCH_DEFAULTS): Promise<BenchResult> {
  const figures = await measureVault(options);
  const missed: string[] = [];
  const pledge = summarize(figures.pledge);
  const naive = summarize(figures.naive);
  const plaintext = summarize(figures.plaintext);
  const first = summarize(figures.firstWrite);
  const writeRatio = pledge.median / naive.median;
  const writeMet = writeRatio >= WRITE_TARGET_RATIO;
  const writeLabel = `Vault.write, ${options.records.toLocaleString('en-US')} records of 8 fields over ${options.subjects.toLocaleString('en-US')} subjects`;
  const writeTarget = `≥ ×${WRITE_TARGET_RATIO.toFixed(2)} of the naive writer`;
  if (!writeMet) {
    missed.push(
      `${writeLabel}: median ${formatRate(pledge.median)}, ${formatRatio(pledge.median, naive.median)} of the naive writer's ${formatRate(naive.median)}; target ${writeTarget}`,
    );
  }
  const writeRows = [
    [
      writeLabel,
      String(pledge.n),
      formatRate(pledge.median),
      `${formatRate(pledge.min)} – ${formatRate(pledge.max)}`,
      `naive writer: ${formatRate(naive.median)}`,
      formatRatio(pledge.median, naive.median),
      formatTarget({ label: writeTarget, met: writeMet }),
    ],
    [
      'the same, against the plaintext writer (reference)',
      String(pledge.n),
      formatRate(pledge.median),
      '',
      `plaintext writer: ${formatRate(plaintext.median)}`,
      formatRatio(pledge.median, plaintext.median),
      '— (not a target)',
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

  const readTarget = `p99 ≤ ×${READ_TARGET_RATIO.toFixed(2)} of the naive reader`;
  const readRows = figures.reads.map(({ readCase, pledge: p, naive: n, bare: b }) => {
    const met = p.p99 <= READ_TARGET_RATIO * n.p99;
    if (readCase.target && !met) {
      missed.push(
        `use gate ${readCase.label}: p99 ${formatMs(p.p99)}, ${formatRatio(p.p99, n.p99)} of the naive reader's ${formatMs(n.p99)}; target ${readTarget}`,
      );
    }
    return [
      readCase.label,
      String(p.n),
      formatMs(p.median),
      formatMs(p.p95),
      formatMs(p.p99),
      `${formatMs(n.median)} / ${formatMs(n.p99)}`,
      `${formatMs(b.median)} / ${formatMs(b.p99)}`,
      formatRatio(p.p99, n.p99),
      readCase.target ? formatTarget({ label: readTarget, met }) : '— (reference)',
    ];
  });

  const markdown = [
    '**Encrypted writes** (records/s; each round on fresh SQLite databases)',
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
      `first writes one record per subject, timed apart (third row). The naive writer (the target's ` +
      `baseline): bare better-sqlite3 on a database migrated by Pledge, one thread, the same rows ` +
      `(UUIDv7 ids) with each of the 8 values sealed inline by node:crypto AES-256-GCM in Pledge's ` +
      `envelope (per-subject key, AAD binding subject, record, field and key version; checked by ` +
      `opening one with Pledge's code), the same audit rows (one per subject and call), one ` +
      `transaction per call of ${options.batch}, WAL, synchronous=FULL, 32 MiB cache. The plaintext ` +
      `writer (reference): the same rows with the plaintext JSON of the values, no crypto, no audit. ` +
      `Rounds interleaved (plaintext, naive, Pledge).`,
    '',
    `**Use-gate reads** (one subject with ${options.readRecords.toLocaleString('en-US')} records, in the ` +
      `database of the last write round)`,
    '',
    formatTable(
      [
        'case',
        'reads',
        'p50',
        'p95',
        'p99',
        'naive reader p50 / p99',
        'SELECT alone p50 / p99',
        'ratio to naive (p99)',
        'target',
      ],
      readRows,
    ),
    '',
    'Vault.read(ctx, subject, purpose): the decision, the SELECT, decryption of every field the ' +
      'purpose may use and the audit entry every read writes (one commit). Case (a): cookie records ' +
      '(site-cookies, one `user.device.cookie_id` field) of a US visitor, read for site-analytics ' +
      '(opt-out in the US, so allowed). Case (b): registration records, all 8 fields read for ' +
      "provide-service. The naive reader (the target's baseline): the use gate's own SELECT " +
      '(`select id, source, purposes, policy_version_id, collected_at, key_version, fields from records ' +
      'where subject_id = ? order by id`) with bare better-sqlite3, then every stored value opened ' +
      'inline (one `createDecipheriv` each) and parsed, on one thread; no decision, no audit. The ' +
      'SELECT alone is shown too. Interleaved with each read; 5 untimed reads of each first.',
  ].join('\n');
  return { title: 'Vault writes and use-gate reads', markdown, missed };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runVaultBench(quick ? VAULT_BENCH_QUICK : VAULT_BENCH_DEFAULTS));
}
