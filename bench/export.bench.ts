/**
 * The access package of one person with 100,000 vault records (two fields each) written as the
 * export zip: Pledge (`collectPledgeData` through the use gate under legal-compliance, page by page,
 * audited, then `writeExportZip`: JSON and CSV per section, README, HTML summary, the CSV spooled
 * sealed) against a bare baseline in the same process and run that SELECTs the same rows, opens the
 * same values with node:crypto inline, and writes records.json and records.csv (and the same small
 * files) with yazl from memory. Rounds alternate; the ratio is the median of each round's.
 * Target: Pledge at least ×0.5 of the baseline's records/s.
 *
 * Alone: `node --import tsx bench/export.bench.ts [--quick]`.
 */
import { createDecipheriv } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pipeline } from 'node:stream/promises';
import { sql } from 'kysely';
import yazl from 'yazl';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/platform/config.js';
import { createContext } from '../src/platform/context.js';
import { csvCell, writeExportZip } from '../src/rights/export.zip.js';
import { formatTable, formatTarget, isMainModule, runAlone, type BenchResult } from './lib.js';

/** How much to run. */
export interface ExportBenchOptions {
  records: number;
  rounds: number;
}

/** The figures of `npm run bench`. */
export const EXPORT_BENCH_DEFAULTS: ExportBenchOptions = { records: 100_000, rounds: 3 };
/** `--quick`: to try the harness. */
export const EXPORT_BENCH_QUICK: ExportBenchOptions = { records: 5_000, rounds: 1 };

const TARGET = 0.5;

/** A sink that counts bytes (the zip goes nowhere: the bench measures making it). */
function counter(): { out: Writable; bytes: () => number } {
  let n = 0;
  return {
    out: new Writable({
      write(chunk: Buffer, _enc, done) {
        n += chunk.length;
        done();
      },
    }),
    bytes: () => n,
  };
}

// A full collection before each measured phase, so one side's garbage is not counted to the other.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** Samples the heap while `work` runs: its peak above the heap at the start, in bytes. */
async function peakHeapOf<T>(work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  collectGarbage();
  const start = process.memoryUsage().heapUsed;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 20);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    return { result, peak: peak - start };
  } finally {
    clearInterval(timer);
  }
}

/** The AAD of a field, as the vault binds it (length-prefixed parts). */
function aadOf(subjectId: string, recordId: string, field: string, keyVersion: number): Buffer {
  const parts = ['pledge.field.v1', subjectId, recordId, field, String(keyVersion)].map((p) =>
    Buffer.from(p),
  );
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.writeUInt32BE(p.length, at);
    p.copy(out, at + 4);
    at += 4 + p.length;
  }
  return out;
}

function openInline(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 13), { authTagLength: 16 });
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(sealed.subarray(13, sealed.length - 16)), d.final()]);
}

/** Runs the bench and returns the report section. */
export async function runExportBench(
  options: ExportBenchOptions = EXPORT_BENCH_DEFAULTS,
): Promise<BenchResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pledge-bench-export-'));
  const app = await createApp({
    ...loadConfig({ PLEDGE_DATA_DIR: dataDir, PLEDGE_LOG_LEVEL: 'silent' }),
    retentionIntervalSeconds: 0,
  });
  const rounds: Array<{
    pledgeMs: number;
    baseMs: number;
    pledgeBytes: number;
    baseBytes: number;
    pledgeHeap: number;
    baseHeap: number;
  }> = [];
  try {
    const writer = createContext({ kind: 'cli', id: 'bench' });
    // The legal team's system serves legal-compliance, the purpose an access request reads for.
    const reader = createContext({ kind: 'system', id: 'legal-team', key: 'bench' });
    const subject = await app.vault.createSubject(writer, {
      kind: 'customer',
      jurisdiction: 'US',
      identifiers: { email: `export-bench-${Date.now()}@example-customer.test` },
    });
    for (let i = 0; i < options.records; i += 1000)
      await app.vault.write(
        writer,
        Array.from({ length: Math.min(1000, options.records - i) }, (_v, j) => ({
          subjectId: subject.id,
          source: 'feedback',
          fields: {
            message: { category: 'user.feedback', value: `The meeting ${i + j} went well, "thanks"` },
            rating: { category: 'user.feedback', value: (i + j) % 5 },
          },
        })),
      );
    const db = app.database.kysely;

    const pledge = async () => {
      const sink = counter();
      const started = performance.now();
      const pkg = await app.pledgeRights.exports.collectPledgeData(reader, subject.id);
      const result = await writeExportZip(pkg, sink.out);
      if (result.counts.records !== options.records)
        throw new Error(`Pledge exported ${result.counts.records} records`);
      return { ms: performance.now() - started, bytes: sink.bytes() };
    };

    const baseline = async () => {
      const sink = counter();
      const started = performance.now();
      const rows = await sql<{
        id: string;
        source: string;
        collected_at: string;
        policy_version_id: number;
        key_version: number;
        fields: string;
      }>`SELECT id, source, collected_at, policy_version_id, key_version, fields FROM records WHERE subject_id = ${subject.id} ORDER BY id`.execute(
        db,
      );
      const keys = new Map<number, Buffer>();
      const json: string[] = [];
      const csv: string[] = ['record_id,source,collected_at,policy_version,field,category,value\r\n'];
      for (const r of rows.rows) {
        let key = keys.get(r.key_version);
        if (key === undefined) {
          key = await app.dataKeys.forRead(writer, subject.id, r.key_version);
          if (key === undefined) throw new Error('no key');
          keys.set(r.key_version, key);
        }
        const stored = JSON.parse(r.fields) as Record<string, { c: string; v: string }>;
        const fields: Record<string, { category: string; value: unknown }> = {};
        const collectedAt = new Date(r.collected_at).toISOString();
        for (const [name, f] of Object.entries(stored)) {
          const value = JSON.parse(
            openInline(
              key,
              Buffer.from(f.v, 'base64'),
              aadOf(subject.id, r.id, name, r.key_version),
            ).toString('utf8'),
          ) as unknown;
          fields[name] = { category: f.c, value };
          csv.push(
            `${[r.id, r.source, collectedAt, r.policy_version_id, name, f.c, value].map(csvCell).join(',')}\r\n`,
          );
        }
        json.push(
          JSON.stringify({
            id: r.id,
            source: r.source,
            collectedAt,
            policyVersionId: r.policy_version_id,
            fields,
          }),
        );
      }
      const zip = new yazl.ZipFile();
      const done = pipeline(zip.outputStream, sink.out);
      zip.addBuffer(Buffer.from('README'), 'README.txt');
      zip.addBuffer(Buffer.from('{}'), 'subject.json');
      zip.addBuffer(Buffer.from(`[\n${json.join(',\n')}\n]\n`), 'records.json');
      zip.addBuffer(Buffer.from(csv.join('')), 'records.csv');
      for (const name of ['consent', 'disclosures', 'connectors']) {
        zip.addBuffer(Buffer.from('[]\n'), `${name}.json`);
        zip.addBuffer(Buffer.from(''), `${name}.csv`);
      }
      zip.addBuffer(Buffer.from('<!doctype html>'), 'summary.html');
      zip.end();
      await done;
      return { ms: performance.now() - started, bytes: sink.bytes() };
    };

    // One of each to warm up (statements prepared, keys cached alike), then alternating rounds.
    await baseline();
    await pledge();
    for (let round = 0; round < options.rounds; round++) {
      const first = round % 2 === 0;
      const a = await peakHeapOf(first ? baseline : pledge);
      const b = await peakHeapOf(first ? pledge : baseline);
      const [base, mine] = first ? [a, b] : [b, a];
      rounds.push({
        pledgeMs: mine.result.ms,
        baseMs: base.result.ms,
        pledgeBytes: mine.result.bytes,
        baseBytes: base.result.bytes,
        pledgeHeap: mine.peak,
        baseHeap: base.peak,
      });
    }
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  const ratio = median(rounds.map((r) => r.baseMs / r.pledgeMs));
  const pledgeMs = median(rounds.map((r) => r.pledgeMs));
  const baseMs = median(rounds.map((r) => r.baseMs));
  const met = ratio >= TARGET;
  const perSecond = (ms: number) => Math.round(options.records / (ms / 1000)).toLocaleString('en-US');
  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const markdown = [
    formatTable(
      [
        'export of one person',
        'records',
        'median ms',
        'records/s',
        'zip MB',
        'peak heap growth MB',
        'ratio to the baseline',
        'target',
      ],
      [
        [
          'bare baseline (SELECT, node:crypto inline, yazl from memory)',
          options.records.toLocaleString('en-US'),
          Math.round(baseMs).toString(),
          perSecond(baseMs),
          mb(rounds[0]?.baseBytes ?? 0),
          mb(median(rounds.map((r) => r.baseHeap))),
          '×1.00',
          '',
        ],
        [
          'Pledge (`collectPledgeData` + `writeExportZip`)',
          options.records.toLocaleString('en-US'),
          Math.round(pledgeMs).toString(),
          perSecond(pledgeMs),
          mb(rounds[0]?.pledgeBytes ?? 0),
          mb(median(rounds.map((r) => r.pledgeHeap))),
          `×${ratio.toFixed(2)}`,
          formatTarget({ label: `≥ ×${TARGET.toFixed(2)}`, met }),
        ],
      ],
    ),
    '',
    `In-process on SQLite, one person with ${options.records.toLocaleString('en-US')} records of two fields (feedback), ` +
      `${options.rounds} alternating round(s) after one warm-up of each; the ratio is the median of each round's baseline time over Pledge's. ` +
      `Pledge reads through the use gate (pages of 1,000, one audit entry per page), writes every section as JSON and CSV, ` +
      `spools each CSV sealed to a temporary file, and renders the HTML summary; the baseline keeps everything in memory and writes only the records' two files with content. ` +
      `Peak heap growth: the most the JS heap grew above its size at the start of the run, sampled every 20 ms (the median of the rounds).`,
  ].join('\n');
  const missed = met ? [] : [`export: ×${ratio.toFixed(2)} of the bare baseline; target ≥ ×${TARGET}`];
  return {
    title: `Export package (one person, ${options.records.toLocaleString('en-US')} records, to a zip)`,
    markdown,
    missed,
  };
}

if (isMainModule(import.meta.url)) {
  await runAlone((quick) => runExportBench(quick ? EXPORT_BENCH_QUICK : EXPORT_BENCH_DEFAULTS));
}
