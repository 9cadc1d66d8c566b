/**
 * The transparency log, on SQLite, each figure against a baseline measured in the same run:
 * - append: entries through the audit log (AuditLog.append in transactions of a batch, as the gates
 *   append them), with the integrator running alongside as it does in `serve`, against bare
 *   better-sqlite3 INSERTs of the same rows into the same table in transactions of the same size.
 *   Target: at least ×0.8 of the bare inserts' entries/s; the integration lag (from an entry's commit
 *   to its leaf index) is reported.
 * - verify: what `pledge audit verify` runs (verifyLog over the database: every entry read, every
 *   leaf and node hashed, every tile and checkpoint checked) on a log of 1,000,000 entries, against a
 *   bare loop that hashes the same leaves and nodes with node:crypto from memory. Target: at least
 *   ×0.5 of the bare loop's entries/s.
 * - one inclusion proof from the API over HTTP (p99 of sequential requests on a kept-alive
 *   connection) against a bare Fastify route answering an indexed SELECT of the same database, the
 *   same way. Target: p99 at most ×2 of the bare route's.
 *
 * Alone: `node --import tsx bench/log.bench.ts [--quick]`.
 */
import { createHash, hash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import type { AuditEntry, AuditRow } from '../src/audit/audit.repository.js';
import { encodeEntry, SubjectCommitments } from '../src/audit/log.entry.js';
import { parseCheckpointFile } from '../src/audit/log.publisher.js';
import { LogRepository } from '../src/audit/log.repository.js';
import { INTEGRATE_SLOT_MS } from '../src/audit/log.jobs.js';
import { createAuditCapability, type AuditCapability } from '../src/audit/log.setup.js';
import { storedLogSource, verifyLog } from '../src/audit/log.verify.js';
import { LogVerifyRepository } from '../src/audit/log.verify.repository.js';
import { parseVerifierKey } from '../src/audit/note.js';
import { MIGRATIONS } from '../src/capabilities.js';
import { createContext, type Context } from '../src/platform/context.js';
import { openDatabase, type Database } from '../src/platform/db/database.js';
import { JobQueue } from '../src/platform/jobs/jobs.service.js';
import { migrateToLatest } from '../src/platform/db/migrations.js';
import { UseKeys } from '../src/vault/use-keys.js';
import {
  BenchFailure,
  formatMs,
  formatRatio,
  formatTable,
  formatTarget,
  isMainModule,
  runAlone,
  ROOT,
  stopServer,
  summarize,
  type BenchResult,
  type Stats,
} from './lib.js';
import { createApiKey, PLEDGE_BENCH_ENV, startOnFreePort, type BenchServer } from './servers.js';

/** How much to append, verify and ask; the quick form is for trying the harness. */
export interface LogBenchOptions {
  /** Entries appended per append round. */
  appendEntries: number;
  /** Entries per transaction (both sides). */
  batch: number;
  /** Append rounds, Pledge and bare interleaved, each on a fresh database. */
  rounds: number;
  /** Entries of the verified log. */
  verifyEntries: number;
  /** Timed verifications (and bare loops), interleaved. */
  verifyRuns: number;
  /** Timed proof requests per side (after a warm-up of a tenth of it). */
  proofRequests: number;
}

/** The figures of `npm run bench`. */
export const LOG_BENCH_DEFAULTS: LogBenchOptions = {
  appendEntries: 100_000,
  batch: 100,
  rounds: 2,
  verifyEntries: 1_000_000,
  verifyRuns: 3,
  proofRequests: 5_000,
};

/** `--quick`: small runs. */
export const LOG_BENCH_QUICK: LogBenchOptions = {
  appendEntries: 10_000,
  batch: 100,
  rounds: 1,
  verifyEntries: 50_000,
  verifyRuns: 1,
  proofRequests: 500,
};

const APPEND_TARGET = 0.8;
const VERIFY_TARGET = 0.5;
const PROOF_P99_TARGET = 2;
const ORIGIN = 'bench.pledge.test/log';

/** The log on one database, built by createAuditCapability as the app builds it, and its job queue. */
export interface BenchLog extends AuditCapability {
  dataDir: string;
  database: Database;
  queue: JobQueue;
  repo: LogRepository;
  commitments: SubjectCommitments;
  checkpointFile: string;
  ctx: Context;
  close(): Promise<void>;
}

function useKeys(use: 'log_subjects' | 'log_checkpoints', secret: Buffer): UseKeys {
  return new UseKeys(use, [{ version: 1, secret, createdAt: undefined }]);
}

/** A fresh migrated SQLite database with the log on it (its queue not started). */
export async function openBenchLog(prefix = 'pledge-bench-log-'): Promise<BenchLog> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const database = await openDatabase({ dataDir });
  await migrateToLatest(database, MIGRATIONS);
  const subjectKeys = useKeys('log_subjects', randomBytes(32));
  const queue = new JobQueue({ db: database.db });
  const checkpointFile = path.join(dataDir, 'log-checkpoints.jsonl');
  const capability = createAuditCapability({
    db: database.db,
    queue,
    subjectKeys,
    checkpointKeys: useKeys('log_checkpoints', randomBytes(32)),
    settings: { origin: ORIGIN, checkpointFile, checkpointWebhook: undefined, publicTiles: false },
    log: { info: () => undefined, warn: () => undefined },
  });
  return {
    ...capability,
    dataDir,
    database,
    queue,
    repo: new LogRepository(database.db),
    commitments: new SubjectCommitments(subjectKeys),
    checkpointFile,
    ctx: createContext({ kind: 'job', id: 'bench' }),
    async close() {
      capability.stop();
      await queue.stop();
      await capability.flush();
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Entry `i` as a use-gate read records it: a subject, a purpose, the fields read. */
export function benchEntry(i: number, subjects: readonly string[]): AuditEntry {
  return {
    action: 'vault.read',
    subjectId: subjects[i % subjects.length]!,
    purpose: 'provide-service',
    details: { record: `rec-${i}`, fields: ['email', 'name', 'language'], count: 3 },
  };
}

/** Appends `total` entries in transactions of `batch`, each commit time recorded by entry count. */
async function appendThroughLog(
  log: BenchLog,
  total: number,
  batch: number,
  subjects: readonly string[],
  commits: Array<{ at: number; count: number }>,
): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < total; i += batch) {
    const entries = Array.from({ length: Math.min(batch, total - i) }, (_, k) => benchEntry(i + k, subjects));
    await log.database.db.transaction(log.ctx, (trx) => log.audit.append(trx, entries));
    commits.push({ at: performance.now(), count: i + entries.length });
    // Writes arrive as requests do, each in a turn of the event loop of its own: without this the
    // loop would chain promises for ever and starve the integrator's job (and every timer).
    await new Promise((resolve) => setImmediate(resolve));
  }
  return performance.now() - start;
}

/**
 * Samples the integrated size every few milliseconds on a read-only connection of its own (WAL lets
 * it read beside the writer), until `stop()` resolves; what the lag is read from.
 */
function sampleIntegrated(file: string): {
  samples: Array<{ at: number; size: number }>;
  stop(): Promise<void>;
} {
  const db = new BetterSqlite3(file, { readonly: true });
  const read = db.prepare('select size from log_state where id = 1');
  const samples: Array<{ at: number; size: number }> = [];
  const timer = setInterval(() => {
    const row = read.get() as { size: number } | undefined;
    samples.push({ at: performance.now(), size: row?.size ?? 0 });
  }, 5);
  return {
    samples,
    stop() {
      clearInterval(timer);
      db.close();
      return Promise.resolve();
    },
  };
}

/** The rows AuditLog would write for these entries (for the bare inserts). */
function rowsOf(commitments: SubjectCommitments, ctx: Context, entries: readonly AuditEntry[]): AuditRow[] {
  const at = new Date().toISOString();
  const actor = JSON.stringify(ctx.actor);
  return entries.map((e) => {
    const subject = e.subjectId === undefined ? undefined : commitments.commit(e.subjectId);
    const details = e.details ?? {};
    return {
      at,
      actor,
      action: e.action,
      subject: subject ?? null,
      purpose: e.purpose ?? null,
      request_id: ctx.requestId,
      details: JSON.stringify(details),
      entry: encodeEntry({
        time: at,
        actor: ctx.actor,
        action: e.action,
        purpose: e.purpose,
        requestId: ctx.requestId,
        details,
        subject,
      }),
    };
  });
}

/** Bare better-sqlite3 INSERTs of the same rows into the same (migrated) table, transactions of `batch`. */
async function appendBare(total: number, batch: number, subjects: readonly string[]): Promise<number> {
  const log = await openBenchLog('pledge-bench-log-bare-');
  const file = log.database.location;
  const rows = rowsOf(
    log.commitments,
    log.ctx,
    Array.from({ length: total }, (_, i) => benchEntry(i, subjects)),
  );
  await log.database.close();
  // The same settings as Pledge's connection (src/platform/db/dialects/sqlite.ts).
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('cache_size = -32768');
  try {
    const insert = db.prepare(
      'insert into audit_events (at, actor, action, subject, purpose, request_id, details, entry) values (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const insertBatch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const r = rows[i]!;
        insert.run(r.at, r.actor, r.action, r.subject, r.purpose, r.request_id, r.details, r.entry);
      }
    });
    const start = performance.now();
    for (let i = 0; i < total; i += batch) insertBatch(i, Math.min(total, i + batch));
    return performance.now() - start;
  } finally {
    db.close();
    rmSync(log.dataDir, { recursive: true, force: true });
  }
}

interface AppendRound {
  pledgeMs: number;
  bareMs: number;
  /** From an entry's commit to the integrator pass that gave it its leaf index, per batch. */
  lagMs: number[];
  /** From the last commit until every entry was integrated. */
  catchUpMs: number;
  /** Per batch: from its commit to the start of the pass that integrated it. */
  waitMs: number[];
  /** Per batch: how long that pass ran (its transaction and checkpoint included). */
  passMs: number[];
  /** Per pass that integrated something: how many entries. */
  perPass: number[];
  /** Per batch whose wait spanned the end of an integrate job's slot: its lag. */
  acrossSlotMs: number[];
}

interface Pass {
  start: number;
  end: number;
  integrated: number;
  size: number;
}

async function appendRound(options: LogBenchOptions, subjects: readonly string[]): Promise<AppendRound> {
  const bareMs = await appendBare(options.appendEntries, options.batch, subjects);
  const log = await openBenchLog();
  try {
    // Where the lag goes: each pass the job makes, timed (the job calls the integrator's method).
    const passes: Pass[] = [];
    const integrateOnce = log.integrator.integrateOnce.bind(log.integrator);
    log.integrator.integrateOnce = async (ctx) => {
      const start = performance.now();
      const r = await integrateOnce(ctx);
      passes.push({ start, end: performance.now(), integrated: r.integrated, size: r.size });
      return r;
    };
    // The integrator as `serve` runs it: its job on the queue, woken by each commit.
    await log.start(log.ctx);
    log.queue.start();
    const sampler = sampleIntegrated(log.database.location);
    const commits: Array<{ at: number; count: number }> = [];
    const pledgeMs = await appendThroughLog(log, options.appendEntries, options.batch, subjects, commits);
    const deadline = performance.now() + 30_000;
    while ((sampler.samples[sampler.samples.length - 1]?.size ?? 0) < options.appendEntries) {
      if (performance.now() > deadline)
        throw new BenchFailure('log bench: the integrator did not catch up within 30 s of the last commit');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await sampler.stop();
    const lastCommit = commits[commits.length - 1]!.at;
    const integratedAt = (count: number) => sampler.samples.find((p) => p.size >= count)?.at ?? Number.NaN;
    const lagMs = commits.map((c) => integratedAt(c.count) - c.at);
    const waitMs: number[] = [];
    const passMs: number[] = [];
    const acrossSlotMs: number[] = [];
    const slotMs = INTEGRATE_SLOT_MS;
    commits.forEach((c, i) => {
      const pass = passes.find((p) => p.size >= c.count);
      if (pass === undefined) return;
      waitMs.push(Math.max(0, pass.start - c.at));
      passMs.push(pass.end - pass.start);
      // Slots end on wall-clock multiples of the slot length.
      const t0 = performance.timeOrigin;
      if (Math.floor((t0 + c.at) / slotMs) !== Math.floor((t0 + pass.start) / slotMs))
        acrossSlotMs.push(lagMs[i]!);
    });
    return {
      pledgeMs,
      bareMs,
      lagMs,
      catchUpMs: integratedAt(options.appendEntries) - lastCommit,
      waitMs,
      passMs,
      perPass: passes.filter((p) => p.integrated > 0).map((p) => p.integrated),
      acrossSlotMs,
    };
  } finally {
    await log.close();
  }
}

/** A log of `count` entries, integrated (appended in transactions of 1,000). */
export async function buildIntegratedLog(count: number): Promise<{ log: BenchLog; buildMs: number }> {
  const log = await openBenchLog();
  const subjects = Array.from({ length: 1000 }, () => randomUUID());
  const start = performance.now();
  await appendThroughLog(log, count, 1000, subjects, []);
  await log.integrateNow(log.ctx);
  return { log, buildMs: performance.now() - start };
}

/**
 * The bare loop: every leaf hash and every node of the tree with node:crypto's one-shot SHA-256 over
 * reused buffers (the fastest plain way), entries from memory, the root folded at the end.
 */
export function bareTreeHash(entries: readonly Buffer[]): Buffer {
  let leaf = Buffer.alloc(1024);
  const node = Buffer.alloc(65);
  node[0] = 1;
  const nodeHash = (l: Buffer, r: Buffer) => {
    l.copy(node, 1);
    r.copy(node, 33);
    return hash('sha256', node, 'buffer');
  };
  const stack: Buffer[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.length + 1 > leaf.length) leaf = Buffer.alloc(2 * (e.length + 1));
    leaf[0] = 0;
    e.copy(leaf, 1);
    let h = hash('sha256', leaf.subarray(0, e.length + 1), 'buffer');
    for (let n = i; n % 2 === 1; n = (n - 1) / 2) h = nodeHash(stack.pop()!, h);
    stack.push(h);
  }
  let root = stack.pop() ?? createHash('sha256').digest();
  while (stack.length > 0) root = nodeHash(stack.pop()!, root);
  return root;
}

interface VerifyFigures {
  entries: number;
  buildMs: number;
  pledgeMs: number[];
  bareMs: number[];
}

async function verifyBench(log: BenchLog, buildMs: number, options: LogBenchOptions): Promise<VerifyFigures> {
  {
    // The checkpoints the integrator published to the file kept outside the database.
    const external = parseCheckpointFile(readFileSync(log.checkpointFile, 'utf8')).lines.map((l) => l.note);
    const verifiers = [parseVerifierKey(log.integrator.signer.verifierKey())];
    const entries: Buffer[] = [];
    for (let from = 0; from < options.verifyEntries; from += 10_000)
      for (const r of await log.repo.entries(log.ctx, from, from + 10_000))
        entries.push(Buffer.from(r.entry, 'utf8'));
    const pledgeMs: number[] = [];
    const bareMs: number[] = [];
    for (let run = 0; run < options.verifyRuns; run++) {
      let start = performance.now();
      const root = bareTreeHash(entries);
      bareMs.push(performance.now() - start);
      start = performance.now();
      const result = await verifyLog(
        await storedLogSource(log.ctx, new LogVerifyRepository(log.database.db), {
          origin: ORIGIN,
          verifiers,
          externalCheckpoints: external,
        }),
      );
      pledgeMs.push(performance.now() - start);
      const state = await log.repo.getState(log.ctx);
      if (!result.ok || result.verifiedSize !== options.verifyEntries || !state?.root.equals(root))
        throw new BenchFailure(
          `log bench: verify of the bench log did not pass (${JSON.stringify(result.problems.slice(0, 3))}, verified ${result.verifiedSize})`,
        );
    }
    return { entries: options.verifyEntries, buildMs, pledgeMs, bareMs };
  }
}

interface ProofFigures {
  pledge: Stats;
  bare: Stats;
}

/** GETs `url` on a kept-alive connection; resolves with the status once the whole body is read. */
function get(agent: http.Agent, url: string, headers: http.OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/**
 * Sequential requests, one connection per server, in interleaved blocks: an inclusion proof of a
 * random leaf from `pledge serve` on the log's database, and the bare indexed SELECT of the same
 * leaf from bare Fastify on the same file.
 */
async function proofBench(log: BenchLog, options: LogBenchOptions): Promise<ProofFigures> {
  const dataDir = log.dataDir;
  const size = options.verifyEntries;
  await log.database.close();
  const key = createApiKey(dataDir, ['log:read'], {}, ROOT, null);
  const pledge = await startOnFreePort(
    'pledge serve (SQLite)',
    ['bin/pledge.js', 'serve', '--data-dir', dataDir],
    PLEDGE_BENCH_ENV,
  );
  let bare: BenchServer | undefined;
  try {
    bare = await startOnFreePort(
      'bare Fastify + SELECT (bench/baseline/fastify-sqlite-leaf.mjs)',
      ['bench/baseline/fastify-sqlite-leaf.mjs'],
      {
        DATA_DIR: dataDir,
      },
    );
    const pledgeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const bareAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const auth = { authorization: `Bearer ${key}` };
    const times = { pledge: [] as number[], bare: [] as number[] };
    const block = 100;
    const warmup = Math.max(block, Math.floor(options.proofRequests / 10));
    const seeded = (n: number) => (Math.imul(n + 1, 2654435761) >>> 0) % size;
    for (let done = -warmup; done < options.proofRequests; done += block) {
      for (const side of ['pledge', 'bare'] as const) {
        for (let k = 0; k < block; k++) {
          const index = seeded(done + k + warmup);
          const url =
            side === 'pledge'
              ? `${pledge.base}/api/v1/log/proofs/inclusion?index=${index}&size=${size}`
              : `${bare.base}/leaf?index=${index}`;
          const start = performance.now();
          const status = await get(
            side === 'pledge' ? pledgeAgent : bareAgent,
            url,
            side === 'pledge' ? auth : {},
          );
          const ms = performance.now() - start;
          if (status !== 200) throw new BenchFailure(`log bench: ${url} answered ${status}`);
          if (done >= 0) times[side].push(ms);
        }
      }
    }
    pledgeAgent.destroy();
    bareAgent.destroy();
    return { pledge: summarize(times.pledge), bare: summarize(times.bare) };
  } finally {
    if (bare !== undefined) await stopServer(bare.child);
    await stopServer(pledge.child);
  }
}

/** Runs the bench; figures as markdown. */
export async function runLogBench(options: LogBenchOptions): Promise<BenchResult> {
  const missed: string[] = [];
  const subjects = Array.from({ length: 1000 }, () => randomUUID());
  const rounds: AppendRound[] = [];
  for (let r = 0; r < options.rounds; r++) rounds.push(await appendRound(options, subjects));
  const rate = (n: number, ms: number) => (n / ms) * 1000;
  const median = (xs: number[]) => summarize(xs).median;
  const pledgeRate = median(rounds.map((r) => rate(options.appendEntries, r.pledgeMs)));
  const bareRate = median(rounds.map((r) => rate(options.appendEntries, r.bareMs)));
  const lag = summarize(rounds.flatMap((r) => r.lagMs));
  const catchUp = Math.max(...rounds.map((r) => r.catchUpMs));
  const appendMet = pledgeRate >= APPEND_TARGET * bareRate;
  if (!appendMet)
    missed.push(`log append: ${formatRatio(pledgeRate, bareRate)} of bare inserts, target ×${APPEND_TARGET}`);

  const built = await buildIntegratedLog(options.verifyEntries);
  let verify: VerifyFigures;
  let proof: ProofFigures;
  try {
    verify = await verifyBench(built.log, built.buildMs, options);
    proof = await proofBench(built.log, options);
  } finally {
    await built.log.close();
  }
  const verifyRate = rate(verify.entries, median(verify.pledgeMs));
  const bareVerifyRate = rate(verify.entries, median(verify.bareMs));
  const verifyMet = verifyRate >= VERIFY_TARGET * bareVerifyRate;
  if (!verifyMet)
    missed.push(
      `log verify: ${formatRatio(verifyRate, bareVerifyRate)} of the bare hash loop, target ×${VERIFY_TARGET}`,
    );

  const proofMet = proof.pledge.p99 <= PROOF_P99_TARGET * proof.bare.p99;
  if (!proofMet)
    missed.push(
      `log inclusion proof: p99 ${formatRatio(proof.pledge.p99, proof.bare.p99)} of the bare SELECT round trip, target at most ×${PROOF_P99_TARGET}`,
    );
  const fmtRate = (x: number) => `${Math.round(x).toLocaleString('en-US')}/s`;
  const markdown = [
    `Append: ${options.appendEntries.toLocaleString('en-US')} entries in transactions of ${options.batch}, median of ${options.rounds} round(s), each on a fresh database.`,
    '',
    formatTable(
      ['', 'entries/s', 'ratio', 'target'],
      [
        ['bare better-sqlite3 INSERTs of the same rows (same table)', fmtRate(bareRate), '×1.00', ''],
        [
          'AuditLog.append, integrator running alongside',
          fmtRate(pledgeRate),
          formatRatio(pledgeRate, bareRate),
          formatTarget({ label: `≥ ×${APPEND_TARGET}`, met: appendMet }),
        ],
      ],
    ),
    '',
    `Integration lag (commit to leaf index, per batch): median ${formatMs(lag.median)}, p99 ${formatMs(lag.p99)}, max ${formatMs(lag.max)}; caught up ${formatMs(catchUp)} after the last commit.`,
    '',
    `Verify: a log of ${verify.entries.toLocaleString('en-US')} entries (built and integrated in ${formatMs(verify.buildMs)}), median of ${options.verifyRuns} run(s).`,
    '',
    formatTable(
      ['', 'time', 'entries/s', 'ratio', 'target'],
      [
        [
          'bare node:crypto loop: the same leaves and nodes, from memory',
          formatMs(median(verify.bareMs)),
          fmtRate(bareVerifyRate),
          '×1.00',
          '',
        ],
        [
          'verifyLog over the database (what `pledge audit verify` runs)',
          formatMs(median(verify.pledgeMs)),
          fmtRate(verifyRate),
          formatRatio(verifyRate, bareVerifyRate),
          formatTarget({ label: `≥ ×${VERIFY_TARGET}`, met: verifyMet }),
        ],
      ],
    ),
    '',
    `One inclusion proof over HTTP: ${options.proofRequests.toLocaleString('en-US')} sequential requests per server on one kept-alive connection (random leaves of the ${verify.entries.toLocaleString('en-US')}-entry log, same leaves both sides), in interleaved blocks of 100 after a warm-up.`,
    '',
    formatTable(
      ['', 'median', 'p99', 'ratio (p99)', 'target'],
      [
        [
          'bare Fastify + indexed SELECT of the leaf (bench/baseline/fastify-sqlite-leaf.mjs)',
          formatMs(proof.bare.median),
          formatMs(proof.bare.p99),
          '×1.00',
          '',
        ],
        [
          '`pledge serve`: GET /api/v1/log/proofs/inclusion (key check, proof from tiles, entry, checkpoint)',
          formatMs(proof.pledge.median),
          formatMs(proof.pledge.p99),
          formatRatio(proof.pledge.p99, proof.bare.p99),
          formatTarget({ label: `≤ ×${PROOF_P99_TARGET}`, met: proofMet }),
        ],
      ],
    ),
  ].join('\n');
  return { title: 'The transparency log: append, verify, proofs', markdown, missed };
}

/**
 * The append rounds alone (append rate and integration lag), with where the lag's time went: what
 * `--only lag` runs.
 */
export async function runLogLagBench(options: LogBenchOptions): Promise<BenchResult> {
  const missed: string[] = [];
  const subjects = Array.from({ length: 1000 }, () => randomUUID());
  const rounds: AppendRound[] = [];
  for (let r = 0; r < options.rounds; r++) rounds.push(await appendRound(options, subjects));
  const rate = (n: number, ms: number) => (n / ms) * 1000;
  const median = (xs: number[]) => summarize(xs).median;
  const pledgeRate = median(rounds.map((r) => rate(options.appendEntries, r.pledgeMs)));
  const bareRate = median(rounds.map((r) => rate(options.appendEntries, r.bareMs)));
  const lag = summarize(rounds.flatMap((r) => r.lagMs));
  const catchUp = Math.max(...rounds.map((r) => r.catchUpMs));
  if (pledgeRate < APPEND_TARGET * bareRate)
    missed.push(`log append: ${formatRatio(pledgeRate, bareRate)} of bare inserts, target ×${APPEND_TARGET}`);
  if (lag.max > 1000) missed.push(`log integration lag: max ${formatMs(lag.max)}, target within 1 s`);
  const fmtRate = (x: number) => `${Math.round(x).toLocaleString('en-US')}/s`;
  const markdown = [
    `Append: ${options.appendEntries.toLocaleString('en-US')} entries in transactions of ${options.batch}, median of ${options.rounds} round(s), each on a fresh database.`,
    '',
    `bare INSERTs ${fmtRate(bareRate)}; AuditLog.append with the integrator alongside ${fmtRate(pledgeRate)} (${formatRatio(pledgeRate, bareRate)}).`,
    '',
    `Integration lag (commit to leaf index, per batch): median ${formatMs(lag.median)}, p99 ${formatMs(lag.p99)}, max ${formatMs(lag.max)}; caught up ${formatMs(catchUp)} after the last commit.`,
    '',
    'Where it goes, per batch (the integrator pass that gave it its leaf indexes):',
    '',
    formatTable(
      ['', 'median', 'p99', 'max'],
      [
        spread(
          'from the commit to the start of that pass (linger, poll, slot change)',
          rounds.flatMap((r) => r.waitMs),
        ),
        spread(
          'that pass (its transaction and the checkpoint it signs when one is due)',
          rounds.flatMap((r) => r.passMs),
        ),
        spread(
          'lag of the batches whose wait spanned a slot boundary',
          rounds.flatMap((r) => r.acrossSlotMs),
        ),
        spread(
          'entries per pass (not ms)',
          rounds.flatMap((r) => r.perPass),
          (x) => String(Math.round(x)),
        ),
      ],
    ),
  ].join('\n');
  return { title: 'The transparency log: append and integration lag', markdown, missed };
}

function spread(label: string, xs: number[], format: (x: number) => string = formatMs): string[] {
  if (xs.length === 0) return [label, '(none)', '', ''];
  const s = summarize(xs);
  return [`${label} (${xs.length})`, format(s.median), format(s.p99), format(s.max)];
}

if (isMainModule(import.meta.url)) {
  // `--only lag`: the append rounds alone (the verify and proof parts take minutes).
  await runAlone((quick, only) => {
    if (only !== undefined && only !== 'lag')
      throw new BenchFailure(`log bench: no part "${only}" (only lag)`);
    return (only === 'lag' ? runLogLagBench : runLogBench)(quick ? LOG_BENCH_QUICK : LOG_BENCH_DEFAULTS);
  });
}
